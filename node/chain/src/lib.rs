//! The node's chain service: admission into the mempool, block production on a
//! single-validator chain, block execution and replay, and the queries the API serves.
//!
//! [`Chain`] owns the state, the mempool and the store. Everything that decides a block is
//! deterministic and lives in [`execute_block`]; wall-clock time enters only as the
//! `now_ms` arguments of [`Chain::submit`] and [`Chain::produce_block`], which the caller
//! reads from its clock. Consensus replaces [`Chain::produce_block`] with committee
//! proposals and certificates; [`execute_block`] and [`Chain::commit`] stay.

mod chain;
mod exec;
mod mempool;

pub use chain::{
    AccountView, Chain, ChainConfig, ChainError, ChainMetrics, ChainStatus, Produced, TxStatus,
};
pub use exec::{
    BlockError, check_certificate, execute_block, genesis_block, replay, tx_root, verify_signatures,
};
pub use mempool::{MempoolConfig, SubmitError};
