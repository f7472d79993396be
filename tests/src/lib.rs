//! End-to-end tests that start real `cpchain` processes: single nodes, crashes and
//! restarts, and (with consensus) local appliance networks. Command-level tests of the
//! binary live beside it in `node/cli/tests`.
//!
//! The harness runs the `cpchain` binary built in the same target directory (`cargo test
//! --workspace` builds it), or the one named by `CPCHAIN_BIN`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cpc_types::{SecretKey, SignedTransaction};
use serde_json::Value;

/// The `cpchain` binary under test.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CPCHAIN_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> → target/<profile>/cpchain
    let exe = std::env::current_exe().expect("the test knows its own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("cpchain"))
        .expect("tests run from target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p cpc-cli` (or run `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// Runs `cpchain` with `args` and returns its output.
pub fn cpchain(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("cpchain runs")
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Reads a key file (hex seed).
pub fn read_key(path: &Path) -> SecretKey {
    let text = std::fs::read_to_string(path).expect("key file");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).expect("hex key");
    SecretKey::from_bytes(seed)
}

/// An HTTP answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// One node: its home directory and, while it runs, its process.
pub struct Node {
    /// The home directory.
    pub home: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// The API port.
    pub port: u16,
    child: Option<Child>,
    agent: ureq::Agent,
    extra: Vec<String>,
    listen: Option<String>,
    p2p: Option<String>,
}

impl Node {
    /// `cpchain init` in a fresh temporary directory.
    pub fn init() -> Node {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let home = dir.path().join("node");
        let out = cpchain(&["init", "--home", home.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Node {
            home,
            _dir: Some(dir),
            port: free_port(),
            child: None,
            agent,
            extra: Vec::new(),
            listen: None,
            // Nodes of parallel tests must not share the default p2p port.
            p2p: Some(format!("/ip4/127.0.0.1/tcp/{}", free_port())),
        }
    }

    /// A node whose home another command wrote (`cpchain testnet`), serving its API on
    /// `port` and using its own p2p settings.
    pub fn at(home: PathBuf, port: u16) -> Node {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Node {
            home,
            _dir: None,
            port,
            child: None,
            agent,
            extra: Vec::new(),
            listen: None,
            p2p: None,
        }
    }

    /// Extra flags for every start.
    pub fn with_flags(mut self, flags: &[&str]) -> Node {
        self.extra = flags.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Listens on `ip` (with the node's port) instead of 127.0.0.1.
    pub fn listen_on(mut self, ip: &str) -> Node {
        self.listen = Some(format!("{ip}:{}", self.port));
        self
    }

    /// Starts the process without waiting for the API; returns the child to inspect.
    pub fn spawn(&mut self) -> &mut Child {
        let log = std::fs::File::create(self.home.join("node.log")).expect("log file");
        let listen = self
            .listen
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.port));
        let mut cmd = Command::new(binary());
        cmd.args(["start", "--home"])
            .arg(&self.home)
            .args([
                "--api.listen",
                &listen,
                "--consensus.block-interval-ms",
                "100",
            ])
            .args(
                self.p2p
                    .iter()
                    .flat_map(|p| ["--p2p.listen".to_owned(), p.clone()]),
            )
            .args(&self.extra)
            .env("CPCHAIN_CONSENSUS__VIEW_TIMEOUT_MS", "1000")
            .env("CPCHAIN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child.insert(cmd.spawn().expect("cpchain starts"))
    }

    /// A key file of the node's home (`validator` or `foundation`).
    pub fn key(&self, name: &str) -> SecretKey {
        read_key(&self.home.join(format!("keys/{name}.key")))
    }

    /// Starts the node and waits until its API answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.spawn();
        self.wait_api();
    }

    /// Waits until the API of a spawned node answers.
    pub fn wait_api(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the node exited with {status}:\n{}", self.log());
            }
            if self.get("/v1/health").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the node did not answer within 30 s:\n{}", self.log());
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.home.join("node.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Stops the node with SIGTERM and waits for it; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() {
                    eprintln!("{} exited with {status}", self.home.display());
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} did not stop within {:?} of SIGTERM; killed",
            self.home.display(),
            start.elapsed()
        );
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Kills the node with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The height of the node's last committed block.
    pub fn height(&self) -> u64 {
        self.get("/v1/status").body["height"].as_u64().unwrap_or(0)
    }

    /// The hash of the block at `height`, if the node has it.
    pub fn block_hash(&self, height: u64) -> Option<String> {
        let a = self.get(&format!("/v1/blocks/{height}"));
        a.body["hash"].as_str().map(str::to_owned)
    }

    /// Waits up to `secs` seconds until the node's height reaches `height`.
    pub fn wait_height(&self, height: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.height() < height {
            assert!(
                Instant::now() < deadline,
                "{} stayed at height {} below {height}:\n{}",
                self.home.display(),
                self.height(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        match resp {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body = r
                    .body_mut()
                    .with_config()
                    .limit(256 << 20)
                    .read_json()
                    .unwrap_or(Value::Null);
                Answer { status, body }
            }
            Err(_) => Answer {
                status: 0,
                body: Value::Null,
            },
        }
    }

    /// GET, with an optional bearer token.
    pub fn get_with(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.agent.get(self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::answer(req.call())
    }

    /// GET.
    pub fn get(&self, path: &str) -> Answer {
        self.get_with(path, None)
    }

    /// GET a text page, with an optional bearer token: status and body.
    pub fn get_text(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = self.agent.get(self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        match req.call() {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    }

    /// POST raw bytes with a content type and an optional bearer token.
    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> Answer {
        let mut req = self
            .agent
            .post(self.url(path))
            .header("Content-Type", content_type);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::answer(req.send(body))
    }

    /// POST a signed transaction as JSON.
    pub fn submit(&self, tx: &SignedTransaction) -> Answer {
        let body = serde_json::to_vec(tx).expect("serialisable");
        self.post_raw("/v1/txs", "application/json", &body, None)
    }

    /// Waits until `/v1/txs/{id}` says committed; returns the answer.
    pub fn wait_committed(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let a = self.get(&format!("/v1/txs/{id}"));
            if a.body["status"] == "committed" {
                return a.body;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not committed: {:?}\n{}",
                a,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A local network written by `cpchain testnet` in a temporary directory.
pub struct Testnet {
    /// The directory holding the node homes and keys.
    pub dir: tempfile::TempDir,
    /// The nodes, in order (node1 first).
    pub nodes: Vec<Node>,
}

impl Testnet {
    /// Writes an `n`-node network on free loopback ports; nothing runs yet.
    pub fn new(n: usize) -> Testnet {
        Self::with_args(n, &[])
    }

    /// [`Testnet::new`] with more `cpchain testnet` arguments (`--committee 4`, …).
    pub fn with_args(n: usize, extra: &[&str]) -> Testnet {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // `testnet` takes consecutive ports: find a run where all are free.
        let base = |seed: u16| 20_000 + (seed % 2000) * 20;
        let mut p2p = 0;
        let mut api = 0;
        for attempt in 0..200u16 {
            let s = free_port().wrapping_add(attempt);
            let (p, a) = (base(s), base(s) + 10);
            let all_free = (0..n as u16).all(|i| {
                TcpListener::bind(("127.0.0.1", p + i)).is_ok()
                    && TcpListener::bind(("127.0.0.1", a + i)).is_ok()
            });
            if all_free {
                (p2p, api) = (p, a);
                break;
            }
        }
        assert!(p2p > 0, "no free run of ports");
        let (nodes, p2p_port, api_port) = (n.to_string(), p2p.to_string(), api.to_string());
        let mut args = vec![
            "testnet",
            "--nodes",
            &nodes,
            "--out",
            dir.path().to_str().expect("utf-8 path"),
            "--p2p-port",
            &p2p_port,
            "--api-port",
            &api_port,
        ];
        args.extend_from_slice(extra);
        let out = cpchain(&args);
        assert!(
            out.status.success(),
            "testnet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nodes = (0..n)
            .map(|i| Node::at(dir.path().join(format!("node{}", i + 1)), api + i as u16))
            .collect();
        Testnet { dir, nodes }
    }

    /// The key of funded user `i` (1-based).
    pub fn user(&self, i: usize) -> SecretKey {
        read_key(&self.dir.path().join(format!("keys/user-{i}.key")))
    }

    /// What every node in `live` says of its consensus and peers, with the end of its
    /// log: for the message of a test that failed on the network as a whole.
    pub fn diagnose(&self, live: &[usize]) -> String {
        let mut s = String::new();
        for &i in live {
            let n = &self.nodes[i];
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            s.push_str(&format!(
                "== node {i}\nconsensus: {}\npeers: {}\nlog (last lines, newest first):\n{}\n",
                n.get("/v1/consensus").body,
                n.get("/v1/peers").body,
                tail.join("\n")
            ));
        }
        s
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for n in &mut self.nodes {
            n.spawn();
        }
        for n in &mut self.nodes {
            n.wait_api();
        }
    }
}
