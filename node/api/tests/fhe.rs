//! The FHE endpoints driven the way a client drives them: upload the server key, submit
//! encrypted jobs (JSON and binary), poll them, decrypt the results; and the refusals.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cpc_accel::fhe::{
    Decryptor, Encryptor, FheConfig, KeySet, TfheMatcher, generate_keys, nearest_plain,
    search_plain,
};
use cpc_accel::matching::{FheError, FheInfo, FheJob, FheKeyInfo, FheOutput, KeyId, Progress};
use cpc_accel::{DispatchConfig, Dispatcher, FheMatcher};
use cpc_api::fhe::{FheJobsConfig, FheService, JobResult, encode_frames};
use cpc_api::{ApiConfig, ApiState, NoServices, admission::Admission};
use cpc_chain::{Chain, ChainConfig};
use cpc_state::{Genesis, GenesisValidator, Params};
use cpc_storage::StoreConfig;
use cpc_types::{SecretKey, TOTAL_SUPPLY, UNITS_PER_CPC};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A gate tests open and close.
struct Gate {
    open: Mutex<bool>,
    turn: Condvar,
}

impl Gate {
    fn new(open: bool) -> Self {
        Self {
            open: Mutex::new(open),
            turn: Condvar::new(),
        }
    }
    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.turn.notify_all();
    }
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.turn.wait(open).unwrap();
        }
    }
}

/// A real matcher whose key loads and jobs wait at gates a test controls.
struct Gated {
    inner: Arc<TfheMatcher>,
    keys: Gate,
    jobs: Gate,
}

impl FheMatcher for Gated {
    fn info(&self) -> FheInfo {
        self.inner.info()
    }
    fn check_key(&self, bytes: &[u8]) -> Result<KeyId, FheError> {
        self.inner.check_key(bytes)
    }
    fn load_key(&self, bytes: &[u8]) -> Result<FheKeyInfo, FheError> {
        self.keys.pass();
        self.inner.load_key(bytes)
    }
    fn key_info(&self, id: &KeyId) -> Option<FheKeyInfo> {
        // A gated matcher starts without keys, whatever the shared matcher holds.
        if *self.keys.open.lock().unwrap() {
            self.inner.key_info(id)
        } else {
            None
        }
    }
    fn validate(&self, job: &FheJob) -> Result<(), FheError> {
        self.inner.validate(job)
    }
    fn run(
        &self,
        job: &FheJob,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<FheOutput, FheError> {
        self.jobs.pass();
        self.inner.run(job, progress)
    }
}

struct Shared {
    keys: KeySet,
    enc: Encryptor,
    dec: Decryptor,
    matcher: Arc<TfheMatcher>,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let keys = generate_keys().unwrap();
        Shared {
            enc: Encryptor::from_bytes(&keys.public_key).unwrap(),
            dec: Decryptor::from_bytes(&keys.client_key).unwrap(),
            matcher: Arc::new(TfheMatcher::new(FheConfig::default()).unwrap()),
            keys,
        }
    })
}

// Fields drop in order: the router (and with it the chain's database) before its directory.
struct Node {
    app: Router,
    _dir: tempfile::TempDir,
}

