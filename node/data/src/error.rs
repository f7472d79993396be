//! Errors of the data layer.

use cpc_types::{DecodeError, Hash32};

/// What went wrong in the data layer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    /// The stream parameters are unusable.
    #[error("invalid stream parameters: {0}")]
    Params(String),
    /// A record is older than the block being packed.
    #[error(
        "record at {timestamp_ms} ms is older than the open block (period {period}); records must arrive in time order"
    )]
    OutOfOrder {
        /// The record's timestamp.
        timestamp_ms: u64,
        /// The period of the open block.
        period: u64,
    },
    /// A record is larger than a block may be.
    #[error("record of {len} bytes exceeds the block limit of {max} bytes; split it")]
    RecordTooLarge {
        /// The record's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A block failed authentication: wrong key, wrong position, or modified ciphertext.
    #[error(
        "block {seq} of interval {interval} failed authentication (wrong key or modified ciphertext)"
    )]
    Decrypt {
        /// The interval.
        interval: u64,
        /// The block.
        seq: u64,
    },
    /// Bytes that should hold an encoded object do not.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// A manifest or block does not match the hash credential on chain.
    #[error("{what} does not match its hash credential")]
    Mismatch {
        /// What did not match.
        what: &'static str,
    },
    /// Fewer verified chunks than the erasure code needs.
    #[error(
        "only {have} of the {need} chunks needed for block {seq} are available; the data is lost unless more storage nodes return"
    )]
    NotEnoughChunks {
        /// The block.
        seq: u64,
        /// Verified chunks held.
        have: usize,
        /// Chunks needed (k).
        need: usize,
    },
    /// The erasure codec refused its input.
    #[error("erasure coding failed: {0}")]
    Erasure(String),
    /// The record holds no key for the interval.
    #[error("the record holds no key for interval {0}")]
    NoKey(u64),
    /// A key-management (umbral) operation failed.
    #[error("umbral: {0}")]
    Umbral(String),
    /// Not enough valid capsule fragments to open an interval key.
    #[error("{valid} valid re-encryption fragments received, {needed} needed; ask more proxies")]
    NotEnoughCfrags {
        /// Fragments that verified.
        valid: usize,
        /// The grant's threshold.
        needed: usize,
    },
    /// A key announcement is not signed by the account it names.
    #[error("key announcement for {0} has a bad signature")]
    BadAnnouncement(cpc_types::Address),
    /// The chunk is not the one asked for.
    #[error("chunk {0} does not hash to its id")]
    BadChunk(Hash32),
}

impl DataError {
    pub(crate) fn malformed(what: &'static str, e: impl std::fmt::Display) -> Self {
        DataError::Malformed {
            what,
            detail: e.to_string(),
        }
    }
}

impl From<DecodeError> for DataError {
    fn from(e: DecodeError) -> Self {
        DataError::malformed("encoding", e)
    }
}
