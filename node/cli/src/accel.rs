//! `cpchain accel …`: list, hash, verify and self-test the accelerator backends.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use cpc_accel::{BackendKind, DispatchConfig, Dispatcher, Op, Route, SigItem, vectors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Subcommand)]
pub(crate) enum AccelCommand {
    /// List the backends: availability, device, features and limits.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// A node's home directory: list the devices its `[accel]` settings select, with
        /// the `auto` thresholds in force.
        #[arg(long)]
        home: Option<PathBuf>,
        #[command(flatten)]
        fpga: FpgaArg,
    },
    /// SHA-256 of files (or standard input), or the Merkle root over their digests.
    Hash {
        #[command(flatten)]
        backend: BackendArg,
        /// Print the Merkle root of the files' digests (in the order given) instead.
        #[arg(long)]
        merkle: bool,
        /// Files to hash; `-` or nothing reads standard input.
        files: Vec<PathBuf>,
    },
    /// Verify Ed25519 signatures (ZIP-215) from JSON lines.
    ///
    /// Each input line is `{"pk":HEX,"msg":HEX,"sig":HEX}`; each output line is
    /// `{"valid":BOOL}`, or `{"error":"…"}` for a malformed line. Lines are verified in
    /// batches; a malformed line never stops the others.
    Verify {
        #[command(flatten)]
        backend: BackendArg,
        /// The JSON-lines file; `-` reads standard input.
        #[arg(long, short, default_value = "-")]
        input: PathBuf,
        /// Lines verified per batch.
        #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
        batch: u64,
    },
    /// Run known-answer tests on every available backend; fails on any mismatch.
    Selftest {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A node's home directory: test the devices its `[accel]` settings select.
        #[arg(long)]
        home: Option<PathBuf>,
        #[command(flatten)]
        fpga: FpgaArg,
    },
}

#[derive(Debug, Args)]
pub(crate) struct FpgaArg {
    /// How to reach the FPGA backend: none, sim (the rust-hdl simulation of the SHA-256 +
    /// SHA-512 bitstream), sim:sha256, serial (probe /dev/ttyUSB* and /dev/ttyACM*) or
    /// serial:/dev/ttyUSB1.
    #[arg(long, default_value = "none", env = "CPCHAIN_ACCEL_FPGA")]
    fpga: String,
}

