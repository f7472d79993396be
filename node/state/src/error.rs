//! Errors of execution and genesis.

use cpc_types::{Address, Hash32};
use thiserror::Error;

/// Why a transaction cannot execute. The state is unchanged when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TxError {
    /// The transaction is for another chain.
    #[error("transaction is for chain {got}, this is chain {expected}")]
    WrongChain {
        /// This chain.
        expected: u32,
        /// The transaction's.
        got: u32,
    },
    /// The nonce is not the sender's next one.
    #[error("nonce {got} does not follow the account's nonce {expected}")]
    BadNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The fee due exceeds what the sender allowed.
    #[error("fee of {fee} exceeds the transaction's max_fee of {max_fee}")]
    FeeTooHigh {
        /// Fee due.
        fee: u64,
        /// The sender's limit.
        max_fee: u64,
    },
    /// Not enough balance (or stake) for the amount and the fee.
    #[error("insufficient funds: {needed} needed, {available} available")]
    InsufficientFunds {
        /// What the transaction needs.
        needed: u64,
        /// What the account has.
        available: u64,
    },
    /// An amount is zero or out of range.
    #[error("invalid amount: {0}")]
    InvalidAmount(&'static str),
    /// A referenced object does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: Hash32,
    },
    /// The sender may not do this.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The transaction is well formed but breaks a rule of its kind.
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// A balance would overflow.
    #[error("arithmetic overflow")]
    Overflow,
}

impl TxError {
    /// Whether the error is about the nonce (the HTTP API answers 409 for these).
    pub fn is_nonce(&self) -> bool {
        matches!(self, TxError::BadNonce { .. })
    }
}

/// Why a genesis file is unusable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GenesisError {
    /// Allocations do not add up to the total supply.
    #[error("allocations add up to {sum} base units; genesis must allocate exactly {expected}")]
    Supply {
        /// Their sum.
        sum: u128,
        /// The total supply.
        expected: u64,
    },
    /// An address appears twice.
    #[error("address {0} is allocated twice")]
    DuplicateAllocation(Address),
    /// No validator.
    #[error("genesis needs at least one validator")]
    NoValidators,
    /// A parameter is out of range.
    #[error("invalid genesis parameter: {0}")]
    Param(String),
}
