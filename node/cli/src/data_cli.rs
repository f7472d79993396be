//! `cpchain data …`: the owner's and the reader's side of the encrypted data layer.
//!
//! Everything secret stays in this process: records are packed, sealed under a fresh key
//! per interval and erasure-coded here; only ciphertext chunks go to the node
//! (`/v1/data/…`), which places them on the storage nodes. Records, grants and revocations
//! are signed here and submitted as transactions.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_api::data::join_chunks;
use cpc_data::erasure::BlockEntry;
use cpc_data::pack::RECORD_OVERHEAD;
use cpc_data::{
    Chunk, DataKeys, KeyAnnouncement, KfragDelivery, Manifest, PlainBlock, RecordMeta,
    StreamParams, Upload, Uploader, open_interval,
};
use cpc_types::{
    AccessPolicy, Address, DataRecord, Hash32, SecretKey, Transaction, TxKind, UNITS_PER_CPC,
    sha256,
};
use serde_json::{Value, json};

use crate::client::{ApiArgs, Client};

/// Domain of stream ids derived from names.
const STREAM_DOMAIN: &[u8] = b"cpchain/data/stream/v1";

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Encrypt files (or records on stdin) and store them in the network under a stream.
    Put(PutArgs),
    /// Fetch and decrypt intervals of a stream (as its owner or as a grantee).
    Get(GetArgs),
    /// Let an account read a range of a stream's intervals.
    Grant(GrantArgs),
    /// Withdraw an account's grant; proxies stop re-encrypting for it.
    Revoke(RevokeArgs),
    /// Publish this account's receiving key, so owners can grant it access.
    Announce(AnnounceArgs),
    /// The node's data-layer counters.
    Status(StatusArgs),
}

pub(crate) fn run(cmd: DataCommand) -> Result<ExitCode> {
    match cmd {
        DataCommand::Put(a) => put(&a),
        DataCommand::Get(a) => get(&a),
        DataCommand::Grant(a) => grant(&a),
        DataCommand::Revoke(a) => revoke(&a),
        DataCommand::Announce(a) => announce(&a),
        DataCommand::Status(a) => {
            let v = a.api.client()?.get("/v1/data/status")?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The node, the account and the stream.
#[derive(Debug, Args)]
pub(crate) struct Common {
    #[command(flatten)]
    api: ApiArgs,
    /// The account's key file (default: the home's keys/validator.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The stream: a name (its id is a hash of it) or a 64-hex-digit stream id.
    #[arg(long)]
    stream: String,
}

/// A stream id from a name or hex id.
pub(crate) fn stream_id(s: &str) -> Result<Hash32> {
    if s.is_empty() {
        bail!("--stream is empty: give a name or a 64-hex-digit id");
    }
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return s.parse().map_err(|e| anyhow!("stream id {s:?}: {e}"));
    }
    Ok(sha256(&[STREAM_DOMAIN, s.as_bytes()]))
}

/// An interval `I` or a range `A..B` (inclusive).
pub(crate) fn parse_range(s: &str) -> Result<(u64, u64)> {
    let bad = || anyhow!("{s:?} is not an interval: give I or A..B (inclusive)");
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a.trim(), b.trim().trim_start_matches('=')),
        None => (s.trim(), s.trim()),
    };
    let a: u64 = a.parse().map_err(|_| bad())?;
    let b: u64 = b.parse().map_err(|_| bad())?;
    if a > b {
        bail!("interval range {s:?} ends before it starts");
    }
    Ok((a, b))
}

struct Session {
    client: Client,
    key: SecretKey,
    chain_id: u32,
    stream: Hash32,
}

impl Common {
    fn open(&self, whose: &str) -> Result<Session> {
        let stream = stream_id(&self.stream)?;
        let (client, key, chain_id) = self.api.signer(self.key.as_ref(), whose)?;
        Ok(Session {
            client,
            key,
            chain_id,
            stream,
        })
    }
}

