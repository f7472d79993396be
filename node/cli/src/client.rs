//! Commands that talk to a running node over its HTTP API: `status`, `tx transfer` and
//! the load generator.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use cpc_types::{
    Address, Hash32, SecretKey, SignedTransaction, Transaction, TxKind, UNITS_PER_CPC,
};
use serde_json::Value;

/// Where the API is and how to authenticate.
#[derive(Debug, Args, Clone)]
pub(crate) struct ApiArgs {
    /// Base URL of the node's API (default: from --home's config, else http://127.0.0.1:8645).
    #[arg(long, env = "CPCHAIN_API")]
    api: Option<String>,
    /// Bearer token (default: from --home's config).
    #[arg(long, env = "CPCHAIN_API__TOKEN")]
    token: Option<String>,
    /// A node home directory to read the API address, token and key from.
    #[arg(long, env = "CPCHAIN_HOME")]
    home: Option<PathBuf>,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl ApiArgs {
    /// The API of the node at `home`.
    pub(crate) fn for_home(home: PathBuf) -> ApiArgs {
        ApiArgs {
            api: None,
            token: None,
            home: Some(home),
        }
    }

    pub(crate) fn client(&self) -> Result<Client> {
        let config = match &self.home {
            Some(h) => Some(crate::config::load(h, &serde_json::json!({}))?),
            None => None,
        };
        let base = match (&self.api, &config) {
            (Some(a), _) => a.trim_end_matches('/').to_owned(),
            (None, Some(c)) => format!("http://{}", c.api.listen),
            (None, None) => "http://127.0.0.1:8645".to_owned(),
        };
        let token = self
            .token
            .clone()
            .or_else(|| config.and_then(|c| c.api.token));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client { agent, base, token })
    }

    /// A client, the signing key (`key`, else the home's validator key) and the node's
    /// chain id.
    pub(crate) fn signer(
        &self,
        key: Option<&PathBuf>,
        whose: &str,
    ) -> Result<(Client, SecretKey, u32)> {
        let client = self.client()?;
        let path = key
            .cloned()
            .or_else(|| self.home.as_ref().map(|h| h.join("keys/validator.key")))
            .with_context(|| format!("give {whose} key with --key (or --home)"))?;
        let key = crate::keys::read_key(&path)?;
        let chain_id = client.get("/v1/status")?["chain_id"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .context("the node sent no chain id")?;
        Ok((client, key, chain_id))
    }
}

impl Client {
    fn finish(
        &self,
        path: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut resp = resp.with_context(|| {
            format!(
                "cannot reach the node at {}{path}: is it running?",
                self.base
            )
        })?;
        let status = resp.status();
        let body: Value = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_json()
            .unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            bail!(
                "{path}: {} {}: {}",
                status.as_u16(),
                body["code"].as_str().unwrap_or(""),
                body["message"].as_str().unwrap_or("no details")
            )
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Value> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.call())
    }

    pub(crate) fn post_json(&self, path: &str, body: &impl serde::Serialize) -> Result<Value> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.send_json(body))
    }

    /// A binary answer (`GET` without a body, else `POST` of JSON `body`).
    pub(crate) fn fetch_bytes(&self, path: &str, body: Option<&Value>) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let resp = match body {
            None => {
                let mut req = self.agent.get(url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            Some(b) => {
                let mut req = self.agent.post(url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send_json(b)
            }
        };
        let mut resp = resp.with_context(|| {
            format!(
                "cannot reach the node at {}{path}: is it running?",
                self.base
            )
        })?;
        if !resp.status().is_success() {
            return self.finish(path, Ok(resp)).map(|_| Vec::new());
        }
        resp.body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .with_context(|| format!("{path}: the answer was cut off"))
    }

    pub(crate) fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Value> {
        self.post_body(path, "application/octet-stream", body)
    }

    /// Posts a body already encoded as `content_type`.
    pub(crate) fn post_body(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.send(body))
    }
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    api: ApiArgs,
}

