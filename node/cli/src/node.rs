//! `cpchain init`, `cpchain start` and `cpchain check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use cpc_chain::{Chain, ChainConfig, ConsensusStatus, Engine, Outbound, Verdict};
use cpc_p2p::{BlockSource, NetEvent, Network, Topic};
use cpc_state::{Genesis, GenesisValidator, Params, State};
use cpc_storage::{Store, StoreConfig};
use cpc_types::codec::decode_exact;
use cpc_types::{Block, Encode, SecretKey, SignedTransaction, TOTAL_SUPPLY, UNITS_PER_CPC};

use crate::config::{self, NodeConfig};
use crate::keys;

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The node's home directory.
    #[arg(long, env = "CPCHAIN_HOME")]
    home: PathBuf,
    /// Chain id of the new network.
    #[arg(long, default_value_t = 1)]
    chain_id: u32,
    /// CPC given to the validator's own account (the rest goes to the foundation).
    #[arg(long, default_value_t = 100_000_000)]
    validator_cpc: u64,
    /// Replace an existing configuration, genesis and keys (never the data directory).
    #[arg(long)]
    force: bool,
}

/// Creates a single-validator network in `home`: keys, genesis and a commented config.
pub(crate) fn init(args: &InitArgs) -> Result<ExitCode> {
    let home = &args.home;
    let config_path = home.join("config.toml");
    if config_path.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it",
            config_path.display()
        );
    }
    if args.force && home.join("data").exists() {
        bail!(
            "{} has a data directory; new keys and genesis would orphan it. Remove {} first",
            home.display(),
            home.join("data").display()
        );
    }
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    let validator = SecretKey::generate(rand_core::OsRng);
    let foundation = SecretKey::generate(rand_core::OsRng);
    keys::write_key(&home.join("keys/validator.key"), &validator, args.force)?;
    keys::write_key(&home.join("keys/foundation.key"), &foundation, args.force)?;
    keys::write_key(
        &home.join("keys/node.key"),
        &SecretKey::generate(rand_core::OsRng),
        args.force,
    )?;

    let deposit = 10_000 * UNITS_PER_CPC;
    let own = args
        .validator_cpc
        .checked_mul(UNITS_PER_CPC)
        .filter(|v| *v <= TOTAL_SUPPLY - deposit)
        .context("--validator-cpc exceeds the supply of 1,000,000,000 CPC")?;
    let mut allocations = std::collections::BTreeMap::new();
    allocations.insert(validator.address(), own);
    let rest = TOTAL_SUPPLY - deposit - own;
    *allocations.entry(foundation.address()).or_insert(0) += rest;
    let now = cpc_api::now_ms();
    let genesis = Genesis {
        chain_id: args.chain_id,
        timestamp_ms: now,
        params: Params::with_foundation(foundation.address()),
        allocations,
        validators: vec![GenesisValidator::new(validator.public(), deposit)],
        side_groups: Vec::new(),
    };
    genesis.validate()?;
    let json = serde_json::to_string_pretty(&genesis)?;
    std::fs::write(home.join("genesis.json"), json + "\n").context("cannot write genesis.json")?;
    std::fs::write(&config_path, config::TEMPLATE)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!("initialised {}", home.display());
    println!(
        "  validator  {}  (keys/validator.key, {} CPC)",
        validator.address(),
        args.validator_cpc
    );
    println!(
        "  foundation {}  (keys/foundation.key)",
        foundation.address()
    );
    println!("  genesis    {}", genesis.hash());
    println!("start it with: cpchain start --home {}", home.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The node's home directory.
    #[arg(long, env = "CPCHAIN_HOME")]
    home: PathBuf,
    /// Address of the HTTP API (overrides api.listen).
    #[arg(long = "api.listen")]
    api_listen: Option<String>,
    /// Bearer token of the HTTP API (overrides api.token).
    #[arg(long = "api.token")]
    api_token: Option<String>,
    /// Least milliseconds between blocks (overrides consensus.block_interval_ms).
    #[arg(long = "consensus.block-interval-ms")]
    block_interval_ms: Option<u64>,
    /// Where peers connect, a multiaddr (overrides p2p.listen).
    #[arg(long = "p2p.listen")]
    p2p_listen: Option<String>,
    /// Peers to connect to at start, multiaddrs (overrides p2p.bootnodes).
    #[arg(long = "p2p.bootnode")]
    bootnodes: Vec<String>,
    /// RocksDB directory (overrides node.data_dir).
    #[arg(long = "node.data-dir")]
    data_dir: Option<PathBuf>,
    /// Milliseconds between data repair rounds, 0 for none (overrides data.repair_interval_ms).
    #[arg(long = "data.repair-interval-ms")]
    repair_interval_ms: Option<u64>,
}

