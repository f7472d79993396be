//! The side chain's view of the main chain: what final blocks tell it, and what it sends.

use cpc_types::{Hash32, SignedTransaction, TxKind};

use crate::gateway::Input;
use crate::types::SignedAnchor;

/// The inputs a final main-chain block holds for group `group_id`: its side locks, its
/// anchors, changes of its reward per anchor and its retired gateways. A block carries only transactions that
/// executed, so every one counts.
pub fn inputs_from_block(group_id: &Hash32, txs: &[SignedTransaction]) -> Vec<Input> {
    txs.iter()
        .filter_map(|t| match &t.tx.kind {
            TxKind::SideLock {
                group_id: g,
                account,
                amount,
            } if g == group_id => Some(Input::Lock {
                id: t.id(),
                account: *account,
                amount: *amount,
            }),
            TxKind::Anchor { anchor: a, .. } if a.group_id == *group_id => {
                Some(Input::AnchorFinal {
                    sequence: a.sequence,
                    root: a.root,
                    confirmed_vertices: a.confirmed_vertices,
                    frontier: a.frontier.clone(),
                })
            }
            TxKind::SideGroup {
                group_id: g,
                reward_per_anchor,
                ..
            } if g == group_id => Some(Input::RewardPerAnchor(*reward_per_anchor)),
            TxKind::SideRetire {
                group_id: g,
                gateway,
            } if g == group_id => Some(Input::Retire(*gateway)),
            _ => None,
        })
        .collect()
}

impl SignedAnchor {
    /// The main-chain transaction kind that records this anchor.
    pub fn tx_kind(&self) -> TxKind {
        TxKind::Anchor {
            anchor: self.anchor.clone(),
            endorsements: self.endorsements.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use cpc_types::{Address, SecretKey, SideAnchor, Transaction};

    use super::*;

    #[test]
    fn locks_anchors_reward_changes_and_retirements_of_the_group_become_inputs() {
        let k = SecretKey::from_bytes([3; 32]);
        let g = Hash32([1; 32]);
        let tx = |nonce, kind| {
            Transaction {
                chain_id: 1,
                sender: k.public(),
                nonce,
                max_fee: 0,
                kind,
            }
            .sign(&k)
        };
        let lock = tx(
            0,
            TxKind::SideLock {
                group_id: g,
                account: Address([2; 20]),
                amount: 5,
            },
        );
        let other = tx(
            1,
            TxKind::SideLock {
                group_id: Hash32([9; 32]),
                account: Address([2; 20]),
                amount: 5,
            },
        );
        let anchor = tx(
            2,
            TxKind::Anchor {
                anchor: SideAnchor {
                    group_id: g,
                    sequence: 1,
                    frontier: vec![Hash32([5; 32])],
                    root: Hash32([4; 32]),
                    confirmed_vertices: 10,
                    rewards: Vec::new(),
                },
                endorsements: Vec::new(),
            },
        );
        let change = tx(
            3,
            TxKind::SideGroup {
                group_id: g,
                gateways: vec![k.public()],
                reward_per_anchor: 7,
                fund: 0,
            },
        );
        let retire = tx(
            4,
            TxKind::SideRetire {
                group_id: g,
                gateway: k.public(),
            },
        );
        let elsewhere = tx(
            5,
            TxKind::SideRetire {
                group_id: Hash32([9; 32]),
                gateway: k.public(),
            },
        );
        let inputs = inputs_from_block(
            &g,
            &[lock.clone(), other, anchor, change, retire, elsewhere],
        );
        assert_eq!(inputs.len(), 4);
        assert!(matches!(inputs[3], Input::Retire(key) if key == k.public()));
        assert!(matches!(inputs[2], Input::RewardPerAnchor(7)));
        assert!(matches!(inputs[0], Input::Lock { id, amount: 5, .. } if id == lock.id()));
        assert!(matches!(
            inputs[1],
            Input::AnchorFinal {
                sequence: 1,
                confirmed_vertices: 10,
                ref frontier,
                ..
            } if *frontier == [Hash32([5; 32])]
        ));
    }
}
