//! The economics, driven through signed transactions as the chain executes them.

use std::collections::BTreeMap;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_state::{
    BlockEnv, Genesis, GenesisError, GenesisSideGroup, GenesisValidator, Params, State, TxError,
};
use cpc_types::{
    Address, SecretKey, SignedTransaction, TOTAL_SUPPLY, Transaction, TxKind, UNITS_PER_CPC,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const CPC: u64 = UNITS_PER_CPC;
const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MIN: u64 = 60_000;
const DAY: u64 = 86_400_000;

struct World {
    state: State,
    keys: Vec<SecretKey>,
    validator: SecretKey,
    foundation: Address,
    nonces: BTreeMap<Address, u64>,
}

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes([i; 32])
}

fn world(tweak: impl FnOnce(&mut Params)) -> World {
    let keys: Vec<SecretKey> = (1..=4).map(key).collect();
    let validator = key(100);
    let foundation = key(200).address();
    let mut params = Params::with_foundation(foundation);
    params.free_tx_per_day = 3;
    params.rate_limit_per_minute = 1000;
    params.base_fee = 1000;
    tweak(&mut params);
    let mut allocations = BTreeMap::new();
    for k in &keys {
        allocations.insert(k.address(), 1_000_000 * CPC);
    }
    let deposit = 10_000 * CPC;
    allocations.insert(foundation, TOTAL_SUPPLY - 4 * 1_000_000 * CPC - deposit);
    let genesis = Genesis {
        chain_id: 7,
        timestamp_ms: T0,
        params,
        allocations,
        validators: vec![GenesisValidator {
            key: validator.public(),
            vrf_key: validator.public(),
            endpoint: "/ip4/127.0.0.1/tcp/1".into(),
            deposit,
        }],
        side_groups: Vec::new(),
    };
    World {
        state: State::from_genesis(&genesis).unwrap(),
        keys,
        validator,
        foundation,
        nonces: BTreeMap::new(),
    }
}

impl World {
    fn env(&self, t: u64) -> BlockEnv {
        BlockEnv {
            height: 1,
            timestamp_ms: t,
            proposer: self.validator.address(),
        }
    }

    fn tx(&mut self, who: usize, max_fee: u64, kind: TxKind) -> SignedTransaction {
        let k = &self.keys[who];
        let n = self.nonces.entry(k.address()).or_default();
        let tx = Transaction {
            chain_id: 7,
            sender: k.public(),
            nonce: *n,
            max_fee,
            kind,
        };
        tx.sign(k)
    }

    fn send(
        &mut self,
        t: u64,
        who: usize,
        max_fee: u64,
        kind: TxKind,
    ) -> Result<cpc_types::TxReceipt, TxError> {
        let stx = self.tx(who, max_fee, kind);
        let env = self.env(t);
        self.state.begin_block(&env);
        let r = self.state.apply_tx(&env, &stx);
        if r.is_ok() {
            *self.nonces.get_mut(&stx.sender()).unwrap() += 1;
        }
        r
    }

    fn transfer(
        &mut self,
        t: u64,
        who: usize,
        max_fee: u64,
    ) -> Result<cpc_types::TxReceipt, TxError> {
        let to = self.keys[(who + 1) % self.keys.len()].address();
        self.send(t, who, max_fee, TxKind::Transfer { to, amount: 1 })
    }

    fn balance(&self, i: usize) -> u64 {
        self.state.account(&self.keys[i].address()).balance
    }
}

#[test]
fn genesis_must_allocate_exactly_the_supply() {
    let w = world(|_| {});
    let _ = w;
    let foundation = key(200).address();
    let mut g = Genesis {
        chain_id: 1,
        timestamp_ms: 0,
        params: Params::with_foundation(foundation),
        allocations: [(foundation, TOTAL_SUPPLY - 1)].into_iter().collect(),
        validators: vec![GenesisValidator::new(key(1).public(), 0)],
        side_groups: Vec::new(),
    };
    assert!(matches!(
        State::from_genesis(&g),
        Err(GenesisError::Supply { .. })
    ));
    g.allocations.insert(foundation, TOTAL_SUPPLY);
    assert!(State::from_genesis(&g).is_ok());
    g.params.foundation_fee_percent = 101;
    assert!(matches!(
        State::from_genesis(&g),
        Err(GenesisError::Param(_))
    ));
    g.params.foundation_fee_percent = 20;
    g.validators.clear();
    assert_eq!(
        State::from_genesis(&g).unwrap_err(),
        GenesisError::NoValidators
    );
}