impl StartArgs {
    fn flags(&self) -> serde_json::Value {
        let mut api = serde_json::Map::new();
        if let Some(l) = &self.api_listen {
            api.insert("listen".into(), l.clone().into());
        }
        if let Some(t) = &self.api_token {
            api.insert("token".into(), t.clone().into());
        }
        let mut node = serde_json::Map::new();
        let mut consensus = serde_json::Map::new();
        if let Some(ms) = self.block_interval_ms {
            consensus.insert("block_interval_ms".into(), ms.into());
        }
        let mut p2p = serde_json::Map::new();
        if let Some(l) = &self.p2p_listen {
            p2p.insert("listen".into(), l.clone().into());
        }
        if !self.bootnodes.is_empty() {
            p2p.insert("bootnodes".into(), self.bootnodes.clone().into());
        }
        if let Some(d) = &self.data_dir {
            node.insert("data_dir".into(), d.display().to_string().into());
        }
        let mut all = serde_json::Map::new();
        if let Some(ms) = self.repair_interval_ms {
            all.insert(
                "data".into(),
                serde_json::json!({ "repair_interval_ms": ms }),
            );
        }
        if !api.is_empty() {
            all.insert("api".into(), api.into());
        }
        if !node.is_empty() {
            all.insert("node".into(), node.into());
        }
        if !consensus.is_empty() {
            all.insert("consensus".into(), consensus.into());
        }
        if !p2p.is_empty() {
            all.insert("p2p".into(), p2p.into());
        }
        all.into()
    }
}

pub(crate) fn read_genesis(path: &Path) -> Result<Genesis> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let g: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid genesis file", path.display()))?;
    g.validate()
        .with_context(|| format!("{} is not a valid genesis", path.display()))?;
    Ok(g)
}

fn resolve(home: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        home.join(p)
    }
}

struct Opened {
    config: NodeConfig,
    chain: Arc<Chain>,
    accel: Arc<cpc_accel::Dispatcher>,
}

fn open(home: &Path, flags: &serde_json::Value) -> Result<Opened> {
    let config = config::load(home, flags)?;
    let genesis = read_genesis(&resolve(home, &config.node.genesis_file))?;
    let key_path = resolve(home, &config.node.key_file);
    let key = if key_path.exists() {
        Some(keys::read_key(&key_path)?)
    } else {
        None
    };
    let mut accel_config = config.accel.clone();
    crate::thresholds::apply(home, &mut accel_config)?;
    let accel = Arc::new(crate::accel::build_node_dispatcher(accel_config)?);
    let store = StoreConfig {
        path: resolve(home, &config.node.data_dir),
        sync: config.node.sync_writes,
    };
    let chain = Chain::open(
        genesis,
        &store,
        accel.clone(),
        key,
        ChainConfig {
            mempool: config.mempool.clone(),
        },
    )
    .with_context(|| format!("cannot open the chain in {}", store.path.display()))?;
    Ok(Opened {
        config,
        chain: Arc::new(chain),
        accel,
    })
}

