//! `/v1/data/…`: the network side of the encrypted data layer.
//!
//! Keys and plaintext never reach the node: a client seals and erasure-codes its data, then
//! asks its node to place the chunks on the storage nodes closest to each chunk's hash,
//! to rebuild a block's ciphertext from any k verified chunks, to hand kfrags to proxies
//! and to collect cfrags. Records, grants and revocations are ordinary transactions
//! (`POST /v1/txs`); the chain-state reads are here. The node's [`DataGateway`] does the
//! network work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use cpc_data::erasure::BlockEntry;
use cpc_data::{KeyAnnouncement, KfragDelivery};
use cpc_types::{Address, DataRecord, Hash32};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::error::ErrorBody;
use crate::{ApiError, ApiState};

type Shared = Arc<ApiState>;

/// A boxed future of a [`DataGateway`] call.
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// Largest body of a chunk upload: one block's n chunks (blocks are at most 64 MiB).
pub const MAX_DATA_BODY_BYTES: usize = 96 << 20;

/// Most chunks in one upload request.
pub const MAX_CHUNKS_PER_UPLOAD: usize = 256;

/// Where one chunk was stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredChunk {
    /// The chunk's id (SHA-256).
    #[schema(value_type = String)]
    pub id: Hash32,
    /// Peer ids of the storage nodes that hold it.
    pub stored_on: Vec<String>,
}

/// A block rebuilt from its chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedBlock {
    /// The ciphertext, checked against the block's hash.
    pub ciphertext: Vec<u8>,
    /// Chunks that did not hash to their ids (their senders were penalised).
    pub rejected: usize,
}

/// What the proxies answered for one re-encryption.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CfragsView {
    /// Cfrags (MessagePack, hex), unverified: the grantee checks them.
    pub cfrags: Vec<String>,
    /// Why the other proxies refused.
    pub refused: Vec<String>,
}

/// One proxy's answer to a kfrag delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The proxy's peer id.
    pub proxy: String,
    /// Whether it holds the kfrag now.
    pub accepted: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The data layer's counters on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataStatus {
    /// Chunks this node accepted for storage since it started.
    pub chunks_stored: u64,
    /// Chunks placed for clients through this node.
    pub chunks_placed: u64,
    /// Blocks rebuilt for clients.
    pub blocks_fetched: u64,
    /// Chunks received that did not match their hash; their senders were penalised.
    pub bad_chunks: u64,
    /// Chunks re-created by the repair task.
    pub chunks_repaired: u64,
    /// Blocks the repair task found with fewer than k chunks.
    pub blocks_lost: u64,
    /// Repair rounds run.
    pub repair_rounds: u64,
}

/// The node's network side of the data layer.
pub trait DataGateway: Send + Sync + 'static {
    /// Stores a block's chunks (or a manifest) under the ids they came with, each on the
    /// `replicas` storage nodes closest to it, spreading a block over distinct nodes. The
    /// storage nodes check each id against the chunk's SHA-256.
    fn store(
        &self,
        chunks: Vec<(Hash32, Bytes)>,
        replicas: usize,
    ) -> GatewayFuture<'_, Vec<StoredChunk>>;
    /// A chunk from the nodes closest to its id, checked against the id.
    fn fetch(&self, id: Hash32) -> GatewayFuture<'_, Vec<u8>>;
    /// A block's ciphertext rebuilt from any k verified chunks.
    fn fetch_block(&self, entry: BlockEntry) -> GatewayFuture<'_, FetchedBlock>;
    /// Hands one kfrag to each of the proxies of the grant.
    fn deliver_kfrags(
        &self,
        deliveries: Vec<KfragDelivery>,
    ) -> GatewayFuture<'_, Vec<DeliveryView>>;
    /// Asks the proxies of a grant to re-encrypt an interval's capsule.
    fn cfrags(
        &self,
        stream: Hash32,
        grantee: Address,
        interval: u64,
    ) -> GatewayFuture<'_, CfragsView>;
    /// Publishes an account's receiving key to the storage nodes; returns how many took it.
    fn announce(&self, announcement: KeyAnnouncement) -> GatewayFuture<'_, usize>;
    /// An account's receiving key, verified.
    fn lookup(&self, account: Address) -> GatewayFuture<'_, Option<KeyAnnouncement>>;
    /// Counters.
    fn status(&self) -> DataStatus;
}

/// The data endpoints' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        put_chunks,
        get_chunk,
        fetch_block,
        stream_info,
        stream_records,
        stream_grant,
        post_kfrags,
        post_cfrags,
        post_key,
        get_key,
        data_status
    ),
    components(schemas(
        StoredChunk,
        CfragsView,
        DeliveryView,
        DataStatus,
        StreamView,
        GrantView,
        CfragsRequest
    ))
)]
pub struct DataDoc;

