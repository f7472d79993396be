//! Handlers, the router and the OpenAPI document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cpc_chain::TxStatus;
use cpc_types::{Address, Hash32, MAX_TX_BYTES, SignedTransaction, codec::decode_exact};
use serde::Serialize;
use tower_http::timeout::TimeoutLayer;
use utoipa::{OpenApi, ToSchema};

use crate::error::ErrorBody;
use crate::{ApiError, ApiState};

type Shared = Arc<ApiState>;

/// The API description served at `/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "CPChain node admin API", description = "Status, blocks, transactions, accounts, accelerators and metrics of one cpchain node."),
    paths(health, status, block, tx, account, consensus, committee_history, credit, peers, submit_tx, submit_batch, accel, metrics, openapi,
        crate::side::side_submit, crate::side::side_tx, crate::side::side_vertex, crate::side::side_status, crate::side::side_account),
    components(schemas(ErrorBody, HealthView, StatusView, BlockView, SubmitView, BatchItemView, AccountResponse, CreditView,
        crate::side::SideSubmitView, crate::side::SideBatchItemView, crate::side::SideTxView, crate::side::SideVertexView, crate::side::SideAccount)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router with every endpoint and the request limits.
pub fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/v1/txs", post(submit_tx))
        .route("/v1/txs/batch", post(submit_batch))
        .route("/v1/accel", get(accel))
        .route("/metrics", get(metrics))
        .merge(crate::fhe::protected(&state))
        .merge(crate::side::protected())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/blocks/{id}", get(block))
        .route("/v1/txs/{hash}", get(tx))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/consensus", get(consensus))
        .route("/v1/committee/history", get(committee_history))
        .route("/v1/credit/{node}", get(credit))
        .route("/v1/peers", get(peers))
        .route("/v1/openapi.json", get(openapi))
        .merge(crate::fhe::public())
        .merge(crate::side::public())
        .merge(protected)
        .merge(crate::data::routes(state.clone()))
        .fallback(|| async { ApiError::NotFound("no such endpoint; see /v1/openapi.json".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed(
                "this endpoint does not take that method; see /v1/openapi.json".into(),
            )
        })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            crate::timeout(&state.config),
        ))
        .layer(middleware::map_response(json_timeouts))
        .with_state(state)
}

/// The timeout layer answers 408 with an empty body; give it the JSON error form.
async fn json_timeouts(resp: Response) -> Response {
    if resp.status() == StatusCode::REQUEST_TIMEOUT
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::Timeout("the request took longer than api.request_timeout_ms".into())
            .into_response();
    }
    resp
}

/// Compares without leaking the position of the first difference through timing.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) async fn require_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if !state.config.auth_required() {
        return next.run(req).await;
    }
    let expected = state.config.token.as_deref().unwrap_or_default();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if !expected.is_empty() && same_token(t.as_bytes(), expected.as_bytes()) => {
            next.run(req).await
        }
        Some(_) => ApiError::Unauthorized("the bearer token is wrong".into()).into_response(),
        None => {
            ApiError::Unauthorized("this endpoint needs `Authorization: Bearer <api.token>`".into())
                .into_response()
        }
    }
}

/// Liveness.
#[derive(Serialize, ToSchema)]
pub(crate) struct HealthView {
    /// `ok`.
    status: &'static str,
    /// Height of the last committed block.
    height: u64,
}

#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = HealthView), (status = 503, body = ErrorBody)))]
async fn health(State(s): State<Shared>) -> Result<Json<HealthView>, ApiError> {
    let chain = s.chain.clone();
    let (height, poisoned) = blocking(move || Ok((chain.height(), chain.is_poisoned()))).await?;
    if poisoned {
        return Err(ApiError::Unavailable(
            "a block commit failed; restart the node to reload its state from disk".into(),
        ));
    }
    Ok(Json(HealthView {
        status: "ok",
        height,
    }))
}

/// Runs a call that takes the chain's locks off the async workers: a block commit holds
/// the state lock through its disk write.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("request task failed: {e}")))?
}

/// The node's status.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// cpchain version.
    version: &'static str,
    /// Seconds since start.
    uptime_secs: u64,
    /// Chain id.
    chain_id: u32,
    /// Genesis hash.
    genesis: String,
    /// Height of the last committed block.
    height: u64,
    /// Its hash.
    head: String,
    /// Its timestamp.
    head_timestamp_ms: u64,
    /// Its state root.
    state_root: String,
    /// Pending transactions.
    mempool_txs: usize,
    /// Their size.
    mempool_bytes: usize,
    /// This node's validator address.
    validator: Option<String>,
    /// Whether this node produces blocks.
    producing: bool,
}

