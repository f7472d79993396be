//! `cpchain fhe …`: homomorphic matching for key holders, participants and operators.
//!
//! The key holder runs `keygen` and keeps `client.key`; participants encrypt with
//! `public.key`; `match` and `search` upload `server.key` to the node when it does not
//! hold it yet, submit the job and wait for it; the key holder `decrypt`s the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use cpc_accel::fhe::{Decryptor, Encryptor, GRID_MAX, TfheMatcher, generate_keys};
use cpc_accel::matching::{FheOutput, KeyId};
use cpc_api::fhe::{FheService, JobResult, encode_frames};
use serde_json::{Value, json};

use crate::client::ApiArgs;
use crate::config::FheSection;

#[derive(Debug, Subcommand)]
pub(crate) enum FheCommand {
    /// Generate a key set: client.key (keep it), server.key (for the appliance) and
    /// public.key (for participants).
    Keygen(KeygenArgs),
    /// Encrypt a rider's or a driver's position, or a search tag, with public.key.
    #[command(subcommand)]
    Encrypt(EncryptCommand),
    /// Upload server.key to a node (match and search do it when the node lacks it).
    Upload(UploadArgs),
    /// Find the nearest available driver to a rider on a node, without it seeing them.
    Match(MatchArgs),
    /// Find the records carrying a tag on a node, without it seeing the tags.
    Search(SearchArgs),
    /// Decrypt a job's result with client.key.
    Decrypt(DecryptArgs),
    /// Measure the matcher: latency per job size, overhead against the raw TFHE
    /// operations, speedup from 1 to N threads.
    Bench(crate::bench::FheBenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Directory for client.key, server.key, public.key and key.json.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing key set in that directory.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EncryptCommand {
    /// A rider's grid position.
    Rider {
        #[command(flatten)]
        pos: Position,
    },
    /// A driver's grid position and availability.
    Driver {
        #[command(flatten)]
        pos: Position,
        /// The driver takes no riders now (it never wins a match).
        #[arg(long)]
        unavailable: bool,
    },
    /// A search tag: a query, or a record's tag.
    Tag {
        /// The key set's public.key.
        #[arg(long)]
        public_key: PathBuf,
        /// The tag as a number.
        #[arg(long, conflicts_with = "keyword", required_unless_present = "keyword")]
        value: Option<u32>,
        /// A keyword, hashed to a tag (the first 4 bytes of its SHA-256).
        #[arg(long)]
        keyword: Option<String>,
        /// Where to write the ciphertext.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Position {
    /// The key set's public.key.
    #[arg(long)]
    public_key: PathBuf,
    /// Column on the grid, 0 to 127.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=i64::from(GRID_MAX)))]
    x: u8,
    /// Row on the grid, 0 to 127.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=i64::from(GRID_MAX)))]
    y: u8,
    /// Where to write the ciphertext.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The key set's server.key.
    #[arg(long)]
    server_key: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The key set's server.key (uploaded when the node does not hold it).
    #[arg(long)]
    server_key: PathBuf,
    /// Where to write the finished job (its encrypted result) as JSON.
    #[arg(long, default_value = "result.json")]
    out: PathBuf,
    /// Print the job id and return without waiting.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MatchArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The rider's ciphertext.
    #[arg(long)]
    rider: PathBuf,
    /// The drivers' ciphertexts, in order (the result is an index into this list).
    #[arg(long, num_args = 1.., required = true)]
    drivers: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The query tag's ciphertext.
    #[arg(long)]
    query: PathBuf,
    /// The records' tag ciphertexts, in order.
    #[arg(long, num_args = 1.., required = true)]
    records: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// The key set's client.key.
    #[arg(long)]
    client_key: PathBuf,
    /// The result file written by `match` or `search` (or a saved GET /v1/jobs/{id}).
    #[arg(required_unless_present = "job")]
    result: Option<PathBuf>,
    /// Fetch the result of this job from the node instead.
    #[arg(long, conflicts_with = "result")]
    job: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: FheCommand) -> Result<ExitCode> {
    match cmd {
        FheCommand::Keygen(a) => keygen(&a),
        FheCommand::Encrypt(c) => encrypt(c),
        FheCommand::Upload(a) => {
            let client = a.api.client()?;
            let key = read(&a.server_key)?;
            let v = upload(&client, &key)?;
            println!(
                "server key {} loaded ({} bytes in memory)",
                v["key_id"].as_str().unwrap_or("?"),
                v["loaded_bytes"]
            );
            Ok(ExitCode::SUCCESS)
        }
        FheCommand::Match(a) => submit(
            &a.job,
            "/v1/apps/rideshare/match",
            &a.rider,
            &a.drivers,
            "drivers",
        ),
        FheCommand::Search(a) => submit(&a.job, "/v1/apps/search", &a.query, &a.records, "records"),
        FheCommand::Decrypt(a) => decrypt(&a),
        FheCommand::Bench(a) => crate::bench::fhe(&a),
    }
}

/// The node's FHE job service, or `None` when `[fhe]` is off.
pub(crate) fn service(section: &FheSection) -> Result<Option<FheService>> {
    if !section.enabled {
        return Ok(None);
    }
    let matcher = TfheMatcher::new(section.matcher()).context("invalid [fhe] settings")?;
    let service = FheService::start(Arc::new(matcher), section.jobs())?;
    Ok(Some(service))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let _ = private;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let names = ["client.key", "server.key", "public.key", "key.json"];
    if !args.force
        && let Some(existing) = names.iter().map(|n| args.out.join(n)).find(|p| p.exists())
    {
        bail!(
            "{} exists; pass --force to replace the key set (results made under it can then \
             no longer be decrypted)",
            existing.display()
        );
    }
    eprintln!("generating a key set (the server key takes a few seconds)…");
    let keys = generate_keys()?;
    write(&args.out.join("client.key"), &keys.client_key, true)?;
    write(&args.out.join("server.key"), &keys.server_key, false)?;
    write(&args.out.join("public.key"), &keys.public_key, false)?;
    let meta = json!({
        "key_id": keys.key_id.to_string(),
        "tag": hex::encode(keys.tag),
        "parameters": cpc_accel::fhe::PARAMETERS,
    });
    write(
        &args.out.join("key.json"),
        (serde_json::to_string_pretty(&meta)? + "\n").as_bytes(),
        false,
    )?;
    let dir = args.out.display();
    println!("key set {} written to {dir}", keys.key_id);
    println!(
        "  client.key  {:>10} bytes  keep it private: it decrypts every result",
        keys.client_key.len()
    );
    println!(
        "  server.key  {:>10} bytes  for the appliance (cpchain fhe upload --server-key {dir}/server.key)",
        keys.server_key.len()
    );
    println!(
        "  public.key  {:>10} bytes  for riders, drivers and data owners (cpchain fhe encrypt …)",
        keys.public_key.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn encryptor(path: &Path) -> Result<Encryptor> {
    Encryptor::from_bytes(&read(path)?)
        .with_context(|| format!("{} is not a public key of this format", path.display()))
}

fn encrypt(cmd: EncryptCommand) -> Result<ExitCode> {
    let (bytes, out, what) = match cmd {
        EncryptCommand::Rider { pos } => (
            encryptor(&pos.public_key)?.rider(pos.x, pos.y)?,
            pos.out,
            format!("rider at ({}, {})", pos.x, pos.y),
        ),
        EncryptCommand::Driver { pos, unavailable } => (
            encryptor(&pos.public_key)?.driver(pos.x, pos.y, !unavailable)?,
            pos.out,
            format!(
                "driver at ({}, {}), {}",
                pos.x,
                pos.y,
                if unavailable {
                    "unavailable"
                } else {
                    "available"
                }
            ),
        ),
        EncryptCommand::Tag {
            public_key,
            value,
            keyword,
            out,
        } => {
            let tag = match (value, keyword) {
                (Some(v), _) => v,
                (None, Some(k)) => keyword_tag(&k),
                (None, None) => bail!("give --value or --keyword"),
            };
            (
                encryptor(&public_key)?.search_tag(tag)?,
                out,
                format!("tag {tag}"),
            )
        }
    };
    write(&out, &bytes, false)?;
    println!("{} ({} bytes): {what}", out.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

/// The tag of a keyword: the first four bytes of its SHA-256, big-endian.
pub(crate) fn keyword_tag(keyword: &str) -> u32 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(keyword.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Uploads a server key and waits until the node has loaded it (it decompresses the key
/// in the background).
fn upload(client: &crate::client::Client, key: &[u8]) -> Result<Value> {
    let mut v = client
        .post_bytes("/v1/fhe/keys", key)
        .context("the node refused the server key")?;
    let id = v["key_id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    while v["status"] == "loading" {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the node is still loading server key {id} after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(250));
        v = client.get(&format!("/v1/fhe/keys/{id}"))?;
    }
    if v["status"] != "loaded" {
        bail!(
            "the node could not load server key {id}: {}",
            v["error"]["message"].as_str().unwrap_or("no details")
        );
    }
    Ok(v)
}

fn submit(
    args: &JobArgs,
    path: &str,
    head: &Path,
    items: &[PathBuf],
    items_name: &str,
) -> Result<ExitCode> {
    let client = args.api.client()?;
    let key = read(&args.server_key)?;
    let id = KeyId::of(&key);
    let loaded = client
        .get(&format!("/v1/fhe/keys/{id}"))
        .is_ok_and(|v| v["status"] == "loaded");
    if !loaded {
        eprintln!("uploading the server key {id} ({} bytes)…", key.len());
        upload(&client, &key)?;
    }
    drop(key);
    let mut parts = vec![read(head)?];
    for p in items {
        parts.push(read(p)?);
    }
    let body = encode_frames(&parts);
    let submitted = client.post_bytes(&format!("{path}?key_id={id}"), &body)?;
    let job = submitted["job_id"]
        .as_str()
        .context("the node answered without a job id")?
        .to_owned();
    if args.no_wait {
        println!("{job}");
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let mut last = String::new();
    let view = loop {
        let v = client.get(&format!("/v1/jobs/{job}"))?;
        let status = v["status"].as_str().unwrap_or("?").to_owned();
        let line = format!(
            "job {job}: {status} {}/{}",
            v["progress"]["done"], v["progress"]["total"]
        );
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        match status.as_str() {
            "done" | "failed" => break v,
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    if view["status"] == "failed" {
        bail!(
            "job {job} failed: {}",
            view["error"]["message"].as_str().unwrap_or("no details")
        );
    }
    let mut saved = view;
    saved[items_name] = json!(
        items
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    );
    write(
        &args.out,
        (serde_json::to_string_pretty(&saved)? + "\n").as_bytes(),
        false,
    )?;
    println!(
        "job {job} done in {:.1} s; result in {} (decrypt it with cpchain fhe decrypt --client-key client.key {})",
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn decrypt(args: &DecryptArgs) -> Result<ExitCode> {
    let dec = Decryptor::from_bytes(&read(&args.client_key)?)
        .with_context(|| format!("{} is not a client key", args.client_key.display()))?;
    let view: Value = match (&args.result, &args.job) {
        (Some(path), _) => serde_json::from_slice(&read(path)?)
            .with_context(|| format!("{} is not a job result (JSON)", path.display()))?,
        (None, Some(job)) => args.api.client()?.get(&format!("/v1/jobs/{job}"))?,
        (None, None) => bail!("give a result file or --job"),
    };
    if let Some(status) = view["status"].as_str().filter(|s| *s != "done") {
        bail!("the job is {status}, not done: nothing to decrypt yet");
    }
    let result: JobResult = serde_json::from_value(view["result"].clone())
        .context("the file holds no job result (expected a `result` object)")?;
    let output = result.decode().map_err(anyhow::Error::msg)?;
    let names = |field: &str, i: usize| {
        view[field][i]
            .as_str()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    };
    match output {
        FheOutput::Nearest { index, distance } => {
            let n = dec.nearest(&index, &distance)?;
            if args.json {
                println!(
                    "{}",
                    json!({"driver": n.driver, "distance": n.driver.map(|_| n.distance)})
                );
            } else {
                match n.driver {
                    Some(i) => println!(
                        "nearest available driver: {i}{}, at distance {}",
                        names("drivers", usize::from(i)),
                        n.distance
                    ),
                    None => println!("no driver is available"),
                }
            }
        }
        FheOutput::Search { matches } => {
            let flags = dec.search(&matches)?;
            let hits: Vec<usize> = (0..flags.len()).filter(|&i| flags[i]).collect();
            if args.json {
                println!("{}", json!({"matches": flags, "records": hits}));
            } else if hits.is_empty() {
                println!("no record matches ({} searched)", flags.len());
            } else {
                println!("{} of {} records match:", hits.len(), flags.len());
                for i in hits {
                    println!("  record {i}{}", names("records", i));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
