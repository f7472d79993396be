//! The chain service: admission, production, queries, restart and replay.

use std::collections::BTreeMap;
use std::sync::Arc;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_chain::{Chain, ChainConfig, Engine, EngineConfig, MempoolConfig, SubmitError, TxStatus};
use cpc_state::{Genesis, GenesisValidator, Params};
use cpc_storage::{Store, StoreConfig};
use cpc_types::{
    Address, SecretKey, SignedTransaction, TOTAL_SUPPLY, Transaction, TxKind, UNITS_PER_CPC,
};

const T0: u64 = 1_767_225_600_000;

fn genesis(validator: &SecretKey, users: &[SecretKey]) -> Genesis {
    let foundation = SecretKey::from_bytes([200; 32]).address();
    let mut allocations = BTreeMap::new();
    for u in users {
        allocations.insert(u.address(), 1_000 * UNITS_PER_CPC);
    }
    let deposit = 10_000 * UNITS_PER_CPC;
    let used: u64 = allocations.values().sum();
    allocations.insert(foundation, TOTAL_SUPPLY - used - deposit);
    let mut params = Params::with_foundation(foundation);
    params.max_block_txs = 50;
    Genesis {
        chain_id: 3,
        timestamp_ms: T0,
        params,
        allocations,
        validators: vec![GenesisValidator::new(validator.public(), deposit)],
        side_groups: Vec::new(),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    validator: SecretKey,
    users: Vec<SecretKey>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            validator: SecretKey::from_bytes([100; 32]),
            users: (1..=3).map(|i| SecretKey::from_bytes([i; 32])).collect(),
        }
    }

    fn open(&self, mempool: MempoolConfig) -> Arc<Chain> {
        let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
        Chain::open(
            genesis(&self.validator, &self.users),
            &StoreConfig {
                path: self.dir.path().join("db"),
                sync: false,
            },
            accel,
            Some(self.validator.clone()),
            ChainConfig { mempool },
        )
        .map(Arc::new)
        .unwrap()
    }

    fn transfer(&self, from: usize, nonce: u64, to: Address, amount: u64) -> SignedTransaction {
        let k = &self.users[from];
        Transaction {
            chain_id: 3,
            sender: k.public(),
            nonce,
            max_fee: 0,
            kind: TxKind::Transfer { to, amount },
        }
        .sign(k)
    }
}

/// What one block held.
struct Produced {
    height: u64,
    txs: usize,
    dropped: u64,
}