pub(crate) fn status(args: &StatusArgs) -> Result<ExitCode> {
    let v = args.api.client()?.get("/v1/status")?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(ExitCode::SUCCESS)
}

/// Parses a CPC amount with up to 8 decimals ("1.5") into base units.
pub(crate) fn parse_cpc(s: &str) -> Result<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 8
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        bail!("{s:?} is not an amount of CPC (digits, at most 8 decimals)");
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().context("amount too large")?
    };
    let frac: u64 = format!("{frac:0<8}").parse().unwrap_or(0);
    int.checked_mul(UNITS_PER_CPC)
        .and_then(|v| v.checked_add(frac))
        .context("amount too large")
}

#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The sender's key file (default: the home's keys/validator.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The recipient address (cpc…).
    #[arg(long)]
    to: Address,
    /// Amount in CPC, up to 8 decimals.
    #[arg(long)]
    amount: String,
    #[command(flatten)]
    send: SendOpts,
}

pub(crate) fn transfer(args: &TransferArgs) -> Result<ExitCode> {
    let amount = parse_cpc(&args.amount)?;
    let kind = TxKind::Transfer {
        to: args.to,
        amount,
    };
    send_signed(&args.api, args.key.as_ref(), &args.send, kind)
}

/// How a main-chain transaction is sent from the command line.
#[derive(Debug, Args)]
pub(crate) struct SendOpts {
    /// Most base units of fee to pay (used only beyond the free quota).
    #[arg(long, default_value_t = UNITS_PER_CPC / 1000)]
    max_fee: u64,
    /// Nonce (default: the account's next nonce, counting pending transactions).
    #[arg(long)]
    nonce: Option<u64>,
    /// Wait until the transaction is committed.
    #[arg(long)]
    wait: bool,
}

