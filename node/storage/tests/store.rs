//! The store: atomic commits, reopening, and refusing foreign data directories.

use cpc_storage::{SideFormat, SideRecord, StorageError, Store, StoreConfig};
use cpc_types::{Block, BlockHeader, Certificate, Hash32, PublicKey, TxReceipt};

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        path: dir.join("db"),
        sync: false,
    }
}

fn block(height: u64) -> Block {
    Block {
        header: BlockHeader {
            chain_id: 1,
            height,
            view: height,
            parent_view: height.saturating_sub(1),
            parent: Hash32([height as u8; 32]),
            timestamp_ms: 1000 + height,
            proposer: PublicKey([1; 32]),
            epoch: 0,
            tx_root: Hash32::ZERO,
            state_root: Hash32([9; 32]),
            vrf_proof: None,
            committee_change: None,
        },
        certificate: Certificate::default(),
        txs: Vec::new(),
        tickets: Vec::new(),
        parent_votes: Certificate::default(),
    }
}

#[test]
fn commits_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let g = Hash32([7; 32]);
    {
        let s = Store::open(&config(dir.path()), g).unwrap();
        assert_eq!(s.head().unwrap(), None);
        s.commit_block(&block(0), &[], &[(b"a".to_vec(), Some(b"1".to_vec()))])
            .unwrap();
        let r = TxReceipt {
            tx: Hash32([3; 32]),
            fee: 5,
            free: false,
        };
        s.commit_block(
            &block(1),
            &[r],
            &[(b"a".to_vec(), None), (b"b".to_vec(), Some(b"2".to_vec()))],
        )
        .unwrap();
    }
    let s = Store::open(&config(dir.path()), g).unwrap();
    assert_eq!(s.head().unwrap(), Some(1));
    assert_eq!(s.block(1).unwrap().unwrap(), block(1));
    assert_eq!(s.receipts(1).unwrap().unwrap()[0].fee, 5);
    assert_eq!(
        s.state_entries().unwrap(),
        vec![(b"b".to_vec(), b"2".to_vec())]
    );
    assert!(s.block(2).unwrap().is_none());
}

#[test]
fn another_network_or_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(&config(dir.path()), Hash32([1; 32])).unwrap());
    let err = Store::open(&config(dir.path()), Hash32([2; 32])).unwrap_err();
    assert!(matches!(err, StorageError::Genesis { .. }), "{err}");

    // A directory written by a future format with an extra column family.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = rocksdb_opts();
    opts.create_missing_column_families(true);
    drop(rocksdb::DB::open_cf(&opts, dir.path().join("db"), ["headers", "blobs_v2"]).unwrap());
    let err = Store::open(&config(dir.path()), Hash32([1; 32])).unwrap_err();
    assert!(matches!(err, StorageError::Format { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("Use the cpchain version that wrote it")
    );
}

#[test]
fn a_directory_that_is_not_ours_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(dir.path().join("db/notes.txt"), "mine").unwrap();
    let err = Store::open(&config(dir.path()), Hash32([1; 32])).unwrap_err();
    assert!(matches!(err, StorageError::NotOurs(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("db/notes.txt")).unwrap(),
        "mine"
    );

    // Another program's RocksDB, with only the default family.
    let dir = tempfile::tempdir().unwrap();
    drop(rocksdb::DB::open(&rocksdb_opts(), dir.path().join("db")).unwrap());
    let err = Store::open(&config(dir.path()), Hash32([1; 32])).unwrap_err();
    assert!(matches!(err, StorageError::Format { .. }), "{err}");
}

fn rocksdb_opts() -> rocksdb::Options {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o
}

#[test]
fn a_directory_in_use_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(&config(dir.path()), Hash32([1; 32])).unwrap();
    let err = Store::open(&config(dir.path()), Hash32([1; 32])).unwrap_err();
    assert!(matches!(err, StorageError::InUse(_)), "{err}");
}

#[test]
fn the_consensus_journal_survives_a_reopen_and_prunes_by_view() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        path: dir.path().join("db"),
        sync: false,
    };
    {
        let store = Store::open(&config, Hash32([7; 32])).unwrap();
        store.journal_append(3, 0, b"a", true).unwrap();
        store.journal_append(5, 1, b"b", false).unwrap();
        store.journal_append(4, 2, b"c", true).unwrap();
    }
    let store = Store::open(&config, Hash32([7; 32])).unwrap();
    let j = store.journal().unwrap();
    assert_eq!(
        j,
        vec![
            (3, 0, b"a".to_vec()),
            (4, 2, b"c".to_vec()),
            (5, 1, b"b".to_vec())
        ]
    );
    store.journal_prune(5).unwrap();
    assert_eq!(store.journal().unwrap(), vec![(5, 1, b"b".to_vec())]);
}

