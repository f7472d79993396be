//! The encoding is canonical: it round-trips, and any bytes that decode re-encode to
//! themselves, so no transaction or block has two encodings.

use cpc_types::codec::{Decode, Encode, decode_exact};
use cpc_types::{
    AccessPolicy, Address, Block, BlockHeader, Certificate, CommitteeChange, DataRecord,
    DecodeError, Endorsement, Hash32, MisbehaviourEvidence, PublicKey, SecretKey, SideAnchor,
    SideReward, Signature, SignedMessage, SignedTransaction, Ticket, Transaction, TxKind, VrfProof,
};
use proptest::prelude::*;

fn h() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}
fn addr() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}
fn pk() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}
fn sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn kind() -> impl Strategy<Value = TxKind> {
    prop_oneof![
        (addr(), any::<u64>()).prop_map(|(to, amount)| TxKind::Transfer { to, amount }),
        (any::<u64>(), pk(), "[a-z0-9/.]{0,20}").prop_map(|(deposit, vrf_key, endpoint)| {
            TxKind::RegisterValidator {
                deposit,
                vrf_key,
                endpoint,
            }
        }),
        (h(), any::<u64>(), any::<u64>(), h(), any::<bool>(), bytes()).prop_map(
            |(s, a, b, r, p, c)| TxKind::DataRecord(DataRecord {
                stream_id: s,
                first_interval: a,
                last_interval: b,
                root: r,
                policy: if p {
                    AccessPolicy::Public
                } else {
                    AccessPolicy::Private
                },
                capsule: c,
            })
        ),
        (h(), addr(), any::<u64>(), any::<u64>()).prop_map(
            |(stream_id, grantee, first_interval, last_interval)| TxKind::Grant {
                stream_id,
                grantee,
                first_interval,
                last_interval
            }
        ),
        (h(), addr()).prop_map(|(stream_id, grantee)| TxKind::Revoke { stream_id, grantee }),
        (
            (h(), any::<u64>(), h(), any::<u64>()),
            prop::collection::vec(h(), 0..4),
            prop::collection::vec((pk(), any::<u64>(), any::<u64>()), 0..4),
            prop::collection::vec((pk(), sig()), 0..4),
        )
            .prop_map(
                |((group_id, sequence, root, confirmed_vertices), frontier, rewards, ends)| {
                    TxKind::Anchor {
                        anchor: SideAnchor {
                            group_id,
                            sequence,
                            frontier,
                            root,
                            confirmed_vertices,
                            rewards: rewards
                                .into_iter()
                                .map(|(gateway, score, amount)| SideReward {
                                    gateway,
                                    score,
                                    amount,
                                })
                                .collect(),
                        },
                        endorsements: ends
                            .into_iter()
                            .map(|(gateway, signature)| Endorsement { gateway, signature })
                            .collect(),
                    }
                }
            ),
        (pk(), bytes(), sig(), bytes(), sig()).prop_map(|(offender, p1, s1, p2, s2)| {
            TxKind::Evidence(MisbehaviourEvidence {
                offender,
                first: SignedMessage {
                    payload: p1,
                    signature: s1,
                },
                second: SignedMessage {
                    payload: p2,
                    signature: s2,
                },
            })
        }),
        any::<u64>().prop_map(|amount| TxKind::DappStake { amount }),
        any::<u64>().prop_map(|amount| TxKind::DappUnstake { amount }),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(amount, fee_per_day, max_days)| {
            TxKind::LeaseOffer {
                amount,
                fee_per_day,
                max_days,
            }
        }),
        (h(), any::<u32>()).prop_map(|(offer, days)| TxKind::LeaseTake { offer, days }),
        h().prop_map(|offer| TxKind::LeaseCancel { offer }),
        (
            h(),
            proptest::collection::vec(pk(), 0..5),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(group_id, gateways, reward_per_anchor, fund)| TxKind::SideGroup {
                    group_id,
                    gateways,
                    reward_per_anchor,
                    fund,
                }
            ),
        (h(), addr(), any::<u64>()).prop_map(|(group_id, account, amount)| TxKind::SideLock {
            group_id,
            account,
            amount,
        }),
        (h(), pk()).prop_map(|(group_id, gateway)| TxKind::SideRetire { group_id, gateway }),
    ]
}

