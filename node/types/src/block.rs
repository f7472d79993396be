//! Blocks, certificates and receipts.

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, Encode};
use crate::codec_struct;
use crate::primitives::{Hash32, PublicKey, Signature, VrfProof, sha256};
use crate::tx::SignedTransaction;

/// Domain separation of consensus votes.
pub const VOTE_DOMAIN: &[u8] = b"cpchain/vote/v3";

/// A change of the committee, written in the header of the last block its old committee
/// certifies: from the next block on, `members` certify blocks, as epoch `epoch`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeChange {
    /// The new epoch (one committee, unchanged, per epoch).
    pub epoch: u64,
    /// The election term the new committee serves in.
    pub term: u64,
    /// The new committee, in seat order (the leader of view `v` sits at `v mod n`).
    pub members: Vec<PublicKey>,
    /// Members of the old committee that are not in the new one.
    pub removed: Vec<PublicKey>,
    /// Members of the new committee that were not in the old one.
    pub added: Vec<PublicKey>,
}
codec_struct!(CommitteeChange {
    epoch,
    term,
    members,
    removed,
    added
});

/// A candidate's VRF proof over the seed of an election term: its lucky value in that
/// term's election. Gossiped on the tickets topic and included in blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ticket {
    /// The candidate's signing key (its validator identity).
    pub candidate: PublicKey,
    /// The term the ticket is for.
    pub term: u64,
    /// The proof over `cpc_consensus::election::term_input(seed, term)`.
    pub proof: VrfProof,
}
codec_struct!(Ticket {
    candidate,
    term,
    proof
});

/// A block header. Its hash covers every field; the certificate that finalises it is
/// carried beside it, since the certificate signs this hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: u32,
    /// Height; genesis is 0.
    pub height: u64,
    /// The consensus view in which the block was proposed; strictly increasing along the
    /// chain (views that time out leave gaps).
    pub view: u64,
    /// The parent's view.
    pub parent_view: u64,
    /// Hash of the parent header.
    pub parent: Hash32,
    /// Milliseconds since the Unix epoch, set by the proposer, strictly increasing.
    pub timestamp_ms: u64,
    /// Who proposed the block.
    pub proposer: PublicKey,
    /// The epoch of the committee that certifies the block.
    pub epoch: u64,
    /// Merkle root of the transaction ids, in block order.
    pub tx_root: Hash32,
    /// State root after executing the block.
    pub state_root: Hash32,
    /// The proposer's VRF proof over the term's seed, in the first block of every term:
    /// its output seeds the next term's election.
    pub vrf_proof: Option<VrfProof>,
    /// Set in the last block of an epoch: the committee that certifies the blocks after it.
    pub committee_change: Option<CommitteeChange>,
}
codec_struct!(BlockHeader {
    chain_id,
    height,
    view,
    parent_view,
    parent,
    timestamp_ms,
    proposer,
    epoch,
    tx_root,
    state_root,
    vrf_proof,
    committee_change,
});

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        sha256(&[b"cpchain/header/v1", &self.encode()])
    }
}

/// The kinds of consensus vote (see `cpc-consensus`'s `bft` module).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// For a proposal: the block is valid and extends the right parent.
    Notarize,
    /// Against a view that timed out.
    Nullify,
    /// For a notarized block: it becomes final with a quorum.
    #[default]
    Finalize,
}

impl Encode for VoteKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(match self {
            VoteKind::Notarize => 1,
            VoteKind::Nullify => 2,
            VoteKind::Finalize => 3,
        });
    }
}

impl Decode for VoteKind {
    fn decode_from(r: &mut crate::codec::Reader<'_>) -> Result<Self, crate::codec::DecodeError> {
        match u8::decode_from(r)? {
            1 => Ok(VoteKind::Notarize),
            2 => Ok(VoteKind::Nullify),
            3 => Ok(VoteKind::Finalize),
            tag => Err(crate::codec::DecodeError::InvalidTag {
                what: "vote kind",
                tag,
            }),
        }
    }
}

/// What a committee member signs. Notarize and finalize votes name the proposal whole
/// (view, parent and block), so a certificate proves the block's place in the chain;
/// nullify names only the view, its other fields zero so it has one encoding. The epoch
/// keeps votes of two committees apart: a member of both never signs one vote twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vote {
    /// The chain.
    pub chain_id: u32,
    /// The committee's epoch.
    pub epoch: u64,
    /// The kind.
    pub kind: VoteKind,
    /// The view voted in.
    pub view: u64,
    /// The view of the parent block (zero for nullify).
    pub parent_view: u64,
    /// The parent block's hash (zero for nullify).
    pub parent: Hash32,
    /// The block's hash (notarize and finalize).
    pub block: Hash32,
}
codec_struct!(Vote {
    chain_id,
    epoch,
    kind,
    view,
    parent_view,
    parent,
    block
});