#[test]
fn chunks_and_kfrags_are_stored_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let g = Hash32([7; 32]);
    let a = Hash32([1; 32]);
    let b = Hash32([2; 32]);
    {
        let s = Store::open(&config(dir.path()), g).unwrap();
        assert!(!s.chunk_has(&a).unwrap());
        s.chunk_put(&a, b"chunk a").unwrap();
        s.chunk_put(&b, b"chunk b").unwrap();
        s.kfrag_put(b"stream-grantee", b"kfrag").unwrap();
        s.chunk_delete(&b).unwrap();
    }
    let s = Store::open(&config(dir.path()), g).unwrap();
    assert!(s.chunk_has(&a).unwrap());
    assert!(!s.chunk_has(&b).unwrap());
    assert_eq!(s.chunk_get(&a).unwrap().as_deref(), Some(&b"chunk a"[..]));
    assert_eq!(s.chunk_ids().unwrap(), vec![a]);
    assert_eq!(
        s.kfrags().unwrap(),
        vec![(b"stream-grantee".to_vec(), b"kfrag".to_vec())]
    );
    s.kfrag_delete(b"stream-grantee").unwrap();
    assert!(s.kfrags().unwrap().is_empty());
}

#[test]
fn side_chain_archive_survives_a_reopen_and_keeps_groups_apart() {
    let dir = tempfile::tempdir().unwrap();
    let g = Hash32([7; 32]);
    let (one, two) = (Hash32([1; 32]), Hash32([2; 32]));
    let id = Hash32([3; 32]);
    {
        let s = Store::open(&config(dir.path()), g).unwrap();
        let rec = |value: &[u8]| SideRecord {
            anchor: 1,
            id,
            value: value.to_vec(),
            indexed: true,
        };
        s.side_archive(&one, &[rec(b"vertex")], &[rec(b"tx")], false)
            .unwrap();
    }
    let s = Store::open(&config(dir.path()), g).unwrap();
    assert_eq!(
        s.side_vertex(&one, &id).unwrap().as_deref(),
        Some(&b"vertex"[..])
    );
    assert_eq!(s.side_tx(&one, &id).unwrap().as_deref(), Some(&b"tx"[..]));
    assert_eq!(s.side_vertex(&two, &id).unwrap(), None);
    assert_eq!(s.side_tx(&one, &Hash32([4; 32])).unwrap(), None);
}

#[test]
fn side_chain_archive_forgets_whole_anchors_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let g = Hash32([7; 32]);
    let (one, two) = (Hash32([1; 32]), Hash32([2; 32]));
    let id = |a: u64, i: u8| Hash32([a as u8 * 16 + i; 32]);
    // Anchors 1 to 3 file a vertex holding two transactions (the record names them) and a
    // transaction of no vertex, in both groups.
    let file = |s: &Store, group: &Hash32, a: u64, replayed: bool| {
        let rec = |i: u8, value: Vec<u8>, indexed| SideRecord {
            anchor: a,
            id: id(a, i),
            value,
            indexed,
        };
        s.side_archive(
            group,
            &[rec(0, [id(a, 1).0, id(a, 2).0].concat(), true)],
            &[
                rec(1, a.to_le_bytes().to_vec(), false),
                rec(2, a.to_le_bytes().to_vec(), false),
                rec(3, vec![3; 10], true),
            ],
            replayed,
        )
        .unwrap()
    };
    // Keys: 4 × 65, two index entries of 74; records: 64 + 26 bytes.
    let size = 4 * 65 + 2 * 74 + 90;
    {
        let s = Store::open(&config(dir.path()), g).unwrap();
        for a in 1..=3 {
            assert_eq!(file(&s, &one, a, false), vec![(a, size)]);
            file(&s, &two, a, false);
        }
        // History pruned again at a restart is not counted twice.
        assert_eq!(file(&s, &one, 2, true), vec![]);
        let (sizes, kept_from) = s.side_archive_sizes(&one).unwrap();
        assert_eq!(sizes, vec![(1, size), (2, size), (3, size)]);
        assert_eq!(kept_from, 0);
        assert_eq!(s.side_forget(&one, 2, &Format).unwrap(), 2 * size);
    }
    let s = Store::open(&config(dir.path()), g).unwrap();
    assert_eq!(
        s.side_archive_sizes(&one).unwrap(),
        (vec![(3, size)], 3),
        "survives a reopen"
    );
    for a in 1..=2 {
        assert_eq!(s.side_vertex(&one, &id(a, 0)).unwrap(), None);
        for i in 1..=3 {
            assert_eq!(s.side_tx(&one, &id(a, i)).unwrap(), None);
        }
        // The other group keeps its own.
        assert!(s.side_vertex(&two, &id(a, 0)).unwrap().is_some());
        assert!(s.side_tx(&two, &id(a, 1)).unwrap().is_some());
    }
    assert!(s.side_vertex(&one, &id(3, 0)).unwrap().is_some());
    for i in 1..=3 {
        assert!(s.side_tx(&one, &id(3, i)).unwrap().is_some());
    }
    // A late record of a forgotten anchor is not written; one of a kept anchor is.
    assert_eq!(file(&s, &one, 2, false), vec![]);
    assert_eq!(s.side_vertex(&one, &id(2, 0)).unwrap(), None);
    assert_eq!(file(&s, &one, 4, false), vec![(4, size)]);
    assert_eq!(s.side_archive_sizes(&two).unwrap().0.len(), 3);
    // Forgetting never moves the kept anchor back.
    assert_eq!(s.side_forget(&one, 1, &Format).unwrap(), 0);
    assert_eq!(s.side_archive_sizes(&one).unwrap().1, 3);
    // An anchor of many vertices goes in several writes, all of it.
    let many: Vec<SideRecord> = (0..200u8)
        .map(|i| SideRecord {
            anchor: 9,
            id: Hash32([i; 32]),
            value: Hash32([i ^ 0xff; 32]).0.to_vec(),
            indexed: true,
        })
        .collect();
    let txs: Vec<SideRecord> = (0..200u8)
        .map(|i| SideRecord {
            anchor: 9,
            id: Hash32([i ^ 0xff; 32]),
            value: 9u64.to_le_bytes().to_vec(),
            indexed: false,
        })
        .collect();
    let added = s.side_archive(&one, &many, &txs, false).unwrap();
    assert_eq!(
        s.side_forget(&one, 9, &Format).unwrap(),
        added[0].1 + 2 * size,
        "anchors 3 and 4 go too"
    );
    for i in 0..200u8 {
        assert_eq!(s.side_vertex(&one, &Hash32([i; 32])).unwrap(), None);
        assert_eq!(s.side_tx(&one, &Hash32([i ^ 0xff; 32])).unwrap(), None);
    }
    assert_eq!(s.side_archive_sizes(&one).unwrap(), (vec![], 10));
}