/// Runs the node until SIGINT or SIGTERM.
pub(crate) fn start(args: &StartArgs) -> Result<ExitCode> {
    let Opened {
        config,
        chain,
        accel,
    } = open(&args.home, &args.flags())?;
    config.api.validate().map_err(anyhow::Error::msg)?;
    config.sidechain.validate()?;
    let node_secret = node_key(&resolve(&args.home, &config.node.node_key_file))?.to_bytes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cpc-node")
        .build()
        .context("cannot start the async runtime")?;
    let side_dir = args.home.join("sidechain");
    let code = runtime.block_on(run(config, chain, accel, node_secret, side_dir));
    // Drops the network task, which ends the blocking tasks that still hold the chain;
    // the store then closes before the process exits (RocksDB aborts if it is still
    // open with background work at exit).
    runtime.shutdown_timeout(Duration::from_secs(10));
    code
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a SIGTERM that arrives while the node is still
/// starting must stop it cleanly, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

/// What the API reports besides the chain.
struct NodeServices {
    consensus: Arc<Mutex<Option<ConsensusStatus>>>,
    network: Network,
    fhe: Option<cpc_api::fhe::FheService>,
    data: Arc<crate::data_net::Gateway<crate::data_net::NetTransport>>,
    side: Option<Arc<crate::side::SideNode>>,
}

impl cpc_api::Services for NodeServices {
    fn consensus(&self) -> Option<ConsensusStatus> {
        self.consensus
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    fn network(&self) -> Option<cpc_p2p::NetStatus> {
        Some(self.network.status())
    }
    fn fhe(&self) -> Option<cpc_api::fhe::FheService> {
        self.fhe.clone()
    }
    fn data(&self) -> Option<Arc<dyn cpc_api::data::DataGateway>> {
        Some(self.data.clone())
    }
    fn sidechain(&self) -> Option<Arc<dyn cpc_api::SideService>> {
        self.side
            .clone()
            .map(|s| s as Arc<dyn cpc_api::SideService>)
    }
}

/// Serves peers' sync requests from the store.
struct ChainSource(Arc<Chain>);

impl BlockSource for ChainSource {
    fn blocks_from(&self, from: u64) -> Vec<Vec<u8>> {
        match self.0.blocks_from(from, 256, 4 << 20) {
            Ok(blocks) => blocks.iter().map(Encode::encode).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot serve blocks to a peer");
                Vec::new()
            }
        }
    }
}

/// The network key of the node in `home`, created on first use.
fn node_key(path: &Path) -> Result<SecretKey> {
    if !path.exists() {
        keys::write_key(path, &SecretKey::generate(rand_core::OsRng), false)?;
    }
    keys::read_key(path)
}

enum Work {
    Consensus(cpc_p2p::MessageRef, Vec<u8>),
    Ticket(cpc_p2p::MessageRef, Vec<u8>),
    Blocks(cpc_p2p::PeerId, Vec<Vec<u8>>),
}

fn net_verdict(v: &Verdict) -> cpc_p2p::Verdict {
    match v {
        Verdict::Accept => cpc_p2p::Verdict::Accept,
        Verdict::Ignore => cpc_p2p::Verdict::Ignore,
        Verdict::Reject(_) => cpc_p2p::Verdict::Reject,
    }
}

/// Runs the consensus engine on its own thread: block execution and signature checks are
/// CPU work that must not stall the async runtime.
fn consensus_thread(
    mut engine: Engine,
    net: &Network,
    work: &std::sync::mpsc::Receiver<Work>,
    status: &Mutex<Option<ConsensusStatus>>,
    stop: &AtomicBool,
) {
    let start = Instant::now();
    let tick = Duration::from_millis(20);
    let mut next_tick = Instant::now();
    let mut next_status = Instant::now();
    let chain = engine.chain().clone();
    while !stop.load(Ordering::Relaxed) {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let mut outs = Vec::new();
        match work.recv_timeout(wait) {
            Ok(Work::Consensus(msg, data)) => {
                let (verdict, out) = engine.on_gossip(&data);
                if let Verdict::Reject(why) = &verdict {
                    tracing::debug!(%why, "rejected a consensus message");
                }
                net.validate(msg, net_verdict(&verdict));
                outs.extend(out);
            }
            Ok(Work::Ticket(msg, data)) => {
                let verdict = engine.on_ticket(&data);
                if let Verdict::Reject(why) = &verdict {
                    tracing::debug!(%why, "rejected an election ticket");
                }
                net.validate(msg, net_verdict(&verdict));
            }
            Ok(Work::Blocks(peer, raw)) => {
                let decoded: Result<Vec<Block>, _> =
                    raw.iter().map(|b| decode_exact::<Block>(b)).collect();
                match decoded {
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "a peer sent undecodable blocks");
                        net.strike(peer);
                    }
                    Ok(blocks) if blocks.is_empty() => {}
                    Ok(blocks) => {
                        let full = blocks.len() >= 256;
                        match engine.on_blocks(blocks) {
                            Ok(n) => {
                                if n > 0 {
                                    tracing::info!(blocks = n, height = chain.height(), "synced");
                                }
                                if full && n > 0 {
                                    net.fetch(chain.height() + 1);
                                }
                            }
                            Err(cpc_chain::SyncError::Invalid(e)) => {
                                tracing::warn!(%peer, error = %e, "a peer sent invalid blocks");
                                net.strike(peer);
                            }
                            Err(e) => tracing::debug!(%peer, error = %e, "sync answer not used"),
                        }
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + tick;
            let mono = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            outs.extend(engine.tick(mono, cpc_api::now_ms()));
            publish_txs(net, chain.take_outbox());
        }
        for o in outs {
            match o {
                Outbound::Gossip(data) => net.publish(Topic::Consensus, data),
                Outbound::Ticket(data) => net.publish(Topic::Tickets, data),
                Outbound::Fetch { from } => net.fetch(from),
            }
        }
        if now >= next_status {
            next_status = now + Duration::from_millis(200);
            *status.lock().unwrap_or_else(|e| e.into_inner()) = Some(engine.status());
        }
    }
}

/// Gossips transactions in batches that fit a gossip message (with room to spare).
fn publish_txs(net: &Network, txs: Vec<SignedTransaction>) {
    const BATCH_BYTES: usize = 2 << 20;
    let mut batch = Vec::new();
    let mut bytes = 0;
    for tx in txs {
        let size = tx.encode().len();
        if bytes + size > BATCH_BYTES && !batch.is_empty() {
            net.publish(Topic::Txs, std::mem::take(&mut batch).encode());
            bytes = 0;
        }
        bytes += size;
        batch.push(tx);
    }
    if !batch.is_empty() {
        net.publish(Topic::Txs, batch.encode());
    }
}

/// Admits transactions gossiped by peers, off the consensus thread.
fn tx_thread(
    chain: &Chain,
    net: &Network,
    rx: &std::sync::mpsc::Receiver<(cpc_p2p::MessageRef, Vec<u8>)>,
) {
    while let Ok((msg, data)) = rx.recv() {
        let verdict = match decode_exact::<Vec<SignedTransaction>>(&data) {
            Err(_) => cpc_p2p::Verdict::Reject,
            Ok(txs) => {
                use cpc_chain::SubmitError as E;
                let results = chain.submit_from_peer(txs, cpc_api::now_ms());
                // Forged or oversized: the sender relays garbage. Nothing new admitted:
                // not worth relaying. Otherwise relay.
                if results
                    .iter()
                    .any(|r| matches!(r, Err(E::Signature | E::TooLarge(_))))
                {
                    cpc_p2p::Verdict::Reject
                } else if results.iter().any(Result::is_ok) {
                    cpc_p2p::Verdict::Accept
                } else {
                    cpc_p2p::Verdict::Ignore
                }
            }
        };
        net.validate(msg, verdict);
    }
}

async fn run(
    config: NodeConfig,
    chain: Arc<Chain>,
    accel: Arc<cpc_accel::Dispatcher>,
    node_secret: [u8; 32],
    side_dir: PathBuf,
) -> Result<ExitCode> {
    let shutdown = shutdown_signal();
    let fhe = crate::fhe::service(&config.fhe)?;
    let status = chain.status();
    let engine = Engine::new(chain.clone(), config.consensus)
        .context("cannot start the consensus engine")?;
    let data = Arc::new(crate::data::DataNode::open(chain.clone())?);
    let (net, mut events) = Network::start_with_data(
        config.p2p.clone(),
        node_secret,
        Arc::new(ChainSource(chain.clone())),
        data.clone(),
    )?;
    let data_gateway = crate::data_net::gateway(net.clone(), data.clone());
    tokio::spawn(crate::data_net::repair_task(
        data_gateway.clone(),
        data,
        chain.clone(),
        config.data.clone(),
    ));
    chain.enable_gossip();
    tracing::info!(
        height = status.height,
        chain_id = status.chain_id,
        member = status.producing,
        api = %config.api.listen,
        p2p = %config.p2p.listen,
        peer_id = %net.peer_id(),
        "node started"
    );
    println!(
        "cpchain {} node: chain {} at height {}, API on http://{}, p2p on {} as {}",
        env!("CARGO_PKG_VERSION"),
        status.chain_id,
        status.height,
        config.api.listen,
        config.p2p.listen,
        net.peer_id()
    );
    let consensus_status = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let side = crate::side::start(
        &config.sidechain,
        chain.clone(),
        accel,
        &net,
        stop.clone(),
        &side_dir,
    )?;
    let side_in = side.as_ref().map(|s| (s.group, s.incoming.clone()));
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Work>(4096);
    let (tx_tx, tx_rx) = std::sync::mpsc::sync_channel(1024);
    // Dropped when the consensus thread ends, by a panic too: the node then stops
    // rather than serve a chain that no longer moves.
    let (alive, mut consensus_done) = tokio::sync::oneshot::channel::<()>();
    let consensus = {
        let (net, status, stop) = (net.clone(), consensus_status.clone(), stop.clone());
        std::thread::Builder::new()
            .name("cpc-consensus".into())
            .spawn(move || {
                let _alive = alive;
                consensus_thread(engine, &net, &work_rx, &status, &stop);
            })
            .context("cannot start the consensus thread")?
    };
    // On the runtime's blocking pool, so shutting the runtime down waits for it: nothing
    // may hold the chain (and its RocksDB handle) when the process exits.
    let txpool = {
        let (chain, net) = (chain.clone(), net.clone());
        tokio::task::spawn_blocking(move || tx_thread(&chain, &net, &tx_rx))
    };
    // Routes network events to the two threads; a full queue makes the network wait.
    let router_net = net.clone();
    let router = tokio::task::spawn_blocking(move || {
        let net = router_net;
        while let Some(ev) = events.blocking_recv() {
            let sent = match ev {
                NetEvent::Gossip {
                    topic: Topic::Consensus,
                    msg,
                    data,
                } => work_tx.send(Work::Consensus(msg, data)).is_ok(),
                NetEvent::Gossip {
                    topic: Topic::Txs,
                    msg,
                    data,
                } => match tx_tx.try_send((msg, data)) {
                    // Transactions must never hold up consensus: when admission lags,
                    // they are dropped unrelayed (their senders may retry).
                    Err(std::sync::mpsc::TrySendError::Full((msg, _))) => {
                        net.validate(msg, cpc_p2p::Verdict::Ignore);
                        true
                    }
                    r => r.is_ok(),
                },
                NetEvent::Gossip {
                    topic: Topic::Tickets,
                    msg,
                    data,
                } => work_tx.send(Work::Ticket(msg, data)).is_ok(),
                NetEvent::Blocks { peer, blocks } => {
                    work_tx.send(Work::Blocks(peer, blocks)).is_ok()
                }
                // Side topics arrive as `NetEvent::Side`.
                NetEvent::Gossip {
                    topic: Topic::Side(_),
                    msg,
                    ..
                } => {
                    net.validate(msg, cpc_p2p::Verdict::Ignore);
                    true
                }
                NetEvent::Side {
                    group,
                    from,
                    msg,
                    data,
                } => {
                    match &side_in {
                        // Like transactions, side messages never hold up consensus.
                        Some((g, q)) if *g == group => {
                            if let Err(std::sync::mpsc::TrySendError::Full((_, Some(msg), _))) =
                                q.try_send((from, msg, data))
                            {
                                net.validate(msg, cpc_p2p::Verdict::Ignore);
                            }
                        }
                        _ => {
                            if let Some(msg) = msg {
                                net.validate(msg, cpc_p2p::Verdict::Ignore);
                            }
                        }
                    }
                    true
                }
            };
            if !sent {
                return;
            }
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut api_stop = stop_rx.clone();
    let services = Arc::new(NodeServices {
        consensus: consensus_status,
        network: net.clone(),
        fhe,
        data: data_gateway,
        side: side.as_ref().map(|s| s.node.clone()),
    });
    let mut api = tokio::spawn(cpc_api::serve(
        config.api.clone(),
        chain.clone(),
        services,
        async move {
            let _ = api_stop.changed().await;
        },
    ));
    let outcome: Result<()> = tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        r = &mut api => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("{e}")),
            Err(e) => Err(anyhow::anyhow!("http api crashed: {e}")),
        },
        _ = &mut consensus_done => Err(anyhow::anyhow!(
            "the consensus engine stopped; see the log above, then restart the node"
        )),
    };
    let _ = stop_tx.send(true);
    stop.store(true, Ordering::Relaxed);
    // Let an in-flight block commit finish and the API drain its requests.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        if !api.is_finished() {
            let _ = (&mut api).await;
        }
    })
    .await;
    // The engine finishes the step it is in (a block commit at most).
    let joined = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || consensus.join()),
    )
    .await;
    if joined.is_err() {
        tracing::warn!("the consensus thread did not stop within 20 s");
    }
    if let Some(s) = side {
        // It holds the chain too; it stops within a tick of the flag.
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || s.thread.join()),
        )
        .await;
    }
    drop(router);
    drop(txpool);
    if chain.is_poisoned() {
        bail!("a block commit failed; restart the node to reload the state from disk");
    }
    outcome?;
    println!("stopped at height {}", chain.height());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The node's home directory (the node must be stopped).
    #[arg(long, env = "CPCHAIN_HOME")]
    home: PathBuf,
}