/// Signs `kind` with the sender's key, sends it through the node's API and prints its id;
/// with `--wait`, waits for its block.
pub(crate) fn send_signed(
    api: &ApiArgs,
    key: Option<&PathBuf>,
    opts: &SendOpts,
    kind: TxKind,
) -> Result<ExitCode> {
    let (client, key, chain_id) = api.signer(key, "the sender's")?;
    let nonce = match opts.nonce {
        Some(n) => n,
        None => client.get(&format!("/v1/accounts/{}", key.address()))?["next_nonce"]
            .as_u64()
            .context("the node sent no nonce")?,
    };
    let tx = Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        max_fee: opts.max_fee,
        kind,
    }
    .sign(&key);
    let v = client.post_json("/v1/txs", &tx)?;
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    println!("{id}");
    if opts.wait {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = client.get(&format!("/v1/txs/{id}"))?;
            match st["status"].as_str() {
                Some("committed") => {
                    eprintln!("committed in block {}", st["height"]);
                    break;
                }
                Some("rejected") => bail!("rejected: {}", st["reason"].as_str().unwrap_or("")),
                _ if Instant::now() > deadline => bail!("not committed after 60 s"),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct LoadgenArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Key file of the account that funds the senders (default: the home's validator key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Sending accounts.
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// Transfers to send in all.
    #[arg(long, default_value_t = 20_000)]
    txs: usize,
    /// Transactions per batch request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Offered load in transactions per second (0: as fast as the node takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Stop waiting for commits after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// PID of the node, to report its resident memory.
    #[arg(long)]
    node_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub(crate) fn pct(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len()) - 1]
}

/// Sends signed transfers from many accounts through the batch endpoint and measures
/// finalized throughput and commit latency from block observations.
pub(crate) fn loadgen(args: &LoadgenArgs) -> Result<ExitCode> {
    let (client, funder, chain_id) = args.api.signer(args.key.as_ref(), "the funding")?;
    let accounts = args.accounts.max(2);
    let per = args.txs.div_ceil(accounts) as u64;
    let fee = UNITS_PER_CPC / 1000;
    let senders: Vec<SecretKey> = (0..accounts)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[8..16].copy_from_slice(&rand_seed().to_le_bytes());
            SecretKey::from_bytes(seed)
        })
        .collect();
    let rss_idle = args.node_pid.and_then(rss_kib);

    // Fund every sender with enough for its transfers and fees.
    let mut nonce = client.get(&format!("/v1/accounts/{}", funder.address()))?["next_nonce"]
        .as_u64()
        .context("no nonce")?;
    let funding: Vec<SignedTransaction> = senders
        .iter()
        .map(|s| {
            let tx = Transaction {
                chain_id,
                sender: funder.public(),
                nonce,
                max_fee: fee,
                kind: TxKind::Transfer {
                    to: s.address(),
                    amount: per * (fee + 1) + UNITS_PER_CPC,
                },
            }
            .sign(&funder);
            nonce += 1;
            tx
        })
        .collect();
    eprintln!("loadgen: funding {accounts} accounts");
    let last_funding = funding.last().map(SignedTransaction::id);
    for chunk in funding.chunks(args.batch.max(1)) {
        check_batch(
            &client.post_bytes("/v1/txs/batch", &cpc_types::Encode::encode(&chunk.to_vec()))?,
        )?;
    }
    if let Some(id) = last_funding {
        wait_committed(&client, &id, Duration::from_secs(args.timeout_secs))?;
    }

    // Sign everything before the clock starts.
    eprintln!("loadgen: signing {} transfers", per * accounts as u64);
    let mut txs: Vec<SignedTransaction> = Vec::new();
    for n in 0..per {
        for (i, s) in senders.iter().enumerate() {
            let to = senders[(i + 1) % accounts].address();
            txs.push(
                Transaction {
                    chain_id,
                    sender: s.public(),
                    nonce: n,
                    max_fee: fee,
                    kind: TxKind::Transfer { to, amount: 1 },
                }
                .sign(s),
            );
        }
    }
    let total = txs.len();
    let start_height = client.get("/v1/status")?["height"].as_u64().unwrap_or(0);
    let batches: Vec<Vec<u8>> = txs
        .chunks(args.batch.max(1))
        .map(|c| cpc_types::Encode::encode(&c.to_vec()))
        .collect();
    let ids: std::collections::HashMap<Hash32, usize> =
        txs.iter().enumerate().map(|(i, t)| (t.id(), i)).collect();
    let sent_at = std::sync::Mutex::new(vec![None::<Instant>; total]);
    let batch_len = args.batch.max(1);
    let start = Instant::now();
    eprintln!("loadgen: sending");
    let errors = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let senders_left = AtomicUsize::new(args.concurrency.max(1));
    let lock = |m: &std::sync::Mutex<Vec<Option<Instant>>>| {
        m.lock().unwrap_or_else(|e| e.into_inner()).clone()
    };
    let mut send_secs = 0.0;
    // Senders post batches while one follower reads the blocks as they commit, so a
    // latency is the time from a batch's post to the first sight of its block.
    let followed: Result<(Vec<f64>, Instant, Option<u64>)> = std::thread::scope(|scope| {
        for _ in 0..args.concurrency.max(1) {
            scope.spawn(|| {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = batches.get(b) else { break };
                    if args.rate > 0 {
                        // Pace batches so the offered load is `rate`, not a burst.
                        let due = start
                            + Duration::from_secs_f64((b * batch_len) as f64 / args.rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    {
                        let mut s = sent_at.lock().unwrap_or_else(|e| e.into_inner());
                        let now = Instant::now();
                        for slot in s.iter_mut().skip(b * batch_len).take(batch_len) {
                            *slot = Some(now);
                        }
                    }
                    if let Err(e) = client
                        .post_bytes("/v1/txs/batch", body)
                        .and_then(|v| check_batch(&v))
                        && errors.fetch_add(1, Ordering::Relaxed) == 0
                    {
                        eprintln!("loadgen: batch refused: {e:#}");
                    }
                }
                senders_left.fetch_sub(1, Ordering::Release);
            });
        }
        let follower = scope.spawn(|| -> Result<(Vec<f64>, Instant, Option<u64>)> {
            let mut latencies = Vec::with_capacity(total);
            let mut last_commit = start;
            let mut height = start_height + 1;
            let mut rss_peak = None;
            let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
            loop {
                let done_sending = senders_left.load(Ordering::Acquire) == 0;
                let expected = total.saturating_sub(errors.load(Ordering::Relaxed) * batch_len);
                if (done_sending && latencies.len() >= expected) || Instant::now() > deadline {
                    return Ok((latencies, last_commit, rss_peak));
                }
                let head = client.get("/v1/status")?["height"].as_u64().unwrap_or(0);
                if let Some(pid) = args.node_pid {
                    rss_peak = rss_peak.max(rss_kib(pid));
                }
                if head < height {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let seen = Instant::now();
                let sent = lock(&sent_at);
                while height <= head {
                    let b = client.get(&format!("/v1/blocks/{height}"))?;
                    for id in b["tx_ids"].as_array().into_iter().flatten() {
                        let slot = id
                            .as_str()
                            .and_then(|s| s.parse::<Hash32>().ok())
                            .and_then(|h| ids.get(&h));
                        if let Some(t) = slot.and_then(|i| sent[*i]) {
                            latencies.push(seen.duration_since(t).as_secs_f64());
                            last_commit = seen;
                        }
                    }
                    height += 1;
                }
            }
        });
        while senders_left.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        send_secs = start.elapsed().as_secs_f64();
        follower
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the block follower panicked")))
    });
    let (mut latencies, last_commit, rss_peak) = followed?;
    latencies.sort_by(f64::total_cmp);
    let committed = latencies.len();
    let secs = last_commit.duration_since(start).as_secs_f64().max(1e-9);
    let report = serde_json::json!({
        "submitted": total,
        "committed": committed,
        "refused_batches": errors.load(Ordering::Relaxed),
        "send_seconds": send_secs,
        "ingest_tx_per_sec": total as f64 / send_secs.max(1e-9),
        "finalized_tx_per_sec": committed as f64 / secs,
        "commit_latency_p50_ms": pct(&latencies, 50) * 1e3,
        "commit_latency_p99_ms": pct(&latencies, 99) * 1e3,
        "node_rss_idle_kib": rss_idle,
        "node_rss_peak_kib": rss_peak,
    });
    if args.json {
        println!("{report}");
    } else {
        println!("submitted {total} transfers from {accounts} accounts in {send_secs:.2} s");
        println!(
            "committed {committed} in {secs:.2} s: {:.0} tx/s",
            committed as f64 / secs
        );
        println!(
            "commit latency p50 {:.0} ms, p99 {:.0} ms",
            pct(&latencies, 50) * 1e3,
            pct(&latencies, 99) * 1e3
        );
        if let (Some(i), Some(p)) = (rss_idle, rss_peak) {
            println!(
                "node RSS: idle {} MiB, under load {} MiB",
                i / 1024,
                p / 1024
            );
        }
    }
    Ok(if committed == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn rand_seed() -> u64 {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    u64::from_le_bytes(b)
}

pub(crate) fn check_batch(v: &Value) -> Result<()> {
    if let Some(e) = v
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|r| r.get("error"))
    {
        bail!(
            "{}: {}",
            e["code"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn wait_committed(client: &Client, id: &Hash32, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if client.get(&format!("/v1/txs/{id}"))?["status"] == "committed" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("transaction {id} was not committed within {timeout:?}")
}

#[cfg(test)]
mod tests {
    use super::parse_cpc;

    #[test]
    fn cpc_amounts() {
        assert_eq!(parse_cpc("1").unwrap(), 100_000_000);
        assert_eq!(parse_cpc("1.5").unwrap(), 150_000_000);
        assert_eq!(parse_cpc("0.00000001").unwrap(), 1);
        assert_eq!(parse_cpc(".25").unwrap(), 25_000_000);
        assert!(parse_cpc("1.000000001").is_err());
        assert!(parse_cpc("-1").is_err());
        assert!(parse_cpc("").is_err());
        assert!(parse_cpc("1e3").is_err());
        assert!(parse_cpc("999999999999999").is_err());
    }
}
