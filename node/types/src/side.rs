//! Side-chain records the main chain checks: vertex headers (for equivocation evidence)
//! and anchors endorsed by a quorum of the group's gateways (with their rewards).
//!
//! They live here, not in `cpc-sidechain`, because block execution verifies them and the
//! side chain signs them: both must agree on the bytes.

use serde::{Deserialize, Serialize};

use crate::codec::Encode;
use crate::{Hash32, PublicKey, Signature, codec_struct};

/// Domain separation of vertex signatures.
pub const VERTEX_DOMAIN: &[u8] = b"cpchain/side/vertex/v2";
/// Domain separation of anchor endorsements.
pub const ANCHOR_DOMAIN: &[u8] = b"cpchain/side/anchor/v2";

/// Gateways needed to confirm a vertex or endorse an anchor in a group of `n`: `n − f`
/// with `f = ⌊(n − 1) / 3⌋` (`2f + 1` when `n = 3f + 1`).
///
/// Not `2f + 1` for every n: two quorums must share an honest gateway, so `2q − n ≥
/// f + 1`. With n = 6, f = 1, two disjoint sets of three gateways could each endorse one
/// side of a double spend.
pub fn side_quorum(n: usize) -> usize {
    n - side_faults(n)
}

/// Faulty gateways a group of `n` tolerates: `f = ⌊(n − 1) / 3⌋` (and the most it may
/// retire).
pub fn side_faults(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// What a gateway signs for a vertex: everything but the transactions, which it commits
/// to by hash, so evidence of two vertices with one sequence number fits a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexHeader {
    /// The group.
    pub group_id: Hash32,
    /// The gateway that made it.
    pub creator: PublicKey,
    /// The creator's vertex count: 1 for its first vertex, one more for each next.
    pub sequence: u64,
    /// The creator's clock when it made the vertex.
    pub timestamp_ms: u64,
    /// The creator's previous vertex first (absent for sequence 1), then tips of others.
    pub parents: Vec<Hash32>,
    /// SHA-256 of the canonical encoding of the vertex's transactions.
    pub txs_hash: Hash32,
}
codec_struct!(VertexHeader {
    group_id,
    creator,
    sequence,
    timestamp_ms,
    parents,
    txs_hash
});

impl VertexHeader {
    /// The bytes the creator signs; their hash is the vertex id.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = VERTEX_DOMAIN.to_vec();
        self.encode_to(&mut out);
        out
    }
}

/// A gateway's cooperation reward at an anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideReward {
    /// The gateway.
    pub gateway: PublicKey,
    /// Its cooperation score over the newly anchored vertices.
    pub score: u64,
    /// Base units paid from the group's reward pool (zero for lazy gateways).
    pub amount: u64,
}
codec_struct!(SideReward {
    gateway,
    score,
    amount
});

/// A checkpoint of a group's confirmed DAG.
///
/// `frontier` holds, per gateway that has one, the highest confirmed vertex; the anchor
/// covers the causal history of the frontier. `root` chains the previous anchor's root with
/// the Merkle root of the newly covered vertex ids in canonical order, so every gateway
/// recomputes root, count and rewards from its own DAG before it endorses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideAnchor {
    /// The group.
    pub group_id: Hash32,
    /// 1 for the first anchor, one more for each next.
    pub sequence: u64,
    /// The frontier vertex ids, sorted, at most one per gateway.
    pub frontier: Vec<Hash32>,
    /// The chained root of the covered history.
    pub root: Hash32,
    /// Vertices covered by this and all earlier anchors.
    pub confirmed_vertices: u64,
    /// Cooperation rewards over the newly covered vertices, one per gateway in key order.
    pub rewards: Vec<SideReward>,
}
codec_struct!(SideAnchor {
    group_id,
    sequence,
    frontier,
    root,
    confirmed_vertices,
    rewards
});

impl SideAnchor {
    /// The bytes a gateway signs to endorse the anchor.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = ANCHOR_DOMAIN.to_vec();
        self.encode_to(&mut out);
        out
    }
}

/// A gateway's signature over [`SideAnchor::signing_bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// The endorsing gateway.
    pub gateway: PublicKey,
    /// Its signature.
    pub signature: Signature,
}
codec_struct!(Endorsement { gateway, signature });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_two_quorums_share_an_honest_gateway() {
        for (n, q) in [(1, 1), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5)] {
            assert_eq!(side_quorum(n), q, "n {n}");
        }
        for n in 1..=64usize {
            let (f, q) = ((n - 1) / 3, side_quorum(n));
            assert!(
                2 * q > n + f,
                "n {n}: quorums of {q} may share only faulty gateways"
            );
            assert!(q <= n - f, "n {n}: {q} needs a faulty gateway");
        }
    }
}
