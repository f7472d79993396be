//! The whole data pipeline in memory: owner upload, storage nodes, proxies and a grantee,
//! with a chain stand-in that holds records and grants.

use std::collections::{HashMap, HashSet};

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_data::placement::{place_block, place_repair};
use cpc_data::{
    BlockAssembler, ChainView, DataError, DataKeys, KeyAnnouncement, KfragDelivery, Manifest,
    Offer, Packer, Proxy, ProxyError, Record, RecordMeta, RepairPlan, StreamParams, Upload,
    Uploader, open_interval, plan_repair, rebuild_chunks,
};
use cpc_types::{AccessPolicy, Address, DataRecord, Hash32, SecretKey, sha256};

#[derive(Default)]
struct Chain {
    owners: HashMap<Hash32, Address>,
    records: Vec<DataRecord>,
    grants: HashMap<(Hash32, Address), (u64, u64)>,
}

impl ChainView for Chain {
    fn stream_owner(&self, stream: &Hash32) -> Option<Address> {
        self.owners.get(stream).copied()
    }
    fn grant(&self, stream: &Hash32, grantee: &Address) -> Option<(u64, u64)> {
        self.grants.get(&(*stream, *grantee)).copied()
    }
    fn record(&self, stream: &Hash32, interval: u64) -> Option<DataRecord> {
        self.records
            .iter()
            .find(|r| {
                r.stream_id == *stream
                    && r.first_interval <= interval
                    && interval <= r.last_interval
            })
            .cloned()
    }
}

/// Storage nodes: node index → chunk id → bytes; `tamper` nodes flip a bit on reads.
struct Nodes {
    stores: Vec<HashMap<Hash32, Vec<u8>>>,
    keys: Vec<(usize, Hash32)>,
    down: HashSet<usize>,
    tamper: HashSet<usize>,
    penalties: HashMap<usize, u32>,
}

impl Nodes {
    fn new(n: usize) -> Self {
        Self {
            stores: vec![HashMap::new(); n],
            keys: (0..n)
                .map(|i| (i, sha256(&[b"node", &[i as u8]])))
                .collect(),
            down: HashSet::new(),
            tamper: HashSet::new(),
            penalties: HashMap::new(),
        }
    }

    fn store(&mut self, up: &Upload) {
        let n = up.manifest.blocks[0].n();
        for (b, entry) in up.manifest.blocks.iter().enumerate() {
            let placed = place_block(&entry.chunks, &self.keys, 1);
            for (i, nodes) in placed.iter().enumerate() {
                let c = &up.chunks[b * n + i];
                for node in nodes {
                    self.stores[*node].insert(c.id, c.bytes.clone());
                }
            }
        }
        let mbytes = up.manifest.to_bytes();
        for s in &mut self.stores {
            s.insert(up.manifest.id(), mbytes.clone());
        }
    }

    fn fetch(&self, id: &Hash32) -> Vec<(usize, Vec<u8>)> {
        (0..self.stores.len())
            .filter(|n| !self.down.contains(n))
            .filter_map(|n| {
                let mut b = self.stores[n].get(id)?.clone();
                if self.tamper.contains(&n) {
                    b[0] ^= 1;
                }
                Some((n, b))
            })
            .collect()
    }

    /// Rebuilds every block of an interval from verified chunks, penalising bad senders.
    fn get_blocks(
        &mut self,
        manifest: &Manifest,
        interval: u64,
    ) -> Result<Vec<(cpc_data::BlockEntry, Vec<u8>)>, DataError> {
        let mut out = Vec::new();
        for entry in manifest.blocks_of(interval) {
            let mut a = BlockAssembler::new(entry.clone())?;
            for i in a.wanted() {
                if a.is_ready() {
                    break;
                }
                for (node, bytes) in self.fetch(&entry.chunks[i]) {
                    match a.offer(i, bytes) {
                        Offer::Rejected => *self.penalties.entry(node).or_default() += 1,
                        _ => break,
                    }
                }
            }
            out.push((entry.clone(), a.finish()?));
        }
        Ok(out)
    }
}

