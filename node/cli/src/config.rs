//! The node's configuration: `config.toml` in the home directory, overridden by
//! `CPCHAIN_*` environment variables, overridden by command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cpc_accel::DispatchConfig;
use cpc_api::ApiConfig;
use cpc_chain::{EngineConfig, MempoolConfig};
use cpc_p2p::P2pConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `cpchain start` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NodeConfig {
    pub(crate) node: NodeSection,
    pub(crate) api: ApiConfig,
    pub(crate) p2p: P2pConfig,
    pub(crate) consensus: EngineConfig,
    pub(crate) mempool: MempoolConfig,
    pub(crate) accel: DispatchConfig,
    pub(crate) fhe: FheSection,
    pub(crate) data: crate::data_net::DataConfig,
    pub(crate) sidechain: crate::side::SideSection,
}

/// The `[fhe]` section: homomorphic matching (the matcher and its job queue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct FheSection {
    /// Serve the FHE endpoints.
    pub(crate) enabled: bool,
    /// `cpu`, or `cuda` in a build with the `fhe-gpu` feature.
    pub(crate) device: cpc_accel::fhe::FheDevice,
    /// Threads a job is spread over; 0 uses every core.
    pub(crate) threads: usize,
    /// Most memory of loaded server keys, bytes.
    pub(crate) max_key_cache_bytes: u64,
    /// Largest server key upload, bytes.
    pub(crate) max_key_bytes: u64,
    /// Most drivers or records in one job.
    pub(crate) max_items: usize,
    /// Jobs that may wait behind the running one.
    pub(crate) queue: usize,
    /// Largest job body, bytes.
    pub(crate) max_body_bytes: usize,
    /// Finished jobs kept for GET /v1/jobs/{id}.
    pub(crate) keep_jobs: usize,
    /// Seconds a finished job is kept.
    pub(crate) job_ttl_secs: u64,
}

impl Default for FheSection {
    fn default() -> Self {
        let m = cpc_accel::fhe::FheConfig::default();
        let j = cpc_api::fhe::FheJobsConfig::default();
        Self {
            enabled: true,
            device: m.device,
            threads: m.threads,
            max_key_cache_bytes: m.max_key_cache_bytes,
            max_key_bytes: m.max_key_bytes,
            max_items: m.max_items,
            queue: j.queue,
            max_body_bytes: j.max_body_bytes,
            keep_jobs: j.keep_jobs,
            job_ttl_secs: j.job_ttl.as_secs(),
        }
    }
}

impl FheSection {
    /// The matcher's settings.
    pub(crate) fn matcher(&self) -> cpc_accel::fhe::FheConfig {
        cpc_accel::fhe::FheConfig {
            device: self.device,
            threads: self.threads,
            max_key_cache_bytes: self.max_key_cache_bytes,
            max_key_bytes: self.max_key_bytes,
            max_items: self.max_items,
        }
    }

    /// The job queue's settings.
    pub(crate) fn jobs(&self) -> cpc_api::fhe::FheJobsConfig {
        cpc_api::fhe::FheJobsConfig {
            queue: self.queue,
            max_body_bytes: self.max_body_bytes,
            max_key_bytes: usize::try_from(self.max_key_bytes).unwrap_or(usize::MAX),
            keep_jobs: self.keep_jobs,
            job_ttl: std::time::Duration::from_secs(self.job_ttl_secs),
        }
    }
}

/// The `[node]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NodeSection {
    /// RocksDB directory, relative to the home directory.
    pub(crate) data_dir: PathBuf,
    /// The genesis file, relative to the home directory.
    pub(crate) genesis_file: PathBuf,
    /// The validator's signing key, relative to the home directory (absent on a follower).
    pub(crate) key_file: PathBuf,
    /// The node's network identity key, relative to the home directory; created at the
    /// first start when missing.
    pub(crate) node_key_file: PathBuf,
    /// Whether every block commit waits for the disk.
    pub(crate) sync_writes: bool,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            genesis_file: "genesis.json".into(),
            key_file: "keys/validator.key".into(),
            node_key_file: "keys/node.key".into(),
            sync_writes: true,
        }
    }
}

/// `config.toml` as `cpchain init` writes it: every setting, its default and what it does.
/// A test checks that it parses to [`NodeConfig::default`].
pub(crate) const TEMPLATE: &str = r#"# cpchain node configuration.
# Every setting is shown with its default. Environment variables override this file
# (CPCHAIN_<SECTION>__<KEY>, for example CPCHAIN_API__LISTEN=0.0.0.0:8645), and
# command-line flags override both.

