//! Account state, CPC economics and deterministic execution.
//!
//! The state is a sorted map from keys to canonically encoded values (accounts, lease
//! offers, validators, data streams, grants, anchors, evidence), created by [`Genesis`] and
//! changed only by executing blocks. Execution is deterministic: integer arithmetic, no
//! clock but the block's timestamp, no hash-map iteration. Each transaction runs on an
//! overlay and is merged only if it succeeds, so a failing transaction changes nothing.
//!
//! # Economics
//!
//! - Genesis creates 1,000,000,000 CPC and allocates all of it.
//! - An ordinary account sends `free_tx_per_day` transactions per UTC day for free. Beyond
//!   that, or beyond `rate_limit_per_minute` transactions in one minute, each transaction
//!   pays `base_fee`. A transaction whose fee would exceed its `max_fee` is rejected.
//! - A DApp account stakes CPC (its own, and stake leased from lenders) and gets one more
//!   free transaction per day for every `dapp_stake_per_free_tx` base units staked.
//! - Lenders offer stake with a daily fee; a DApp takes an offer for some days and pays the
//!   whole fee to the lender up front; at the end of the lease the stake returns to the
//!   lender.
//! - Every fee is split: `foundation_fee_percent` to the foundation account, the rest to
//!   the block's proposer.
//!
//! The state root is the Merkle root (through the accelerator, [`cpc_accel::merkle`]) of
//! `SHA-256(len(key) || key || value)` over the entries in key order.

mod consensus;
mod error;
mod exec;
mod genesis;
mod model;
mod store;

pub use consensus::{
    BlockCredit, ChangeReason, CommitteeInfo, Lucky, MAX_BLOCK_TICKETS, RuleError, TicketError,
    credit_params, election_params, genesis_seed, starts_term, term_of,
};
pub use error::{GenesisError, TxError};
pub use exec::BlockEnv;
pub use genesis::{Genesis, GenesisSideGroup, GenesisValidator, MAX_TIMESTAMP_MS, Params};
pub use model::{Account, Anchor, Grant, LeaseOffer, SideGroup, Stream, Validator};
pub use store::{State, StateEntry};

/// Milliseconds in a quota day.
pub const DAY_MS: u64 = 86_400_000;
/// Milliseconds in a rate-limit window.
pub const MINUTE_MS: u64 = 60_000;