#[test]
fn genesis_side_groups_are_on_chain_and_absent_ones_keep_the_hash() {
    let foundation = key(200).address();
    let mut g = Genesis {
        chain_id: 1,
        timestamp_ms: 0,
        params: Params::with_foundation(foundation),
        allocations: [(foundation, TOTAL_SUPPLY)].into_iter().collect(),
        validators: vec![GenesisValidator::new(key(1).public(), 0)],
        side_groups: Vec::new(),
    };
    let plain = g.hash();
    let bytes = cpc_types::Encode::encode(&g);
    assert_eq!(
        cpc_types::codec::decode_exact::<Genesis>(&bytes).unwrap(),
        g
    );
    let mut gateways = vec![key(1).public(), key(2).public()];
    gateways.sort();
    let id = cpc_types::Hash32([5; 32]);
    g.side_groups.push(GenesisSideGroup {
        id,
        owner: foundation,
        gateways: gateways.clone(),
        reward_per_anchor: 5,
        reward_pool: 1000,
    });
    assert_ne!(g.hash(), plain);
    // The pool is part of the supply.
    assert!(matches!(
        State::from_genesis(&g),
        Err(GenesisError::Supply { .. })
    ));
    *g.allocations.get_mut(&foundation).unwrap() -= 1000;
    let bytes = cpc_types::Encode::encode(&g);
    assert_eq!(
        cpc_types::codec::decode_exact::<Genesis>(&bytes).unwrap(),
        g
    );
    let state = State::from_genesis(&g).unwrap();
    let on_chain = state.side_group(&id).unwrap();
    assert_eq!(
        (
            on_chain.owner,
            on_chain.gateways,
            on_chain.reward_per_anchor,
            on_chain.pool
        ),
        (foundation, gateways, 5, 1000)
    );
    // Unsorted gateways are refused with a clear error.
    g.side_groups[0].gateways.reverse();
    assert!(matches!(
        State::from_genesis(&g),
        Err(GenesisError::Param(m)) if m.contains("sorted")
    ));
}

#[test]
fn free_quota_then_fee_and_daily_reset() {
    let mut w = world(|_| {});
    for i in 0..3 {
        let r = w.transfer(T0 + i * MIN, 0, 0).unwrap();
        assert!(r.free && r.fee == 0, "tx {i} should be free");
    }
    // The fourth of the day pays, and only with a high enough max_fee.
    let before = w.state.reference_root();
    assert_eq!(
        w.transfer(T0 + 5 * MIN, 0, 999),
        Err(TxError::FeeTooHigh {
            fee: 1000,
            max_fee: 999
        })
    );
    assert_eq!(
        w.state.reference_root(),
        before,
        "a rejected transaction changes nothing"
    );
    let r = w.transfer(T0 + 5 * MIN, 0, 1000).unwrap();
    assert_eq!((r.fee, r.free), (1000, false));
    assert_eq!(w.state.quota_left(&w.keys[0].address(), T0 + 5 * MIN), 0);
    // Next day: free again.
    assert_eq!(w.state.quota_left(&w.keys[0].address(), T0 + DAY), 3);
    assert!(w.transfer(T0 + DAY, 0, 0).unwrap().free);
}

#[test]
fn sending_faster_than_the_rate_limit_pays_the_fee() {
    let mut w = world(|p| {
        p.free_tx_per_day = 1000;
        p.rate_limit_per_minute = 2;
    });
    assert!(w.transfer(T0, 0, 0).unwrap().free);
    assert!(w.transfer(T0 + 1, 0, 0).unwrap().free);
    assert_eq!(w.transfer(T0 + 2, 0, 5000).unwrap().fee, 1000);
    assert!(
        w.transfer(T0 + MIN, 0, 0).unwrap().free,
        "a new minute resets the window"
    );
}

#[test]
fn fees_are_split_between_foundation_and_proposer() {
    let mut w = world(|p| {
        p.free_tx_per_day = 0;
        p.base_fee = 1001;
        p.foundation_fee_percent = 20;
    });
    let f0 = w.state.account(&w.foundation).balance;
    let v0 = w.state.account(&w.validator.address()).balance;
    let s0 = w.balance(0);
    w.transfer(T0, 0, 1001).unwrap();
    let to_foundation = w.state.account(&w.foundation).balance - f0;
    let to_proposer = w.state.account(&w.validator.address()).balance - v0;
    assert_eq!(to_foundation, 200); // floor(1001 * 20 / 100)
    assert_eq!(to_proposer, 801);
    assert_eq!(s0 - w.balance(0), 1001 + 1);
}