fn signed() -> impl Strategy<Value = SignedTransaction> {
    (
        any::<u32>(),
        pk(),
        any::<u64>(),
        any::<u64>(),
        kind(),
        sig(),
    )
        .prop_map(
            |(chain_id, sender, nonce, max_fee, kind, signature)| SignedTransaction {
                tx: Transaction {
                    chain_id,
                    sender,
                    nonce,
                    max_fee,
                    kind,
                },
                signature,
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (
        (any::<u64>(), h(), any::<u64>(), pk(), h(), h()),
        prop::option::of((
            any::<u64>(),
            prop::collection::vec(pk(), 0..3),
            prop::collection::vec(pk(), 0..3),
        )),
        prop::option::of(prop::array::uniform32(any::<u8>())),
        prop::collection::vec((pk(), sig()), 0..4),
        prop::collection::vec(signed(), 0..4),
        prop::collection::vec((pk(), any::<u64>()), 0..3),
    )
        .prop_map(
            |(
                (height, parent, ts, proposer, tx_root, state_root),
                change,
                vrf,
                votes,
                txs,
                tickets,
            )| {
                Block {
                    header: BlockHeader {
                        chain_id: 9,
                        height,
                        view: height + 2,
                        parent_view: height,
                        parent,
                        timestamp_ms: ts,
                        proposer,
                        epoch: height / 3,
                        tx_root,
                        state_root,
                        vrf_proof: vrf.map(|b| {
                            let mut p = [0u8; 80];
                            p[..32].copy_from_slice(&b);
                            VrfProof(p)
                        }),
                        committee_change: change.map(|(epoch, members, removed)| CommitteeChange {
                            epoch,
                            term: epoch / 2,
                            members: members.clone(),
                            removed,
                            added: members,
                        }),
                    },
                    certificate: Certificate {
                        kind: cpc_types::VoteKind::Finalize,
                        view: 3,
                        votes: votes.clone(),
                    },
                    txs,
                    tickets: tickets
                        .into_iter()
                        .map(|(candidate, term)| Ticket {
                            candidate,
                            term,
                            proof: VrfProof([7; 80]),
                        })
                        .collect(),
                    parent_votes: Certificate {
                        kind: cpc_types::VoteKind::Notarize,
                        view: 2,
                        votes,
                    },
                }
            },
        )
}

fn canonical<T: Encode + Decode + PartialEq + std::fmt::Debug>(
    x: &T,
    flip: (usize, u8),
) -> Result<(), TestCaseError> {
    let bytes = x.encode();
    prop_assert_eq!(&decode_exact::<T>(&bytes).unwrap(), x);
    // Trailing bytes and truncation are refused.
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert_eq!(
        decode_exact::<T>(&longer).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
    if !bytes.is_empty() {
        prop_assert!(decode_exact::<T>(&bytes[..bytes.len() - 1]).is_err());
    }
    // A changed byte either fails to decode or is a different value that encodes to exactly
    // the changed bytes: there is never a second encoding of one value.
    let mut mutated = bytes;
    let i = flip.0 % mutated.len().max(1);
    if let Some(b) = mutated.get_mut(i) {
        *b ^= flip.1.max(1);
        if let Ok(y) = decode_exact::<T>(&mutated) {
            prop_assert_eq!(y.encode(), mutated);
            prop_assert_ne!(&y, x);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn transactions_are_canonical(tx in signed(), flip in (any::<usize>(), any::<u8>())) {
        canonical(&tx, flip)?;
    }

    #[test]
    fn blocks_are_canonical(b in block(), flip in (any::<usize>(), any::<u8>())) {
        canonical(&b, flip)?;
        prop_assert_eq!(b.header.hash(), decode_exact::<Block>(&b.encode()).unwrap().header.hash());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(tx) = decode_exact::<SignedTransaction>(&bytes) {
            prop_assert_eq!(tx.encode(), bytes.clone());
        }
        if let Ok(b) = decode_exact::<Block>(&bytes) {
            prop_assert_eq!(b.encode(), bytes);
        }
    }
}

#[test]
fn signatures_cover_the_chain_and_every_field() {
    let key = SecretKey::from_bytes([5; 32]);
    let tx = Transaction {
        chain_id: 1,
        sender: key.public(),
        nonce: 0,
        max_fee: 10,
        kind: TxKind::DappStake { amount: 5 },
    };
    let stx = tx.clone().sign(&key);
    assert!(key.public().verify(&tx.signing_bytes(), &stx.signature));
    let mut other = tx.clone();
    other.chain_id = 2;
    assert!(
        !key.public().verify(&other.signing_bytes(), &stx.signature),
        "a signature must not replay across chains"
    );
    assert_ne!(other.id(), tx.id());
}

#[test]
fn oversized_transactions_are_refused_before_decoding() {
    let big = vec![0u8; cpc_types::MAX_TX_BYTES + 1];
    assert!(matches!(
        SignedTransaction::decode_untrusted(&big),
        Err(DecodeError::TooLong { .. })
    ));
}
