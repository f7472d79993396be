//! `cpchain init`, `cpchain start` and `cpchain check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use cpc_chain::{Chain, ChainConfig};
use cpc_state::{Genesis, GenesisValidator, Params, State};
use cpc_storage::{Store, StoreConfig};
use cpc_types::{SecretKey, TOTAL_SUPPLY, UNITS_PER_CPC};

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
        validators: vec![GenesisValidator {
            key: validator.public(),
            vrf_key: validator.public(),
            endpoint: String::new(),
            deposit,
        }],
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
    /// Milliseconds between blocks (overrides node.block_interval_ms).
    #[arg(long = "node.block-interval-ms")]
    block_interval_ms: Option<u64>,
    /// RocksDB directory (overrides node.data_dir).
    #[arg(long = "node.data-dir")]
    data_dir: Option<PathBuf>,
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
        if let Some(ms) = self.block_interval_ms {
            node.insert("block_interval_ms".into(), ms.into());
        }
        if let Some(d) = &self.data_dir {
            node.insert("data_dir".into(), d.display().to_string().into());
        }
        let mut all = serde_json::Map::new();
        if !api.is_empty() {
            all.insert("api".into(), api.into());
        }
        if !node.is_empty() {
            all.insert("node".into(), node.into());
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
    let accel = Arc::new(crate::accel::build_dispatcher(config.accel.clone())?);
    let store = StoreConfig {
        path: resolve(home, &config.node.data_dir),
        sync: config.node.sync_writes,
    };
    let chain = Chain::open(
        genesis,
        &store,
        accel,
        key,
        ChainConfig {
            mempool: config.mempool.clone(),
        },
    )
    .with_context(|| format!("cannot open the chain in {}", store.path.display()))?;
    Ok(Opened {
        config,
        chain: Arc::new(chain),
    })
}

/// Runs the node until SIGINT or SIGTERM.
pub(crate) fn start(args: &StartArgs) -> Result<ExitCode> {
    let Opened { config, chain } = open(&args.home, &args.flags())?;
    config.api.validate().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cpc-node")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, chain))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run(config: NodeConfig, chain: Arc<Chain>) -> Result<ExitCode> {
    let status = chain.status();
    tracing::info!(
        height = status.height,
        chain_id = status.chain_id,
        producing = status.producing,
        api = %config.api.listen,
        "node started"
    );
    println!(
        "cpchain {} node: chain {} at height {}, API on http://{}",
        env!("CARGO_PKG_VERSION"),
        status.chain_id,
        status.height,
        config.api.listen
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let producer = {
        let chain = chain.clone();
        let mut stop = stop_rx.clone();
        let interval = Duration::from_millis(config.node.block_interval_ms.max(1));
        tokio::spawn(async move {
            if !chain.is_producer() {
                // A follower serves the API and waits; consensus gives it blocks.
                let _ = stop.changed().await;
                return Ok(());
            }
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return Ok(()),
                }
                let c = chain.clone();
                let produced =
                    tokio::task::spawn_blocking(move || c.produce_block(cpc_api::now_ms()))
                        .await
                        .map_err(|e| anyhow::anyhow!("block producer crashed: {e}"))?;
                match produced {
                    Ok(Some(p)) if p.txs > 0 || p.dropped > 0 => {
                        tracing::info!(
                            height = p.height,
                            txs = p.txs,
                            dropped = p.dropped,
                            "block committed"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => return Err(anyhow::anyhow!("cannot commit a block: {e}")),
                }
            }
        })
    };
    let mut api_stop = stop_rx.clone();
    let api = tokio::spawn(cpc_api::serve(
        config.api.clone(),
        chain.clone(),
        async move {
            let _ = api_stop.changed().await;
        },
    ));
    let mut producer = producer;
    let mut api = api;
    let outcome: Result<()> = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
        r = &mut producer => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("block producer crashed: {e}")),
        },
        r = &mut api => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("{e}")),
            Err(e) => Err(anyhow::anyhow!("http api crashed: {e}")),
        },
    };
    let _ = stop_tx.send(true);
    // Let an in-flight block commit finish and the API drain its requests.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        if !producer.is_finished() {
            let _ = (&mut producer).await;
        }
        if !api.is_finished() {
            let _ = (&mut api).await;
        }
    })
    .await;
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
    let accel = crate::accel::build_dispatcher(config.accel.clone())?;
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