#[test]
fn nonces_and_funds_are_enforced() {
    let mut w = world(|_| {});
    let stx = w.tx(
        0,
        0,
        TxKind::Transfer {
            to: key(9).address(),
            amount: 1,
        },
    );
    let env = w.env(T0);
    w.state.apply_tx(&env, &stx).unwrap();
    assert_eq!(
        w.state.apply_tx(&env, &stx),
        Err(TxError::BadNonce {
            expected: 1,
            got: 0
        })
    );
    let all = w.balance(1) + 1;
    let err = w
        .send(
            T0,
            1,
            0,
            TxKind::Transfer {
                to: key(9).address(),
                amount: all,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::InsufficientFunds { .. }), "{err}");
    assert_eq!(
        w.state.account(&w.keys[1].address()).nonce,
        0,
        "failed tx does not bump the nonce"
    );
    let wrong_chain = Transaction {
        chain_id: 8,
        sender: w.keys[2].public(),
        nonce: 0,
        max_fee: 0,
        kind: TxKind::DappStake { amount: 1 },
    }
    .sign(&w.keys[2]);
    assert!(matches!(
        w.state.apply_tx(&env, &wrong_chain),
        Err(TxError::WrongChain { .. })
    ));
}

#[test]
fn unfunded_accounts_cannot_send_even_for_free() {
    let mut w = world(|_| {});
    let fresh = SecretKey::from_bytes([77; 32]);
    let tx = Transaction {
        chain_id: 7,
        sender: fresh.public(),
        nonce: 0,
        max_fee: 0,
        kind: TxKind::DappStake { amount: 1 },
    }
    .sign(&fresh);
    let env = w.env(T0);
    assert!(matches!(
        w.state.apply_tx(&env, &tx),
        Err(TxError::InsufficientFunds {
            needed: 1000,
            available: 0
        })
    ));
    // Paid transactions do not use up the free quota.
    for i in 0..3 {
        assert!(w.transfer(T0 + i, 0, 0).unwrap().free);
    }
    assert!(!w.transfer(T0 + 4, 0, 1000).unwrap().free);
    assert_eq!(w.state.account(&w.keys[0].address()).sent_today, 3);
}

#[test]
fn unstaked_cpc_is_spendable_from_the_next_day() {
    let mut w = world(|_| {});
    let a = w.keys[0].address();
    w.send(T0, 0, 0, TxKind::DappStake { amount: 100 * CPC })
        .unwrap();
    let before = w.state.account(&a).balance;
    w.send(T0, 0, 0, TxKind::DappUnstake { amount: 100 * CPC })
        .unwrap();
    let acct = w.state.account(&a);
    assert_eq!(
        (acct.balance, acct.unbonding, acct.dapp_stake),
        (before, 100 * CPC, 0)
    );
    // Same day: the unstaked CPC cannot move.
    let all = acct.balance + 1;
    assert!(matches!(
        w.send(
            T0 + MIN,
            0,
            0,
            TxKind::Transfer {
                to: key(9).address(),
                amount: all
            }
        ),
        Err(TxError::InsufficientFunds { .. })
    ));
    // Next day it can.
    w.send(
        T0 + DAY,
        0,
        0,
        TxKind::Transfer {
            to: key(9).address(),
            amount: all,
        },
    )
    .unwrap();
    assert_eq!(w.state.account(&a).unbonding, 0);
}

#[test]
fn dapp_stake_raises_quota_in_proportion() {
    let mut w = world(|p| p.dapp_stake_per_free_tx = 10 * CPC);
    let a = w.keys[0].address();
    assert_eq!(w.state.quota_left(&a, T0), 3);
    w.send(T0, 0, 0, TxKind::DappStake { amount: 1000 * CPC })
        .unwrap();
    assert_eq!(w.state.account(&a).dapp_stake, 1000 * CPC);
    // 3 ordinary + 100 from stake, one already used by the stake transaction.
    assert_eq!(w.state.quota_left(&a, T0), 102);
    w.send(T0, 0, 0, TxKind::DappUnstake { amount: 400 * CPC })
        .unwrap();
    assert_eq!(w.state.quota_left(&a, T0), 3 + 60 - 2);
    assert!(matches!(
        w.send(T0, 0, 0, TxKind::DappUnstake { amount: 601 * CPC }),
        Err(TxError::InsufficientFunds { .. })
    ));
}

