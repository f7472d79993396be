//! The node's chain service: admission into the mempool, block building and execution,
//! the consensus engine that commits final blocks, replay, and the queries the API serves.
//!
//! [`Chain`] owns the state, the mempool and the store. Everything that decides a block is
//! deterministic and lives in [`execute_block`]; wall-clock time enters only as `now_ms`
//! arguments, which the caller reads from its clock. [`Engine`] drives the committee BFT
//! machine of `cpc-consensus` with real blocks: it signs and checks votes, executes
//! proposals speculatively on their parent's state, commits blocks once final and syncs
//! from peers. It does no I/O of its own: the network driver feeds it messages and ticks
//! and carries out what it returns.

mod chain;
mod engine;
mod exec;
mod mempool;

pub use chain::{
    AccountView, Built, Chain, ChainConfig, ChainError, ChainMetrics, ChainStatus, TxStatus,
};
pub use engine::{
    ConsensusStatus, Engine, EngineConfig, EngineMetrics, LATENCY_BUCKETS_MS, MemberView, Outbound,
    SyncError, Verdict,
};
pub use exec::{
    BlockError, block_vote, check_certificate, check_suffix_block, check_votes, ends_epoch,
    execute_block, execute_block_trusting, genesis_block, parent_voters, quorum, replay, tx_root,
    verify_signatures,
};
pub use mempool::{MempoolConfig, SubmitError};
