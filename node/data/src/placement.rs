//! Placement: a chunk lives on the storage nodes closest to its id in Kademlia's XOR
//! metric. Node keys are the SHA-256 of the libp2p peer id bytes, as Kademlia hashes them.

use cpc_types::Hash32;

/// XOR distance between two keys, compared as a big-endian integer.
pub fn distance(a: &Hash32, b: &Hash32) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, x) in d.iter_mut().enumerate() {
        *x = a.0[i] ^ b.0[i];
    }
    d
}

/// The `count` nodes closest to `target`, nearest first (ties broken by key).
pub fn closest<T: Clone>(target: &Hash32, nodes: &[(T, Hash32)], count: usize) -> Vec<T> {
    let mut order: Vec<(&(T, Hash32), [u8; 32])> =
        nodes.iter().map(|n| (n, distance(target, &n.1))).collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.1.0.cmp(&b.0.1.0)));
    order
        .into_iter()
        .take(count)
        .map(|(n, _)| n.0.clone())
        .collect()
}

/// Spreads the n chunks of a block: chunk `i` goes to the nearest of its closest
/// `replicas` nodes not yet used by this block when possible, so losing one node costs a
/// block at most one chunk while enough nodes exist. Returns node lists per chunk.
pub fn place_block<T: Clone + PartialEq>(
    chunk_ids: &[Hash32],
    nodes: &[(T, Hash32)],
    replicas: usize,
) -> Vec<Vec<T>> {
    let mut used: Vec<T> = Vec::new();
    chunk_ids
        .iter()
        .map(|id| {
            let ranked = closest(id, nodes, nodes.len());
            let first = ranked
                .iter()
                .find(|n| !used.contains(n))
                .or(ranked.first())
                .cloned();
            let mut out: Vec<T> = first.into_iter().collect();
            for n in ranked {
                if out.len() >= replicas.max(1) {
                    break;
                }
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            if let Some(n) = out.first()
                && !used.contains(n)
            {
                used.push(n.clone());
            }
            out
        })
        .collect()
}

/// Where a re-created chunk goes: among the nodes nearest its id, the one holding the
/// fewest chunks of the same block (`holders` lists a node once per chunk it holds).
pub fn place_repair<T: Clone + PartialEq>(
    chunk_id: &Hash32,
    nodes: &[(T, Hash32)],
    holders: &[T],
) -> Option<T> {
    closest(chunk_id, nodes, nodes.len())
        .into_iter()
        .enumerate()
        .min_by_key(|(rank, n)| (holders.iter().filter(|h| *h == n).count(), *rank))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_orders_by_xor_distance() {
        let t = Hash32([0; 32]);
        let mut a = [0u8; 32];
        a[31] = 3;
        let mut b = [0u8; 32];
        b[0] = 1;
        let mut c = [0u8; 32];
        c[31] = 1;
        let nodes = vec![("a", Hash32(a)), ("b", Hash32(b)), ("c", Hash32(c))];
        assert_eq!(closest(&t, &nodes, 2), vec!["c", "a"]);
        assert_eq!(closest(&t, &nodes, 9), vec!["c", "a", "b"]);
    }

    #[test]
    fn a_block_is_spread_over_distinct_nodes() {
        let nodes: Vec<(u8, Hash32)> = (0..6u8).map(|i| (i, cpc_types::sha256(&[&[i]]))).collect();
        let ids: Vec<Hash32> = (0..6u8).map(|i| cpc_types::sha256(&[b"c", &[i]])).collect();
        let placed = place_block(&ids, &nodes, 2);
        let mut firsts: Vec<u8> = placed.iter().map(|p| p[0]).collect();
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), 6, "{placed:?}");
        assert!(placed.iter().all(|p| p.len() == 2 && p[0] != p[1]));
        // With fewer nodes than chunks, nodes are reused.
        let placed = place_block(&ids, &nodes[..4], 1);
        assert!(placed.iter().all(|p| p.len() == 1));
        // A repaired chunk avoids the nodes already holding the block.
        let to = place_repair(&ids[0], &nodes[..3], &[0, 1, 1, 2, 0]).unwrap();
        assert_eq!(to, 2);
    }
}