#[test]
fn leases_pay_the_lender_and_return_the_stake_when_they_end() {
    let mut w = world(|p| p.dapp_stake_per_free_tx = 10 * CPC);
    let (lender, dapp) = (w.keys[0].address(), w.keys[1].address());
    let l0 = w.balance(0);
    let offer_tx = w.tx(
        0,
        0,
        TxKind::LeaseOffer {
            amount: 500 * CPC,
            fee_per_day: 2 * CPC,
            max_days: 10,
        },
    );
    let offer = offer_tx.id();
    w.state.apply_tx(&w.env(T0), &offer_tx).unwrap();
    *w.nonces.get_mut(&lender).unwrap() += 1;
    assert_eq!(w.balance(0), l0 - 500 * CPC, "offered stake is locked");

    assert!(matches!(
        w.send(T0, 1, 0, TxKind::LeaseTake { offer, days: 11 }),
        Err(TxError::Invalid(_))
    ));
    let d0 = w.balance(1);
    w.send(T0, 1, 0, TxKind::LeaseTake { offer, days: 3 })
        .unwrap();
    assert_eq!(
        w.balance(1),
        d0 - 6 * CPC,
        "the lessee pays 3 days up front"
    );
    assert_eq!(
        w.balance(0),
        l0 - 500 * CPC + 6 * CPC,
        "the lender gets the fee"
    );
    assert_eq!(w.state.account(&dapp).leased_in, 500 * CPC);
    assert_eq!(w.state.quota_left(&dapp, T0), 3 + 50 - 1);
    assert!(matches!(
        w.send(T0, 0, 0, TxKind::LeaseCancel { offer }),
        Err(TxError::NotAllowed(_))
    ));
    assert!(matches!(
        w.send(T0, 2, 0, TxKind::LeaseTake { offer, days: 1 }),
        Err(TxError::NotAllowed(_))
    ));

    // Day 2: still leased. Day 3: the first block returns the stake.
    w.state.begin_block(&w.env(T0 + 2 * DAY));
    assert_eq!(w.state.account(&dapp).leased_in, 500 * CPC);
    w.state.begin_block(&w.env(T0 + 3 * DAY));
    assert_eq!(w.state.account(&dapp).leased_in, 0);
    assert_eq!(w.balance(0), l0 + 6 * CPC);
    assert!(w.state.lease_offer(&offer).is_none());
}

#[test]
fn an_untaken_offer_can_be_cancelled_by_its_lender_only() {
    let mut w = world(|_| {});
    let offer_tx = w.tx(
        0,
        0,
        TxKind::LeaseOffer {
            amount: 5 * CPC,
            fee_per_day: 1,
            max_days: 1,
        },
    );
    let offer = offer_tx.id();
    let l0 = w.balance(0);
    w.state.apply_tx(&w.env(T0), &offer_tx).unwrap();
    *w.nonces.get_mut(&w.keys[0].address()).unwrap() += 1;
    assert!(matches!(
        w.send(T0, 1, 0, TxKind::LeaseCancel { offer }),
        Err(TxError::NotAllowed(_))
    ));
    w.send(T0, 0, 0, TxKind::LeaseCancel { offer }).unwrap();
    assert_eq!(w.balance(0), l0);
}

fn supply(state: &State, addrs: &[Address], foundation: Address, validator: Address) -> u128 {
    let mut total = 0u128;
    for a in addrs.iter().chain([&foundation, &validator]) {
        let acct = state.account(a);
        total +=
            u128::from(acct.balance) + u128::from(acct.dapp_stake) + u128::from(acct.unbonding);
    }
    total
}

