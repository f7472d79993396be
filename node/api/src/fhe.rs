//! Homomorphic matching through the API: server keys, jobs and their results.
//!
//! The appliance computes on ciphertexts it cannot read (see `cpc_accel::fhe`). A key
//! holder uploads the compressed server key once (`POST /v1/fhe/keys`); jobs name it by
//! its id. A job (`POST /v1/apps/rideshare/match`, `POST /v1/apps/search`) is validated
//! when it is submitted — every ciphertext deserialized with size limits, checked
//! against the parameter set and the key set's tag — then queued; a worker thread runs
//! the queue one job at a time (each job spreads over the matcher's threads) and
//! `GET /v1/jobs/{id}` reports progress and, at the end, the encrypted result.
//!
//! Bodies are JSON with base64 ciphertexts, or `application/octet-stream` frames (see
//! [`encode_frames`]) with the key id in the query string. The queue is bounded: a full
//! queue answers 429. Finished jobs are kept for a while, then forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cpc_accel::FheMatcher;
use cpc_accel::matching::{
    FheError, FheInfo, FheJob, FheKeyInfo, FheOutput, FheTask, KeyId, Progress,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::error::ErrorBody;
use crate::{ApiError, ApiState};

type Shared = Arc<ApiState>;

/// Settings of the job queue and the FHE endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FheJobsConfig {
    /// Jobs that may wait behind the running one before submissions get 429.
    pub queue: usize,
    /// Largest job body (all its ciphertexts; base64 JSON is a third larger).
    pub max_body_bytes: usize,
    /// Largest server key upload.
    pub max_key_bytes: usize,
    /// Finished jobs kept for `GET /v1/jobs/{id}`; older ones are forgotten first.
    pub keep_jobs: usize,
    /// How long a finished job is kept.
    pub job_ttl: Duration,
}

impl Default for FheJobsConfig {
    fn default() -> Self {
        Self {
            queue: 8,
            max_body_bytes: 16 << 20,
            max_key_bytes: 256 << 20,
            keep_jobs: 256,
            job_ttl: Duration::from_secs(3600),
        }
    }
}

/// The FHE job service: the matcher, the bounded queue, its worker and the job table.
#[derive(Clone)]
pub struct FheService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FheService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FheService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    matcher: Arc<dyn FheMatcher>,
    config: FheJobsConfig,
    queue: SyncSender<Queued>,
    jobs: Mutex<Jobs>,
    /// Keys being loaded in the background, and the last failures.
    loads: Mutex<HashMap<KeyId, Load>>,
    stats: Stats,
}

enum Load {
    Loading,
    Failed(ApiError),
}

/// Server keys decompressed at once; more uploads get 429 until one is done.
const PARALLEL_LOADS: usize = 2;

/// Failed loads remembered for `GET /v1/fhe/keys/{id}`.
const KEEP_FAILED_LOADS: usize = 16;

#[derive(Default)]
struct Stats {
    submitted: AtomicU64,
    rejected_full: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    busy_ms: AtomicU64,
    queued: AtomicU64,
}

/// Counters of the job service, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FheStats {
    /// Jobs accepted since start.
    pub submitted: u64,
    /// Submissions refused because the queue was full.
    pub rejected_full: u64,
    /// Jobs finished with a result.
    pub done: u64,
    /// Jobs that failed while running.
    pub failed: u64,
    /// Milliseconds spent running jobs.
    pub busy_ms: u64,
    /// Jobs waiting now.
    pub queued: u64,
}

struct Queued {
    id: String,
    job: FheJob,
}

#[derive(Default)]
struct Jobs {
    map: HashMap<String, Entry>,
    finished: VecDeque<(String, Instant)>,
}

