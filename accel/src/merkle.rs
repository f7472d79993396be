//! The Merkle tree rule. It is consensus: block transaction roots, state roots and data
//! records all use it, and every backend must reproduce it bit for bit.
//!
//! Given leaves `l_0 … l_{n-1}` (32-byte values, usually hashes of the items):
//!
//! 1. The empty tree's root is `SHA-256("")`.
//! 2. Level 0 holds the leaf nodes `SHA-256(0x00 || l_i)`.
//! 3. Each next level pairs adjacent nodes left to right: `SHA-256(0x01 || left || right)`.
//!    When a level has an odd number of nodes, the last one moves up unchanged (it is not
//!    duplicated, so `[a, b, c]` and `[a, b, c, c]` have different roots).
//! 4. The root is the single node left.
//!
//! The `0x00`/`0x01` prefixes separate leaves from inner nodes, so an inner node can never
//! be passed off as a leaf (second-preimage attacks on the tree).
//!
//! A consequence used by the dispatcher to split large trees across device calls: the
//! roots of consecutive chunks of `2^k` leaves (the last chunk may be shorter) are exactly
//! the nodes of level `k`, so [`root_of_nodes`] over the chunk roots gives the full root.

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// Prefix of a leaf node's hash input.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner node's hash input.
pub const NODE_PREFIX: u8 = 0x01;

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Digest {
    Sha256::digest([]).into()
}

/// The level-0 node of a leaf: `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(leaf);
    h.finalize().into()
}

/// An inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// One level up: adjacent pairs hashed, an odd last node carried unchanged.
pub fn reduce_level(level: &[Digest]) -> Vec<Digest> {
    let mut next: Vec<Digest> = level
        .chunks_exact(2)
        .map(|pair| node_hash(&pair[0], &pair[1]))
        .collect();
    if level.len() % 2 == 1 {
        next.push(level[level.len() - 1]);
    }
    next
}

/// Reduces a level of nodes (not leaves) to the root. The empty level gives
/// [`empty_root`].
pub fn root_of_nodes(mut level: Vec<Digest>) -> Digest {
    if level.is_empty() {
        return empty_root();
    }
    while level.len() > 1 {
        level = reduce_level(&level);
    }
    level[0]
}

/// The reference implementation of the rule: sequential, obviously correct, slow.
pub fn reference_root(leaves: &[Digest]) -> Digest {
    root_of_nodes(leaves.iter().map(leaf_hash).collect())
}

/// The largest chunk of leaves, a power of two no larger than `max_batch`, whose roots can
/// be combined with [`root_of_nodes`].
pub fn split_chunk_len(max_batch: usize) -> usize {
    match max_batch {
        0 | 1 => 1,
        n => 1 << (usize::BITS - 1 - n.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Digest> {
        (0..n).map(|i| [i as u8; 32]).collect()
    }

    #[test]
    fn chunk_roots_combine_to_the_full_root() {
        for n in 0..70 {
            let all = leaves(n);
            for max in [1, 2, 3, 4, 7, 8, 16, 33] {
                let c = split_chunk_len(max);
                assert!(c.is_power_of_two() && c <= max);
                let roots: Vec<Digest> = all.chunks(c).map(reference_root).collect();
                assert_eq!(
                    root_of_nodes(roots),
                    reference_root(&all),
                    "n={n} max={max}"
                );
            }
        }
    }

    #[test]
    fn odd_node_is_carried_not_duplicated() {
        let mut l = leaves(3);
        let r3 = reference_root(&l);
        l.push(l[2]);
        assert_ne!(r3, reference_root(&l));
    }
}
