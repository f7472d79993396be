//! Side-chain confirmation on 4 gateways, in one process with instant delivery (the
//! network's share of latency is left out; all four gateways share one thread, so a real
//! deployment with a core per gateway does better).
//!
//! - `sidechain/round`: criterion time for one round in which every gateway takes a batch
//!   of 500 transfers in one submission, includes it, and all four confirm every
//!   transaction (signatures verified by every gateway through the accelerator), reported
//!   as transactions per second.
//! - `load`: a load generator offering `CPC_SIDE_BENCH_RATE` transfers per second (10,000
//!   by default) for `CPC_SIDE_BENCH_SECS` seconds (3) at round-robin gateways on the wall
//!   clock, printing the confirmation latency p50/p99 at the receiving gateway and the
//!   confirmed throughput. Then it times restoring one gateway's snapshot taken at the end
//!   of the load, and snapshotting the restored node, beside copying as many bytes.
//!
//! Run: `cargo bench -p cpc-sidechain --bench confirmation`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_sidechain::{
    Action, Config, Group, Input, MachineKind, MachineTx, SideChain, SignedMachineTx,
};
use cpc_types::{Address, Hash32, SecretKey, sha256};
use criterion::{Criterion, Throughput, criterion_group};

const GATEWAYS: usize = 4;

struct Net {
    nodes: Vec<SideChain>,
    group: Group,
    start: Instant,
}

fn net(vertex_interval_ms: u64) -> Net {
    let keys: Vec<SecretKey> = (0..GATEWAYS)
        .map(|i| SecretKey::from_bytes([i as u8 + 1; 32]))
        .collect();
    let group = Group::new(
        Group::id_of("bench"),
        keys.iter().map(SecretKey::public).collect(),
    )
    .unwrap();
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let mut cfg = Config::new(group.clone());
    cfg.vertex_interval_ms = vertex_interval_ms;
    cfg.heads_interval_ms = 0;
    cfg.max_batch = 5_000;
    let nodes = keys
        .iter()
        .map(|k| SideChain::new(cfg.clone(), Some(k.clone()), accel.clone()).unwrap())
        .collect();
    Net {
        nodes,
        group,
        start: Instant::now(),
    }
}

impl Net {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1_000
    }

    /// One tick of every gateway with instant delivery; returns confirmations (node, latency).
    fn tick(&mut self, now: u64, lat: &mut Vec<(usize, u64)>) {
        let mut queue: VecDeque<(usize, Action)> = VecDeque::new();
        for i in 0..GATEWAYS {
            for a in self.nodes[i].handle(now, Input::Tick) {
                queue.push_back((i, a));
            }
        }
        while let Some((from, a)) = queue.pop_front() {
            match a {
                Action::Send { to, msg } => {
                    for j in 0..GATEWAYS {
                        if j == from || to.is_some_and(|t| t as usize != j) {
                            continue;
                        }
                        for b in self.nodes[j].handle(
                            now,
                            Input::Message {
                                from: from as u64,
                                msg: msg.clone(),
                            },
                        ) {
                            queue.push_back((j, b));
                        }
                    }
                }
                Action::Confirmed { latency_ms, .. } => lat.push((from, latency_ms)),
                _ => {}
            }
        }
    }
}