#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusView)))]
async fn status(State(s): State<Shared>) -> Result<Json<StatusView>, ApiError> {
    let chain = s.chain.clone();
    let st = blocking(move || Ok(chain.status())).await?;
    Ok(Json(StatusView {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: s.started.elapsed().as_secs(),
        chain_id: st.chain_id,
        genesis: st.genesis.to_string(),
        height: st.height,
        head: st.head.to_string(),
        head_timestamp_ms: st.head_timestamp_ms,
        state_root: st.state_root.to_string(),
        mempool_txs: st.mempool_txs,
        mempool_bytes: st.mempool_bytes,
        validator: st.validator.map(|a| a.to_string()),
        producing: st.producing,
    }))
}

/// A block with its transactions and receipts.
#[derive(Serialize, ToSchema)]
pub(crate) struct BlockView {
    /// Block hash.
    hash: String,
    /// The header.
    #[schema(value_type = Object)]
    header: cpc_types::BlockHeader,
    /// The certificate.
    #[schema(value_type = Object)]
    certificate: cpc_types::Certificate,
    /// Transactions, in order (with `?full=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    txs: Option<Vec<SignedTransaction>>,
    /// Transaction ids, in order.
    tx_ids: Vec<String>,
    /// Receipts, in order.
    #[schema(value_type = Vec<Object>)]
    receipts: Vec<cpc_types::TxReceipt>,
    /// Election tickets the block records.
    #[schema(value_type = Vec<Object>)]
    tickets: Vec<cpc_types::Ticket>,
    /// The parent's votes the block carries (their voters earn credit).
    #[schema(value_type = Object)]
    parent_votes: cpc_types::Certificate,
}

#[utoipa::path(
    get,
    path = "/v1/blocks/{id}",
    params(
        ("id" = String, Path, description = "A height, or `latest`"),
        ("full" = Option<bool>, Query, description = "Include the transactions themselves, not only their ids")
    ),
    responses((status = 200, body = BlockView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn block(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<BlockQuery>,
) -> Result<Json<BlockView>, ApiError> {
    let height = match id.as_str() {
        "latest" => None,
        _ => Some(id.parse::<u64>().map_err(|_| {
            ApiError::Malformed(format!("block id {id:?} is neither a height nor `latest`"))
        })?),
    };
    let chain = s.chain.clone();
    let (height, found) = blocking(move || {
        let h = height.unwrap_or_else(|| chain.height());
        Ok((h, chain.block(h)?))
    })
    .await?;
    let (block, receipts) =
        found.ok_or_else(|| ApiError::NotFound(format!("no block at height {height}")))?;
    Ok(Json(BlockView {
        hash: block.header.hash().to_string(),
        tx_ids: block.txs.iter().map(|t| t.id().to_string()).collect(),
        header: block.header,
        certificate: block.certificate,
        txs: q.full.then_some(block.txs),
        receipts,
        tickets: block.tickets,
        parent_votes: block.parent_votes,
    }))
}

#[derive(serde::Deserialize)]
struct BlockQuery {
    #[serde(default)]
    full: bool,
}

#[utoipa::path(
    get,
    path = "/v1/txs/{hash}",
    params(("hash" = String, Path, description = "Transaction id, 64 hex digits")),
    responses(
        (status = 200, description = "`status` is pending, committed (with block, index and receipt) or rejected (with reason)", body = Object),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
async fn tx(State(s): State<Shared>, Path(hash): Path<String>) -> Result<Json<TxStatus>, ApiError> {
    let id: Hash32 = hash
        .parse()
        .map_err(|e| ApiError::Malformed(format!("{e}")))?;
    let chain = s.chain.clone();
    let st = tokio::task::spawn_blocking(move || chain.tx_status(&id))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    match st {
        TxStatus::Unknown => Err(ApiError::NotFound(format!(
            "transaction {id} is not known to this node"
        ))),
        other => Ok(Json(other)),
    }
}

/// An account.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountResponse {
    /// The address.
    address: String,
    /// Spendable base units (10⁻⁸ CPC).
    balance: u64,
    /// Committed nonce.
    nonce: u64,
    /// Nonce for a new transaction, counting pending ones.
    next_nonce: u64,
    /// Pending transactions.
    pending: usize,
    /// Free transactions left today.
    quota_left: u64,
    /// DApp stake.
    dapp_stake: u64,
    /// Stake leased in.
    leased_in: u64,
    /// Unstaked base units, spendable from the next day.
    unbonding: u64,
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{address}",
    params(("address" = String, Path, description = "`cpc` followed by 40 hex digits")),
    responses((status = 200, body = AccountResponse), (status = 400, body = ErrorBody))
)]
async fn account(
    State(s): State<Shared>,
    Path(address): Path<String>,
) -> Result<Json<AccountResponse>, ApiError> {
    let a: Address = address
        .parse()
        .map_err(|e| ApiError::Malformed(format!("{e}")))?;
    let chain = s.chain.clone();
    let v = blocking(move || Ok(chain.account(&a, crate::now_ms()))).await?;
    Ok(Json(AccountResponse {
        address: v.address.to_string(),
        balance: v.balance,
        nonce: v.nonce,
        next_nonce: v.next_nonce,
        pending: v.pending,
        quota_left: v.quota_left,
        dapp_stake: v.dapp_stake,
        leased_in: v.leased_in,
        unbonding: v.unbonding,
    }))
}

pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    max: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "the request body exceeds api.max_body_bytes ({max} bytes)"
            ))
        } else {
            ApiError::Malformed(e.body_text())
        }
    })
}

