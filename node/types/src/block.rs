//! Blocks, certificates and receipts.

use serde::{Deserialize, Serialize};

use crate::codec::Encode;
use crate::codec_struct;
use crate::primitives::{Hash32, PublicKey, Signature, sha256};
use crate::tx::SignedTransaction;

/// Domain separation of votes on block hashes.
pub const VOTE_DOMAIN: &[u8] = b"cpchain/vote/v1";

/// A change of the committee, written in the header of the block where it takes effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeChange {
    /// Members removed (credit below threshold, slashed).
    pub removed: Vec<PublicKey>,
    /// Members that join in their place.
    pub added: Vec<PublicKey>,
}
codec_struct!(CommitteeChange { removed, added });

/// A block header. Its hash covers every field; the certificate that finalises it is
/// carried beside it, since the certificate signs this hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: u32,
    /// Height; genesis is 0.
    pub height: u64,
    /// Hash of the parent header.
    pub parent: Hash32,
    /// Milliseconds since the Unix epoch, set by the proposer, strictly increasing.
    pub timestamp_ms: u64,
    /// Who proposed the block.
    pub proposer: PublicKey,
    /// Merkle root of the transaction ids, in block order.
    pub tx_root: Hash32,
    /// State root after executing the block.
    pub state_root: Hash32,
    /// Committee change taking effect with this block, if any.
    pub committee_change: Option<CommitteeChange>,
}
codec_struct!(BlockHeader {
    chain_id,
    height,
    parent,
    timestamp_ms,
    proposer,
    tx_root,
    state_root,
    committee_change,
});

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        sha256(&[b"cpchain/header/v1", &self.encode()])
    }
}

/// What a committee member signs to vote for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The chain.
    pub chain_id: u32,
    /// Height of the block.
    pub height: u64,
    /// Consensus round in which the vote was cast.
    pub round: u64,
    /// The block hash.
    pub block: Hash32,
}
codec_struct!(Vote {
    chain_id,
    height,
    round,
    block
});

impl Vote {
    /// The signed bytes.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = VOTE_DOMAIN.to_vec();
        self.encode_to(&mut out);
        out
    }
}

/// Signatures of the committee (or, on a single-validator chain, of the proposer) over a
/// [`Vote`] for the block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The round the votes were cast in.
    pub round: u64,
    /// Voters and their signatures, sorted by public key, one per voter.
    pub votes: Vec<(PublicKey, Signature)>,
}
codec_struct!(Certificate { round, votes });

impl crate::codec::Encode for (PublicKey, Signature) {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
        self.1.encode_to(out);
    }
}

impl crate::codec::Decode for (PublicKey, Signature) {
    fn decode_from(r: &mut crate::codec::Reader<'_>) -> Result<Self, crate::codec::DecodeError> {
        Ok((
            crate::codec::Decode::decode_from(r)?,
            crate::codec::Decode::decode_from(r)?,
        ))
    }
}

/// A block: header, certificate and transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The certificate over the header's hash.
    pub certificate: Certificate,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTransaction>,
}
codec_struct!(Block {
    header,
    certificate,
    txs
});

/// What executing one transaction did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReceipt {
    /// The transaction id.
    pub tx: Hash32,
    /// Fee paid, in base units.
    pub fee: u64,
    /// Whether the transaction used the sender's free quota.
    pub free: bool,
}
codec_struct!(TxReceipt { tx, fee, free });
