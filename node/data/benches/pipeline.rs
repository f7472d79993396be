//! Throughput of the owner's and the reader's pipeline (packing, XChaCha20-Poly1305,
//! Reed–Solomon k=4 n=6, chunk hashing through the accelerator) next to a baseline in the
//! same run: one SHA-256 pass over the same bytes. And the time of the umbral steps of a
//! grant: kfrag generation, one re-encryption, the grantee's verification and opening.
//!
//! `cargo bench -p cpc-data --bench pipeline`. The network is not part of this bench.

use std::hint::black_box;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_data::{
    BlockAssembler, ChainView, DataKeys, KfragDelivery, Packer, Proxy, Record, RecordMeta,
    StreamParams, Upload, Uploader, open_interval,
};
use cpc_types::{AccessPolicy, Address, DataRecord, Hash32, SecretKey, sha256};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const MB: usize = 1 << 20;
const TOTAL: usize = 32 * MB;

fn params() -> StreamParams {
    StreamParams {
        period_ms: 1000,
        blocks_per_interval: 1000,
        intervals_per_upload: 1,
        data_chunks: 4,
        total_chunks: 6,
        max_block_bytes: 4 * MB as u32,
    }
}

fn records() -> Vec<Record> {
    // 64 KiB readings, all in one interval.
    (0..TOTAL / (64 << 10))
        .map(|i| Record {
            timestamp_ms: i as u64,
            payload: (0..64 << 10).map(|j| (i * 7 + j) as u8).collect(),
        })
        .collect()
}

fn put(keys: &DataKeys, accel: &Dispatcher, recs: &[Record]) -> Upload {
    let stream = Hash32([1; 32]);
    let p = params();
    let mut packer = Packer::new(p, 0, 0).unwrap();
    let mut up = Uploader::new(p, stream, AccessPolicy::Private, keys, accel).unwrap();
    let mut out = Vec::new();
    for r in recs {
        for b in packer.push(r).unwrap() {
            out.extend(up.push(&b).unwrap());
        }
    }
    if let Some(b) = packer.flush() {
        out.extend(up.push(&b).unwrap());
    }
    out.extend(up.finish().unwrap());
    out.pop().unwrap()
}

fn pipeline(c: &mut Criterion) {
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let owner = SecretKey::from_bytes([1; 32]);
    let keys = DataKeys::from_account(&owner);
    let recs = records();
    let plain: Vec<u8> = recs
        .iter()
        .flat_map(|r| r.payload.iter().copied())
        .collect();

    let mut g = c.benchmark_group("data");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function("baseline: sha256 once", |b| {
        b.iter(|| black_box(sha256(&[&plain])))
    });
    g.bench_function("put: pack, seal, erasure-code, hash", |b| {
        b.iter(|| black_box(put(&keys, &accel, &recs)))
    });
    let upload = put(&keys, &accel, &recs);
    let meta = RecordMeta::of(&upload.record).unwrap();
    let n = usize::from(params().total_chunks);
    g.bench_function("get: verify 4 of 6 chunks (2 lost), decode, open", |b| {
        b.iter(|| {
            let key = keys.unwrap_own(&upload.record.stream_id, &meta, 0).unwrap();
            let mut blocks = Vec::new();
            for (i, entry) in upload.manifest.blocks.iter().enumerate() {
                let mut a = BlockAssembler::new(entry.clone()).unwrap();
                // Chunks 0 and 1 are lost: the decoder has to work.
                for j in 2..n {
                    a.offer(j, upload.chunks[i * n + j].bytes.clone());
                }
                blocks.push((entry.clone(), a.finish().unwrap()));
            }
            black_box(open_interval(&key, &upload.record.stream_id, &blocks).unwrap())
        })
    });
    g.finish();

    // Grants.
    struct Chain(DataRecord, Address, Address);
    impl ChainView for Chain {
        fn stream_owner(&self, _: &Hash32) -> Option<Address> {
            Some(self.1)
        }
        fn grant(&self, _: &Hash32, g: &Address) -> Option<(u64, u64)> {
            (*g == self.2).then_some((0, 0))
        }
        fn record(&self, _: &Hash32, _: u64) -> Option<DataRecord> {
            Some(self.0.clone())
        }
    }
    let grantee = SecretKey::from_bytes([2; 32]);
    let gkeys = DataKeys::from_account(&grantee);
    let stream = upload.record.stream_id;
    let chain = Chain(upload.record.clone(), owner.address(), grantee.address());
    let mut g = c.benchmark_group("grant");
    g.sample_size(20);
    g.bench_function("baseline: ed25519 sign", |b| {
        b.iter(|| black_box(owner.sign(b"baseline")))
    });
    g.bench_function("owner: 2-of-3 kfrags", |b| {
        b.iter(|| black_box(keys.kfrags(&stream, &gkeys.receiving_pk(), 2, 3).unwrap()))
    });
    let kfrags = keys.kfrags(&stream, &gkeys.receiving_pk(), 2, 3).unwrap();
    let deliveries = KfragDelivery::sign_all(
        &owner,
        stream,
        grantee.address(),
        &gkeys.receiving_pk(),
        kfrags,
    );
    let mut proxies: Vec<Proxy> = deliveries
        .iter()
        .map(|d| {
            let mut p = Proxy::new();
            p.accept(&chain, d).unwrap();
            p
        })
        .collect();
    g.bench_function("proxy: re-encrypt one interval key", |b| {
        b.iter(|| {
            black_box(
                proxies[0]
                    .reencrypt(&chain, &stream, &grantee.address(), 0)
                    .unwrap(),
            )
        })
    });
    let cfrags: Vec<Vec<u8>> = proxies[..2]
        .iter_mut()
        .map(|p| p.reencrypt(&chain, &stream, &grantee.address(), 0).unwrap())
        .collect();
    g.bench_function("grantee: verify 2 cfrags, open the key", |b| {
        b.iter(|| black_box(gkeys.open_granted(&meta, 0, &cfrags, 2).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