struct Entry {
    kind: &'static str,
    key: KeyId,
    items: usize,
    status: JobStatus,
    progress: Progress,
    submitted_ms: u64,
    started_ms: Option<u64>,
    finished_ms: Option<u64>,
    result: Option<FheOutput>,
    error: Option<ApiError>,
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting in the queue.
    Queued,
    /// Computing.
    Running,
    /// Finished; `result` holds the encrypted answer.
    Done,
    /// Failed; `error` says why.
    Failed,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The job table stays consistent under every panic: entries are replaced whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FheService {
    /// Starts the worker thread that runs queued jobs on `matcher`.
    pub fn start(matcher: Arc<dyn FheMatcher>, config: FheJobsConfig) -> Result<Self, ApiError> {
        if config.queue == 0 || config.keep_jobs == 0 || config.max_body_bytes == 0 {
            return Err(ApiError::Config(
                "fhe.queue, fhe.keep_jobs and fhe.max_body_bytes must be positive".into(),
            ));
        }
        let (queue, rx) = sync_channel(config.queue);
        let inner = Arc::new(Inner {
            matcher,
            config,
            queue,
            jobs: Mutex::default(),
            loads: Mutex::default(),
            stats: Stats::default(),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("cpc-fhe-jobs".into())
            .spawn(move || worker(&weak, &rx))
            .map_err(|e| ApiError::Config(format!("cannot start the FHE job worker: {e}")))?;
        Ok(Self { inner })
    }

    /// The matcher.
    pub fn matcher(&self) -> &Arc<dyn FheMatcher> {
        &self.inner.matcher
    }

    /// The settings.
    pub fn config(&self) -> &FheJobsConfig {
        &self.inner.config
    }

    /// Counters.
    pub fn stats(&self) -> FheStats {
        let s = &self.inner.stats;
        FheStats {
            submitted: s.submitted.load(Ordering::Relaxed),
            rejected_full: s.rejected_full.load(Ordering::Relaxed),
            done: s.done.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            busy_ms: s.busy_ms.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
        }
    }

    /// Queues a validated job; `RateLimited` when the queue is full.
    pub fn submit(&self, job: FheJob) -> Result<String, ApiError> {
        let id = new_job_id();
        let entry = Entry {
            kind: job.task.kind(),
            key: job.key,
            items: match &job.task {
                FheTask::Nearest { drivers, .. } => drivers.len(),
                FheTask::Search { records, .. } => records.len(),
            },
            status: JobStatus::Queued,
            progress: Progress {
                done: 0,
                total: job.task.steps(),
            },
            submitted_ms: crate::now_ms(),
            started_ms: None,
            finished_ms: None,
            result: None,
            error: None,
        };
        let mut jobs = lock(&self.inner.jobs);
        self.prune(&mut jobs);
        // Under the table lock, so the worker cannot look the job up before it exists.
        match self.inner.queue.try_send(Queued {
            id: id.clone(),
            job,
        }) {
            Ok(()) => {
                jobs.map.insert(id.clone(), entry);
                self.inner.stats.submitted.fetch_add(1, Ordering::Relaxed);
                self.inner.stats.queued.fetch_add(1, Ordering::Relaxed);
                Ok(id)
            }
            Err(TrySendError::Full(_)) => {
                self.inner
                    .stats
                    .rejected_full
                    .fetch_add(1, Ordering::Relaxed);
                Err(ApiError::RateLimited(format!(
                    "the FHE job queue is full ({} waiting); retry when a job finishes",
                    self.inner.config.queue
                )))
            }
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::Unavailable("the FHE job worker stopped".into()))
            }
        }
    }

    /// A job's state.
    pub fn job(&self, id: &str) -> Option<JobView> {
        let mut jobs = lock(&self.inner.jobs);
        self.prune(&mut jobs);
        jobs.map.get(id).map(|e| view(id, e))
    }

    /// Checks a compressed server key and starts loading it in the background (a
    /// decompression takes seconds, longer than a request may). The key's state is then
    /// at [`key`](Self::key).
    pub fn upload_key(&self, bytes: Bytes) -> Result<KeyView, ApiError> {
        let matcher = &self.inner.matcher;
        let id = matcher.check_key(&bytes)?;
        if let Some(info) = matcher.key_info(&id) {
            return Ok(KeyView::loaded(info));
        }
        let mut loads = lock(&self.inner.loads);
        let loading = loads
            .values()
            .filter(|l| matches!(l, Load::Loading))
            .count();
        match loads.get(&id) {
            Some(Load::Loading) => return Ok(KeyView::loading(id)),
            _ if loading >= PARALLEL_LOADS => {
                return Err(ApiError::RateLimited(format!(
                    "{loading} server keys are loading; retry when one is done"
                )));
            }
            _ => {}
        }
        loads.insert(id, Load::Loading);
        drop(loads);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("cpc-fhe-keyload".into())
            .spawn(move || {
                let outcome = inner.matcher.load_key(&bytes);
                let mut loads = lock(&inner.loads);
                match outcome {
                    Ok(_) => {
                        loads.remove(&id);
                    }
                    Err(e) => {
                        tracing::warn!(key = %id, error = %e, "fhe server key not loaded");
                        if loads.len() > KEEP_FAILED_LOADS
                            && let Some(old) = loads
                                .iter()
                                .find(|(_, l)| matches!(l, Load::Failed(_)))
                                .map(|(k, _)| *k)
                        {
                            loads.remove(&old);
                        }
                        loads.insert(id, Load::Failed(e.into()));
                    }
                }
            });
        if let Err(e) = spawned {
            lock(&self.inner.loads).remove(&id);
            return Err(ApiError::Internal(format!(
                "cannot start loading the key: {e}"
            )));
        }
        Ok(KeyView::loading(id))
    }

    /// A server key's state: loaded, loading, or failed to load.
    pub fn key(&self, id: &KeyId) -> Option<KeyView> {
        if let Some(info) = self.inner.matcher.key_info(id) {
            return Some(KeyView::loaded(info));
        }
        match lock(&self.inner.loads).get(id)? {
            Load::Loading => Some(KeyView::loading(*id)),
            Load::Failed(e) => Some(KeyView {
                key_id: id.to_string(),
                status: "failed".into(),
                tag: None,
                compressed_bytes: None,
                loaded_bytes: None,
                error: serde_json::to_value(e.body()).ok(),
            }),
        }
    }

    /// Refuses jobs for a key that is still loading (503) rather than calling it unknown.
    fn ready(&self, id: &KeyId) -> Result<(), ApiError> {
        match lock(&self.inner.loads).get(id) {
            Some(Load::Loading) if self.inner.matcher.key_info(id).is_none() => {
                Err(ApiError::Unavailable(format!(
                    "server key {id} is still loading; retry in a few seconds"
                )))
            }
            _ => Ok(()),
        }
    }

    fn prune(&self, jobs: &mut Jobs) {
        let ttl = self.inner.config.job_ttl;
        while let Some((id, at)) = jobs.finished.front() {
            if jobs.finished.len() <= self.inner.config.keep_jobs && at.elapsed() < ttl {
                break;
            }
            jobs.map.remove(id);
            jobs.finished.pop_front();
        }
    }
}

fn new_job_id() -> String {
    use rand_core::RngCore as _;
    let mut id = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

fn worker(inner: &std::sync::Weak<Inner>, rx: &Receiver<Queued>) {
    while let Ok(Queued { id, job }) = rx.recv() {
        let Some(inner) = inner.upgrade() else { return };
        inner.stats.queued.fetch_sub(1, Ordering::Relaxed);
        let started = Instant::now();
        if let Some(e) = lock(&inner.jobs).map.get_mut(&id) {
            e.status = JobStatus::Running;
            e.started_ms = Some(crate::now_ms());
        }
        let progress = |p: Progress| {
            if let Some(e) = lock(&inner.jobs).map.get_mut(&id) {
                e.progress = p;
            }
        };
        let outcome = inner.matcher.run(&job, &progress);
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        inner.stats.busy_ms.fetch_add(ms, Ordering::Relaxed);
        let mut jobs = lock(&inner.jobs);
        if let Some(e) = jobs.map.get_mut(&id) {
            e.finished_ms = Some(crate::now_ms());
            match outcome {
                Ok(out) => {
                    e.status = JobStatus::Done;
                    e.progress.done = e.progress.total;
                    e.result = Some(out);
                    inner.stats.done.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(job = %id, kind = e.kind, items = e.items, ms, "fhe job done");
                }
                Err(err) => {
                    e.status = JobStatus::Failed;
                    tracing::warn!(job = %id, kind = e.kind, error = %err, "fhe job failed");
                    e.error = Some(err.into());
                    inner.stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            jobs.finished.push_back((id, Instant::now()));
        }
    }
}

impl From<FheError> for ApiError {
    fn from(e: FheError) -> Self {
        let m = e.to_string();
        match e {
            FheError::UnknownKey(_) => ApiError::NotFound(m),
            FheError::Malformed(_) => ApiError::Malformed(m),
            FheError::WrongKey(_) => ApiError::Invalid(m),
            FheError::TooLarge(_) => ApiError::TooLarge(m),
            FheError::Unavailable(_) => ApiError::Unavailable(m),
            _ => ApiError::Internal(m),
        }
    }
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// The job id.
    pub id: String,
    /// `rideshare` or `search`.
    pub kind: String,
    /// The server key it runs under.
    pub key_id: String,
    /// Where it is.
    pub status: JobStatus,
    /// Steps done of the total: one per driver or record, plus one per arg-min merge.
    #[schema(value_type = Object)]
    pub progress: Progress,
    /// Drivers or records.
    pub items: usize,
    /// When it was submitted, ms since the Unix epoch.
    pub submitted_ms: u64,
    /// When it started running.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_ms: Option<u64>,
    /// When it finished.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finished_ms: Option<u64>,
    /// The encrypted answer, once `done`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<JobResult>,
    /// Why it failed, once `failed`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
}

/// An encrypted answer; decrypt it with `cpchain fhe decrypt` and the client key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum JobResult {
    /// Nearest driver: base64 of two serialized 8-bit ciphertexts.
    Rideshare {
        /// The winner's index among the job's drivers (lowest on ties).
        driver: String,
        /// Its Manhattan distance to the rider; 255 when no driver was available.
        distance: String,
    },
    /// Search: base64 of one serialized boolean ciphertext per record.
    Search {
        /// Whether each record's tag equals the query, in record order.
        matches: Vec<String>,
    },
}

impl JobResult {
    /// The result's ciphertexts as TFHE-rs bytes.
    pub fn decode(&self) -> Result<FheOutput, String> {
        let d = |s: &str| {
            B64.decode(s)
                .map_err(|e| format!("bad base64 in the result: {e}"))
        };
        Ok(match self {
            JobResult::Rideshare { driver, distance } => FheOutput::Nearest {
                index: d(driver)?,
                distance: d(distance)?,
            },
            JobResult::Search { matches } => FheOutput::Search {
                matches: matches.iter().map(|m| d(m)).collect::<Result<_, _>>()?,
            },
        })
    }
}

fn view(id: &str, e: &Entry) -> JobView {
    JobView {
        id: id.to_owned(),
        kind: e.kind.to_owned(),
        key_id: e.key.to_string(),
        status: e.status,
        progress: e.progress,
        items: e.items,
        submitted_ms: e.submitted_ms,
        started_ms: e.started_ms,
        finished_ms: e.finished_ms,
        result: e.result.as_ref().map(|r| match r {
            FheOutput::Nearest { index, distance } => JobResult::Rideshare {
                driver: B64.encode(index),
                distance: B64.encode(distance),
            },
            FheOutput::Search { matches } => JobResult::Search {
                matches: matches.iter().map(|m| B64.encode(m)).collect(),
            },
        }),
        error: e
            .error
            .as_ref()
            .and_then(|err| serde_json::to_value(err.body()).ok()),
    }
}

/// The binary job body: each ciphertext as a little-endian `u32` length followed by its
/// bytes — the rider (or query) first, then the drivers (or records).
pub fn encode_frames<B: AsRef<[u8]>>(parts: &[B]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.as_ref().len() + 4).sum());
    for p in parts {
        let p = p.as_ref();
        // Ciphertexts are far below 4 GiB; the body limit refuses anything near it.
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Splits a binary job body into its ciphertexts.
pub fn decode_frames(mut body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut parts = Vec::new();
    while !body.is_empty() {
        let Some((len, rest)) = body.split_first_chunk::<4>() else {
            return Err(format!(
                "frame {} has a {}-byte length prefix; each frame is a 4-byte little-endian \
                 length and the ciphertext",
                parts.len(),
                body.len()
            ));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(format!(
                "frame {} claims {len} bytes but {} remain: the body is truncated",
                parts.len(),
                rest.len()
            ));
        }
        let (part, rest) = rest.split_at(len);
        parts.push(part.to_vec());
        body = rest;
    }
    Ok(parts)
}

/// The key and first-ciphertext-then-items of a job body.
struct JobBody {
    key: KeyId,
    head: Vec<u8>,
    items: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct KeyQuery {
    key_id: Option<String>,
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(s)
        .map_err(|e| ApiError::Malformed(format!("{field} is not base64: {e}")))
}

fn job_body(
    headers: &HeaderMap,
    query: &KeyQuery,
    body: &[u8],
    names: (&str, &str),
) -> Result<JobBody, ApiError> {
    if crate::routes::is_binary(headers) {
        let key = query.key_id.as_deref().ok_or_else(|| {
            ApiError::Malformed("a binary job body needs ?key_id=<server key id>".into())
        })?;
        let mut parts = decode_frames(body).map_err(ApiError::Malformed)?;
        if parts.is_empty() {
            return Err(ApiError::Malformed(format!(
                "the body holds no {}: send the {0} frame, then one frame per {}",
                names.0, names.1
            )));
        }
        let head = parts.remove(0);
        return Ok(JobBody {
            key: key.parse().map_err(ApiError::from)?,
            head,
            items: parts,
        });
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Malformed(format!("not a JSON job: {e}")))?;
    let field = |name: &str| {
        v.get(name)
            .ok_or_else(|| ApiError::Malformed(format!("the job has no `{name}`")))
    };
    let key = field("key_id")?
        .as_str()
        .ok_or_else(|| ApiError::Malformed("`key_id` is not a string".into()))?;
    let head = field(names.0)?
        .as_str()
        .ok_or_else(|| ApiError::Malformed(format!("`{}` is not a base64 string", names.0)))?;
    let plural = format!("{}s", names.1);
    let items = field(&plural)?
        .as_array()
        .ok_or_else(|| ApiError::Malformed(format!("`{plural}` is not an array")))?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let s = item.as_str().ok_or_else(|| {
                ApiError::Malformed(format!("{} {i} is not a base64 string", names.1))
            })?;
            b64(&format!("{} {i}", names.1), s)
        })
        .collect::<Result<_, _>>()?;
    Ok(JobBody {
        key: key.parse().map_err(ApiError::from)?,
        head: b64(names.0, head)?,
        items,
    })
}

fn service(s: &ApiState) -> Result<&FheService, ApiError> {
    s.fhe.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "homomorphic matching is off on this node (fhe.enabled = false)".into(),
        )
    })
}

