//! `cpchain sidechain ...`: send machine transactions to a gateway and follow them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use cpc_sidechain::{MachineKind, MachineTx};
use cpc_types::{Address, Hash32, PublicKey, TxKind, sha256};

use crate::client::{ApiArgs, SendOpts, parse_cpc, send_signed};

#[derive(Debug, Subcommand)]
pub(crate) enum SideCommand {
    /// Sign a machine transaction with a machine key and send it to a gateway.
    Send(SendArgs),
    /// Show the group's status on a node: tips, confirmed frontier, last anchor, scores.
    Status {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show a machine transaction: pending, confirmed, anchored or final, and its latency.
    Tx {
        #[command(flatten)]
        api: ApiArgs,
        /// The transaction hash.
        hash: Hash32,
    },
    /// Declare a group on the main chain, or change it (its owner only): its gateways, the
    /// most an anchor pays in cooperation rewards, and CPC added to its reward pool.
    Group(GroupArgs),
    /// Lock CPC in a group, funding a machine account's side balance (the machine claims
    /// it with `send deposit --lock <the printed id>`).
    Lock(LockArgs),
    /// Retire a gateway that is gone for good (the group's owner only): pruning stops
    /// waiting for it, and it signs for the group no more. At most f = (n − 1) / 3 of a
    /// group's gateways can be retired; a gateway that will come back is brought back
    /// instead (its key, and its `sidechain` directory if that survived).
    Retire(RetireArgs),
    /// Load generator: signed machine events from many machines, spread over gateways at
    /// a fixed rate; reports confirmed tx/s and confirmation latency p50/p99.
    Loadgen(LoadgenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LoadgenArgs {
    /// A gateway's node home; repeat to spread the load over several (round robin).
    #[arg(long = "gateway-home", required = true)]
    homes: Vec<PathBuf>,
    /// Machines sending (each sends its events in nonce order).
    #[arg(long, default_value_t = 1000)]
    machines: usize,
    /// Events to send in all.
    #[arg(long, default_value_t = 50_000)]
    txs: usize,
    /// Transactions per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Offered load in transactions per second (0: as fast as the gateways take them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Stop waiting for confirmations after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// PIDs of the gateway processes, to report their peak resident memory.
    #[arg(long = "node-pid")]
    node_pids: Vec<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write each latency sample to this CSV file (gateway, first seen in Unix ms,
    /// latency in ms; both empty for a sample not confirmed), to see when in the run the
    /// slow ones were taken.
    #[arg(long)]
    samples: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The owner's key file (default: the home's keys/validator.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The group: a name, or its id as 64 hex digits.
    #[arg(long)]
    group: String,
    /// A gateway's public key (hex); repeat for each, in any order.
    #[arg(long = "gateway", required = true)]
    gateways: Vec<PublicKey>,
    /// The most an anchor pays in cooperation rewards, in CPC.
    #[arg(long, default_value = "0")]
    reward_per_anchor: String,
    /// CPC moved from the owner into the group's reward pool.
    #[arg(long, default_value = "0")]
    fund: String,
    #[command(flatten)]
    send: SendOpts,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The payer's key file (default: the home's keys/validator.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The group: a name, or its id as 64 hex digits.
    #[arg(long)]
    group: String,
    /// The machine account credited on the side chain (cpc…).
    #[arg(long)]
    account: Address,
    /// Amount in CPC, up to 8 decimals.
    #[arg(long)]
    amount: String,
    #[command(flatten)]
    send: SendOpts,
}

#[derive(Debug, Args)]
pub(crate) struct RetireArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The owner's key file (default: the home's keys/validator.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The group: a name, or its id as 64 hex digits.
    #[arg(long)]
    group: String,
    /// The retired gateway's public key (hex).
    #[arg(long)]
    gateway: PublicKey,
    #[command(flatten)]
    send: SendOpts,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SendKind {
    /// A data event: a reading's or traffic event's hash, its type and grid position.
    Event {
        /// Application-defined type (e.g. 1 = sensor reading, 2 = congestion).
        #[arg(long, default_value_t = 1)]
        event_type: u32,
        /// The payload, which stays off chain: only its SHA-256 is sent.
        #[arg(long)]
        data: String,
        /// Grid position east.
        #[arg(long, default_value_t = 0)]
        x: u32,
        /// Grid position north.
        #[arg(long, default_value_t = 0)]
        y: u32,
    },
    /// Move side balance to another machine account of the group.
    Transfer {
        /// The recipient (cpc…).
        #[arg(long)]
        to: Address,
        /// Base units.
        #[arg(long)]
        amount: u64,
    },
    /// Claim a main-chain side lock made out to this machine.
    Deposit {
        /// The id of the main-chain `side_lock` transaction.
        #[arg(long)]
        lock: Hash32,
    },
}

/// How long `send` waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum WaitFor {
    /// Return once the gateway took it.
    None,
    /// Until a quorum of gateways confirmed it.
    Confirmed,
    /// Until an anchor covering it is in a final main-chain block.
    Final,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The machine's key file (`cpchain keys new --out machine.key`).
    #[arg(long)]
    key: PathBuf,
    /// Nonce (default: the machine's next nonce as the gateway knows it).
    #[arg(long)]
    nonce: Option<u64>,
    /// Wait until the transaction is confirmed, or final.
    #[arg(long, value_enum, default_value_t = WaitFor::None)]
    wait: WaitFor,
    #[command(subcommand)]
    kind: SendKind,
}

pub(crate) fn run(cmd: SideCommand) -> Result<ExitCode> {
    match cmd {
        SideCommand::Send(args) => send(&args),
        SideCommand::Status { api } => {
            let v = api.client()?.get("/v1/sidechain/status")?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        SideCommand::Tx { api, hash } => {
            let v = api.client()?.get(&format!("/v1/sidechain/txs/{hash}"))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        SideCommand::Group(a) => {
            let mut gateways = a.gateways.clone();
            gateways.sort();
            gateways.dedup();
            if gateways.len() != a.gateways.len() {
                bail!("a --gateway key is given twice");
            }
            let kind = TxKind::SideGroup {
                group_id: crate::side::group_id_of(a.group.trim()),
                gateways,
                reward_per_anchor: parse_cpc(&a.reward_per_anchor)?,
                fund: parse_cpc(&a.fund)?,
            };
            send_signed(&a.api, a.key.as_ref(), &a.send, kind)
        }
        SideCommand::Loadgen(a) => loadgen(&a),
        SideCommand::Lock(a) => {
            let kind = TxKind::SideLock {
                group_id: crate::side::group_id_of(a.group.trim()),
                account: a.account,
                amount: parse_cpc(&a.amount)?,
            };
            send_signed(&a.api, a.key.as_ref(), &a.send, kind)
        }
        SideCommand::Retire(a) => {
            let kind = TxKind::SideRetire {
                group_id: crate::side::group_id_of(a.group.trim()),
                gateway: a.gateway,
            };
            send_signed(&a.api, a.key.as_ref(), &a.send, kind)
        }
    }
}

fn send(args: &SendArgs) -> Result<ExitCode> {
    let client = args.api.client()?;
    let key = crate::keys::read_key(&args.key)?;
    let status = client.get("/v1/sidechain/status")?;
    let group_id: Hash32 = status["group_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the node sent no side-chain group id")?;
    let nonce = match args.nonce {
        Some(n) => n,
        None => client.get(&format!("/v1/sidechain/accounts/{}", key.address()))?["next_nonce"]
            .as_u64()
            .context("the node sent no nonce")?,
    };
    let kind = match &args.kind {
        SendKind::Event {
            event_type,
            data,
            x,
            y,
        } => MachineKind::Event {
            event_type: *event_type,
            data_hash: sha256(&[data.as_bytes()]),
            x: *x,
            y: *y,
        },
        SendKind::Transfer { to, amount } => MachineKind::Transfer {
            to: *to,
            amount: *amount,
        },
        SendKind::Deposit { lock } => MachineKind::Deposit { lock: *lock },
    };
    let tx = MachineTx {
        group_id,
        sender: key.public(),
        nonce,
        kind,
    }
    .sign(&key);
    let v = client.post_json("/v1/sidechain/txs", &tx)?;
    let hash = v["hash"].as_str().unwrap_or_default().to_owned();
    println!("{hash}");
    let wanted: &[&str] = match args.wait {
        WaitFor::None => return Ok(ExitCode::SUCCESS),
        WaitFor::Confirmed => &["confirmed", "anchored", "final"],
        WaitFor::Final => &["final"],
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = client.get(&format!("/v1/sidechain/txs/{hash}"))?;
        match st["status"].as_str() {
            Some(s) if wanted.contains(&s) => {
                eprintln!(
                    "{s} (confirmed {} ms after the gateway took it)",
                    st["latency_ms"]
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some("rejected") => bail!("rejected: {}", st["reason"].as_str().unwrap_or("")),
            _ if Instant::now() > deadline => bail!("still {} after 120 s", st["status"]),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Sends signed events through the gateways' APIs at the offered rate, follows the first
/// gateway's confirmed count, and reads each sampled transaction's confirmation latency as
/// the gateway that took it measured it (first sight to confirmation by a quorum).
fn loadgen(args: &LoadgenArgs) -> Result<ExitCode> {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::client::{check_batch, pct, rand_seed, rss_kib};

    let clients = args
        .homes
        .iter()
        .map(|h| ApiArgs::for_home(h.clone()).client())
        .collect::<Result<Vec<_>>>()?;
    let status = clients[0].get("/v1/sidechain/status")?;
    let group_id: Hash32 = status["group_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the gateway sent no side-chain group id")?;
    let machines: Vec<cpc_types::SecretKey> = (0..args.machines.max(1))
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[8..16].copy_from_slice(&rand_seed().to_le_bytes());
            cpc_types::SecretKey::from_bytes(seed)
        })
        .collect();
    let per = args.txs.div_ceil(machines.len()) as u64;
    eprintln!(
        "side loadgen: signing {} events",
        per * machines.len() as u64
    );
    // Nonce-major, so one batch holds at most one event per machine.
    let mut txs = Vec::new();
    for nonce in 0..per {
        for (i, m) in machines.iter().enumerate() {
            txs.push(
                MachineTx {
                    group_id,
                    sender: m.public(),
                    nonce,
                    kind: MachineKind::Event {
                        event_type: 1,
                        data_hash: sha256(&[&nonce.to_be_bytes(), &(i as u64).to_be_bytes()]),
                        x: i as u32,
                        y: nonce as u32,
                    },
                }
                .sign(m),
            );
        }
    }
    let total = txs.len();
    let batch = args.batch.max(1);
    let bodies: Vec<Vec<u8>> = txs
        .chunks(batch)
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()?;
    // About 2,000 transactions' latencies are read back afterwards.
    let step = (total / 2_000).max(1);
    let confirmed0 = status["confirmed_txs"].as_u64().unwrap_or(0);
    let errors = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    eprintln!("side loadgen: sending to {} gateways", clients.len());
    let mut rss_peak: Vec<Option<u64>> = vec![None; args.node_pids.len()];
    let (send_secs, confirmed, last_rise) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(b) else { break };
                        if args.rate > 0 {
                            let due = start
                                + Duration::from_secs_f64((b * batch) as f64 / args.rate as f64);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        let client = &clients[b % clients.len()];
                        if let Err(e) = client
                            .post_body("/v1/sidechain/txs", "application/json", body)
                            .and_then(|v| check_batch(&v))
                            && errors.fetch_add(1, Ordering::Relaxed) == 0
                        {
                            eprintln!("side loadgen: batch refused: {e:#}");
                        }
                    }
                })
            })
            .collect();
        // Follow the first gateway's confirmed count until everything sent confirmed.
        let deadline = start + Duration::from_secs(args.timeout_secs);
        let mut send_secs = None;
        let (mut confirmed, mut last_rise) = (0u64, start);
        loop {
            if send_secs.is_none() && workers.iter().all(|w| w.is_finished()) {
                send_secs = Some(start.elapsed().as_secs_f64());
            }
            for (peak, pid) in rss_peak.iter_mut().zip(&args.node_pids) {
                *peak = (*peak).max(rss_kib(*pid));
            }
            let now = clients[0]
                .get("/v1/sidechain/status")
                .map(|v| {
                    v["confirmed_txs"]
                        .as_u64()
                        .unwrap_or(0)
                        .saturating_sub(confirmed0)
                })
                .unwrap_or(confirmed);
            if now > confirmed {
                confirmed = now;
                last_rise = Instant::now();
            }
            let expected = total.saturating_sub(errors.load(Ordering::Relaxed) * batch) as u64;
            if (send_secs.is_some() && confirmed >= expected) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (
            send_secs.unwrap_or(args.timeout_secs as f64),
            confirmed,
            last_rise,
        )
    });
    let mut latencies: Vec<f64> = Vec::new();
    let mut unconfirmed = 0usize;
    let mut csv = String::from("gateway,first_seen_ms,latency_ms\n");
    for (i, t) in txs.iter().enumerate().step_by(step) {
        let gateway = (i / batch) % clients.len();
        if let Ok(v) = clients[gateway].get(&format!("/v1/sidechain/txs/{}", t.hash()))
            && let Some(ms) = v["latency_ms"].as_u64()
        {
            latencies.push(ms as f64);
            let seen = v["first_seen_ms"].as_u64().unwrap_or(0);
            csv.push_str(&format!("{},{seen},{ms}\n", gateway + 1));
        } else {
            // Not confirmed (or not known) when the wait ended: slower than any that
            // was, so that it counts in the percentiles rather than vanishing (an empty
            // latency in the samples file, an infinite or null percentile).
            latencies.push(f64::INFINITY);
            unconfirmed += 1;
            csv.push_str(&format!("{},,\n", gateway + 1));
        }
    }
    if let Some(path) = &args.samples {
        std::fs::write(path, csv)
            .with_context(|| format!("cannot write the samples to {}", path.display()))?;
    }
    latencies.sort_by(f64::total_cmp);
    let secs = last_rise.duration_since(start).as_secs_f64().max(1e-9);
    let report = serde_json::json!({
        "gateways": clients.len(),
        "submitted": total,
        "refused_batches": errors.load(Ordering::Relaxed),
        "send_seconds": send_secs,
        "offered_tx_per_sec": total as f64 / send_secs.max(1e-9),
        "confirmed": confirmed,
        "confirmed_tx_per_sec": confirmed as f64 / secs,
        "latency_samples": latencies.len(),
        "unconfirmed_samples": unconfirmed,
        "confirmation_latency_p50_ms": pct(&latencies, 50),
        "confirmation_latency_p99_ms": pct(&latencies, 99),
        "gateway_rss_peak_kib": rss_peak,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "side loadgen: {confirmed}/{total} confirmed on gateway 1; offered {:.0} tx/s, \
             confirmed {:.0} tx/s; confirmation latency p50 {:.0} ms, p99 {:.0} ms ({} samples, \
             {unconfirmed} of them unconfirmed)",
            report["offered_tx_per_sec"].as_f64().unwrap_or(0.0),
            report["confirmed_tx_per_sec"].as_f64().unwrap_or(0.0),
            pct(&latencies, 50),
            pct(&latencies, 99),
            latencies.len()
        );
    }
    Ok(if (confirmed as usize) < total {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
