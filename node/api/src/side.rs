//! `/v1/sidechain/...`: machine transactions in, their status, vertices and the group's
//! status out, and the side chain's metrics.
//!
//! The node's side-chain task implements [`SideService`]; the handlers only decode,
//! call it off the async workers and encode.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use cpc_sidechain::{SideError, SignedMachineTx, TxInfo, TxStatus, VertexInfo};
use cpc_types::{Address, Hash32, PublicKey};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::error::ErrorBody;
use crate::routes::{blocking, body_bytes, is_binary};

type Shared = Arc<crate::ApiState>;

/// Upper bounds of the confirmation-latency histogram buckets, in milliseconds.
pub const SIDE_LATENCY_BUCKETS_MS: [u64; 12] =
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// Counters of the node's side chain since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SideMetrics {
    /// Vertices this node accepted (its own and its peers').
    pub vertices_total: u64,
    /// Vertices this node signed.
    pub own_vertices_total: u64,
    /// Machine transactions confirmed here.
    pub txs_confirmed_total: u64,
    /// Machine transactions accepted into this gateway's pool.
    pub txs_submitted_total: u64,
    /// Equivocations (two vertices of one gateway with one sequence) seen.
    pub equivocations_total: u64,
    /// Peer vertices refused as invalid.
    pub rejected_vertices_total: u64,
    /// Vertices of retired gateways dropped unchecked, nothing needing them.
    pub unneeded_vertices_total: u64,
    /// Anchors this node sent to the main chain.
    pub anchors_submitted_total: u64,
    /// Equivocation evidence this node sent to the main chain.
    pub evidence_submitted_total: u64,
    /// Messages carrying this gateway's vertices it did not send because its log could
    /// not make them durable (any: fix the disk and restart).
    pub withheld_total: u64,
    /// Messages dropped because the outbox was full (its log's disk syncs slowly):
    /// vertices once it holds 64 MiB, any message at twice that.
    pub outbox_dropped_total: u64,
    /// Syncs of the side-chain log before this gateway's vertices left.
    pub log_syncs_total: u64,
    /// The microseconds those syncs took.
    pub log_sync_us_total: u64,
    /// Vertices per second over the last few seconds.
    pub vertices_per_second: u64,
    /// Confirmed transactions per second over the last few seconds.
    pub txs_per_second: u64,
    /// Final vertices held until every gateway has seen them (it grows while a gateway
    /// is silent).
    pub awaiting_settling: u64,
    /// 1 once this gateway stopped signing for want of a working log, else 0.
    pub halted: u64,
    /// Bytes of final history in the node's store (`sidechain.archive_max_mib` bounds it;
    /// history archived by a version before the count is not in it).
    pub archive_bytes: u64,
    /// The first anchor whose final history the store keeps (0: all of it).
    pub archive_kept_from: u64,
    /// Confirmations per bucket of [`SIDE_LATENCY_BUCKETS_MS`] (not cumulative), plus one
    /// last bucket for slower ones.
    pub latency_counts: Vec<u64>,
    /// Sum of the confirmation latencies, in milliseconds.
    pub latency_sum_ms: u64,
}

/// A machine account as this node sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SideAccount {
    /// The address.
    #[schema(value_type = String)]
    pub address: Address,
    /// The nonce its next transaction should carry.
    pub next_nonce: u64,
    /// Side balance over confirmed transactions, in base units.
    pub balance: i128,
}

/// The node's side chain, as the API uses it. Calls may block briefly.
pub trait SideService: Send + Sync + 'static {
    /// Takes machine transactions into this gateway's pool (signatures verified in one
    /// batch); per transaction its hash or why it was refused.
    fn submit(&self, txs: Vec<SignedMachineTx>) -> Vec<Result<Hash32, SideError>>;
    /// A transaction this node knows.
    fn tx(&self, hash: &Hash32) -> Option<TxInfo>;
    /// A vertex this node knows.
    fn vertex(&self, id: &Hash32) -> Option<VertexInfo>;
    /// The group's status, or why the node does not serve the group yet (it is not on the
    /// main chain yet, or the node is replaying its log).
    fn status(&self) -> Result<cpc_sidechain::Status, String>;
    /// A machine account.
    fn account(&self, address: &Address) -> SideAccount;
    /// Counters.
    fn metrics(&self) -> SideMetrics;
    /// The first anchor whose final history this node's store keeps (0: all of it); a
    /// cheap read, for the answer to a lookup of history it does not have.
    fn archive_kept_from(&self) -> u64;
}