fn fhe_body(
    body: Result<Bytes, BytesRejection>,
    max: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("the {what} exceeds {max} bytes"))
        } else {
            ApiError::Malformed(e.body_text())
        }
    })
}

/// A queued job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmittedView {
    /// Its id: follow it at `/v1/jobs/{id}`.
    pub job_id: String,
    /// `queued`.
    pub status: JobStatus,
}

async fn submit(
    s: Shared,
    headers: HeaderMap,
    query: KeyQuery,
    body: Result<Bytes, BytesRejection>,
    make: fn(JobBody) -> FheJob,
    names: (&'static str, &'static str),
) -> Result<(StatusCode, HeaderMap, Json<SubmittedView>), ApiError> {
    let svc = service(&s)?.clone();
    let body = fhe_body(
        body,
        svc.config().max_body_bytes,
        "job body (fhe.max_body_bytes)",
    )?;
    let job = tokio::task::spawn_blocking(move || {
        let job = make(job_body(&headers, &query, &body, names)?);
        svc.ready(&job.key)?;
        svc.matcher().validate(&job)?;
        svc.submit(job)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("request task failed: {e}")))?;
    let id = job?;
    let mut h = HeaderMap::new();
    if let Ok(v) = format!("/v1/jobs/{id}").parse() {
        h.insert(header::LOCATION, v);
    }
    Ok((
        StatusCode::ACCEPTED,
        h,
        Json(SubmittedView {
            job_id: id,
            status: JobStatus::Queued,
        }),
    ))
}