fn node(jobs: FheJobsConfig, api: ApiConfig, matcher: Arc<dyn FheMatcher>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let validator = SecretKey::from_bytes([100; 32]);
    let foundation = SecretKey::from_bytes([200; 32]).address();
    let deposit = 10_000 * UNITS_PER_CPC;
    let genesis = Genesis {
        chain_id: 9,
        timestamp_ms: 1_767_225_600_000,
        params: Params::with_foundation(foundation),
        allocations: BTreeMap::from([(foundation, TOTAL_SUPPLY - deposit)]),
        validators: vec![GenesisValidator::new(validator.public(), deposit)],
        side_groups: Vec::new(),
    };
    let chain = Arc::new(
        Chain::open(
            genesis,
            &StoreConfig {
                path: dir.path().join("db"),
                sync: false,
            },
            Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap()),
            Some(validator),
            ChainConfig::default(),
        )
        .unwrap(),
    );
    let state = Arc::new(ApiState {
        admission: Admission::start(&chain, 16),
        chain,
        services: Arc::new(NoServices),
        fhe: Some(FheService::start(matcher, jobs).unwrap()),
        config: api,
        started: Instant::now(),
    });
    Node {
        app: cpc_api::router(state),
        _dir: dir,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

fn post(path: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

fn json_post(path: &str, v: &Value) -> Request<Body> {
    post(path, "application/json", serde_json::to_vec(v).unwrap())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Uploads the server key and waits until the node has loaded it; the upload's status.
async fn upload(app: &Router) -> StatusCode {
    let s = shared();
    let (status, body) = call(
        app,
        post(
            "/v1/fhe/keys",
            "application/octet-stream",
            s.keys.server_key.clone(),
        ),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(body["key_id"], s.keys.key_id.to_string());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (code, key) = call(app, get(&format!("/v1/fhe/keys/{}", s.keys.key_id))).await;
        assert_eq!(code, StatusCode::OK, "{key}");
        match key["status"].as_str().unwrap() {
            "loaded" => return status,
            "loading" => {
                assert!(Instant::now() < deadline, "the key never loaded");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("key {other}: {key}"),
        }
    }
}

async fn wait_done(app: &Router, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (status, v) = call(app, get(&format!("/v1/jobs/{job}"))).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        match v["status"].as_str().unwrap() {
            "done" => return v,
            "failed" => panic!("job failed: {v}"),
            _ => {
                assert!(Instant::now() < deadline, "job {job} never finished: {v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(B64.encode(bytes))
}

fn open_api() -> ApiConfig {
    ApiConfig::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_matches_and_searches_through_the_api() {
    let s = shared();
    let n = node(FheJobsConfig::default(), open_api(), s.matcher.clone());
    let first = upload(&n.app).await;
    assert!(
        first == StatusCode::ACCEPTED || first == StatusCode::OK,
        "{first}"
    );
    assert_eq!(upload(&n.app).await, StatusCode::OK);
    let (status, key) = call(&n.app, get(&format!("/v1/fhe/keys/{}", s.keys.key_id))).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(key["tag"], hex::encode(s.keys.tag));

    // Rideshare as JSON.
    let rider = (20, 30);
    let drivers = [(25, 30, true), (20, 31, false), (17, 28, true)];
    let body = json!({
        "key_id": s.keys.key_id.to_string(),
        "rider": b64(&s.enc.rider(rider.0, rider.1).unwrap()),
        "drivers": drivers.iter().map(|&(x, y, a)| b64(&s.enc.driver(x, y, a).unwrap())).collect::<Vec<_>>(),
    });
    let resp = n
        .app
        .clone()
        .oneshot(json_post("/v1/apps/rideshare/match", &body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let submitted: Value = serde_json::from_slice(&bytes).unwrap();
    let job = submitted["job_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/jobs/{job}"));
    let done = wait_done(&n.app, &job).await;
    assert_eq!(done["kind"], "rideshare");
    assert_eq!(done["items"], 3);
    assert_eq!(done["progress"], json!({"done": 5, "total": 5}));
    let result: JobResult = serde_json::from_value(done["result"].clone()).unwrap();
    let FheOutput::Nearest { index, distance } = result.decode().unwrap() else {
        panic!("not a rideshare result: {done}")
    };
    let got = s.dec.nearest(&index, &distance).unwrap();
    let (want_i, want_d) = nearest_plain(rider, &drivers).unwrap();
    assert_eq!((got.driver, got.distance), (Some(want_i as u8), want_d));

    // Search as binary frames.
    let records = [5u32, 9, 5];
    let mut parts = vec![s.enc.search_tag(5).unwrap()];
    parts.extend(records.iter().map(|&r| s.enc.search_tag(r).unwrap()));
    let (status, submitted) = call(
        &n.app,
        post(
            &format!("/v1/apps/search?key_id={}", s.keys.key_id),
            "application/octet-stream",
            encode_frames(&parts),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{submitted}");
    let done = wait_done(&n.app, submitted["job_id"].as_str().unwrap()).await;
    let result: JobResult = serde_json::from_value(done["result"].clone()).unwrap();
    let FheOutput::Search { matches } = result.decode().unwrap() else {
        panic!("not a search result: {done}")
    };
    assert_eq!(s.dec.search(&matches).unwrap(), search_plain(5, &records));

    let (_, fhe) = call(&n.app, get("/v1/fhe")).await;
    assert_eq!(fhe["jobs"]["done"], 2);
    assert_eq!(fhe["matcher"]["keys"][0]["id"], s.keys.key_id.to_string());
    let (_, metrics) = call(&n.app, get("/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("cpchain_fhe_jobs_total{outcome=\"done\"} 2"),
        "{metrics}"
    );
    let (_, doc) = call(&n.app, get("/v1/openapi.json")).await;
    for path in [
        "/v1/apps/rideshare/match",
        "/v1/apps/search",
        "/v1/jobs/{id}",
        "/v1/fhe/keys",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_and_keys_get_clear_errors() {
    let s = shared();
    let jobs = FheJobsConfig {
        max_body_bytes: 96 << 10,
        max_key_bytes: 1 << 30,
        ..FheJobsConfig::default()
    };
    let n = node(jobs, open_api(), s.matcher.clone());
    upload(&n.app).await;
    let key_id = s.keys.key_id.to_string();
    let rider = s.enc.rider(1, 1).unwrap();
    let driver = s.enc.driver(2, 2, true).unwrap();
    let job = |rider: &[u8], drivers: &[&[u8]], key: &str| {
        json_post(
            "/v1/apps/rideshare/match",
            &json!({
                "key_id": key,
                "rider": b64(rider),
                "drivers": drivers.iter().map(|d| b64(d)).collect::<Vec<_>>(),
            }),
        )
    };
    let expect = |(status, body): (StatusCode, Value), want: StatusCode, code: &str, text: &str| {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["code"], code, "{body}");
        let m = body["message"].as_str().unwrap();
        assert!(m.contains(text), "{m:?} should mention {text:?}");
    };

    let truncated = &driver[..driver.len() - 100];
    expect(
        call(&n.app, job(&rider, &[&driver, truncated], &key_id)).await,
        StatusCode::BAD_REQUEST,
        "malformed",
        "driver 1 is not a CompactCiphertextList",
    );
    let other = {
        let mut ck = tfhe::ClientKey::generate(cpc_accel::fhe::tfhe_config());
        tfhe::prelude::Tagged::tag_mut(&mut ck).set_data(&[9; 16]);
        let pk = tfhe::CompactPublicKey::new(&ck);
        let mut bytes = Vec::new();
        tfhe::safe_serialization::SerializationConfig::new(1 << 30)
            .serialize_into(&pk, &mut bytes)
            .unwrap();
        Encryptor::from_bytes(&bytes).unwrap().rider(1, 1).unwrap()
    };
    expect(
        call(&n.app, job(&other, &[&driver], &key_id)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "the rider was encrypted under key set 0909",
    );
    expect(
        call(&n.app, job(&rider, &[&driver], &"ab".repeat(32))).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "upload it first",
    );
    expect(
        call(&n.app, job(&rider, &[&driver], "xyz")).await,
        StatusCode::BAD_REQUEST,
        "malformed",
        "not 64 hex digits",
    );
    expect(
        call(
            &n.app,
            json_post(
                "/v1/apps/rideshare/match",
                &json!({"key_id": key_id, "rider": "***", "drivers": []}),
            ),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed",
        "rider is not base64",
    );
    expect(
        call(
            &n.app,
            post(
                "/v1/apps/rideshare/match",
                "application/octet-stream",
                encode_frames(&[&rider, &driver]),
            ),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed",
        "?key_id=",
    );
    let mut cut = encode_frames(&[&rider, &driver]);
    cut.truncate(cut.len() - 1);
    expect(
        call(
            &n.app,
            post(
                &format!("/v1/apps/rideshare/match?key_id={key_id}"),
                "application/octet-stream",
                cut,
            ),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed",
        "truncated",
    );
    // Four drivers make a body over the 96 KiB limit.
    let four = vec![driver.as_slice(); 4];
    expect(
        call(&n.app, job(&rider, &four, &key_id)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "fhe.max_body_bytes",
    );
    expect(
        call(
            &n.app,
            post(
                "/v1/fhe/keys",
                "application/octet-stream",
                b"not a key".to_vec(),
            ),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed",
        "the server key is not a CompressedServerKey",
    );
    expect(
        call(&n.app, get(&format!("/v1/jobs/{}", "0".repeat(32)))).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "no job",
    );

    // Keys beyond the upload limit, and writes without the token.
    let small = FheJobsConfig {
        max_key_bytes: 1 << 20,
        ..FheJobsConfig::default()
    };
    let guarded = node(
        small,
        ApiConfig {
            token: Some("secret".into()),
            ..ApiConfig::default()
        },
        s.matcher.clone(),
    );
    expect(
        call(&guarded.app, job(&rider, &[&driver], &key_id)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Bearer",
    );
    let mut req = post(
        "/v1/fhe/keys",
        "application/octet-stream",
        s.keys.server_key.clone(),
    );
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
    expect(
        call(&guarded.app, req).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "fhe.max_key_bytes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429() {
    let s = shared();
    let jobs = FheJobsConfig {
        queue: 1,
        ..FheJobsConfig::default()
    };
    let gated = Arc::new(Gated {
        inner: s.matcher.clone(),
        keys: Gate::new(false),
        jobs: Gate::new(false),
    });
    let n = node(jobs, open_api(), gated.clone());
    // The key loads in the background; until it is loaded, jobs get 503.
    let (status, key) = call(
        &n.app,
        post(
            "/v1/fhe/keys",
            "application/octet-stream",
            s.keys.server_key.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{key}");
    assert_eq!(key["status"], "loading");
    let submit = || {
        json_post(
            "/v1/apps/rideshare/match",
            &json!({
                "key_id": s.keys.key_id.to_string(),
                "rider": b64(&s.enc.rider(0, 0).unwrap()),
                "drivers": [b64(&s.enc.driver(3, 4, true).unwrap())],
            }),
        )
    };
    let (status, refused) = call(&n.app, submit()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("still loading")
    );
    gated.keys.set(true);
    upload(&n.app).await;

    let (status, first) = call(&n.app, submit()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first = first["job_id"].as_str().unwrap().to_owned();
    // The worker takes the first job and holds it at the gate; one more fits the queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(&n.app, get(&format!("/v1/jobs/{first}"))).await.1["status"] != "running" {
        assert!(
            Instant::now() < deadline,
            "the worker never started the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, second) = call(&n.app, submit()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(
        call(
            &n.app,
            get(&format!("/v1/jobs/{}", second["job_id"].as_str().unwrap()))
        )
        .await
        .1["status"],
        "queued"
    );
    let (status, third) = call(&n.app, submit()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{third}");
    assert_eq!(third["code"], "rate_limited");
    gated.jobs.set(true);
    for job in [first, second["job_id"].as_str().unwrap().to_owned()] {
        let done = wait_done(&n.app, &job).await;
        let result: JobResult = serde_json::from_value(done["result"].clone()).unwrap();
        let FheOutput::Nearest { index, distance } = result.decode().unwrap() else {
            panic!("not a rideshare result")
        };
        let got = s.dec.nearest(&index, &distance).unwrap();
        assert_eq!((got.driver, got.distance), (Some(0), 7));
    }
    let (_, fhe) = call(&n.app, get("/v1/fhe")).await;
    assert_eq!(fhe["jobs"]["rejected_full"], 1);
    assert_eq!(fhe["jobs"]["queued"], 0);
}