pub(crate) fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/octet-stream"))
}

fn decode_one(binary: bool, body: &[u8]) -> Result<SignedTransaction, ApiError> {
    let tx = if binary {
        if body.len() > MAX_TX_BYTES {
            return Err(ApiError::TooLarge(format!(
                "the transaction is {} bytes, the limit is {MAX_TX_BYTES}",
                body.len()
            )));
        }
        decode_exact::<SignedTransaction>(body)
            .map_err(|e| ApiError::Malformed(format!("not a canonical transaction: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::Malformed(format!("not a transaction: {e}")))?
    };
    let size = cpc_types::Encode::encode(&tx).len();
    if size > MAX_TX_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the transaction encodes to {size} bytes, the limit is {MAX_TX_BYTES}"
        )));
    }
    Ok(tx)
}

/// An admitted transaction.
#[derive(Serialize, ToSchema)]
pub(crate) struct SubmitView {
    /// The transaction id, to follow it at `/v1/txs/{hash}`.
    id: String,
}

#[utoipa::path(
    post,
    path = "/v1/txs",
    request_body(content = Object, description = "A signed transaction as JSON, or its canonical encoding with `Content-Type: application/octet-stream`"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Admitted to the mempool", body = SubmitView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)
    )
)]
async fn submit_tx(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SubmitView>), ApiError> {
    let body = body_bytes(body, s.config.max_body_bytes)?;
    let tx = decode_one(is_binary(&headers), &body)?;
    let mut results = s.admission.submit(vec![tx]).await?;
    let id = results
        .pop()
        .ok_or_else(|| ApiError::Internal("no admission result".into()))??;
    Ok((
        StatusCode::ACCEPTED,
        Json(SubmitView { id: id.to_string() }),
    ))
}

/// One result of a batch submission: an id, or an error.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchItemView {
    /// The id, when admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// The error, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