/// Keys of `machines` machines whose deposits confirmed on every gateway.
fn funded(net: &mut Net, machines: usize) -> Vec<SecretKey> {
    let keys: Vec<SecretKey> = (0..machines)
        .map(|i| SecretKey::from_bytes(sha256(&[b"m", &(i as u64).to_be_bytes()]).0))
        .collect();
    let mut lat = Vec::new();
    let now = net.now();
    for (i, k) in keys.iter().enumerate() {
        let lock = sha256(&[b"lock", &(i as u64).to_be_bytes()]);
        for n in &mut net.nodes {
            n.handle(
                now,
                Input::Lock {
                    id: lock,
                    account: k.address(),
                    amount: u64::MAX / 4,
                },
            );
        }
        let d = MachineTx {
            group_id: net.group.id,
            sender: k.public(),
            nonce: 0,
            kind: MachineKind::Deposit { lock },
        }
        .sign(k);
        net.nodes[i % GATEWAYS].submit(now, vec![d]);
    }
    // Past the gateways' initial listening period, then until the deposits confirm.
    let until = net.now() + 3_000;
    while net.now() < until {
        let now = net.now();
        net.tick(now, &mut lat);
        if lat.len() >= machines * GATEWAYS {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(lat.len() >= machines * GATEWAYS, "deposits did not confirm");
    keys
}

/// A transfer of one base unit by `key` with `nonce`.
fn transfer(net: &Net, key: &SecretKey, nonce: u64) -> SignedMachineTx {
    MachineTx {
        group_id: net.group.id,
        sender: key.public(),
        nonce,
        kind: MachineKind::Transfer {
            to: Address([9; 20]),
            amount: 1,
        },
    }
    .sign(key)
}

fn round(c: &mut Criterion) {
    const BATCH: usize = 500;
    let mut g = c.benchmark_group("sidechain");
    g.throughput(Throughput::Elements((BATCH * GATEWAYS) as u64));
    g.sample_size(10);
    let mut net = net(0);
    let machines = BATCH * GATEWAYS;
    let keys = funded(&mut net, machines);
    let mut nonce = 0;
    g.bench_function("round", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                // Every round spends a new nonce of every machine; signing is not timed.
                nonce += 1;
                let mut batches: Vec<Vec<SignedMachineTx>> = vec![Vec::new(); GATEWAYS];
                for (m, k) in keys.iter().enumerate() {
                    batches[m % GATEWAYS].push(transfer(&net, k, nonce));
                }
                let t = Instant::now();
                let now = net.now();
                // One submission per gateway, as a client's HTTP batch arrives.
                for (node, batch) in net.nodes.iter_mut().zip(batches) {
                    node.submit(now, batch);
                }
                let mut lat = Vec::new();
                // Every gateway emits its batch, then acknowledges the others'.
                for _ in 0..4 {
                    net.tick(net.now(), &mut lat);
                }
                assert_eq!(lat.len(), machines * GATEWAYS, "a round did not confirm");
                timed += t.elapsed();
            }
            timed
        })
    });
    g.finish();
}