/// The data routes; writes need the token like other submissions.
pub(crate) fn routes(state: Shared) -> Router<Shared> {
    let protected = Router::new()
        .route(
            "/v1/data/chunks",
            post(put_chunks).layer(DefaultBodyLimit::max(MAX_DATA_BODY_BYTES)),
        )
        .route("/v1/data/blocks", post(fetch_block))
        .route("/v1/data/kfrags", post(post_kfrags))
        .route("/v1/data/cfrags", post(post_cfrags))
        .route("/v1/data/keys", post(post_key))
        .route_layer(middleware::from_fn_with_state(
            state,
            crate::routes::require_token,
        ));
    Router::new()
        .route("/v1/data/chunks/{id}", get(get_chunk))
        .route("/v1/data/streams/{stream}", get(stream_info))
        .route("/v1/data/streams/{stream}/records", get(stream_records))
        .route(
            "/v1/data/streams/{stream}/grants/{grantee}",
            get(stream_grant),
        )
        .route("/v1/data/keys/{address}", get(get_key))
        .route("/v1/data/status", get(data_status))
        .merge(protected)
}

fn gateway(s: &ApiState) -> Result<Arc<dyn DataGateway>, ApiError> {
    s.services
        .data()
        .ok_or_else(|| ApiError::Unavailable("the data layer is not running on this node".into()))
}

fn hash(s: &str, what: &str) -> Result<Hash32, ApiError> {
    s.parse()
        .map_err(|e| ApiError::Malformed(format!("{what} {s:?}: {e}")))
}

fn address(s: &str) -> Result<Address, ApiError> {
    s.parse()
        .map_err(|e| ApiError::Malformed(format!("address {s:?}: {e}")))
}

/// Splits a chunk upload: each chunk is its 32-byte id (SHA-256), a 4-byte big-endian
/// length and its bytes. The client hashed them already; the storage nodes check.
pub fn split_chunks(body: &Bytes) -> Result<Vec<(Hash32, Bytes)>, ApiError> {
    let mut out = Vec::new();
    let mut rest = &body[..];
    while !rest.is_empty() {
        if out.len() == MAX_CHUNKS_PER_UPLOAD {
            return Err(ApiError::TooLarge(format!(
                "more than {MAX_CHUNKS_PER_UPLOAD} chunks in one upload"
            )));
        }
        let Some((id, tail)) = rest.split_first_chunk::<32>() else {
            return Err(ApiError::Malformed(FRAMING.into()));
        };
        let Some((len, tail)) = tail.split_first_chunk::<4>() else {
            return Err(ApiError::Malformed(FRAMING.into()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 || len > cpc_data::proto::MAX_CHUNK_BYTES {
            return Err(ApiError::Malformed(format!(
                "a chunk of {len} bytes; chunks are 1..={} bytes",
                cpc_data::proto::MAX_CHUNK_BYTES
            )));
        }
        if tail.len() < len {
            return Err(ApiError::Malformed(format!(
                "a chunk announces {len} bytes but {} remain",
                tail.len()
            )));
        }
        // A view into the body: the chunk is not copied on its way to the storage nodes.
        out.push((Hash32(*id), body.slice_ref(&tail[..len])));
        rest = &tail[len..];
    }
    if out.is_empty() {
        return Err(ApiError::Malformed("no chunks in the body".into()));
    }
    Ok(out)
}

const FRAMING: &str = "truncated chunk header: each chunk is its 32-byte SHA-256, a 4-byte big-endian length and its bytes";

/// Frames chunks and their ids for `POST /v1/data/chunks` (the inverse of
/// [`split_chunks`]).
pub fn join_chunks<'a>(chunks: impl IntoIterator<Item = (&'a Hash32, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, c) in chunks {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out
}

/// How many copies of each chunk to keep.
#[derive(Deserialize)]
struct ReplicasQuery {
    replicas: Option<usize>,
}

#[utoipa::path(
    post,
    path = "/v1/data/chunks",
    params(("replicas" = Option<usize>, Query, description = "Copies of each chunk, on the nodes closest to its id (default 1, at most 16)")),
    request_body(content = Vec<u8>, description = "Chunks (ciphertext only), each its 32-byte SHA-256, a 4-byte big-endian length and its bytes; the chunks of one block spread over distinct nodes; a chunk that does not hash to its id is refused (400)", content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<StoredChunk>), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody))
)]
async fn put_chunks(
    State(s): State<Shared>,
    Query(q): Query<ReplicasQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<StoredChunk>>, ApiError> {
    let body = crate::routes::body_bytes(body, MAX_DATA_BODY_BYTES)?;
    let replicas = q.replicas.unwrap_or(1);
    if !(1..=16).contains(&replicas) {
        return Err(ApiError::Malformed("replicas must be 1..=16".into()));
    }
    let chunks = split_chunks(&body)?;
    Ok(Json(gateway(&s)?.store(chunks, replicas).await?))
}

#[utoipa::path(
    get,
    path = "/v1/data/chunks/{id}",
    params(("id" = String, Path, description = "The chunk's SHA-256 (64 hex digits)")),
    responses((status = 200, description = "The chunk, checked against its id", content_type = "application/octet-stream"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody))
)]
async fn get_chunk(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = hash(&id, "chunk id")?;
    let bytes = gateway(&s)?.fetch(id).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}