/// A nearest-driver job as JSON.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct MatchRequest {
    /// The server key id (`POST /v1/fhe/keys`).
    key_id: String,
    /// Base64 of the rider's ciphertext (`cpchain fhe encrypt rider`).
    rider: String,
    /// Base64 of each driver's ciphertext (`cpchain fhe encrypt driver`), at most 256.
    drivers: Vec<String>,
}

/// A search job as JSON.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct SearchRequest {
    /// The server key id.
    key_id: String,
    /// Base64 of the query tag's ciphertext (`cpchain fhe encrypt tag`).
    query: String,
    /// Base64 of each record's tag ciphertext.
    records: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/v1/apps/rideshare/match",
    params(("key_id" = Option<String>, Query, description = "The server key id, with a binary body")),
    request_body(content = MatchRequest, description = "JSON, or `application/octet-stream` frames (u32 LE length + ciphertext): the rider, then each driver"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = SubmittedView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "Unknown server key", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, description = "A ciphertext of another key set", body = ErrorBody),
        (status = 429, description = "The job queue is full", body = ErrorBody)
    )
)]
async fn submit_match(
    State(s): State<Shared>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<SubmittedView>), ApiError> {
    let make = |b: JobBody| FheJob {
        key: b.key,
        task: FheTask::Nearest {
            rider: b.head,
            drivers: b.items,
        },
    };
    submit(s, headers, query, body, make, ("rider", "driver")).await
}