#[test]
fn supply_is_conserved_and_roots_agree_with_the_reference() {
    use rand::Rng;
    let mut w = world(|p| {
        p.free_tx_per_day = 2;
        p.base_fee = 777;
    });
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let addrs: Vec<Address> = w.keys.iter().map(|k| k.address()).collect();
    let initial = supply(&w.state, &addrs, w.foundation, w.validator.address());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut offers = Vec::new();
    let mut stored: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in w.state.take_diff() {
        stored.insert(k, v.unwrap());
    }
    for step in 0..400u64 {
        let t = T0 + step * 7 * MIN;
        let who = rng.gen_range(0..4);
        let kind = match rng.gen_range(0..5) {
            0 | 1 => TxKind::Transfer {
                to: addrs[rng.gen_range(0..4)],
                amount: rng.gen_range(1..1000 * CPC),
            },
            2 => TxKind::DappStake {
                amount: rng.gen_range(1..100 * CPC),
            },
            3 => TxKind::DappUnstake {
                amount: rng.gen_range(1..50 * CPC),
            },
            _ => {
                if offers.is_empty() || rng.gen_bool(0.5) {
                    TxKind::LeaseOffer {
                        amount: rng.gen_range(1..100 * CPC),
                        fee_per_day: rng.gen_range(0..CPC),
                        max_days: 3,
                    }
                } else {
                    TxKind::LeaseTake {
                        offer: offers[rng.gen_range(0..offers.len())],
                        days: rng.gen_range(1..4),
                    }
                }
            }
        };
        let stx = w.tx(who, 10_000, kind.clone());
        let env = w.env(t);
        w.state.begin_block(&env);
        if w.state.apply_tx(&env, &stx).is_ok() {
            *w.nonces.get_mut(&stx.sender()).unwrap() += 1;
            if matches!(kind, TxKind::LeaseOffer { .. }) {
                offers.push(stx.id());
            }
        }
        for (k, v) in w.state.take_diff() {
            match v {
                Some(v) => stored.insert(k, v),
                None => stored.remove(&k),
            };
        }
        if step % 50 == 0 {
            assert_eq!(w.state.root(&accel), w.state.reference_root());
        }
    }
    // Locked in open offers and leases.
    let locked: u128 = offers
        .iter()
        .filter_map(|o| w.state.lease_offer(o))
        .map(|o| u128::from(o.amount))
        .sum();
    assert_eq!(
        supply(&w.state, &addrs, w.foundation, w.validator.address()) + locked,
        initial
    );

    // The stored diffs rebuild the same state.
    let mut rebuilt = State::from_entries(stored).unwrap();
    assert_eq!(rebuilt.root(&accel), w.state.root(&accel));
}

#[test]
fn data_records_and_grants_are_queryable_and_revocation_removes_the_grant() {
    use cpc_types::{AccessPolicy, DataRecord, Hash32};
    let mut w = world(|p| p.free_tx_per_day = 100);
    let stream = Hash32([5; 32]);
    let record = |first: u64, last: u64| {
        TxKind::DataRecord(DataRecord {
            stream_id: stream,
            first_interval: first,
            last_interval: last,
            root: Hash32([first as u8; 32]),
            policy: AccessPolicy::Private,
            capsule: vec![1, 2, 3],
        })
    };
    w.send(T0, 0, CPC, record(0, 9)).unwrap();
    w.send(T0 + 1, 0, CPC, record(20, 29)).unwrap();
    assert!(
        w.send(T0 + 2, 1, CPC, record(30, 39)).is_err(),
        "not the owner"
    );
    let s = &w.state;
    assert_eq!(s.stream(&stream).unwrap().owner, w.keys[0].address());
    assert_eq!(s.stream(&stream).unwrap().records, 2);
    assert_eq!(s.data_record(&stream, 0).unwrap().first_interval, 0);
    assert_eq!(s.data_record(&stream, 9).unwrap().first_interval, 0);
    assert!(s.data_record(&stream, 10).is_none());
    assert_eq!(s.data_record(&stream, 25).unwrap().first_interval, 20);
    assert!(s.data_record(&Hash32([6; 32]), 0).is_none());
    // Listing: by stream from an interval, the latest, and all with a cursor.
    let firsts = |v: Vec<DataRecord>| v.iter().map(|r| r.first_interval).collect::<Vec<_>>();
    assert_eq!(firsts(s.data_records(&stream, 5, 10)), [0, 20]);
    assert_eq!(firsts(s.data_records(&stream, 10, 10)), [20]);
    assert_eq!(firsts(s.data_records(&stream, 0, 1)), [0]);
    assert_eq!(s.latest_record(&stream).unwrap().last_interval, 29);
    assert!(s.latest_record(&Hash32([6; 32])).is_none());
    assert_eq!(firsts(s.all_data_records(None, 10)), [0, 20]);
    assert_eq!(firsts(s.all_data_records(Some((stream, 0)), 10)), [20]);
    assert!(s.all_data_records(Some((stream, 20)), 10).is_empty());
    let grantee = w.keys[2].address();
    let grant = TxKind::Grant {
        stream_id: stream,
        grantee,
        first_interval: 3,
        last_interval: 7,
    };
    w.send(T0 + 3, 0, CPC, grant).unwrap();
    let g = w.state.grant(&stream, &grantee).unwrap();
    assert_eq!((g.first_interval, g.last_interval), (3, 7));
    w.send(
        T0 + 4,
        0,
        CPC,
        TxKind::Revoke {
            stream_id: stream,
            grantee,
        },
    )
    .unwrap();
    assert!(w.state.grant(&stream, &grantee).is_none());
}