/// Replays the stored chain from genesis and compares it with the stored state.
pub(crate) fn check(args: &CheckArgs) -> Result<ExitCode> {
    let config = config::load(&args.home, &serde_json::json!({}))?;
    let genesis = read_genesis(&resolve(&args.home, &config.node.genesis_file))?;
    let accel = crate::accel::build_node_dispatcher(config.accel.clone())?;
    let path = resolve(&args.home, &config.node.data_dir);
    if !path.exists() {
        bail!(
            "no data directory at {}: start the node once first",
            path.display()
        );
    }
    let store = Store::open(
        &StoreConfig {
            path: path.clone(),
            sync: false,
        },
        genesis.hash(),
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    let head = store.head()?.unwrap_or(0);
    let replayed = cpc_chain::replay(&genesis, &store, &accel, |h, n| {
        if h % 1000 == 0 || h == n {
            eprintln!("check: block {h} of {n}");
        }
    })
    .context("the chain does not replay")?;
    let mut stored = State::from_entries(store.state_entries()?).map_err(anyhow::Error::msg)?;
    let stored_root = stored.root(&accel);
    if stored_root != replayed {
        bail!(
            "the stored state has root {stored_root} but replaying {head} blocks gives {replayed}"
        );
    }
    println!("ok: {head} blocks replayed, state root {replayed}");
    Ok(ExitCode::SUCCESS)
}