impl Vote {
    /// The signed bytes.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = VOTE_DOMAIN.to_vec();
        self.encode_to(&mut out);
        out
    }

    /// Whether the fields a kind does not use are zero.
    pub fn is_canonical(&self) -> bool {
        match self.kind {
            VoteKind::Notarize | VoteKind::Finalize => self.parent_view < self.view,
            VoteKind::Nullify => {
                self.parent_view == 0 && self.parent == Hash32::ZERO && self.block == Hash32::ZERO
            }
        }
    }
}

/// Signatures of committee members over one [`Vote`] of `kind` in `view` for the block. A
/// block is final with a finalize certificate of a quorum, or when a descendant has one
/// (the header hashes link them); an ancestor stores the best certificate its node saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The kind of the votes.
    pub kind: VoteKind,
    /// The view the votes were cast in.
    pub view: u64,
    /// Voters and their signatures, sorted by public key, one per voter.
    pub votes: Vec<(PublicKey, Signature)>,
}
codec_struct!(Certificate { kind, view, votes });

/// A block: header, certificate, transactions, election tickets and the parent's votes.
///
/// Tickets and parent votes change the state (tickets are recorded, voters earn credit),
/// so the header's state root commits to their effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The certificate over the header's hash.
    pub certificate: Certificate,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTransaction>,
    /// Election tickets for the next term.
    pub tickets: Vec<Ticket>,
    /// A quorum of the committee's notarize or finalize votes for the parent (empty when
    /// the proposer had none, or the parent ends the previous epoch): the voters earn
    /// credit, absent members lose it.
    pub parent_votes: Certificate,
}
codec_struct!(Block {
    header,
    certificate,
    txs,
    tickets,
    parent_votes
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

/// A consensus message between committee members, as gossiped. Every signature is over
/// [`Vote::signing_bytes`]; the receiver checks them before the consensus machine sees the
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
// Messages are decoded once and consumed; most are proposals, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum ConsensusMessage {
    /// The leader's block for a view; `signature` is the leader's notarize vote for it.
    Proposal {
        /// The block, without certificate.
        block: Block,
        /// The leader's notarize vote.
        signature: Signature,
    },
    /// One member's vote.
    Vote {
        /// The voter.
        voter: PublicKey,
        /// The vote.
        vote: Vote,
        /// Its signature.
        signature: Signature,
    },
    /// A quorum of votes for one [`Vote`], forwarded so members that missed votes catch up.
    Certificate {
        /// What was voted.
        vote: Vote,
        /// Voters and signatures, sorted by voter.
        votes: Vec<(PublicKey, Signature)>,
    },
}

impl Encode for ConsensusMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            ConsensusMessage::Proposal { block, signature } => {
                out.push(1);
                block.encode_to(out);
                signature.encode_to(out);
            }
            ConsensusMessage::Vote {
                voter,
                vote,
                signature,
            } => {
                out.push(2);
                voter.encode_to(out);
                vote.encode_to(out);
                signature.encode_to(out);
            }
            ConsensusMessage::Certificate { vote, votes } => {
                out.push(3);
                vote.encode_to(out);
                votes.encode_to(out);
            }
        }
    }
}

impl Decode for ConsensusMessage {
    fn decode_from(r: &mut crate::codec::Reader<'_>) -> Result<Self, crate::codec::DecodeError> {
        match u8::decode_from(r)? {
            1 => Ok(ConsensusMessage::Proposal {
                block: Decode::decode_from(r)?,
                signature: Decode::decode_from(r)?,
            }),
            2 => Ok(ConsensusMessage::Vote {
                voter: Decode::decode_from(r)?,
                vote: Decode::decode_from(r)?,
                signature: Decode::decode_from(r)?,
            }),
            3 => Ok(ConsensusMessage::Certificate {
                vote: Decode::decode_from(r)?,
                votes: Decode::decode_from(r)?,
            }),
            tag => Err(crate::codec::DecodeError::InvalidTag {
                what: "consensus message",
                tag,
            }),
        }
    }
}

impl ConsensusMessage {
    /// The epoch of the committee the message belongs to.
    pub fn epoch(&self) -> u64 {
        match self {
            ConsensusMessage::Proposal { block, .. } => block.header.epoch,
            ConsensusMessage::Vote { vote, .. } | ConsensusMessage::Certificate { vote, .. } => {
                vote.epoch
            }
        }
    }
}
