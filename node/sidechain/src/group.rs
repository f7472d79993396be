//! Gateway groups.

use cpc_types::{Hash32, PublicKey, sha256};
use serde::{Deserialize, Serialize};

use crate::SideError;

/// The most gateways in one group (seen-by sets are 64-bit masks).
pub const MAX_GATEWAYS: usize = 64;

/// A side-chain group: its id and its gateways' keys, sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group id.
    pub id: Hash32,
    /// The gateways, sorted by key, without duplicates.
    pub gateways: Vec<PublicKey>,
}

impl Group {
    /// A group of `gateways` (any order); fails on duplicates, an empty set or too many.
    pub fn new(id: Hash32, mut gateways: Vec<PublicKey>) -> Result<Group, SideError> {
        gateways.sort();
        let n = gateways.len();
        gateways.dedup();
        if gateways.len() != n {
            return Err(SideError::Group("a gateway key is listed twice".into()));
        }
        if n == 0 || n > MAX_GATEWAYS {
            return Err(SideError::Group(format!(
                "{n} gateways; a group has 1 to {MAX_GATEWAYS}"
            )));
        }
        Ok(Group { id, gateways })
    }

    /// The id of a group named `name`: `SHA-256("cpchain/side/group" || name)`.
    pub fn id_of(name: &str) -> Hash32 {
        sha256(&[b"cpchain/side/group", name.as_bytes()])
    }

    /// Number of gateways.
    pub fn n(&self) -> usize {
        self.gateways.len()
    }

    /// Faulty gateways tolerated: `⌊(n − 1) / 3⌋`.
    pub fn f(&self) -> usize {
        cpc_types::side_faults(self.n())
    }

    /// Distinct gateways needed to confirm a vertex or endorse an anchor: `n − f`
    /// ([`cpc_types::side_quorum`], which says why not `2f + 1`).
    pub fn quorum(&self) -> usize {
        cpc_types::side_quorum(self.n())
    }

    /// The index of a gateway.
    pub fn index(&self, key: &PublicKey) -> Option<usize> {
        self.gateways.binary_search(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_n_minus_f_and_groups_are_checked() {
        let keys = |n: u8| (0..n).map(|i| PublicKey([i; 32])).collect::<Vec<_>>();
        for (n, f, q) in [(1, 0, 1), (4, 1, 3), (6, 1, 5), (7, 2, 5)] {
            let g = Group::new(Hash32::ZERO, keys(n)).unwrap();
            assert_eq!((g.f(), g.quorum()), (f, q));
        }
        assert!(Group::new(Hash32::ZERO, vec![PublicKey([1; 32]); 2]).is_err());
        assert!(Group::new(Hash32::ZERO, vec![]).is_err());
    }
}