/// Commits the next block the way a node does: through the consensus engine, here of a
/// one-member committee, which proposes, votes and finalizes in one tick.
fn produce(chain: &Arc<Chain>, now: u64) -> Produced {
    let dropped = chain.metrics().txs_dropped_total;
    let config = EngineConfig {
        block_interval_ms: 0,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(chain.clone(), config).unwrap();
    let before = chain.height();
    engine.tick(1, now);
    let height = chain.height();
    assert_eq!(height, before + 1, "the engine committed no block");
    let (block, _) = chain.block(height).unwrap().unwrap();
    assert_eq!(block.certificate.kind, cpc_types::VoteKind::Finalize);
    Produced {
        height,
        txs: block.txs.len(),
        dropped: chain.metrics().txs_dropped_total - dropped,
    }
}

#[test]
fn submitted_transactions_commit_and_survive_a_restart() {
    let f = Fixture::new();
    let to = SecretKey::from_bytes([50; 32]).address();
    let txs: Vec<SignedTransaction> = (0..5).map(|n| f.transfer(0, n, to, 10)).collect();
    let ids: Vec<_> = txs.iter().map(SignedTransaction::id).collect();
    {
        let chain = f.open(MempoolConfig::default());
        assert!(chain.is_producer());
        let results = chain.submit(txs.clone(), T0 + 1000);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(matches!(
            chain.tx_status(&ids[0]).unwrap(),
            TxStatus::Pending { .. }
        ));
        assert_eq!(
            chain.account(&f.users[0].address(), T0 + 1000).next_nonce,
            5
        );
        let p = produce(&chain, T0 + 2000);
        assert_eq!((p.height, p.txs), (1, 5));
        match chain.tx_status(&ids[4]).unwrap() {
            TxStatus::Committed { height, index, .. } => assert_eq!((height, index), (1, 4)),
            other => panic!("{other:?}"),
        }
        assert_eq!(chain.account(&to, T0 + 2000).balance, 50);
        // The same transaction again is refused as committed.
        assert!(matches!(
            chain.submit(vec![txs[0].clone()], T0 + 3000)[0],
            Err(SubmitError::Committed(_))
        ));
    }
    let chain = f.open(MempoolConfig::default());
    assert_eq!(chain.height(), 1);
    assert_eq!(chain.account(&to, T0 + 3000).balance, 50);
    assert!(matches!(
        chain.tx_status(&ids[2]).unwrap(),
        TxStatus::Committed { .. }
    ));
    produce(&chain, T0 + 4000);
    drop(chain);

    let store = Store::open(
        &StoreConfig {
            path: f.dir.path().join("db"),
            sync: false,
        },
        genesis(&f.validator, &f.users).hash(),
    )
    .unwrap();
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let root =
        cpc_chain::replay(&genesis(&f.validator, &f.users), &store, &accel, |_, _| {}).unwrap();
    assert_eq!(root, store.header(2).unwrap().unwrap().0.state_root);
}

#[test]
fn admission_refuses_bad_signatures_nonces_duplicates_and_unfunded_transfers() {
    let f = Fixture::new();
    let chain = f.open(MempoolConfig::default());
    let to = f.users[1].address();
    let mut forged = f.transfer(0, 0, to, 1);
    forged.signature.0[0] ^= 1;
    let good = f.transfer(0, 0, to, 1);
    let too_much = f.transfer(1, 0, to, 1_000_001 * UNITS_PER_CPC);
    let far = f.transfer(2, 10_000, to, 1);
    let wrong_chain = Transaction {
        chain_id: 4,
        ..good.tx.clone()
    }
    .sign(&f.users[0]);
    let r = chain.submit(
        vec![forged, good.clone(), good, too_much, far, wrong_chain],
        T0 + 1,
    );
    assert_eq!(r[0], Err(SubmitError::Signature));
    assert!(r[1].is_ok());
    assert!(matches!(r[2], Err(SubmitError::Duplicate(_))));
    assert!(
        matches!(r[3], Err(SubmitError::Invalid(ref m)) if m.contains("insufficient funds")),
        "{:?}",
        r[3]
    );
    assert!(matches!(r[4], Err(SubmitError::Nonce(_))));
    assert!(matches!(r[5], Err(SubmitError::Invalid(_))));
    // A second transaction with a pending nonce is refused.
    let conflict = f.transfer(0, 0, to, 2);
    assert!(matches!(
        chain.submit(vec![conflict], T0 + 2)[0],
        Err(SubmitError::Nonce(_))
    ));
    let m = chain.metrics();
    assert_eq!((m.txs_admitted_total, m.txs_refused_total), (1, 6));
}

#[test]
fn the_mempool_is_bounded_and_a_flooding_account_cannot_push_others_out() {
    let f = Fixture::new();
    let chain = f.open(MempoolConfig {
        max_txs: 10,
        max_per_account: 8,
        ..MempoolConfig::default()
    });
    let to = f.users[2].address();
    let flood: Vec<_> = (0..9).map(|n| f.transfer(0, n, to, 1)).collect();
    let r = chain.submit(flood, T0);
    assert_eq!(
        r.iter().filter(|x| x.is_ok()).count(),
        8,
        "per-account limit"
    );
    assert!(matches!(r[8], Err(SubmitError::Full(_))));
    // Another account still gets in: the flooder's newest transactions are evicted.
    let others: Vec<_> = (0..3).map(|n| f.transfer(1, n, to, 1)).collect();
    assert!(chain.submit(others, T0).iter().all(Result::is_ok));
    assert_eq!(chain.status().mempool_txs, 10);
    // Blocks are bounded by max_block_txs (50 here) and take the accounts in turn.
    let p = produce(&chain, T0 + 1000);
    assert_eq!(p.txs, 10);
}

#[test]
fn a_transaction_that_fails_at_execution_is_dropped_with_its_reason() {
    let f = Fixture::new();
    let chain = f.open(MempoolConfig::default());
    let to = f.users[1].address();
    // Two transfers that each fit the balance, but not both.
    let a = f.transfer(0, 0, to, 600 * UNITS_PER_CPC);
    let b = f.transfer(0, 1, to, 600 * UNITS_PER_CPC);
    assert!(
        chain
            .submit(vec![a, b.clone()], T0)
            .iter()
            .all(Result::is_ok)
    );
    let c = f.transfer(0, 2, to, 1);
    assert!(chain.submit(vec![c.clone()], T0).iter().all(Result::is_ok));
    let p = produce(&chain, T0 + 1000);
    assert_eq!((p.txs, p.dropped), (1, 1));
    // The account's later transaction waits instead of failing on the nonce.
    assert!(matches!(
        chain.tx_status(&c.id()).unwrap(),
        TxStatus::Pending { .. }
    ));
    match chain.tx_status(&b.id()).unwrap() {
        TxStatus::Rejected { reason } => assert!(reason.contains("insufficient funds"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