/// The public routes.
pub(crate) fn public() -> Router<Shared> {
    Router::new()
        .route("/v1/sidechain/txs/{hash}", get(side_tx))
        .route("/v1/sidechain/vertices/{id}", get(side_vertex))
        .route("/v1/sidechain/accounts/{address}", get(side_account))
        .route("/v1/sidechain/status", get(side_status))
}

/// The routes behind the token.
pub(crate) fn protected() -> Router<Shared> {
    Router::new().route("/v1/sidechain/txs", post(side_submit))
}

fn service(s: &Shared) -> Result<Arc<dyn SideService>, ApiError> {
    s.services.sidechain().ok_or_else(|| {
        ApiError::Unavailable(
            "this node runs no side chain: set [sidechain] group in its config.toml".into(),
        )
    })
}

fn parse_hash(what: &str, s: &str) -> Result<Hash32, ApiError> {
    s.parse::<Hash32>()
        .map_err(|_| ApiError::Malformed(format!("{what} must be 64 hex digits")))
}

impl From<SideError> for ApiError {
    fn from(e: SideError) -> Self {
        match e {
            SideError::BadSignature => ApiError::Signature,
            SideError::WrongGroup | SideError::NonceFinal { .. } => {
                ApiError::Invalid(e.to_string())
            }
            SideError::PoolFull => ApiError::RateLimited(e.to_string()),
            SideError::NotGateway
            | SideError::Halted(_)
            | SideError::Group(_)
            | SideError::Snapshot(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// An accepted machine transaction.
#[derive(Serialize, ToSchema)]
pub(crate) struct SideSubmitView {
    /// Its hash, to follow it at `/v1/sidechain/txs/{hash}`.
    hash: String,
}

/// One result of a list submission: a hash, or an error.
#[derive(Serialize, ToSchema)]
pub(crate) struct SideBatchItemView {
    /// The hash, when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    /// The error, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

/// A single transaction or a list, as JSON.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Box<SignedMachineTx>),
    Many(Vec<SignedMachineTx>),
}

#[utoipa::path(
    post,
    path = "/v1/sidechain/txs",
    request_body(content = Object, description = "A signed machine transaction as JSON (or a JSON array of them), or one in its canonical encoding with `Content-Type: application/octet-stream`"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Taken into the gateway's pool", body = SideSubmitView),
        (status = 200, description = "For an array: one result per transaction, in order", body = Vec<SideBatchItemView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)
    )
)]
pub(crate) async fn side_submit(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = body_bytes(body, s.config.max_body_bytes)?;
    let parsed = if is_binary(&headers) {
        OneOrMany::One(Box::new(SignedMachineTx::decode_untrusted(&body).map_err(
            |e| ApiError::Malformed(format!("not a canonical machine transaction: {e}")),
        )?))
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Malformed(format!(
                "not a signed machine transaction or a list of them: {e}"
            ))
        })?
    };
    let (txs, single) = match parsed {
        OneOrMany::One(t) => (vec![*t], true),
        OneOrMany::Many(v) => (v, false),
    };
    if txs.len() > s.config.max_batch {
        return Err(ApiError::TooLarge(format!(
            "{} transactions in one request, the limit is {}",
            txs.len(),
            s.config.max_batch
        )));
    }
    let side = service(&s)?;
    let mut results = blocking(move || Ok(side.submit(txs))).await?;
    if single {
        let hash = results
            .pop()
            .ok_or_else(|| ApiError::Internal("no submission result".into()))??;
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "hash": hash.to_string() })),
        ));
    }
    let items: Vec<SideBatchItemView> = results
        .into_iter()
        .map(|r| match r {
            Ok(h) => SideBatchItemView {
                hash: Some(h.to_string()),
                error: None,
            },
            Err(e) => SideBatchItemView {
                hash: None,
                error: Some(ApiError::from(e).body()),
            },
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(serde_json::to_value(items).map_err(|e| ApiError::Internal(e.to_string()))?),
    ))
}

/// A machine transaction and where it stands.
#[derive(Serialize, ToSchema)]
pub(crate) struct SideTxView {
    /// Its hash.
    hash: String,
    /// `pending`, `confirmed`, `anchored` or `final` (with `anchor`, the anchor's
    /// sequence), or `rejected` (with `reason`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    status: TxStatus,
    /// When this node first saw it (milliseconds since the Unix epoch).
    first_seen_ms: u64,
    /// Milliseconds from first sight here to confirmation, once confirmed.
    latency_ms: Option<u64>,
    /// The vertices that include it.
    vertices: Vec<String>,
    /// The transaction.
    #[schema(value_type = Object)]
    tx: SignedMachineTx,
}