/// The test's record format: a vertex record is the ids of its transactions, a
/// transaction record of 8 bytes the anchor at which it is final (any other: not final).
struct Format;

impl SideFormat for Format {
    fn txs_of(&self, vertex: &[u8]) -> Vec<Hash32> {
        vertex
            .chunks(32)
            .map(|c| Hash32(c.try_into().unwrap()))
            .collect()
    }

    fn final_anchor(&self, tx: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(tx.try_into().ok()?))
    }
}

#[test]
fn side_chain_archive_forgets_a_transaction_with_the_anchor_it_is_filed_under() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&config(dir.path()), Hash32([7; 32])).unwrap();
    let g = Hash32([1; 32]);
    let (tx, refused) = (Hash32([0xaa; 32]), Hash32([0xbb; 32]));
    let vertex = |anchor: u64, id: u8, txs: &[Hash32]| SideRecord {
        anchor,
        id: Hash32([id; 32]),
        value: txs.iter().flat_map(|t| t.0).collect(),
        indexed: true,
    };
    let record = |anchor: u64, id: Hash32, value: Vec<u8>, indexed| SideRecord {
        anchor,
        id,
        value,
        indexed,
    };
    // Copies of `tx` in a vertex of anchor 5 and one of anchor 7; the latter made it
    // final. `refused` left memory as refused (under the newest anchor, 5, indexed),
    // then came back in the vertex of anchor 7 and was archived again, final there.
    s.side_archive(
        &g,
        &[vertex(5, 1, &[tx, refused])],
        &[record(5, refused, vec![0], true)],
        false,
    )
    .unwrap();
    s.side_archive(
        &g,
        &[vertex(7, 2, &[tx, refused])],
        &[
            record(7, tx, 7u64.to_le_bytes().to_vec(), false),
            record(7, refused, 7u64.to_le_bytes().to_vec(), false),
        ],
        false,
    )
    .unwrap();
    s.side_forget(&g, 5, &Format).unwrap();
    assert_eq!(s.side_vertex(&g, &Hash32([1; 32])).unwrap(), None);
    assert!(s.side_tx(&g, &tx).unwrap().is_some(), "final at anchor 7");
    assert!(
        s.side_tx(&g, &refused).unwrap().is_some(),
        "filed again at 7"
    );
    s.side_forget(&g, 7, &Format).unwrap();
    assert_eq!(s.side_tx(&g, &tx).unwrap(), None);
    assert_eq!(s.side_tx(&g, &refused).unwrap(), None);
    assert_eq!(s.side_archive_sizes(&g).unwrap(), (vec![], 8));
}
