//! The HTTP admin API of a node, for fleet operators and clients.
//!
//! Versioned under `/v1`, JSON in and out (transactions may also be posted in their
//! canonical binary encoding), errors as `{"code": …, "message": …}` with the matching
//! status. The OpenAPI document at `/v1/openapi.json` is generated from the handlers in
//! this crate; Prometheus metrics are at `/metrics`.
//!
//! `/v1/sidechain/...` serves the DAG side chain through the node's [`SideService`].
//!
//! The API holds no business rules: it decodes requests, calls [`cpc_chain::Chain`] and
//! encodes answers. Transaction submissions from concurrent requests are gathered into
//! batches (see [`admission`]) so their signatures are verified together through the
//! accelerator.
//!
//! Homomorphic matching jobs (encrypted ride-sharing matches and encrypted search) are
//! queued and run off the async runtime by [`fhe::FheService`]; see [`fhe`].
//!
//! By default the API listens on loopback. When it listens on any other address, a bearer
//! token is required for transaction submission and for the operator endpoints
//! (`/v1/accel`, `/metrics`), and the server refuses to start without one.

pub mod admission;
pub mod data;
mod error;
pub mod fhe;
mod metrics;
mod routes;
mod side;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpc_chain::Chain;
use serde::{Deserialize, Serialize};

pub use error::ApiError;
pub use routes::{ApiDoc, router};
pub use side::{SIDE_LATENCY_BUCKETS_MS, SideAccount, SideMetrics, SideService};

/// Settings of the HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Bearer token for submissions and operator endpoints; required unless the API
    /// listens on loopback only.
    pub token: Option<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Most transactions in one batch submission.
    pub max_batch: usize,
    /// Most transactions waiting for admission before submissions get 429.
    pub admission_queue: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8645)),
            token: None,
            max_body_bytes: 4 << 20,
            request_timeout_ms: 10_000,
            max_batch: 10_000,
            admission_queue: 100_000,
        }
    }
}

impl ApiConfig {
    /// Whether requests must carry the token: when listening beyond loopback, or whenever
    /// a token is configured.
    pub fn auth_required(&self) -> bool {
        self.token.is_some() || !self.listen.ip().is_loopback()
    }

    /// Checks the settings a server needs before it starts.
    pub fn validate(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "the API listens on {} beyond loopback but api.token is empty: set a token \
                 (config api.token or CPCHAIN_API__TOKEN), or listen on 127.0.0.1",
                self.listen
            ));
        }
        if self.max_batch == 0 || self.admission_queue == 0 || self.max_body_bytes == 0 {
            return Err(
                "api.max_batch, api.admission_queue and api.max_body_bytes must be positive".into(),
            );
        }
        Ok(())
    }
}

/// Live views of the node's services besides the chain, for the API to report.
pub trait Services: Send + Sync + 'static {
    /// The consensus engine's state, `None` before it runs.
    fn consensus(&self) -> Option<cpc_chain::ConsensusStatus>;
    /// Peers and network counters, `None` without a network.
    fn network(&self) -> Option<cpc_p2p::NetStatus>;
    /// The homomorphic matching service, `None` when it is off.
    fn fhe(&self) -> Option<fhe::FheService> {
        None
    }
    /// The data layer's network side (`/v1/data/…`), `None` when the node runs none.
    fn data(&self) -> Option<Arc<dyn data::DataGateway>> {
        None
    }
    /// The side chain, `None` when the node follows no side-chain group.
    fn sidechain(&self) -> Option<Arc<dyn SideService>> {
        None
    }
}

/// [`Services`] of a node that runs none (tests of the API alone).
#[derive(Debug)]
pub struct NoServices;

impl Services for NoServices {
    fn consensus(&self) -> Option<cpc_chain::ConsensusStatus> {
        None
    }
    fn network(&self) -> Option<cpc_p2p::NetStatus> {
        None
    }
}

/// What handlers share.
pub struct ApiState {
    /// The chain service.
    pub chain: Arc<Chain>,
    /// The other services.
    pub services: Arc<dyn Services>,
    /// The admission batcher.
    pub admission: admission::Admission,
    /// The settings.
    pub config: ApiConfig,
    /// Homomorphic matching jobs, when on.
    pub fhe: Option<fhe::FheService>,
    /// When the node started.
    pub started: Instant,
}

/// Serves the API until `shutdown` completes.
pub async fn serve(
    config: ApiConfig,
    chain: Arc<Chain>,
    services: Arc<dyn Services>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    config.validate().map_err(ApiError::Config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            ApiError::Config(format!(
                "cannot listen on {}: {e}; choose another address with --api.listen or api.listen",
                config.listen
            ))
        })?;
    let admission = admission::Admission::start(&chain, config.admission_queue);
    let state = Arc::new(ApiState {
        chain,
        fhe: services.fhe(),
        services,
        admission,
        config,
        started: Instant::now(),
    });
    let app = router(state);
    tracing::info!(addr = %listener.local_addr().map_err(|e| ApiError::Config(e.to_string()))?, "http api listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ApiError::Config(format!("http server failed: {e}")))
}

/// Milliseconds since the Unix epoch from the system clock: the only clock the node's
/// services see, passed in as an argument.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn timeout(config: &ApiConfig) -> Duration {
    Duration::from_millis(config.request_timeout_ms.max(1))
}
