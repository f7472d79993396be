//! CPChain's data types and their one canonical binary encoding.
//!
//! Everything that is hashed or signed — transactions, block headers, certificates,
//! receipts, state entries — is encoded with [`codec`]: fixed-width big-endian integers,
//! `u32` length prefixes, one-byte tags for enums and options. Each value has exactly one
//! encoding, and decoding accepts only that encoding: `decode(encode(x)) == x`, and bytes
//! that decode re-encode to themselves. Trailing bytes, unknown tags, booleans other than
//! 0 or 1, and lengths beyond the input are rejected before anything is allocated.
//!
//! JSON (serde) is for configuration and the HTTP API only; it never feeds a hash.

pub mod block;
pub mod codec;
pub mod keys;
pub mod primitives;
pub mod side;
pub mod tx;

pub use block::{
    Block, BlockHeader, Certificate, CommitteeChange, ConsensusMessage, Ticket, TxReceipt, Vote,
    VoteKind,
};
pub use codec::{Decode, DecodeError, Encode, decode_exact};
pub use keys::SecretKey;
pub use primitives::{Address, Hash32, PublicKey, Signature, VrfProof, sha256};
pub use side::{Endorsement, SideAnchor, SideReward, VertexHeader, side_faults, side_quorum};
pub use tx::{
    AccessPolicy, DataRecord, MisbehaviourEvidence, SignedMessage, SignedTransaction, Transaction,
    TxKind,
};

/// Base units per CPC: amounts are integers of 10⁻⁸ CPC.
pub const UNITS_PER_CPC: u64 = 100_000_000;

/// The CPC created in genesis, in base units (1,000,000,000 CPC).
pub const TOTAL_SUPPLY: u64 = 1_000_000_000 * UNITS_PER_CPC;

/// The largest encoded transaction accepted anywhere.
pub const MAX_TX_BYTES: usize = 64 * 1024;

/// Largest encoded size of a block's transactions (a consensus rule): a proposal must fit
/// in one gossip message.
pub const MAX_BLOCK_TX_BYTES: usize = 4 << 20;