[node]
# RocksDB directory, relative to the home directory.
data_dir = "data"
# The genesis file, relative to the home directory.
genesis_file = "genesis.json"
# The validator's signing key (hex seed), relative to the home directory. Without
# it (or when it is not in the committee) the node follows the chain.
key_file = "keys/validator.key"
# The node's network identity (hex seed); created at the first start when missing.
node_key_file = "keys/node.key"
# Wait for the disk at every block commit (survives power loss, not only a crash).
sync_writes = true

[api]
# Address of the HTTP admin API. Beyond loopback a token is required.
listen = "127.0.0.1:8645"
# Bearer token for transaction submission, /v1/accel and /metrics.
# token = "change-me"
# Largest request body, in bytes.
max_body_bytes = 4194304
# Longest a request may take, in milliseconds.
request_timeout_ms = 10000
# Most transactions in one POST /v1/txs/batch.
max_batch = 10000
# Most submissions waiting for admission before the API answers 429.
admission_queue = 100000

[p2p]
# Where peers connect (a libp2p multiaddr).
listen = "/ip4/0.0.0.0/tcp/7645"
# Peers to connect to at start, e.g. ["/ip4/10.0.0.2/tcp/7645"]; more are found
# through the Kademlia DHT.
bootnodes = []
# Most connections.
max_peers = 50
# Largest gossip message, in bytes (a block proposal travels in one).
max_message_bytes = 8388608
# Invalid messages after which a peer is disconnected and banned.
ban_after_invalid = 5

[consensus]
# Least milliseconds from one block to the next.
block_interval_ms = 500
# First view timeout in milliseconds (doubles per timed-out view, up to 8x); it must
# exceed the block interval plus a network round trip.
view_timeout_ms = 3000
# How far ahead of this node's clock a proposal may be stamped, in milliseconds.
max_clock_drift_ms = 2000

[mempool]
# Most pending transactions, and most bytes of them.
max_txs = 200000
max_bytes = 134217728
# Most pending transactions of one account.
max_per_account = 4096
# How far beyond an account's nonce a transaction may be queued.
max_nonce_gap = 4096
# Seconds a transaction may wait before it is dropped.
ttl_secs = 600

[data]
# Milliseconds between rounds of the repair task, which re-creates the lost chunks of
# the uploads whose manifest is closest to this node (0: no repair).
repair_interval_ms = 30000
# Repair a block when fewer than k + repair_margin of its n chunks remain.
repair_margin = 2

[sidechain]
# The DAG side-chain group this node follows: its name (e.g. "district-7") or its id as
# 64 hex digits; empty: none. Its gateways are read from the main chain (genesis or a
# side_group transaction); the node waits until the group is there.
group = ""
# Whether this node is a gateway of the group: it takes machine transactions
# (POST /v1/sidechain/txs), signs vertices and anchors with node.key_file, which must be
# one of the group's gateway keys on chain.
gateway = false
# Milliseconds between two vertices of this gateway (1 to 60000).
vertex_interval_ms = 5
# Anchor the confirmed history on the main chain once this many confirmed vertices are
# not anchored yet ...
anchor_every_vertices = 1000
# ... or once this many milliseconds passed since the last final anchor (100 or more).
anchor_interval_ms = 5000
# Most machine transactions in one vertex (1 to 10000).
max_batch = 2000
# Most machine transactions waiting in this gateway's pool.
max_pool = 100000
# Drop final history from memory into the node's store, where the API and peers catching
# up read it; false keeps every vertex and transaction in memory.
prune_history = true
# Once the side-chain log passes this many MiB (and the last snapshot's size), write a
# snapshot of the side-chain state and start a new log, so that a restart replays at most
# about this much; 0: never.
snapshot_log_mib = 256
# Sync the side-chain log before a vertex of this gateway leaves the node, so that a
# power loss cannot make it sign a sequence number twice (and be slashed); false only for
# a disk that survives power loss.
sync_log = true
# The most MiB of final side-chain history (pruned vertices and transactions) the node's
# store keeps for the API and for peers catching up; past it, the oldest anchors' history
# is deleted (a node whose peers all deleted what it lacks cannot catch up). 0: keep all.
archive_max_mib = 0

