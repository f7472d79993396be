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
        SideCommand::Lock(a) => {
            let kind = TxKind::SideLock {
                group_id: crate::side::group_id_of(a.group.trim()),
                account: a.account,
                amount: parse_cpc(&a.amount)?,
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