#[utoipa::path(
    post,
    path = "/v1/apps/search",
    params(("key_id" = Option<String>, Query, description = "The server key id, with a binary body")),
    request_body(content = SearchRequest, description = "JSON, or `application/octet-stream` frames: the query, then each record"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = SubmittedView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)
    )
)]
async fn submit_search(
    State(s): State<Shared>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<SubmittedView>), ApiError> {
    let make = |b: JobBody| FheJob {
        key: b.key,
        task: FheTask::Search {
            query: b.head,
            records: b.items,
        },
    };
    submit(s, headers, query, body, make, ("query", "record")).await
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody))
)]
async fn job(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<JobView>, ApiError> {
    service(&s)?.job(&id).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no job {id}: it never existed or finished more than fhe.job_ttl_secs ago"
        ))
    })
}

/// A server key on the node.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Its id: SHA-256 of the uploaded bytes, hex.
    pub key_id: String,
    /// `loading`, `loaded` or `failed`.
    pub status: String,
    /// The key set's tag, carried by its ciphertexts (once loaded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tag: Option<String>,
    /// Size as uploaded (once loaded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub compressed_bytes: Option<u64>,
    /// Memory it takes (once loaded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub loaded_bytes: Option<u64>,
    /// Why it could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
}

impl KeyView {
    fn loaded(k: FheKeyInfo) -> Self {
        Self {
            key_id: k.id.to_string(),
            status: "loaded".into(),
            tag: Some(k.tag),
            compressed_bytes: Some(k.compressed_bytes),
            loaded_bytes: Some(k.loaded_bytes),
            error: None,
        }
    }