#[utoipa::path(
    post,
    path = "/v1/txs/batch",
    request_body(content = Vec<Object>, description = "A JSON array of signed transactions, or the canonical encoding of a list of them with `Content-Type: application/octet-stream`"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One result per transaction, in order", body = Vec<BatchItemView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)
    )
)]
async fn submit_batch(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<BatchItemView>>, ApiError> {
    let body = body_bytes(body, s.config.max_body_bytes)?;
    let txs: Vec<SignedTransaction> = if is_binary(&headers) {
        decode_exact(&body).map_err(|e| {
            ApiError::Malformed(format!("not a canonical list of transactions: {e}"))
        })?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Malformed(format!("not a list of transactions: {e}")))?
    };
    if txs.len() > s.config.max_batch {
        return Err(ApiError::TooLarge(format!(
            "{} transactions in one batch, the limit is {}",
            txs.len(),
            s.config.max_batch
        )));
    }
    let results = s.admission.submit(txs).await?;
    Ok(Json(
        results
            .into_iter()
            .map(|r| match r {
                Ok(id) => BatchItemView {
                    id: Some(id.to_string()),
                    error: None,
                },
                Err(e) => BatchItemView {
                    id: None,
                    error: Some(ApiError::from(e).body()),
                },
            })
            .collect(),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/consensus",
    responses((status = 200, description = "Height, view (round), term, the committee with credits and lucky values, the proposer schedule and consensus counters", body = Object), (status = 503, body = ErrorBody))
)]
async fn consensus(State(s): State<Shared>) -> Result<Json<cpc_chain::ConsensusStatus>, ApiError> {
    s.services
        .consensus()
        .map(Json)
        .ok_or_else(|| ApiError::Unavailable("consensus is not running yet".into()))
}

#[utoipa::path(
    get,
    path = "/v1/committee/history",
    responses((status = 200, description = "Every committee, oldest first: epoch, term, the first height it certified, why it took office, members by seat with their lucky values, and the standby list", body = Object), (status = 503, body = ErrorBody))
)]
async fn committee_history(State(s): State<Shared>) -> Result<Json<serde_json::Value>, ApiError> {
    let chain = s.chain.clone();
    let history = blocking(move || Ok(chain.committee_history())).await?;
    Ok(Json(serde_json::json!({ "committees": history })))
}

/// A validator's standing.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreditView {
    /// Its address.
    address: String,
    /// Its signing key.
    key: String,
    /// Credit, 0–1000.
    credit: u32,
    /// Locked deposit, base units.
    deposit: u64,
    /// Whether it sits in the current committee.
    member: bool,
    /// Whether it waits on the standby list to replace a removed member.
    standby: bool,
    /// Blocks in a row that carried the committee's votes without its vote.
    absent: u32,
    /// Its lucky value in the current committee's election, if it was elected by ticket.
    lucky: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/v1/credit/{node}",
    params(("node" = String, Path, description = "the validator's address (`cpc…`) or signing key (64 hex digits)")),
    responses((status = 200, body = CreditView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn credit(
    State(s): State<Shared>,
    Path(node): Path<String>,
) -> Result<Json<CreditView>, ApiError> {
    let address: Address = match node.parse::<Address>() {
        Ok(a) => a,
        Err(_) => node
            .parse::<cpc_types::PublicKey>()
            .map(|k| k.address())
            .map_err(|_| {
                ApiError::Malformed(
                    "expected a validator address (cpc + 40 hex digits) or key (64 hex digits)"
                        .into(),
                )
            })?,
    };
    let chain = s.chain.clone();
    let (v, info) =
        blocking(move || Ok((chain.validator(&address), chain.committee_info()))).await?;
    let v = v.ok_or_else(|| ApiError::NotFound(format!("{address} is not a validator")))?;
    Ok(Json(CreditView {
        address: address.to_string(),
        key: v.key.to_string(),
        credit: v.credit,
        deposit: v.deposit,
        member: info.members.contains(&v.key),
        standby: info.standby.contains(&v.key),
        absent: v.absent,
        lucky: info.lucky_of(&v.key),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/peers",
    responses((status = 200, description = "This node's peer id, listen addresses, connected peers with their scores, and gossip counters", body = Object), (status = 503, body = ErrorBody))
)]
async fn peers(State(s): State<Shared>) -> Result<Json<cpc_p2p::NetStatus>, ApiError> {
    s.services
        .network()
        .map(Json)
        .ok_or_else(|| ApiError::Unavailable("the network is not running".into()))
}

#[utoipa::path(
    get,
    path = "/v1/accel",
    security(("bearer" = [])),
    responses((status = 200, description = "Backends and their counters", body = Object), (status = 401, body = ErrorBody))
)]
async fn accel(State(s): State<Shared>) -> Json<serde_json::Value> {
    let d = s.chain.accel();
    Json(serde_json::json!({
        "backends": d.backends(),
        "routes": d.config(),
        "counters": d.counters(),
    }))
}

#[utoipa::path(
    get,
    path = "/metrics",
    security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, body = ErrorBody))
)]
async fn metrics(State(s): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    let page = blocking(move || Ok(crate::metrics::render(&s))).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page))
}

#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "This document", body = Object)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::fhe::FheDoc::openapi());
    doc.merge(crate::data::DataDoc::openapi());
    Json(doc)
}