fn test_params() -> StreamParams {
    StreamParams {
        period_ms: 1000,
        blocks_per_interval: 2,
        intervals_per_upload: 3,
        data_chunks: 4,
        total_chunks: 6,
        max_block_bytes: 4096,
    }
}

fn reading(t: u64) -> Record {
    Record {
        timestamp_ms: t,
        payload: format!("reading {t}: {}", "x".repeat((t % 700) as usize)).into_bytes(),
    }
}

fn upload_stream(
    keys: &DataKeys,
    accel: &Dispatcher,
    stream: Hash32,
    policy: AccessPolicy,
) -> (Vec<Upload>, Vec<Record>) {
    let params = test_params();
    let mut packer = Packer::new(params, 0, 0).unwrap();
    let mut up = Uploader::new(params, stream, policy, keys, accel).unwrap();
    let mut uploads = Vec::new();
    let mut records = Vec::new();
    for t in (0..14_000u64).step_by(250) {
        let r = reading(t);
        records.push(r.clone());
        for b in packer.push(&r).unwrap() {
            uploads.extend(up.push(&b).unwrap());
        }
    }
    uploads.extend(up.push(&packer.flush().unwrap()).unwrap());
    uploads.extend(up.finish().unwrap());
    (uploads, records)
}

fn interval_of(t: u64) -> u64 {
    t / 2000
}

#[test]
fn chunks_taken_while_sealing_are_exactly_the_closed_uploads_chunks() {
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let keys = DataKeys::from_account(&SecretKey::from_bytes([3; 32]));
    let stream = sha256(&[b"stream/streamed"]);
    let params = test_params();
    let mut packer = Packer::new(params, 0, 0).unwrap();
    let mut up = Uploader::new(params, stream, AccessPolicy::Private, &keys, &accel).unwrap();
    let mut taken = Vec::new();
    let mut closed = Vec::new();
    let mut check = |done: Upload, taken: &mut Vec<cpc_data::Chunk>| {
        // Everything was taken already; the taken chunks are the manifest's, in order,
        // and each block rebuilds from k of them to its ciphertext hash.
        assert!(done.chunks.is_empty());
        let ids: Vec<Hash32> = done
            .manifest
            .blocks
            .iter()
            .flat_map(|b| b.chunks.clone())
            .collect();
        assert_eq!(ids, taken.iter().map(|c| c.id).collect::<Vec<_>>());
        for (b, entry) in done.manifest.blocks.iter().enumerate() {
            let n = entry.n();
            let mut a = BlockAssembler::new(entry.clone()).unwrap();
            for i in (0..n).rev() {
                let c = &taken[b * n + i];
                assert_eq!(sha256(&[&c.bytes]), c.id);
                if !a.is_ready() {
                    assert_eq!(a.offer(i, c.bytes.clone()), Offer::Accepted);
                }
            }
            assert_eq!(sha256(&[&a.finish().unwrap()]), entry.hash);
        }
        closed.push((done.record.first_interval, done.record.last_interval));
        taken.clear();
    };
    for t in (0..14_000u64).step_by(250) {
        for b in packer.push(&reading(t)).unwrap() {
            // A block that opens a window returns the previous one before its own chunks
            // are taken.
            if let Some(done) = up.push(&b).unwrap() {
                check(done, &mut taken);
            }
            taken.extend(up.take_chunks());
        }
    }
    if let Some(done) = up.push(&packer.flush().unwrap()).unwrap() {
        check(done, &mut taken);
    }
    taken.extend(up.take_chunks());
    check(up.finish().unwrap().unwrap(), &mut taken);
    assert_eq!(closed, vec![(0, 2), (3, 5), (6, 8)]);
}