/// Baseline in the same run: what the accelerator verifies per second, alone.
fn verify_baseline() -> u64 {
    use cpc_accel::SigItem;
    let accel = Dispatcher::new(DispatchConfig::default()).unwrap();
    let k = SecretKey::from_bytes([7; 32]);
    let msgs: Vec<Vec<u8>> = (0..4_000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let sigs: Vec<_> = msgs.iter().map(|m| k.sign(m)).collect();
    let items: Vec<SigItem<'_>> = msgs
        .iter()
        .zip(&sigs)
        .map(|(m, s)| SigItem {
            public_key: k.public().0,
            signature: s.0,
            message: m,
        })
        .collect();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(1) {
        // Batches of the size a vertex carries.
        for chunk in items.chunks(50) {
            assert!(accel.ed25519_verify_batch(chunk).iter().all(|ok| *ok));
            n += chunk.len() as u64;
        }
    }
    n * 1_000 / t.elapsed().as_millis().max(1) as u64
}

fn load() {
    let baseline = verify_baseline();
    println!(
        "baseline: {baseline} signatures/s verified in batches of 50; every gateway verifies every \
         transaction once, so 4 gateways sharing this machine top out near {} tx/s",
        baseline / GATEWAYS as u64
    );
    let rate: u64 = std::env::var("CPC_SIDE_BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let secs: u64 = std::env::var("CPC_SIDE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut net = net(5);
    let machines = 2_000;
    let per = (rate * secs) as usize / machines + 1;
    let keys = funded(&mut net, machines);
    let txs: Vec<Vec<SignedMachineTx>> = keys
        .iter()
        .map(|k| (1..=per as u64).map(|n| transfer(&net, k, n)).collect())
        .collect();
    let mut next = vec![0usize; machines];
    let mut lat: Vec<(usize, u64)> = Vec::new();
    let t0 = net.now();
    let end = t0 + secs * 1_000;
    let mut sent = 0u64;
    let mut submitted_at: Vec<(Hash32, usize)> = Vec::new();
    while net.now() < end {
        let now = net.now();
        let due = (now - t0) * rate / 1_000;
        let mut per_gw: Vec<Vec<SignedMachineTx>> = vec![Vec::new(); GATEWAYS];
        while sent < due {
            let m = (sent as usize) % machines;
            let tx = txs[m][next[m]].clone();
            next[m] += 1;
            submitted_at.push((tx.hash(), m % GATEWAYS));
            // A machine always uses the same gateway, so its nonces arrive in order.
            per_gw[m % GATEWAYS].push(tx);
            sent += 1;
        }
        for (g, batch) in per_gw.into_iter().enumerate() {
            if !batch.is_empty() {
                net.nodes[g].submit(now, batch);
            }
        }
        net.tick(now, &mut lat);
    }
    // The state at the end of the load, timed after the report (timing it here would hold
    // up the drain and the latencies measured).
    let snap = net.nodes[0].snapshot();
    // Drain.
    let drain = net.now() + 2_000;
    while net.now() < drain {
        net.tick(net.now(), &mut lat);
        std::thread::sleep(Duration::from_micros(500));
    }
    let elapsed_ms = (end - t0).max(1);
    // The latency at the receiving gateway, from submission to confirmation there.
    let mut at_receiver: Vec<u64> = submitted_at
        .iter()
        .filter_map(|(h, g)| net.nodes[*g].tx(h).and_then(|t| t.latency_ms))
        .collect();
    at_receiver.sort_unstable();
    let confirmed_all = lat.len() as u64;
    let pct = |p: usize| {
        at_receiver
            .get((at_receiver.len().saturating_sub(1)) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "load: offered {rate} tx/s for {secs} s on {GATEWAYS} gateways: {} of {sent} confirmed at the receiving gateway; \
         latency p50 {} ms, p99 {} ms, max {} ms; confirmed throughput {} tx/s (per gateway view: {} confirmations in total)",
        at_receiver.len(),
        pct(50),
        pct(99),
        at_receiver.last().copied().unwrap_or(0),
        at_receiver.len() as u64 * 1_000 / elapsed_ms,
        confirmed_all,
    );
    snapshot_cost(&net.group, &snap);
}

/// Times `SideChain::restore` of gateway 0's snapshot `snap` and `SideChain::snapshot` of
/// the restored node (best of five), against copying the snapshot's bytes.
fn snapshot_cost(group: &Group, snap: &[u8]) {
    let best = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let cfg = Config::new(group.clone());
    let key = Some(SecretKey::from_bytes([1; 32]));
    let restore = || SideChain::restore(cfg.clone(), key.clone(), accel.clone(), snap).unwrap();
    let restore_time = best(&mut || drop(std::hint::black_box(restore())));
    let node = restore();
    let encode = best(&mut || drop(std::hint::black_box(node.snapshot())));
    let copy = best(&mut || drop(std::hint::black_box(snap.to_vec())));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let st = node.status();
    println!(
        "snapshot at the end of the load: {} transactions held, {:.1} MiB; encoded in {:.1} ms, \
         restored in {:.1} ms; copying the bytes {:.2} ms (encode {:.0}x, restore {:.0}x the copy)",
        st.confirmed_txs.saturating_sub(st.pruned_txs),
        snap.len() as f64 / (1 << 20) as f64,
        ms(encode),
        ms(restore_time),
        ms(copy),
        encode.as_secs_f64() / copy.as_secs_f64(),
        restore_time.as_secs_f64() / copy.as_secs_f64(),
    );
}

criterion_group!(benches, round);

fn main() {
    load();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