#[utoipa::path(
    get,
    path = "/v1/sidechain/txs/{hash}",
    params(("hash" = String, Path, description = "the machine transaction's hash, 64 hex digits")),
    responses((status = 200, body = SideTxView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody))
)]
pub(crate) async fn side_tx(
    State(s): State<Shared>,
    Path(hash): Path<String>,
) -> Result<Json<SideTxView>, ApiError> {
    let hash = parse_hash("the transaction hash", &hash)?;
    let side = service(&s)?;
    let info = blocking(move || {
        side.tx(&hash)
            .ok_or_else(|| unknown(&*side, &format!("transaction {hash}")))
    })
    .await?;
    Ok(Json(SideTxView {
        hash: hash.to_string(),
        status: info.status,
        first_seen_ms: info.first_seen_ms,
        latency_ms: info.latency_ms,
        vertices: info.vertices.iter().map(ToString::to_string).collect(),
        tx: *info.tx,
    }))
}

/// A 404 for `what`, saying how far back this node's store keeps final history when it
/// deleted some (`sidechain.archive_max_mib`).
fn unknown(side: &dyn SideService, what: &str) -> ApiError {
    ApiError::NotFound(match side.archive_kept_from() {
        0 => format!("{what} is not known to this node"),
        k => format!(
            "{what} is not known to this node, which keeps final history from anchor {k} on \
             (sidechain.archive_max_mib); ask a node that keeps more"
        ),
    })
}