impl Session {
    /// The stream's owner and the first interval after its last record, if it exists.
    fn stream_info(&self) -> Result<Option<(Address, u64)>> {
        match self
            .client
            .get(&format!("/v1/data/streams/{}", self.stream))
        {
            Ok(v) => {
                let owner: Address = v["owner"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .context("the node sent no stream owner")?;
                let next = v["next_interval"].as_u64().context("no next interval")?;
                Ok(Some((owner, next)))
            }
            Err(e) if e.to_string().contains(" 404 ") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Signs and submits a transaction and waits until it is committed.
    fn submit(&self, kind: TxKind) -> Result<Hash32> {
        let id = self.post_tx(kind)?;
        self.wait_committed(id)?;
        Ok(id)
    }

    /// Signs and submits a transaction (admitted to the node's pool, so the next one gets
    /// the following nonce) without waiting for it.
    fn post_tx(&self, kind: TxKind) -> Result<Hash32> {
        let nonce = self
            .client
            .get(&format!("/v1/accounts/{}", self.key.address()))?["next_nonce"]
            .as_u64()
            .context("the node sent no nonce")?;
        let tx = Transaction {
            chain_id: self.chain_id,
            sender: self.key.public(),
            nonce,
            max_fee: UNITS_PER_CPC / 1000,
            kind,
        }
        .sign(&self.key);
        let id = tx.id();
        self.client.post_json("/v1/txs", &tx)?;
        Ok(id)
    }

    /// Waits until a submitted transaction is committed.
    fn wait_committed(&self, id: Hash32) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = self.client.get(&format!("/v1/txs/{id}"))?;
            match st["status"].as_str() {
                Some("committed") => return Ok(()),
                Some("rejected") => bail!(
                    "transaction {id} was rejected: {}",
                    st["reason"].as_str().unwrap_or("no reason given")
                ),
                _ if Instant::now() > deadline => {
                    bail!(
                        "transaction {id} was not committed within 60 s: is the network making blocks?"
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn announce(&self, keys: &DataKeys) -> Result<usize> {
        let a = keys.announce(&self.key);
        let v = self.client.post_json("/v1/data/keys", &a)?;
        Ok(v["nodes"].as_u64().unwrap_or(0) as usize)
    }
}

/// A progress line on stderr.
struct Progress {
    what: &'static str,
    total: Option<u64>,
    done: u64,
    start: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new(what: &'static str, total: Option<u64>) -> Self {
        let now = Instant::now();
        Self {
            what,
            total,
            done: 0,
            start: now,
            last: now,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if self.last.elapsed() >= Duration::from_millis(if self.tty { 200 } else { 2000 }) {
            self.last = Instant::now();
            self.print(false);
        }
    }

    fn rate(&self) -> f64 {
        self.done as f64 / 1e6 / self.start.elapsed().as_secs_f64().max(1e-6)
    }

    fn print(&self, end: bool) {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let head = match self.total {
            Some(t) if t > 0 => format!(
                "{}: {:.1}/{:.1} MiB ({:.0}%)",
                self.what,
                mib(self.done),
                mib(t),
                100.0 * self.done as f64 / t as f64
            ),
            _ => format!("{}: {:.1} MiB", self.what, mib(self.done)),
        };
        let line = format!("{head}, {:.1} MB/s", self.rate());
        if self.tty {
            eprint!("\r{line}\x1b[K{}", if end { "\n" } else { "" });
        } else {
            eprintln!("{line}");
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    #[command(flatten)]
    common: Common,
    /// Files to store, each as its own upload; none (or `-`): records on stdin, one per line.
    files: Vec<PathBuf>,
    /// Block period T in milliseconds.
    #[arg(long, default_value_t = StreamParams::default().period_ms)]
    period_ms: u64,
    /// Periods per encryption interval (e / T): each interval has its own key.
    #[arg(long, default_value_t = StreamParams::default().blocks_per_interval)]
    blocks_per_interval: u32,
    /// Intervals per on-chain record (u / e).
    #[arg(long, default_value_t = StreamParams::default().intervals_per_upload)]
    intervals_per_upload: u32,
    /// Chunks that rebuild a block (k).
    #[arg(long, short = 'k', default_value_t = StreamParams::default().data_chunks)]
    data_chunks: u16,
    /// Chunks stored per block (n > k).
    #[arg(long, short = 'n', default_value_t = StreamParams::default().total_chunks)]
    total_chunks: u16,
    /// Largest plaintext block in bytes.
    #[arg(long, default_value_t = StreamParams::default().max_block_bytes)]
    max_block_bytes: u32,
    /// Public data: the records carry the interval keys, so anyone reads it without a
    /// grant (the chunks in the DHT stay encrypted and checked against the chain).
    #[arg(long)]
    public: bool,
}

impl PutArgs {
    fn params(&self) -> StreamParams {
        StreamParams {
            period_ms: self.period_ms,
            blocks_per_interval: self.blocks_per_interval,
            intervals_per_upload: self.intervals_per_upload,
            data_chunks: self.data_chunks,
            total_chunks: self.total_chunks,
            max_block_bytes: self.max_block_bytes,
        }
    }
}

/// Packs records into blocks, one block per period, periods in sequence from `period`.
struct Blocks {
    params: StreamParams,
    period: u64,
    buf: Vec<u8>,
}

impl Blocks {
    /// Adds a record; returns the block it closed, if any.
    fn push(&mut self, timestamp_ms: u64, payload: &[u8]) -> Result<Option<PlainBlock>> {
        let max = self.params.max_block_bytes as usize;
        if payload.len() + RECORD_OVERHEAD > max {
            bail!(
                "a record of {} bytes does not fit a block of {max} bytes: raise --max-block-bytes",
                payload.len()
            );
        }
        let closed = if self.buf.len() + payload.len() + RECORD_OVERHEAD > max {
            self.flush()
        } else {
            None
        };
        self.buf.extend_from_slice(&timestamp_ms.to_be_bytes());
        self.buf
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(payload);
        Ok(closed)
    }

    fn flush(&mut self) -> Option<PlainBlock> {
        if self.buf.is_empty() {
            return None;
        }
        let period = self.period;
        self.period += 1;
        Some(PlainBlock {
            seq: period,
            period,
            interval: self.params.interval_of_period(period),
            bytes: std::mem::take(&mut self.buf),
        })
    }
}

fn now_ms() -> u64 {
    cpc_api::now_ms()
}

/// Blocks a `get` fetches ahead of the one it decrypts.
const GET_CONCURRENCY: usize = 3;

/// Blocks in flight at once: the node stores one block's chunks on its peers while the
/// next ones travel and the next after that is sealed here.
const PUT_CONCURRENCY: usize = 4;

/// Stores sealed blocks' chunks through the node on [`PUT_CONCURRENCY`] threads while the
/// caller seals the next blocks, so sealing, the upload and the node's placement overlap
/// and the client holds only the blocks in flight.
struct ChunkSender {
    jobs: Option<std::sync::mpsc::SyncSender<Vec<Chunk>>>,
    results: std::sync::mpsc::Receiver<Result<u64>>,
    in_flight: usize,
}

impl ChunkSender {
    fn start<'scope>(scope: &'scope std::thread::Scope<'scope, '_>, s: &'scope Session) -> Self {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Vec<Chunk>>(PUT_CONCURRENCY);
        let (done, results) = std::sync::mpsc::channel();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for _ in 0..PUT_CONCURRENCY {
            let (queue, done) = (queue.clone(), done.clone());
            scope.spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    // The sender is gone: the put is over (or failed).
                    let Ok(block) = job else { break };
                    if done.send(store_block(s, &block)).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            jobs: Some(jobs),
            results,
            in_flight: 0,
        }
    }

    /// Queues one block's chunks (waits while [`PUT_CONCURRENCY`] are queued).
    fn send(&mut self, block: Vec<Chunk>, progress: &mut Progress) -> Result<()> {
        self.collect(false, progress)?;
        self.jobs
            .as_ref()
            .context("the upload is closed")?
            .send(block)
            .map_err(|_| anyhow!("the upload threads stopped"))?;
        self.in_flight += 1;
        Ok(())
    }

    /// Queues chunks `n` (one block) at a time.
    fn send_blocks(&mut self, chunks: Vec<Chunk>, n: usize, progress: &mut Progress) -> Result<()> {
        let mut rest = chunks.into_iter().peekable();
        while rest.peek().is_some() {
            self.send(rest.by_ref().take(n).collect(), progress)?;
        }
        Ok(())
    }

    /// Takes the answers that came back (all of them with `wait`); the first failure ends
    /// the put.
    fn collect(&mut self, wait: bool, progress: &mut Progress) -> Result<()> {
        while self.in_flight > 0 {
            let r = if wait {
                self.results
                    .recv()
                    .map_err(|_| anyhow!("the upload threads stopped"))?
            } else {
                match self.results.try_recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            };
            self.in_flight -= 1;
            progress.add(r?);
        }
        Ok(())
    }
}

impl Drop for ChunkSender {
    fn drop(&mut self) {
        // Ends the threads' loops, so the scope that runs them can end.
        self.jobs.take();
    }
}

/// Posts one block's chunks; the bytes stored.
fn store_block(s: &Session, block: &[Chunk]) -> Result<u64> {
    let body = join_chunks(block.iter().map(|c| (&c.id, c.bytes.as_slice())));
    let stored = s.client.post_bytes("/v1/data/chunks", &body)?;
    let count = stored.as_array().map_or(0, Vec::len);
    if count != block.len() {
        bail!("the node stored {count} of {} chunks", block.len());
    }
    Ok(block.iter().map(|c| c.bytes.len() as u64).sum())
}

/// Closes an upload: once every chunk of its blocks is stored, the manifest, then the
/// record on chain. Returns the record's intervals and transaction, submitted but not yet
/// committed: the next window is sealed and stored while the chain takes it.
fn close_upload(
    s: &Session,
    sender: &mut ChunkSender,
    up: Upload,
    progress: &mut Progress,
) -> Result<((u64, u64), Hash32)> {
    let n = up.manifest.blocks.first().map_or(1, |b| b.chunks.len());
    let k = up.manifest.blocks.first().map_or(1, |b| b.k());
    sender.send_blocks(up.chunks, n, progress)?;
    sender.collect(true, progress)?;
    // The manifest survives the loss of as many nodes as the chunks do.
    let manifest = up.manifest.to_bytes();
    let manifest_id = sha256(&[&manifest]);
    let replicas = (n - k + 1).clamp(1, 16);
    s.client.post_bytes(
        &format!("/v1/data/chunks?replicas={replicas}"),
        &join_chunks([(&manifest_id, manifest.as_slice())]),
    )?;
    let tx = s
        .post_tx(TxKind::DataRecord(up.record.clone()))
        .context("the data is stored but its record was not submitted")?;
    Ok(((up.record.first_interval, up.record.last_interval), tx))
}

fn put(args: &PutArgs) -> Result<ExitCode> {
    let params = args.params();
    params.validate()?;
    let s = args.common.open("the stream owner's")?;
    let keys = DataKeys::from_account(&s.key);
    let accel = Dispatcher::new(DispatchConfig::default())?;
    let sources: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then(|| f.clone()))
            .collect()
    };
    for src in sources {
        // The next upload window after the stream's last record.
        let next = match s.stream_info()? {
            Some((owner, _)) if owner != s.key.address() => bail!(
                "stream {} ({}) belongs to {owner}; choose another --stream",
                args.common.stream,
                s.stream
            ),
            Some((_, next)) => next,
            None => 0,
        };
        let u = u64::from(params.intervals_per_upload);
        let first = next
            .div_ceil(u)
            .checked_mul(u)
            .context("stream intervals exhausted")?;
        let first_period = first
            .checked_mul(u64::from(params.blocks_per_interval))
            .context("stream intervals exhausted")?;
        let mut blocks = Blocks {
            params,
            period: first_period,
            buf: Vec::new(),
        };
        let policy = if args.public {
            AccessPolicy::Public
        } else {
            AccessPolicy::Private
        };
        let mut up = Uploader::new(params, s.stream, policy, &keys, &accel)?;
        let factor = f64::from(params.total_chunks) / f64::from(params.data_chunks);
        let (name, total, mut reader): (String, Option<u64>, Box<dyn BufRead>) = match &src {
            Some(p) => {
                let f = std::fs::File::open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?;
                let len = f.metadata().map(|m| m.len()).ok();
                (
                    p.display().to_string(),
                    len.map(|l| (l as f64 * factor) as u64),
                    Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
                )
            }
            None => ("stdin".into(), None, Box::new(std::io::stdin().lock())),
        };
        let mut progress = Progress::new("put", total);
        let mut ranges = Vec::new();
        let mut plain = 0u64;
        let n = usize::from(params.total_chunks);
        std::thread::scope(|scope| -> Result<()> {
            let s = &s;
            let mut sender = ChunkSender::start(scope, s);
            // Records on their way to a final block, one waiting thread each.
            let mut commits = Vec::new();
            let mut close =
                |done: Upload, sender: &mut ChunkSender, progress: &mut Progress| -> Result<()> {
                    let (range, tx) = close_upload(s, sender, done, progress)?;
                    ranges.push(range);
                    commits.push(scope.spawn(move || s.wait_committed(tx)));
                    Ok(())
                };
            let mut send = |block: Option<PlainBlock>,
                            up: &mut Uploader<'_>,
                            progress: &mut Progress|
             -> Result<()> {
                let Some(b) = block else { return Ok(()) };
                if let Some(done) = up.push(&b)? {
                    close(done, &mut sender, progress)?;
                }
                sender.send_blocks(up.take_chunks(), n, progress)
            };
            match &src {
                Some(_) => {
                    // A file: records of a block's payload size, one block per period.
                    let piece = params.max_block_bytes as usize - RECORD_OVERHEAD;
                    let mut buf = vec![0u8; piece];
                    loop {
                        let got = read_full(&mut reader, &mut buf)?;
                        if got == 0 {
                            break;
                        }
                        plain += got as u64;
                        let closed = blocks.push(now_ms(), &buf[..got])?;
                        send(closed, &mut up, &mut progress)?;
                        send(blocks.flush(), &mut up, &mut progress)?;
                    }
                }
                None => {
                    // Records on stdin: one per line, newline kept, so `get` returns the input.
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        if reader.read_until(b'\n', &mut line)? == 0 {
                            break;
                        }
                        plain += line.len() as u64;
                        let closed = blocks.push(now_ms(), &line)?;
                        send(closed, &mut up, &mut progress)?;
                    }
                    send(blocks.flush(), &mut up, &mut progress)?;
                }
            }
            if plain == 0 {
                bail!("{name} is empty: nothing to store");
            }
            if let Some(done) = up.finish()? {
                close(done, &mut sender, &mut progress)?;
            }
            for c in commits {
                c.join()
                    .map_err(|_| anyhow!("a record's waiting thread panicked"))?
                    .context("the data is stored but its record was not committed")?;
            }
            Ok(())
        })?;
        progress.print(true);
        let (a, b) = (
            ranges.first().map_or(0, |r| r.0),
            ranges.last().map_or(0, |r| r.1),
        );
        println!(
            "{name}: {plain} bytes in stream {} intervals {a}..{b} ({} record{})",
            s.stream,
            ranges.len(),
            if ranges.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot read the input"),
        }
    }
    Ok(got)
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    common: Common,
    /// The interval, or a range A..B (inclusive).
    #[arg(long)]
    interval: String,
    /// Where to write the data (`-`: stdout).
    #[arg(long)]
    out: PathBuf,
    /// Write one line per record, `timestamp_ms<TAB>payload`, instead of the payloads.
    #[arg(long)]
    records: bool,
}

fn get(args: &GetArgs) -> Result<ExitCode> {
    let (a, b) = parse_range(&args.interval)?;
    let s = args.common.open("the reader's")?;
    let keys = DataKeys::from_account(&s.key);
    let accel = Dispatcher::new(DispatchConfig::default())?;
    let Some((owner, _)) = s.stream_info()? else {
        bail!(
            "stream {} ({}) has no record on chain",
            args.common.stream,
            s.stream
        );
    };
    let is_owner = owner == s.key.address();
    let records: Vec<DataRecord> = serde_json::from_value(s.client.get(&format!(
        "/v1/data/streams/{}/records?from={a}&limit=1000",
        s.stream
    ))?)
    .context("the node sent malformed records")?;
    let records: Vec<DataRecord> = records
        .into_iter()
        .filter(|r| r.first_interval <= b && r.last_interval >= a)
        .collect();
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&args.out)
                .with_context(|| format!("cannot create {}", args.out.display()))?,
        ))
    };
    let mut progress = Progress::new("get", None);
    let mut written = 0u64;
    // The blocks to read, in stream order, each with the index of its interval's key.
    let mut interval_keys = Vec::new();
    let mut blocks = Vec::new();
    for rec in &records {
        let meta = RecordMeta::of(rec)?;
        let bytes = s
            .client
            .fetch_bytes(&format!("/v1/data/chunks/{}", meta.manifest), None)
            .context("cannot fetch the upload's manifest")?;
        let manifest = Manifest::verify(&bytes, rec, &accel)?;
        let lo = a.max(rec.first_interval);
        let hi = b.min(rec.last_interval);
        for interval in lo..=hi {
            let entries: Vec<_> = manifest.blocks_of(interval).cloned().collect();
            if entries.is_empty() {
                continue;
            }
            interval_keys.push(if rec.policy == AccessPolicy::Public {
                meta.public_key_for(interval)?
            } else if is_owner {
                keys.unwrap_own(&s.stream, &meta, interval)?
            } else {
                granted_key(&s, &keys, &meta, interval)?
            });
            blocks.extend(entries.into_iter().map(|e| (interval_keys.len() - 1, e)));
        }
    }
    if blocks.is_empty() {
        bail!(
            "stream {} holds no data in intervals {a}..{b}",
            args.common.stream
        );
    }
    // The node rebuilds the next blocks while this one is checked, decrypted and written.
    let fetch = |entry: &BlockEntry| -> Result<Vec<u8>> {
        let body = serde_json::to_value(entry)?;
        s.client.fetch_bytes("/v1/data/blocks", Some(&body))
    };
    let fetch = &fetch;
    std::thread::scope(|scope| -> Result<()> {
        let mut todo = blocks.iter();
        let mut ahead = std::collections::VecDeque::new();
        loop {
            while ahead.len() < GET_CONCURRENCY
                && let Some((key, entry)) = todo.next()
            {
                ahead.push_back((*key, entry, scope.spawn(move || fetch(entry))));
            }
            let Some((key, entry, fetching)) = ahead.pop_front() else {
                return Ok(());
            };
            let ct = fetching
                .join()
                .map_err(|_| anyhow!("a block's fetching thread panicked"))??;
            progress.add(ct.len() as u64);
            for r in open_interval(&interval_keys[key], &s.stream, &[(entry.clone(), ct)])? {
                if args.records {
                    out.write_all(format!("{}\t", r.timestamp_ms).as_bytes())?;
                    out.write_all(&r.payload)?;
                    if !r.payload.ends_with(b"\n") {
                        out.write_all(b"\n")?;
                    }
                } else {
                    out.write_all(&r.payload)?;
                }
                written += r.payload.len() as u64;
            }
        }
    })?;
    out.flush()?;
    progress.print(true);
    eprintln!("{written} bytes of intervals {a}..{b} written");
    Ok(ExitCode::SUCCESS)
}

/// Opens an interval key through the grant's proxies.
fn granted_key(
    s: &Session,
    keys: &DataKeys,
    meta: &RecordMeta,
    interval: u64,
) -> Result<cpc_data::IntervalKey> {
    let v = s.client.post_json(
        "/v1/data/cfrags",
        &json!({ "stream": s.stream, "grantee": s.key.address(), "interval": interval }),
    )?;
    let cfrags: Vec<Vec<u8>> = v["cfrags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().and_then(|h| hex::decode(h).ok()))
        .collect();
    let refused: Vec<&str> = v["refused"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if cfrags.is_empty() {
        bail!(
            "access denied to interval {interval} of stream {} for {}: {}",
            s.stream,
            s.key.address(),
            if refused.is_empty() {
                "no proxy answered".to_string()
            } else {
                refused.join("; ")
            }
        );
    }
    let (key, bad) = keys
        .open_granted(meta, interval, &cfrags, 1)
        .map_err(|e| {
            anyhow!(
                "cannot open the key of interval {interval} from {} re-encryption fragments: {e} (proxies said: {})",
                cfrags.len(),
                refused.join("; ")
            )
        })?;
    if !bad.is_empty() {
        eprintln!(
            "warning: {} proxies sent fragments that do not verify",
            bad.len()
        );
    }
    Ok(key)
}

#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    #[command(flatten)]
    common: Common,
    /// The account to share with (it must have run `cpchain data announce`).
    #[arg(long)]
    to: Address,
    /// The intervals it may read, A..B (inclusive).
    #[arg(long)]
    intervals: String,
    /// Proxies that get a kfrag (n of the m-of-n).
    #[arg(long, default_value_t = 3)]
    proxies: usize,
    /// Cfrags the grantee needs (m).
    #[arg(long, default_value_t = 2)]
    threshold: usize,
}

fn grant(args: &GrantArgs) -> Result<ExitCode> {
    let (first, last) = parse_range(&args.intervals)?;
    if args.threshold == 0 || args.threshold > args.proxies || args.proxies > 255 {
        bail!("need 1 <= --threshold <= --proxies <= 255");
    }
    let s = args.common.open("the stream owner's")?;
    match s.stream_info()? {
        Some((owner, _)) if owner == s.key.address() => {}
        Some((owner, _)) => bail!("stream {} belongs to {owner}, not to you", s.stream),
        None => bail!("stream {} has no record on chain: put data first", s.stream),
    }
    let ann: KeyAnnouncement = serde_json::from_value(
        s.client
            .get(&format!("/v1/data/keys/{}", args.to))
            .context("the grantee's receiving key is not known")?,
    )
    .context("the node sent a malformed key announcement")?;
    ann.verify(&args.to)?;
    let keys = DataKeys::from_account(&s.key);
    let kfrags = keys.kfrags(&s.stream, &ann.receiving_pk, args.threshold, args.proxies)?;
    let deliveries = KfragDelivery::sign_all(&s.key, s.stream, args.to, &ann.receiving_pk, kfrags);
    let tx = s.submit(TxKind::Grant {
        stream_id: s.stream,
        grantee: args.to,
        first_interval: first,
        last_interval: last,
    })?;
    let v = s.client.post_json("/v1/data/kfrags", &deliveries)?;
    let accepted = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["accepted"] == true)
        .count();
    if accepted < args.threshold {
        bail!(
            "the grant is on chain (tx {tx}) but only {accepted} of {} proxies took a kfrag, {} needed: {v}",
            args.proxies,
            args.threshold
        );
    }
    println!(
        "granted {} intervals {first}..{last} of stream {} ({accepted}/{} proxies, {} needed); tx {tx}",
        args.to, s.stream, args.proxies, args.threshold
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    common: Common,
    /// The account whose grant ends.
    #[arg(long)]
    to: Address,
}

fn revoke(args: &RevokeArgs) -> Result<ExitCode> {
    let s = args.common.open("the stream owner's")?;
    let tx = s.submit(TxKind::Revoke {
        stream_id: s.stream,
        grantee: args.to,
    })?;
    println!("revoked {} on stream {}; tx {tx}", args.to, s.stream);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct AnnounceArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The account's key file (default: the home's keys/validator.key).
    #[arg(long)]
    key: Option<PathBuf>,
}

fn announce(args: &AnnounceArgs) -> Result<ExitCode> {
    let (client, key, chain_id) = args.api.signer(args.key.as_ref(), "the account's")?;
    let s = Session {
        client,
        key,
        chain_id,
        stream: Hash32([0; 32]),
    };
    let nodes = s.announce(&DataKeys::from_account(&s.key))?;
    if nodes == 0 {
        bail!("no storage node took the announcement");
    }
    println!(
        "announced the receiving key of {} to {nodes} storage nodes",
        s.key.address()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    api: ApiArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_ranges_parse() {
        let id = stream_id("temperature").unwrap();
        assert_eq!(id, stream_id("temperature").unwrap());
        assert_ne!(id, stream_id("humidity").unwrap());
        assert_eq!(stream_id(&id.to_string()).unwrap(), id);
        assert!(stream_id("").is_err());
        assert_eq!(parse_range("7").unwrap(), (7, 7));
        assert_eq!(parse_range("3..9").unwrap(), (3, 9));
        assert_eq!(parse_range("3..=9").unwrap(), (3, 9));
        assert!(parse_range("9..3").is_err());
        assert!(parse_range("a..3").is_err());
        assert!(parse_range("-1").is_err());
    }

    #[test]
    fn blocks_take_consecutive_periods_and_respect_the_size_limit() {
        let params = StreamParams {
            max_block_bytes: 64,
            blocks_per_interval: 2,
            ..StreamParams::default()
        };
        let mut b = Blocks {
            params,
            period: 10,
            buf: Vec::new(),
        };
        assert!(b.push(1, &[1; 30]).unwrap().is_none());
        let closed = b.push(2, &[2; 30]).unwrap().unwrap();
        assert_eq!((closed.period, closed.interval, closed.seq), (10, 5, 10));
        assert_eq!(closed.records().unwrap()[0].payload, vec![1; 30]);
        let last = b.flush().unwrap();
        assert_eq!((last.period, last.interval), (11, 5));
        assert!(b.flush().is_none());
        assert!(b.push(3, &[0; 60]).is_err(), "record larger than a block");
    }
}