#[test]
fn put_get_grant_revoke_with_tampering_loss_and_repair() {
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let owner = SecretKey::from_bytes([1; 32]);
    let grantee = SecretKey::from_bytes([2; 32]);
    let okeys = DataKeys::from_account(&owner);
    let gkeys = DataKeys::from_account(&grantee);
    let stream = sha256(&[b"stream/boiler-7"]);

    let (uploads, records) = upload_stream(&okeys, &accel, stream, AccessPolicy::Private);
    // 14 s, 2 s intervals, 3 intervals per upload: windows 0-2, 3-5, 6-8.
    assert_eq!(uploads.len(), 3);
    assert_eq!(
        uploads
            .iter()
            .map(|u| (u.record.first_interval, u.record.last_interval))
            .collect::<Vec<_>>(),
        vec![(0, 2), (3, 5), (6, 8)]
    );

    let mut chain = Chain::default();
    chain.owners.insert(stream, owner.address());
    let mut nodes = Nodes::new(6);
    for u in &uploads {
        // The record holds hashes and wrapped keys only: no plaintext reaches the chain.
        assert!(u.record.capsule.len() < 16 * 1024);
        assert!(!u.record.capsule.windows(8).any(|w| w == b"reading "));
        for c in &u.chunks {
            assert!(!c.bytes.windows(8).any(|w| w == b"reading "));
        }
        chain.records.push(u.record.clone());
        nodes.store(u);
    }

    let get_manifest = |nodes: &Nodes, chain: &Chain, interval: u64| {
        let rec = chain.record(&stream, interval).unwrap();
        let meta = RecordMeta::of(&rec).unwrap();
        // The first copy that verifies against the record wins.
        let m = nodes
            .fetch(&meta.manifest)
            .into_iter()
            .find_map(|(_, bytes)| Manifest::verify(&bytes, &rec, &accel).ok())
            .expect("an intact manifest");
        (m, meta)
    };
    let expect = |i: u64| -> Vec<Record> {
        records
            .iter()
            .filter(|r| interval_of(r.timestamp_ms) == i)
            .cloned()
            .collect()
    };

    // Owner reads interval 4 while node 0 tampers: the bad chunks are rejected, others used.
    nodes.tamper.insert(0);
    let (m, meta) = get_manifest(&nodes, &chain, 4);
    let key = okeys.unwrap_own(&stream, &meta, 4).unwrap();
    let blocks = nodes.get_blocks(&m, 4).unwrap();
    assert_eq!(open_interval(&key, &stream, &blocks).unwrap(), expect(4));
    nodes.tamper.clear();
    let penalised: Vec<usize> = nodes.penalties.keys().copied().collect();
    assert!(penalised.iter().all(|n| *n == 0), "{penalised:?}");

    // A proxy asked without a grant on chain refuses.
    let ann = gkeys.announce(&grantee);
    let ann = KeyAnnouncement::from_bytes(&ann.to_bytes()).unwrap();
    ann.verify(&grantee.address()).unwrap();
    assert!(ann.verify(&owner.address()).is_err());
    let kfrags = okeys.kfrags(&stream, &ann.receiving_pk, 2, 3).unwrap();
    let deliveries =
        KfragDelivery::sign_all(&owner, stream, grantee.address(), &ann.receiving_pk, kfrags);
    let mut proxies: Vec<Proxy> = (0..3).map(|_| Proxy::new()).collect();
    for (p, d) in proxies.iter_mut().zip(&deliveries) {
        p.accept(&chain, &KfragDelivery::from_bytes(&d.to_bytes()).unwrap())
            .unwrap();
    }
    assert!(matches!(
        proxies[0].reencrypt(&chain, &stream, &grantee.address(), 4),
        Err(ProxyError::NoGrant { .. })
    ));
    // ... and dropped its kfrag; give it again.
    assert!(proxies[0].is_empty());
    proxies[0].accept(&chain, &deliveries[0]).unwrap();

    // A delivery signed by someone else than the owner is refused.
    let forged = KfragDelivery::sign_all(
        &grantee,
        stream,
        grantee.address(),
        &ann.receiving_pk,
        vec![deliveries[0].kfrag.clone()],
    );
    assert!(matches!(
        Proxy::new().accept(&chain, &forged[0]),
        Err(ProxyError::BadDelivery(_))
    ));

    // Grant intervals 3..=6 on chain; the grantee reads interval 6 through 2 of 3 proxies.
    chain.grants.insert((stream, grantee.address()), (3, 6));
    let (m, meta) = get_manifest(&nodes, &chain, 6);
    let cfrags: Vec<Vec<u8>> = proxies[..2]
        .iter_mut()
        .map(|p| p.reencrypt(&chain, &stream, &grantee.address(), 6).unwrap())
        .collect();
    // A corrupted cfrag is reported and the others still open the key.
    let mut with_bad = vec![cfrags[0].clone(), b"junk".to_vec()];
    with_bad.push(
        proxies[2]
            .reencrypt(&chain, &stream, &grantee.address(), 6)
            .unwrap(),
    );
    let (gkey, bad) = gkeys.open_granted(&meta, 6, &with_bad, 2).unwrap();
    assert_eq!(bad, vec![1]);
    let blocks = nodes.get_blocks(&m, 6).unwrap();
    assert_eq!(open_interval(&gkey, &stream, &blocks).unwrap(), expect(6));
    let (gkey2, _) = gkeys.open_granted(&meta, 6, &cfrags, 2).unwrap();
    assert_eq!(gkey, gkey2);
    // One cfrag is not enough; cfrags for the owner's key do not open another reader's.
    assert!(matches!(
        gkeys.open_granted(&meta, 6, &cfrags[..1], 2),
        Err(DataError::NotEnoughCfrags {
            valid: 1,
            needed: 2
        })
    ));
    let stranger = DataKeys::from_account(&SecretKey::from_bytes([3; 32]));
    assert!(stranger.open_granted(&meta, 6, &cfrags, 2).is_err());
    // Outside the granted range the proxy refuses.
    assert!(matches!(
        proxies[1].reencrypt(&chain, &stream, &grantee.address(), 8),
        Err(ProxyError::OutOfRange {
            interval: 8,
            first: 3,
            last: 6
        })
    ));

    // Revocation: proxies refuse and drop their kfrags.
    chain.grants.remove(&(stream, grantee.address()));
    for p in &mut proxies {
        assert!(matches!(
            p.reencrypt(&chain, &stream, &grantee.address(), 6),
            Err(ProxyError::NoGrant { .. })
        ));
        assert!(p.is_empty());
    }

    // Node loss: with n - k = 2 of 6 nodes down, every interval is still readable.
    nodes.down.extend([1, 4]);
    for i in 0..7 {
        let (m, meta) = get_manifest(&nodes, &chain, i);
        let key = okeys.unwrap_own(&stream, &meta, i).unwrap();
        let blocks = nodes.get_blocks(&m, i).unwrap();
        assert_eq!(open_interval(&key, &stream, &blocks).unwrap(), expect(i));
    }
    // Repair: lost chunks are re-created on the surviving nodes...
    for u in &uploads {
        for entry in &u.manifest.blocks {
            let present: Vec<bool> = entry
                .chunks
                .iter()
                .map(|id| !nodes.fetch(id).is_empty())
                .collect();
            let RepairPlan::Repair { available, missing } = plan_repair(entry, &present, 6) else {
                panic!("expected a repair")
            };
            let mut a = BlockAssembler::new(entry.clone()).unwrap();
            for i in available {
                let (_, b) = nodes.fetch(&entry.chunks[i]).remove(0);
                assert_eq!(a.offer(i, b), Offer::Accepted);
            }
            let live: Vec<(usize, Hash32)> = nodes
                .keys
                .iter()
                .filter(|(n, _)| !nodes.down.contains(n))
                .copied()
                .collect();
            let mut holders: Vec<usize> = entry
                .chunks
                .iter()
                .flat_map(|id| nodes.fetch(id).into_iter().map(|(n, _)| n))
                .collect();
            for (i, bytes) in rebuild_chunks(&a, &missing).unwrap() {
                let target = place_repair(&entry.chunks[i], &live, &holders).unwrap();
                holders.push(target);
                nodes.stores[target].insert(entry.chunks[i], bytes);
            }
        }
    }
    // ... so that the data survives the loss of another node once 1 and 4 have been
    // replaced by the repair (4 live nodes hold all 6 chunks of every block, so any one
    // of them may go; with a single chunk per node a fifth loss would leave 3 of 4 needed).
    nodes.down.insert(0);
    let mut lost = 0;
    for i in 0..7 {
        let (m, meta) = get_manifest(&nodes, &chain, i);
        let key = okeys.unwrap_own(&stream, &meta, i).unwrap();
        match nodes.get_blocks(&m, i) {
            Ok(blocks) => assert_eq!(open_interval(&key, &stream, &blocks).unwrap(), expect(i)),
            Err(DataError::NotEnoughChunks { .. }) => lost += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(lost, 0);
}

#[test]
fn a_manifest_that_does_not_match_the_record_is_refused() {
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let owner = SecretKey::from_bytes([9; 32]);
    let keys = DataKeys::from_account(&owner);
    let stream = sha256(&[b"s"]);
    let (uploads, _) = upload_stream(&keys, &accel, stream, AccessPolicy::Private);
    let u = &uploads[0];
    let good = u.manifest.to_bytes();
    assert!(Manifest::verify(&good, &u.record, &accel).is_ok());
    let mut m = u.manifest.clone();
    m.blocks[0].hash.0[0] ^= 1;
    assert!(matches!(
        Manifest::verify(&m.to_bytes(), &u.record, &accel),
        Err(DataError::Mismatch { what: "manifest" })
    ));
    // Record whose metadata names the forged manifest: caught by the Merkle root.
    let mut rec = u.record.clone();
    let mut meta = RecordMeta::of(&rec).unwrap();
    meta.manifest = m.id();
    rec.capsule = meta.to_bytes();
    assert_eq!(
        Manifest::verify(&m.to_bytes(), &rec, &accel).unwrap_err(),
        DataError::Mismatch {
            what: "manifest root"
        }
    );
    // A stream's delegating key is not another stream's: its capsules do not open.
    let other = sha256(&[b"t"]);
    let meta = RecordMeta::of(&u.record).unwrap();
    assert!(keys.unwrap_own(&other, &meta, 0).is_err());
    assert!(keys.unwrap_own(&stream, &meta, 0).is_ok());
    assert_eq!(
        keys.unwrap_own(&stream, &meta, 99).unwrap_err(),
        DataError::NoKey(99)
    );
}

#[test]
fn public_records_carry_their_keys_and_private_ones_do_not() {
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let owner = SecretKey::from_bytes([1; 32]);
    let okeys = DataKeys::from_account(&owner);
    let stream = sha256(&[b"stream/public-traffic"]);
    let (uploads, records) = upload_stream(&okeys, &accel, stream, AccessPolicy::Public);
    let mut nodes = Nodes::new(6);
    for u in &uploads {
        assert_eq!(u.record.policy, AccessPolicy::Public);
        // The chunks stay encrypted; only the keys are public.
        for c in &u.chunks {
            assert!(!c.bytes.windows(8).any(|w| w == b"reading "));
        }
        nodes.store(u);
    }
    // Anyone opens an interval with the key from the record alone.
    let rec = &uploads[1].record;
    let meta = RecordMeta::of(rec).unwrap();
    let m = nodes
        .fetch(&meta.manifest)
        .into_iter()
        .find_map(|(_, bytes)| Manifest::verify(&bytes, rec, &accel).ok())
        .unwrap();
    let key = meta.public_key_for(4).unwrap();
    let blocks = nodes.get_blocks(&m, 4).unwrap();
    let want: Vec<Record> = records
        .iter()
        .filter(|r| interval_of(r.timestamp_ms) == 4)
        .cloned()
        .collect();
    assert_eq!(open_interval(&key, &stream, &blocks).unwrap(), want);
    // A private record holds no usable key.
    let (private, _) = upload_stream(&okeys, &accel, stream, AccessPolicy::Private);
    let pmeta = RecordMeta::of(&private[1].record).unwrap();
    assert!(pmeta.public_key_for(4).is_err());
}