    fn loading(id: KeyId) -> Self {
        Self {
            key_id: id.to_string(),
            status: "loading".into(),
            tag: None,
            compressed_bytes: None,
            loaded_bytes: None,
            error: None,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/fhe/keys",
    request_body(content = Vec<u8>, description = "The compressed server key file written by `cpchain fhe keygen` (server.key)", content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Checked; loading in the background (follow the Location)", body = KeyView),
        (status = 200, description = "Already loaded", body = KeyView),
        (status = 400, description = "Not a server key of this parameter set", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, description = "Other keys are loading", body = ErrorBody)
    )
)]
async fn upload_key(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<KeyView>), ApiError> {
    let svc = service(&s)?.clone();
    let body = fhe_body(
        body,
        svc.config().max_key_bytes,
        "server key (fhe.max_key_bytes)",
    )?;
    let view = tokio::task::spawn_blocking(move || svc.upload_key(body))
        .await
        .map_err(|e| ApiError::Internal(format!("request task failed: {e}")))??;
    let mut h = HeaderMap::new();
    if let Ok(v) = format!("/v1/fhe/keys/{}", view.key_id).parse() {
        h.insert(header::LOCATION, v);
    }
    let status = if view.status == "loaded" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, h, Json(view)))
}

#[utoipa::path(
    get,
    path = "/v1/fhe/keys/{id}",
    params(("id" = String, Path, description = "The server key id")),
    responses((status = 200, description = "Loading, loaded or failed", body = KeyView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn key(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<KeyView>, ApiError> {
    let id: KeyId = id.parse().map_err(ApiError::from)?;
    service(&s)?
        .key(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(FheError::UnknownKey(id).to_string()))
}

/// The matcher and its queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct FheView {
    /// Device, parameters, threads, limits and loaded keys.
    #[schema(value_type = Object)]
    pub matcher: FheInfo,
    /// Job counters.
    pub jobs: FheStats,
    /// Jobs that may wait before submissions get 429.
    pub queue_capacity: usize,
}

#[utoipa::path(
    get,
    path = "/v1/fhe",
    responses((status = 200, body = FheView), (status = 503, body = ErrorBody))
)]
async fn fhe_status(State(s): State<Shared>) -> Result<Json<FheView>, ApiError> {
    let svc = service(&s)?;
    Ok(Json(FheView {
        matcher: svc.matcher().info(),
        jobs: svc.stats(),
        queue_capacity: svc.config().queue,
    }))
}