#[utoipa::path(
    post,
    path = "/v1/data/blocks",
    request_body(content = Object, description = "A block entry of a manifest: seq, interval, hash, len, data_chunks (k) and the n chunk ids"),
    security(("bearer" = [])),
    responses((status = 200, description = "The block's ciphertext rebuilt from k verified chunks and checked against its hash; header x-cpchain-rejected-chunks counts chunks that failed their hash", content_type = "application/octet-stream"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody))
)]
async fn fetch_block(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = crate::routes::body_bytes(body, s.config.max_body_bytes)?;
    let entry: BlockEntry = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Malformed(format!("not a block entry: {e}")))?;
    entry
        .validate()
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
    let block = gateway(&s)?.fetch_block(entry).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static("x-cpchain-rejected-chunks"),
                block.rejected.to_string(),
            ),
        ],
        block.ciphertext,
    ))
}

/// A stream on chain.
#[derive(Serialize, ToSchema)]
pub(crate) struct StreamView {
    /// The stream id.
    stream_id: String,
    /// Its owner.
    owner: String,
    /// Access policy of the latest record.
    #[schema(value_type = String)]
    policy: cpc_types::AccessPolicy,
    /// Records published.
    records: u64,
    /// Last interval recorded.
    last_interval: u64,
    /// The first interval a new upload may use: the one after `last_interval`. A client
    /// starts its upload window at the next multiple of its intervals-per-upload.
    next_interval: u64,
}

#[utoipa::path(
    get,
    path = "/v1/data/streams/{stream}",
    params(("stream" = String, Path, description = "The stream id (64 hex digits)")),
    responses((status = 200, body = StreamView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn stream_info(
    State(s): State<Shared>,
    Path(stream): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    let id = hash(&stream, "stream id")?;
    let chain = s.chain.clone();
    let (st, latest) = crate::routes::blocking(move || {
        Ok(chain.with_state(|st| (st.stream(&id), st.latest_record(&id))))
    })
    .await?;
    let st = st.ok_or_else(|| ApiError::NotFound(format!("stream {id} has no record on chain")))?;
    let last = latest.map_or(0, |r| r.last_interval);
    Ok(Json(StreamView {
        stream_id: id.to_string(),
        owner: st.owner.to_string(),
        policy: st.policy,
        records: st.records,
        last_interval: last,
        next_interval: last.saturating_add(1),
    }))
}

#[derive(Deserialize)]
struct RecordsQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/v1/data/streams/{stream}/records",
    params(
        ("stream" = String, Path, description = "The stream id"),
        ("from" = Option<u64>, Query, description = "Start at the record holding this interval (default 0)"),
        ("limit" = Option<usize>, Query, description = "Most records (default 100, at most 1000)")
    ),
    responses((status = 200, description = "Data records in interval order; `capsule` is the hex of the record metadata (manifest id, umbral keys, wrapped interval keys)", body = Vec<Object>), (status = 400, body = ErrorBody))
)]
async fn stream_records(
    State(s): State<Shared>,
    Path(stream): Path<String>,
    Query(q): Query<RecordsQuery>,
) -> Result<Json<Vec<DataRecord>>, ApiError> {
    let id = hash(&stream, "stream id")?;
    let (from, limit) = (q.from.unwrap_or(0), q.limit.unwrap_or(100).clamp(1, 1000));
    let chain = s.chain.clone();
    let records = crate::routes::blocking(move || {
        Ok(chain.with_state(|st| st.data_records(&id, from, limit)))
    })
    .await?;
    Ok(Json(records))
}

/// A grant on chain.
#[derive(Serialize, ToSchema)]
pub(crate) struct GrantView {
    /// First interval granted.
    first_interval: u64,
    /// Last interval granted (inclusive).
    last_interval: u64,
    /// Height of the block that granted it.
    granted_at: u64,
}