#[test]
fn side_chain_groups_locks_and_anchors() {
    use cpc_types::{
        Endorsement, Hash32, MisbehaviourEvidence, SideAnchor, SideReward, SignedMessage,
        VertexHeader,
    };
    let mut w = world(|_| {});
    let group_id = Hash32([5; 32]);
    // Gateways: users 2 to 4 and the validator (n = 4, quorum 3); user 1 owns the group
    // and submits everything, so only the pool moves the gateways' balances.
    let mut gk: Vec<SecretKey> = [2, 3, 4, 100].into_iter().map(key).collect();
    gk.sort_by_key(SecretKey::public);
    let gateways: Vec<_> = gk.iter().map(SecretKey::public).collect();
    let v = gk
        .iter()
        .position(|k| k.public() == w.validator.public())
        .unwrap();
    let side = |sequence: u64, amounts: [u64; 4]| SideAnchor {
        group_id,
        sequence,
        frontier: vec![Hash32([1; 32]), Hash32([sequence as u8 + 1; 32])],
        root: Hash32([sequence as u8; 32]),
        confirmed_vertices: sequence * 10,
        rewards: gateways
            .iter()
            .zip(amounts)
            .map(|(g, amount)| SideReward {
                gateway: *g,
                score: amount / CPC,
                amount,
            })
            .collect(),
    };
    let endorse = |a: &SideAnchor, by: &[usize]| -> Vec<Endorsement> {
        by.iter()
            .map(|&i| Endorsement {
                gateway: gk[i].public(),
                signature: gk[i].sign(&a.signing_bytes()),
            })
            .collect()
    };
    let anchor = |a: SideAnchor, by: &[usize]| TxKind::Anchor {
        endorsements: endorse(&a, by),
        anchor: a,
    };
    let group = |gateways: Vec<_>, fund| TxKind::SideGroup {
        group_id,
        gateways,
        reward_per_anchor: 100 * CPC,
        fund,
    };
    let fee = 1000;
    // Locks and anchors need a declared group.
    let lock = TxKind::SideLock {
        group_id,
        account: Address([9; 20]),
        amount: 50 * CPC,
    };
    assert!(matches!(
        w.send(T0, 0, fee, lock.clone()),
        Err(TxError::NotFound { .. })
    ));
    assert!(matches!(
        w.send(T0, 0, fee, anchor(side(1, [0; 4]), &[0, 1, 2])),
        Err(TxError::NotFound { .. })
    ));
    let unsorted: Vec<_> = gateways.iter().rev().copied().collect();
    assert!(matches!(
        w.send(T0, 0, fee, group(unsorted, 0)),
        Err(TxError::Invalid(_))
    ));
    let before = w.balance(0);
    w.send(T0, 0, fee, group(gateways.clone(), 150 * CPC))
        .unwrap();
    assert!(w.balance(0) <= before - 150 * CPC);
    let g = w.state.side_group(&group_id).unwrap();
    assert_eq!((g.pool, g.reward_per_anchor), (150 * CPC, 100 * CPC));
    // Only the owner changes the group.
    assert!(matches!(
        w.send(T0, 3, fee, group(gateways.clone(), 0)),
        Err(TxError::NotAllowed(_))
    ));
    // A lock moves CPC from the sender into the group.
    let before = w.balance(0);
    w.send(T0 + MIN, 0, fee, lock).unwrap();
    assert!(w.balance(0) <= before - 50 * CPC);
    assert_eq!(w.state.side_group(&group_id).unwrap().locked, 50 * CPC);
    // Anchors need a quorum of valid endorsements by distinct gateways, in key order.
    let first = side(1, [40 * CPC, 30 * CPC, 30 * CPC, 0]);
    assert!(matches!(
        w.send(T0, 0, fee, anchor(first.clone(), &[0, 1])),
        Err(TxError::NotAllowed(_))
    ));
    assert!(matches!(
        w.send(T0, 0, fee, anchor(first.clone(), &[1, 0, 2])),
        Err(TxError::Invalid(_))
    ));
    let mut outsider = endorse(&first, &[0, 1, 2]);
    outsider[2] = Endorsement {
        gateway: key(1).public(),
        signature: key(1).sign(&first.signing_bytes()),
    };
    outsider.sort_by_key(|e| e.gateway);
    assert!(matches!(
        w.send(
            T0,
            0,
            fee,
            TxKind::Anchor {
                anchor: first.clone(),
                endorsements: outsider
            }
        ),
        Err(TxError::NotAllowed(_))
    ));
    // Endorsements of other bytes, rewards over the group's limit or out of order.
    let mut other = first.clone();
    other.root = Hash32([9; 32]);
    assert!(matches!(
        w.send(
            T0,
            0,
            fee,
            TxKind::Anchor {
                anchor: first.clone(),
                endorsements: endorse(&other, &[0, 1, 2])
            }
        ),
        Err(TxError::Invalid(_))
    ));
    assert!(matches!(
        w.send(
            T0,
            0,
            fee,
            anchor(side(1, [40 * CPC, 40 * CPC, 30 * CPC, 0]), &[0, 1, 2])
        ),
        Err(TxError::Invalid(_))
    ));
    let mut swapped = first.clone();
    swapped.rewards.swap(0, 1);
    assert!(matches!(
        w.send(T0, 0, fee, anchor(swapped, &[0, 1, 2])),
        Err(TxError::Invalid(_))
    ));
    // The first anchor is 1 and none is skipped.
    assert!(matches!(
        w.send(T0, 0, fee, anchor(side(2, [0; 4]), &[0, 1, 2])),
        Err(TxError::Invalid(_))
    ));
    let paid_before: Vec<u64> = gk
        .iter()
        .map(|k| w.state.account(&k.address()).balance)
        .collect();
    w.send(T0, 0, fee, anchor(first, &[0, 1, 3])).unwrap();
    let gained = |w: &World, before: &[u64]| -> Vec<u64> {
        gk.iter()
            .zip(before)
            .map(|(k, b)| w.state.account(&k.address()).balance - b)
            .collect()
    };
    assert_eq!(gained(&w, &paid_before), [40 * CPC, 30 * CPC, 30 * CPC, 0]);
    assert_eq!(w.state.side_group(&group_id).unwrap().pool, 50 * CPC);
    assert!(matches!(
        w.send(T0, 0, fee, anchor(side(3, [0; 4]), &[0, 1, 2])),
        Err(TxError::Invalid(_))
    ));
    // A frontier must be sorted, unique and no wider than the group.
    for frontier in [
        vec![],
        vec![Hash32([3; 32]), Hash32([2; 32])],
        vec![Hash32([1; 32]), Hash32([1; 32])],
        (1..=5).map(|i| Hash32([i; 32])).collect(),
    ] {
        let mut a = side(2, [0; 4]);
        a.frontier = frontier;
        assert!(matches!(
            w.send(T0, 0, fee, anchor(a, &[0, 1, 2])),
            Err(TxError::Invalid(_))
        ));
    }

    // A gateway that signs two vertices with one sequence number: the evidence slashes
    // it (here it is also a validator) and it is paid no more rewards.
    let header = |sequence: u64, tx: u8| VertexHeader {
        group_id,
        creator: gk[v].public(),
        sequence,
        timestamp_ms: 5,
        parents: vec![Hash32([7; 32])],
        txs_hash: Hash32([tx; 32]),
    };
    let signed = |k: &SecretKey, h: &VertexHeader| SignedMessage {
        payload: h.signing_bytes(),
        signature: k.sign(&h.signing_bytes()),
    };
    let evidence = |k: &SecretKey, a: &VertexHeader, b: &VertexHeader| {
        TxKind::Evidence(MisbehaviourEvidence {
            offender: k.public(),
            first: signed(k, a),
            second: signed(k, b),
        })
    };
    let vk = &gk[v];
    for bad in [
        evidence(vk, &header(3, 1), &header(4, 2)),
        evidence(vk, &header(3, 1), &header(3, 1)),
        evidence(&key(1), &header(3, 1), &header(3, 2)),
    ] {
        assert!(matches!(w.send(T0, 0, fee, bad), Err(TxError::Invalid(_))));
    }
    let reporter = w.balance(0);
    w.send(T0, 0, fee, evidence(vk, &header(3, 1), &header(3, 2)))
        .unwrap();
    assert!(
        w.balance(0) >= reporter + 1000 * CPC - fee,
        "a tenth of the deposit"
    );
    let val = w.state.validator(&vk.address()).unwrap();
    assert_eq!((val.credit, val.deposit), (0, 0));
    assert_eq!(w.state.side_offender(&group_id, &vk.address()), Some(1));
    assert!(matches!(
        w.send(T0, 0, fee, evidence(vk, &header(5, 1), &header(5, 2))),
        Err(TxError::NotAllowed(_))
    ));
    // The pool no longer covers what is due: each is paid in proportion, the offender
    // nothing.
    let mut amounts = [40 * CPC, 40 * CPC, 10 * CPC, 10 * CPC];
    amounts[v] = 10 * CPC;
    let before: Vec<u64> = gk
        .iter()
        .map(|k| w.state.account(&k.address()).balance)
        .collect();
    w.send(T0, 0, fee, anchor(side(2, amounts), &[0, 1, 2, 3]))
        .unwrap();
    let mut got = gained(&w, &before);
    // The validator also proposed the block: it keeps the fee's proposer share.
    got[v] -= fee - fee / 5;
    let due: u64 = (0..4).filter(|&i| i != v).map(|i| amounts[i]).sum();
    for i in 0..4 {
        let expect = if i == v {
            0
        } else {
            amounts[i] * 5 / (due / (10 * CPC))
        };
        assert_eq!(got[i], expect, "gateway {i}");
    }
    let paid: u64 = got.iter().sum();
    assert_eq!(w.state.side_group(&group_id).unwrap().pool, 50 * CPC - paid);
    let a = w.state.side_anchor(&group_id).unwrap();
    assert_eq!((a.sequence, a.confirmed_vertices), (2, 20));
    assert_eq!(a.submitter, w.keys[0].address());
    // Only the owner retires a gateway: one of the group's, at most f = 1 of four. Sending
    // the declaration again keeps the retirement.
    let retire = |gateway| TxKind::SideRetire { group_id, gateway };
    assert!(matches!(
        w.send(T0, 3, fee, retire(gateways[3])),
        Err(TxError::NotAllowed(_))
    ));
    assert!(matches!(
        w.send(T0, 0, fee, retire(key(1).public())),
        Err(TxError::Invalid(_))
    ));
    w.send(T0, 0, fee, retire(gateways[3])).unwrap();
    let twice = w.send(T0, 0, fee, retire(gateways[3])).unwrap_err();
    assert!(twice.to_string().contains("retired already"), "{twice}");
    let second = w.send(T0, 0, fee, retire(gateways[0])).unwrap_err();
    assert!(matches!(second, TxError::NotAllowed(ref m) if m.contains("at most 1")));
    w.send(T0, 0, fee, group(gateways.clone(), 0)).unwrap();
    assert_eq!(
        w.state.side_group(&group_id).unwrap().retired,
        vec![gateways[3]]
    );
    // A retired gateway's endorsement does not count towards the quorum.
    let short = w
        .send(T0, 0, fee, anchor(side(3, [0; 4]), &[0, 1, 3]))
        .unwrap_err();
    assert!(
        matches!(short, TxError::NotAllowed(ref m) if m.contains("2 endorsements by gateways not retired")),
        "{short}"
    );
    w.send(T0, 0, fee, anchor(side(3, [0; 4]), &[0, 1, 2, 3]))
        .unwrap();
    // The gateways stay those the group was declared with: the running ones sign its
    // history, and another set would refuse their anchors. Nothing changes on a refusal.
    let before = w.state.side_group(&group_id).unwrap();
    let mut replaced = gateways[..3].to_vec();
    replaced.push(key(1).public());
    replaced.sort();
    for other in [gateways[..3].to_vec(), replaced, {
        let mut more = gateways.clone();
        more.push(key(1).public());
        more.sort();
        more
    }] {
        let refused = w.send(T0, 0, fee, group(other, 10 * CPC)).unwrap_err();
        assert!(
            matches!(refused, TxError::NotAllowed(ref m) if m.contains("keeps the gateways it was declared with")),
            "{refused}"
        );
    }
    assert_eq!(w.state.side_group(&group_id).unwrap(), before);
    let funded = w.send(T0, 0, fee, group(gateways.clone(), 10 * CPC));
    funded.unwrap();
    let after = w.state.side_group(&group_id).unwrap();
    assert_eq!(after.pool, before.pool + 10 * CPC);
    assert_eq!(after.retired, vec![gateways[3]]);
}