/// Routes that need the token beyond loopback, with their body limits.
pub(crate) fn protected(state: &ApiState) -> Router<Shared> {
    let jobs = state
        .fhe
        .as_ref()
        .map(|f| f.config().clone())
        .unwrap_or_default();
    Router::new()
        .route("/v1/apps/rideshare/match", post(submit_match))
        .route("/v1/apps/search", post(submit_search))
        .layer(DefaultBodyLimit::max(jobs.max_body_bytes))
        .merge(
            Router::new()
                .route("/v1/fhe/keys", post(upload_key))
                .layer(DefaultBodyLimit::max(jobs.max_key_bytes)),
        )
}

/// Routes anyone may read: job ids are random, results are ciphertexts.
pub(crate) fn public() -> Router<Shared> {
    Router::new()
        .route("/v1/fhe", get(fhe_status))
        .route("/v1/fhe/keys/{id}", get(key))
        .route("/v1/jobs/{id}", get(job))
}

/// The OpenAPI paths of this module, merged into [`crate::ApiDoc`]'s document.
#[derive(OpenApi)]
#[openapi(
    paths(submit_match, submit_search, job, upload_key, key, fhe_status),
    components(schemas(
        SubmittedView,
        JobView,
        JobResult,
        JobStatus,
        KeyView,
        FheView,
        FheStats,
        MatchRequest,
        SearchRequest
    ))
)]
pub struct FheDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_truncation_is_named() {
        let parts = [vec![1u8, 2, 3], vec![], vec![9; 300]];
        let body = encode_frames(&parts);
        assert_eq!(decode_frames(&body).unwrap(), parts);
        assert_eq!(decode_frames(&[]).unwrap(), Vec::<Vec<u8>>::new());
        let err = decode_frames(&body[..body.len() - 1]).unwrap_err();
        assert!(
            err.contains("frame 2 claims 300 bytes but 299 remain"),
            "{err}"
        );
        let err = decode_frames(&[1, 0]).unwrap_err();
        assert!(err.contains("2-byte length prefix"), "{err}");
    }
}