#[utoipa::path(
    get,
    path = "/v1/data/streams/{stream}/grants/{grantee}",
    params(("stream" = String, Path, description = "The stream id"), ("grantee" = String, Path, description = "The grantee's address")),
    responses((status = 200, body = GrantView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn stream_grant(
    State(s): State<Shared>,
    Path((stream, grantee)): Path<(String, String)>,
) -> Result<Json<GrantView>, ApiError> {
    let id = hash(&stream, "stream id")?;
    let grantee = address(&grantee)?;
    let chain = s.chain.clone();
    let g = crate::routes::blocking(move || Ok(chain.with_state(|st| st.grant(&id, &grantee))))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no grant on chain for {grantee} on stream {id} (never granted or revoked)"
            ))
        })?;
    Ok(Json(GrantView {
        first_interval: g.first_interval,
        last_interval: g.last_interval,
        granted_at: g.granted_at,
    }))
}

fn json_body<T: for<'de> Deserialize<'de>>(
    body: Result<Bytes, BytesRejection>,
    max: usize,
    what: &str,
) -> Result<T, ApiError> {
    let body = crate::routes::body_bytes(body, max)?;
    serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("not {what}: {e}")))
}

#[utoipa::path(
    post,
    path = "/v1/data/kfrags",
    request_body(content = Vec<Object>, description = "Kfrag deliveries signed by the stream's owner, one per proxy"),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DeliveryView>), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody))
)]
async fn post_kfrags(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let deliveries: Vec<KfragDelivery> =
        json_body(body, s.config.max_body_bytes, "a list of kfrag deliveries")?;
    if deliveries.is_empty() || deliveries.len() > 255 {
        return Err(ApiError::Malformed("give 1..=255 kfrag deliveries".into()));
    }
    let first = &deliveries[0];
    if deliveries
        .iter()
        .any(|d| d.stream != first.stream || d.grantee != first.grantee)
    {
        return Err(ApiError::Malformed(
            "all deliveries must be for one stream and grantee".into(),
        ));
    }
    Ok(Json(gateway(&s)?.deliver_kfrags(deliveries).await?))
}

/// A re-encryption request.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CfragsRequest {
    /// The stream.
    #[schema(value_type = String)]
    stream: Hash32,
    /// The grantee.
    #[schema(value_type = String)]
    grantee: Address,
    /// The interval whose key is wanted.
    interval: u64,
}

#[utoipa::path(
    post,
    path = "/v1/data/cfrags",
    request_body = CfragsRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CfragsView), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody))
)]
async fn post_cfrags(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CfragsView>, ApiError> {
    let r: CfragsRequest = json_body(body, s.config.max_body_bytes, "a re-encryption request")?;
    Ok(Json(
        gateway(&s)?.cfrags(r.stream, r.grantee, r.interval).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/data/keys",
    request_body(content = Object, description = "A key announcement: account key, umbral receiving key, signature"),
    security(("bearer" = [])),
    responses((status = 200, description = "`{\"nodes\": n}`: storage nodes that keep it", body = Object), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody))
)]
async fn post_key(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let a: KeyAnnouncement = json_body(body, s.config.max_body_bytes, "a key announcement")?;
    a.verify(&a.account.address())
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
    let nodes = gateway(&s)?.announce(a).await?;
    Ok(Json(serde_json::json!({ "nodes": nodes })))
}

#[utoipa::path(
    get,
    path = "/v1/data/keys/{address}",
    params(("address" = String, Path, description = "The account")),
    responses((status = 200, description = "Its signed receiving-key announcement", body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_key(
    State(s): State<Shared>,
    Path(a): Path<String>,
) -> Result<Json<KeyAnnouncement>, ApiError> {
    let account = address(&a)?;
    gateway(&s)?
        .lookup(account)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no receiving key known for {account}: its owner must run `cpchain data announce`"
            ))
        })
}

#[utoipa::path(
    get,
    path = "/v1/data/status",
    responses((status = 200, body = DataStatus), (status = 503, body = ErrorBody))
)]
async fn data_status(State(s): State<Shared>) -> Result<Json<DataStatus>, ApiError> {
    Ok(Json(gateway(&s)?.status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_framing_round_trips_and_rejects_garbage() {
        let chunks: Vec<(Hash32, Bytes)> = vec![
            (cpc_types::sha256(&[&[1; 10]]), Bytes::from(vec![1; 10])),
            (Hash32([7; 32]), Bytes::from(vec![2; 3])),
        ];
        let body = Bytes::from(join_chunks(chunks.iter().map(|(id, c)| (id, &c[..]))));
        assert_eq!(split_chunks(&body).unwrap(), chunks);
        let split = |b: &[u8]| split_chunks(&Bytes::copy_from_slice(b));
        assert!(split(&[]).is_err());
        assert!(split(&body[..body.len() - 1]).is_err());
        assert!(split(&[0; 35]).is_err(), "truncated header");
        assert!(split(&[0; 36]).is_err(), "empty chunk");
        let mut huge = vec![0; 32];
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(split(&huge).is_err());
    }
}