[accel]
# Backend of each operation: auto, cpu, wgpu, cuda or fpga. A backend that is
# unavailable or fails is replaced by the CPU, and the fallback is counted.
sha256 = "auto"
merkle = "auto"
ed25519 = "auto"
# CPU worker threads; 0 uses every core.
cpu_threads = 0
# Batch sizes from which `auto` sends work to a device. `cpchain bench --home <home>`
# measures them per device into accel-thresholds.toml next to this file, which the node
# applies while that device is present; entries here win over measured ones. `device`
# (optional) limits an entry to one device as `cpchain accel list` names it.
# [[accel.auto.thresholds]]
# backend = "wgpu"
# op = "ed25519"
# min_batch = 4096

[accel.wgpu]
# Use a GPU through wgpu (Vulkan, Metal, DX12; Mesa's lavapipe is a software one).
enabled = true
# Graphics APIs to search, e.g. "vulkan"; empty: the WGPU_BACKEND variable, else all.
backends = ""
# The adapter: part of its name as `cpchain accel list` shows it; empty: the
# WGPU_ADAPTER_NAME variable, else the most capable (discrete, integrated, software).
adapter = ""
# Largest batch handed to the device in one call.
max_batch = 1048576
# Signatures per submission (hashes and leaves: 16 times as many); the CPU prepares
# the next submission while the device runs one.
chunk = 8192
# Milliseconds a submission may run before the device counts as hung.
timeout_ms = 60000

[accel.cuda]
# Use an NVIDIA GPU through the CUDA driver (kernels compiled at run time by NVRTC).
enabled = true
# Device ordinal, as nvidia-smi numbers them.
device = 0
# Largest batch handed to the device in one call.
max_batch = 1048576
# Signatures per launch (hashes and leaves: 16 times as many).
chunk = 65536
# Directory for compiled kernels, so later starts skip NVRTC; empty: memory only.
cache_dir = ""

[accel.fpga]
# How the FPGA backend reaches its device: "none", "sim" (the rust-hdl simulation of
# the bitstream: correct and slow) or "serial" (a board running a bitstream from
# hdl/flow/). Without one the backend is listed as unavailable.
transport = "none"
# Serial device, or "auto" to probe /dev/ttyUSB* and /dev/ttyACM* with the version command.
device = "auto"
# Serial rate in baud (the hdl/flow/ bitstreams run at 3 Mbaud).
baud = 3000000
# Milliseconds to wait for a response before the CPU answers instead.
timeout_ms = 200
# Simulated bitstream: "dual" (SHA-256 + SHA-512) or "sha256".
sim_design = "dual"

[fhe]
# Homomorphic matching: POST /v1/fhe/keys, /v1/apps/rideshare/match, /v1/apps/search.
enabled = true
# cpu, or cuda in a build with the `fhe-gpu` feature.
device = "cpu"
# Threads a job is spread over; 0 uses every core.
threads = 0
# Most memory of loaded server keys (about 240 MB each); the least recently used key
# is dropped to make room.
max_key_cache_bytes = 1073741824
# Largest server key upload (a compressed key is about 60 MB).
max_key_bytes = 268435456
# Most drivers (at most 256) or records in one job.
max_items = 256
# Jobs that may wait behind the running one before submissions get 429.
queue = 8
# Largest job body; each ciphertext is about 17 KB (base64 JSON a third more).
max_body_bytes = 16777216
# Finished jobs kept for GET /v1/jobs/{id}, and for how many seconds.
keep_jobs = 256
job_ttl_secs = 3600
"#;

/// Loads the configuration of the node in `home`, with environment variables and `flags`
/// (a partial config) on top.
pub(crate) fn load(home: &Path, flags: &impl Serialize) -> Result<NodeConfig> {
    let file = home.join("config.toml");
    if !file.exists() {
        anyhow::bail!(
            "{} does not exist: run `cpchain init --home {}` first",
            file.display(),
            home.display()
        );
    }
    Figment::new()
        .merge(Toml::file(&file))
        .merge(
            Env::prefixed("CPCHAIN_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        )
        .merge(Serialized::defaults(flags))
        .extract()
        .with_context(|| {
            format!(
                "invalid configuration (from {}, CPCHAIN_* variables or flags)",
                file.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_documents_exactly_the_defaults() {
        let parsed: NodeConfig = toml::from_str(TEMPLATE).unwrap();
        assert_eq!(parsed, NodeConfig::default());
    }
}