/// A vertex and what this node derived from it.
#[derive(Serialize, ToSchema)]
pub(crate) struct SideVertexView {
    /// Its id.
    id: String,
    /// The gateway that signed it.
    #[schema(value_type = String)]
    creator: PublicKey,
    /// The creator's sequence number.
    sequence: u64,
    /// The creator's clock when it signed it.
    timestamp_ms: u64,
    /// The creator's previous vertex first, then tips of other gateways.
    parents: Vec<String>,
    /// Hashes of its machine transactions.
    txs: Vec<String>,
    /// Gateways (by index in the group) whose vertices reach it.
    seen_by: Vec<usize>,
    /// Whether a quorum (n − f) of gateways reach it.
    confirmed: bool,
    /// When this node confirmed it.
    confirmed_ms: Option<u64>,
    /// The anchor covering it.
    anchor: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/v1/sidechain/vertices/{id}",
    params(("id" = String, Path, description = "the vertex id, 64 hex digits")),
    responses((status = 200, body = SideVertexView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody))
)]
pub(crate) async fn side_vertex(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<SideVertexView>, ApiError> {
    let id = parse_hash("the vertex id", &id)?;
    let side = service(&s)?;
    let v = blocking(move || {
        side.vertex(&id)
            .ok_or_else(|| unknown(&*side, &format!("vertex {id}")))
    })
    .await?;
    let x = &v.vertex.vertex;
    Ok(Json(SideVertexView {
        id: id.to_string(),
        creator: x.creator,
        sequence: x.sequence,
        timestamp_ms: x.timestamp_ms,
        parents: x.parents.iter().map(ToString::to_string).collect(),
        txs: x.txs.iter().map(|t| t.hash().to_string()).collect(),
        seen_by: (0..64).filter(|i| v.seen_by & (1u64 << i) != 0).collect(),
        confirmed: v.confirmed_ms.is_some(),
        confirmed_ms: v.confirmed_ms,
        anchor: v.anchor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/sidechain/status",
    responses((status = 200, description = "The group, its gateways and quorum, tips and confirmed frontier per gateway, counts, the last anchor, cumulative cooperation scores and rewards, equivocators, this node's counters, why this gateway stopped signing (`halted`), the gateways this node knows retired (`retired`), and what the main chain holds for the group (`on_chain`: locked funds, reward per anchor and pool, last anchor, gateways with equivocation evidence, retired gateways)", body = Object), (status = 503, body = ErrorBody))
)]
pub(crate) async fn side_status(
    State(s): State<Shared>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let side = service(&s)?;
    let (status, metrics) = blocking(move || Ok((side.status(), side.metrics()))).await?;
    let status = status.map_err(ApiError::Unavailable)?;
    // What the main chain holds for the group: its reward pool, and who was caught.
    let on_chain = s.chain.with_state(|st| {
        st.side_group(&status.group_id).map(|g| {
            let offenders: Vec<String> = g
                .gateways
                .iter()
                .filter(|k| st.side_offender(&status.group_id, &k.address()).is_some())
                .map(ToString::to_string)
                .collect();
            serde_json::json!({
                "owner": g.owner.to_string(),
                "locked": g.locked,
                "reward_per_anchor": g.reward_per_anchor,
                "reward_pool": g.pool,
                "last_anchor": st.side_anchor(&status.group_id),
                "offenders": offenders,
                "retired": g.retired.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
    });
    let mut v = serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["metrics"] = serde_json::to_value(metrics).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["on_chain"] = on_chain.unwrap_or(serde_json::Value::Null);
    Ok(Json(v))
}

#[utoipa::path(
    get,
    path = "/v1/sidechain/accounts/{address}",
    params(("address" = String, Path, description = "the machine account (`cpc…`)")),
    responses((status = 200, body = SideAccount), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody))
)]
pub(crate) async fn side_account(
    State(s): State<Shared>,
    Path(address): Path<String>,
) -> Result<Json<SideAccount>, ApiError> {
    let address: Address = address.parse().map_err(|_| {
        ApiError::Malformed("expected a machine account address (cpc + 40 hex digits)".into())
    })?;
    let side = service(&s)?;
    Ok(Json(blocking(move || Ok(side.account(&address))).await?))
}

/// The side chain's part of `/metrics`.
pub(crate) fn render_metrics(out: &mut String, m: &SideMetrics) {
    let counters: [(&str, &str, u64); 12] = [
        (
            "cpchain_side_vertices_total",
            "Side-chain vertices accepted (own and peers').",
            m.vertices_total,
        ),
        (
            "cpchain_side_own_vertices_total",
            "Side-chain vertices this gateway signed.",
            m.own_vertices_total,
        ),
        (
            "cpchain_side_txs_confirmed_total",
            "Machine transactions confirmed.",
            m.txs_confirmed_total,
        ),
        (
            "cpchain_side_txs_submitted_total",
            "Machine transactions taken into this gateway's pool.",
            m.txs_submitted_total,
        ),
        (
            "cpchain_side_equivocations_total",
            "Gateway equivocations seen (two vertices with one sequence number).",
            m.equivocations_total,
        ),
        (
            "cpchain_side_rejected_vertices_total",
            "Peer vertices refused as invalid.",
            m.rejected_vertices_total,
        ),
        (
            "cpchain_side_unneeded_vertices_total",
            "Vertices of retired gateways dropped unchecked, nothing needing them.",
            m.unneeded_vertices_total,
        ),
        (
            "cpchain_side_anchors_submitted_total",
            "Anchors this gateway sent to the main chain.",
            m.anchors_submitted_total,
        ),
        (
            "cpchain_side_evidence_submitted_total",
            "Gateway equivocations this node reported on the main chain.",
            m.evidence_submitted_total,
        ),
        (
            "cpchain_side_withheld_total",
            "Messages with this gateway's vertices not sent: the side-chain log could not make them durable.",
            m.withheld_total,
        ),
        (
            "cpchain_side_outbox_dropped_total",
            "Side-chain messages (vertices first) dropped because the outbox was full: the log's disk syncs slowly.",
            m.outbox_dropped_total,
        ),
        (
            "cpchain_side_log_syncs_total",
            "Syncs of the side-chain log before this gateway's vertices left.",
            m.log_syncs_total,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {v}");
    }
    for (name, help, v) in [
        (
            "cpchain_side_vertices_per_second",
            "Side-chain vertices accepted per second, over the last seconds.",
            m.vertices_per_second,
        ),
        (
            "cpchain_side_txs_per_second",
            "Machine transactions confirmed per second, over the last seconds.",
            m.txs_per_second,
        ),
        (
            "cpchain_side_awaiting_settling",
            "Final side-chain vertices held in memory until every gateway has seen them; it grows while a gateway is silent.",
            m.awaiting_settling,
        ),
        (
            "cpchain_side_halted",
            "1 once this gateway stopped signing because its side-chain log cannot be written or synced.",
            m.halted,
        ),
        (
            "cpchain_side_archive_bytes",
            "Bytes of final side-chain history in the node's store (sidechain.archive_max_mib bounds it).",
            m.archive_bytes,
        ),
        (
            "cpchain_side_archive_kept_from_anchor",
            "The first anchor whose final side-chain history the node's store keeps (0: all of it).",
            m.archive_kept_from,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {v}");
    }
    let name = "cpchain_side_log_sync_seconds_total";
    let _ = writeln!(
        out,
        "# HELP {name} Time spent syncing the side-chain log before this gateway's vertices left."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {}", m.log_sync_us_total as f64 / 1e6);
    let name = "cpchain_side_confirmation_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a machine transaction's first sight on this node to its confirmation."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, le) in SIDE_LATENCY_BUCKETS_MS.iter().enumerate() {
        cumulative += m.latency_counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *le as f64 / 1000.0
        );
    }
    let total: u64 = m.latency_counts.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum {}", m.latency_sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count {total}");
}