impl FpgaArg {
    /// The flag's transport; with a node's home, `none` keeps the node's `[accel.fpga]`.
    fn apply(&self, home: bool, config: &mut DispatchConfig) -> Result<()> {
        if self.fpga != "none" || !home {
            config.fpga = cpc_accel::fpga::FpgaConfig::parse_flag(&self.fpga)?;
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub(crate) struct BackendArg {
    /// Backend to run on: auto, cpu, wgpu, cuda or fpga.
    #[arg(long, short, default_value = "auto", env = "CPCHAIN_ACCEL_BACKEND")]
    backend: Route,
    /// CPU worker threads (0 = one per core, or the node's setting with --home).
    #[arg(long, default_value_t = 0, env = "CPCHAIN_ACCEL_THREADS")]
    threads: usize,
    /// A node's home directory: use its `[accel]` settings (GPU adapter, CUDA device,
    /// limits; with `--backend auto` also its routes and `auto` thresholds).
    #[arg(long)]
    home: Option<PathBuf>,
    #[command(flatten)]
    fpga: FpgaArg,
}

impl BackendArg {
    /// A dispatcher routing everything to the chosen backend. An explicitly chosen device
    /// that cannot run is an error here: the user asked for it by name.
    fn dispatcher(&self) -> Result<Dispatcher> {
        let mut config = node_accel_config(self.home.as_deref())?;
        if let Route::Backend(kind) = self.backend {
            let only = DispatchConfig::only(kind);
            (config.sha256, config.merkle, config.ed25519) =
                (only.sha256, only.merkle, only.ed25519);
        }
        if self.threads != 0 || self.home.is_none() {
            config.cpu_threads = self.threads;
        }
        self.fpga.apply(self.home.is_some(), &mut config)?;
        let dispatcher = crate::accel::build_dispatcher(config)?;
        if let Route::Backend(kind) = self.backend {
            require_available(&dispatcher, kind)?;
        }
        Ok(dispatcher)
    }
}

/// The accelerator settings of the node in `home` — its `[accel]` section with
/// `CPCHAIN_ACCEL__*` variables on top, plus the thresholds `cpchain bench --home` measured
/// — or the defaults without a home. The GPU backends also read `WGPU_BACKEND` and
/// `WGPU_ADAPTER_NAME` when the settings leave the choice open.
pub(crate) fn node_accel_config(home: Option<&Path>) -> Result<DispatchConfig> {
    let Some(home) = home else {
        return Ok(DispatchConfig::default());
    };
    let mut config = crate::config::load(home, &serde_json::json!({}))?.accel;
    crate::thresholds::apply(home, &mut config)?;
    Ok(config)
}

/// Builds the dispatcher with every backend this build knows about, every device opened.
pub(crate) fn build_dispatcher(config: DispatchConfig) -> Result<Dispatcher> {
    build(config, crate::gpu::Open::Every)
}

/// Builds a node's dispatcher: devices that `config` sends no work to stay closed.
pub(crate) fn build_node_dispatcher(config: DispatchConfig) -> Result<Dispatcher> {
    build(config, crate::gpu::Open::Routed)
}

fn build(config: DispatchConfig, open: crate::gpu::Open) -> Result<Dispatcher> {
    let fpga = cpc_accel::fpga::FpgaBackend::from_config(&config.fpga);
    let mut dispatcher = Dispatcher::new(config).context("cannot start the accelerator layer")?;
    crate::gpu::register(&mut dispatcher, open)?;
    dispatcher.register(std::sync::Arc::new(fpga))?;
    Ok(dispatcher)
}

fn require_available(dispatcher: &Dispatcher, kind: BackendKind) -> Result<()> {
    match dispatcher.backend(kind).map(|b| b.info()) {
        Some(info) if info.available => Ok(()),
        Some(info) => bail!(
            "backend {kind} is unavailable here: {}; see `cpchain accel list`",
            info.unavailable_reason
                .unwrap_or_else(|| "no reason given".into())
        ),
        None => bail!(
            "backend {kind} is not built into this cpchain; available: {}",
            dispatcher
                .backends()
                .iter()
                .filter(|b| b.available)
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(crate) fn run(cmd: AccelCommand) -> Result<ExitCode> {
    match cmd {
        AccelCommand::List { json, home, fpga } => list(json, home.as_deref(), &fpga),
        AccelCommand::Hash {
            backend,
            merkle,
            files,
        } => hash(&backend, merkle, &files),
        AccelCommand::Verify {
            backend,
            input,
            batch,
        } => verify(&backend, &input, batch as usize),
        AccelCommand::Selftest { json, home, fpga } => selftest(json, home.as_deref(), &fpga),
    }
}

fn list(json: bool, home: Option<&Path>, fpga: &FpgaArg) -> Result<ExitCode> {
    let mut config = node_accel_config(home)?;
    fpga.apply(home.is_some(), &mut config)?;
    let dispatcher = build_dispatcher(config)?;
    let infos = dispatcher.backends();
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &infos)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<6} {:<5} {:<11} {:<12} device / features",
        "name", "kind", "status", "max batch"
    )?;
    let auto = &dispatcher.config().auto;
    for b in infos {
        let status = if b.available {
            "available"
        } else {
            "unavailable"
        };
        let max = b
            .max_batch
            .map_or("unlimited".to_owned(), |m| m.to_string());
        writeln!(
            out,
            "{:<6} {:<5} {:<11} {:<12} {}",
            b.name,
            b.kind.as_str(),
            status,
            max,
            b.device
        )?;
        if !b.features.is_empty() {
            writeln!(out, "{:<37} features: {}", "", b.features.join(", "))?;
        }
        if let Some(reason) = b.unavailable_reason {
            writeln!(out, "{:<37} reason: {reason}", "")?;
        }
        if b.available && b.kind != BackendKind::Cpu {
            let thresholds: Vec<String> = Op::ALL
                .iter()
                .filter_map(|&op| {
                    auto.min_batch_on(b.kind, op, &b.device)
                        .map(|n| format!("{op} from {n}"))
                })
                .collect();
            let auto = if thresholds.is_empty() {
                "none, `auto` keeps everything on the cpu (measure: cpchain bench --home HOME)"
                    .to_owned()
            } else {
                thresholds.join(", ")
            };
            writeln!(out, "{:<37} auto thresholds: {auto}", "")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Files are read into memory and hashed in batches of at most this many bytes; a larger
/// file is streamed through the CPU reference (every backend gives the same digest).
const HASH_BATCH_BYTES: u64 = 256 << 20;

fn open_input(path: &Path) -> Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Box::new(f))
    }
}

fn hash(backend: &BackendArg, merkle: bool, files: &[PathBuf]) -> Result<ExitCode> {
    let dispatcher = backend.dispatcher()?;
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be hashed only once per command");
    }
    let mut digests = Vec::with_capacity(files.len());
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut pending_bytes = 0u64;
    let flush = |pending: &mut Vec<Vec<u8>>, digests: &mut Vec<cpc_accel::Digest>| {
        let msgs: Vec<&[u8]> = pending.iter().map(Vec::as_slice).collect();
        digests.extend(dispatcher.sha256_batch(&msgs));
        pending.clear();
    };
    for path in files {
        let size = if path.as_os_str() == "-" {
            None
        } else {
            Some(
                std::fs::metadata(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .len(),
            )
        };
        if size.is_some_and(|s| s > HASH_BATCH_BYTES) {
            flush(&mut pending, &mut digests);
            pending_bytes = 0;
            let d = cpc_accel::cpu::sha256_reader(open_input(path)?)
                .with_context(|| format!("cannot read {}", path.display()))?;
            digests.push(d);
            continue;
        }
        let mut buf = Vec::new();
        open_input(path)?
            .read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        pending_bytes += buf.len() as u64;
        pending.push(buf);
        if pending_bytes >= HASH_BATCH_BYTES {
            flush(&mut pending, &mut digests);
            pending_bytes = 0;
        }
    }
    flush(&mut pending, &mut digests);
    let mut out = io::stdout().lock();
    if merkle {
        let root = dispatcher.merkle_root(&digests);
        writeln!(
            out,
            "{}  merkle root of {} inputs",
            hex::encode(root),
            digests.len()
        )?;
    } else {
        for (d, f) in digests.iter().zip(files) {
            writeln!(out, "{}  {}", hex::encode(d), f.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyLine {
    pk: String,
    msg: String,
    sig: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Verdict {
    Valid { valid: bool },
    Error { error: String },
}

struct Parsed {
    public_key: [u8; 32],
    signature: [u8; 64],
    message: Vec<u8>,
}

fn parse_line(line: &str) -> Result<Parsed, String> {
    let v: VerifyLine =
        serde_json::from_str(line).map_err(|e| format!("not a verify object: {e}"))?;
    let field = |name: &str, hex_str: &str| {
        hex::decode(hex_str).map_err(|e| format!("{name} is not hex: {e}"))
    };
    let pk = field("pk", &v.pk)?;
    let sig = field("sig", &v.sig)?;
    let message = field("msg", &v.msg)?;
    let public_key = pk
        .try_into()
        .map_err(|pk: Vec<u8>| format!("pk must be 32 bytes, got {}", pk.len()))?;
    let signature = sig
        .try_into()
        .map_err(|sig: Vec<u8>| format!("sig must be 64 bytes, got {}", sig.len()))?;
    Ok(Parsed {
        public_key,
        signature,
        message,
    })
}

/// Longest input line accepted by `verify` (a 8 MiB message in hex, plus the keys).
const MAX_LINE: usize = 16 << 20;

/// Reads one line into `buf` (without the newline), keeping at most `MAX_LINE` bytes.
/// Returns `None` at the end of the input, `Some(false)` when the line was too long.
fn read_line_capped(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut seen_any = false;
    let mut fits = true;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(seen_any.then_some(fits));
        }
        seen_any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if buf.len() + part.len() <= MAX_LINE {
            buf.extend_from_slice(part);
        } else {
            fits = false;
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(fits));
        }
    }
}

fn verify(backend: &BackendArg, input: &Path, batch: usize) -> Result<ExitCode> {
    let dispatcher = backend.dispatcher()?;
    let mut reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(BufReader::new(
            File::open(input).with_context(|| format!("cannot open {}", input.display()))?,
        ))
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let (mut valid, mut invalid, mut malformed) = (0usize, 0usize, 0usize);
    let mut line = Vec::new();
    let mut eof = false;
    while !eof {
        let mut parsed = Vec::with_capacity(batch.min(4096));
        while parsed.len() < batch {
            match read_line_capped(reader.as_mut(), &mut line)
                .with_context(|| format!("cannot read {}", input.display()))?
            {
                None => {
                    eof = true;
                    break;
                }
                Some(false) => parsed.push(Err(format!("line longer than {MAX_LINE} bytes"))),
                Some(true) => parsed.push(match std::str::from_utf8(&line) {
                    Ok(text) => parse_line(text.trim()),
                    Err(_) => Err("line is not utf-8".to_owned()),
                }),
            }
        }
        let items: Vec<SigItem<'_>> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .map(|p| SigItem {
                public_key: p.public_key,
                signature: p.signature,
                message: &p.message,
            })
            .collect();
        let verdicts = dispatcher.ed25519_verify_batch(&items);
        if verdicts.len() != items.len() {
            bail!(
                "internal error: {} verdicts for {} signatures",
                verdicts.len(),
                items.len()
            );
        }
        let mut verdicts = verdicts.into_iter();
        for p in &parsed {
            let verdict = match p {
                Ok(_) => {
                    let ok = verdicts
                        .next()
                        .context("internal error: verdicts ran out")?;
                    if ok {
                        valid += 1
                    } else {
                        invalid += 1
                    }
                    Verdict::Valid { valid: ok }
                }
                Err(e) => {
                    malformed += 1;
                    Verdict::Error { error: e.clone() }
                }
            };
            serde_json::to_writer(&mut out, &verdict)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    eprintln!("{valid} valid, {invalid} invalid, {malformed} malformed");
    Ok(ExitCode::SUCCESS)
}

fn selftest(json: bool, home: Option<&Path>, fpga: &FpgaArg) -> Result<ExitCode> {
    let mut config = node_accel_config(home)?;
    fpga.apply(home.is_some(), &mut config)?;
    let dispatcher = build_dispatcher(config)?;
    let mut reports = Vec::new();
    for info in dispatcher.backends() {
        if !info.available {
            if !json {
                println!("{:<5} skipped: unavailable", info.name);
            }
            continue;
        }
        let Some(backend) = dispatcher.backend(info.kind) else {
            continue;
        };
        let report = vectors::selftest(backend.as_ref());
        if !json {
            if report.passed() {
                println!("{:<5} ok: {} known answers", info.name, report.checked);
            } else {
                println!(
                    "{:<5} FAILED {} of {} known answers:",
                    info.name,
                    report.failures.len(),
                    report.checked
                );
                for f in &report.failures {
                    println!("        {f}");
                }
            }
        }
        reports.push(report);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if reports.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
