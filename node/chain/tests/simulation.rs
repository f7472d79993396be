//! A seeded, deterministic network of full consensus engines over real chains: message
//! delays and drops, a partition that heals, a member that crashes and restarts from its
//! store, and a Byzantine member that signs two notarize votes per view — while the
//! network elects a committee every term. Every seed checks safety (no two different
//! blocks committed at one height, anywhere), liveness after the heal, the offender's
//! evidence on chain with the offender out of the committee and a standby in its seat, and
//! that every node agrees on every committee. A second scenario halts a four-member chain
//! by crashing two members at a random moment and checks that it resumes, unforked, when
//! one of them returns; a third crashes and restarts all four at once. A failing seed names itself in the panic message; replay it with
//! `CPC_ENGINE_SIM_SEED=<seed> cargo test -p cpc-chain --test simulation <test name> --
//! --nocapture`. `CPC_ENGINE_SIM_SEEDS` sets how many seeds run (6, 12 and 12 by default:
//! each is a few thousand engine steps).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_chain::{Chain, ChainConfig, Engine, EngineConfig, Outbound, Verdict};
use cpc_state::{Genesis, GenesisValidator, Params};
use cpc_storage::StoreConfig;
use cpc_types::codec::decode_exact;
use cpc_types::{
    ConsensusMessage, Encode, Hash32, SecretKey, TOTAL_SUPPLY, UNITS_PER_CPC, Vote, VoteKind,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: u64 = 1_767_225_600_000;
const VALIDATORS: usize = 6;
const STEP_MS: u64 = 20;

struct Sim {
    rng: ChaCha8Rng,
    genesis: Genesis,
    accel: Arc<Dispatcher>,
    keys: Vec<SecretKey>,
    dirs: Vec<tempfile::TempDir>,
    engines: Vec<Option<Engine>>,
    /// Deliveries by (time, sequence): to whom, and what.
    queue: BTreeMap<(u64, u64), (usize, Outbound)>,
    seq: u64,
    now: u64,
    /// While set, messages between this side and the rest are lost.
    partition: Option<BTreeSet<usize>>,
    byzantine: Option<usize>,
}

fn genesis(keys: &[SecretKey], term_length: u64) -> Genesis {
    let foundation = SecretKey::from_bytes([98; 32]).address();
    let deposit = 10_000 * UNITS_PER_CPC;
    let mut allocations = BTreeMap::new();
    for k in keys {
        allocations.insert(k.address(), 1_000 * UNITS_PER_CPC);
    }
    let used: u64 = allocations.values().sum::<u64>() + deposit * keys.len() as u64;
    allocations.insert(foundation, TOTAL_SUPPLY - used);
    let mut params = Params::with_foundation(foundation);
    params.committee_size = 4;
    params.term_length = term_length;
    Genesis {
        chain_id: 7,
        timestamp_ms: T0,
        params,
        allocations,
        validators: keys
            .iter()
            .map(|k| GenesisValidator::new(k.public(), deposit))
            .collect(),
        side_groups: Vec::new(),
    }
}

impl Sim {
    /// `VALIDATORS` nodes electing a committee of four every 12 blocks, one of the
    /// genesis committee Byzantine.
    fn new(seed: u64) -> Sim {
        let mut sim = Sim::build(seed, VALIDATORS, 12);
        // A member of the genesis committee (the first four).
        sim.byzantine = Some(sim.rng.gen_range(0..4));
        sim
    }

    fn build(seed: u64, validators: usize, term_length: u64) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let keys: Vec<SecretKey> = (0..validators)
            .map(|i| {
                let mut seed: [u8; 32] = rng.r#gen();
                seed[0] = i as u8;
                SecretKey::from_bytes(seed)
            })
            .collect();
        let genesis = genesis(&keys, term_length);
        let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
        let dirs: Vec<_> = keys.iter().map(|_| tempfile::tempdir().unwrap()).collect();
        let mut sim = Sim {
            rng,
            genesis,
            accel,
            keys,
            dirs,
            engines: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            partition: None,
            byzantine: None,
        };
        sim.engines = (0..validators).map(|i| Some(sim.open(i))).collect();
        sim
    }

    fn open(&self, i: usize) -> Engine {
        let chain = Chain::open(
            self.genesis.clone(),
            &StoreConfig {
                path: self.dirs[i].path().join("db"),
                sync: false,
            },
            self.accel.clone(),
            Some(self.keys[i].clone()),
            ChainConfig::default(),
        )
        .unwrap();
        let config = EngineConfig {
            block_interval_ms: 100,
            view_timeout_ms: 600,
            max_clock_drift_ms: 2000,
        };
        Engine::new(Arc::new(chain), config).unwrap()
    }

    fn crash(&mut self, i: usize) {
        self.engines[i] = None;
    }

    fn restart(&mut self, i: usize) {
        self.engines[i] = Some(self.open(i));
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_none_or(|side| side.contains(&a) == side.contains(&b))
    }

    /// Sends `o` from `from` to every other node: each copy is lost with probability 5 %
    /// (and always across a partition), otherwise delayed 0–60 ms.
    fn broadcast(&mut self, from: usize, o: &Outbound) {
        let mut sends = vec![o.clone()];
        // The Byzantine member signs a second notarize vote for a made-up block with
        // every one it casts.
        if Some(from) == self.byzantine
            && let Outbound::Gossip(m) = o
            && let Ok(ConsensusMessage::Vote { voter, vote, .. }) =
                decode_exact::<ConsensusMessage>(m)
            && vote.kind == VoteKind::Notarize
        {
            let fake = Vote {
                block: Hash32([0xee; 32]),
                ..vote
            };
            sends.push(Outbound::Gossip(
                ConsensusMessage::Vote {
                    voter,
                    vote: fake,
                    signature: self.keys[from].sign(&fake.signing_bytes()),
                }
                .encode(),
            ));
        }
        for s in sends {
            for to in 0..self.engines.len() {
                if to == from || !self.connected(from, to) || self.rng.gen_bool(0.05) {
                    continue;
                }
                let at = self.now + self.rng.gen_range(0..=60);
                self.seq += 1;
                self.queue.insert((at, self.seq), (to, s.clone()));
            }
        }
    }

    fn step(&mut self) {
        self.now += STEP_MS;
        let due: Vec<(u64, u64)> = self
            .queue
            .range(..(self.now + 1, 0))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let Some((to, o)) = self.queue.remove(&k) else {
                continue;
            };
            let Some(e) = self.engines[to].as_mut() else {
                continue;
            };
            let outs = match &o {
                Outbound::Gossip(m) => {
                    let (verdict, outs) = e.on_gossip(m);
                    if let Verdict::Reject(why) = verdict {
                        // Only the Byzantine member's made-up votes may be rejected.
                        assert!(
                            why.contains("signature") || why.contains("invalid"),
                            "node {to} rejected an honest message: {why}"
                        );
                    }
                    outs
                }
                Outbound::Ticket(t) => {
                    assert!(!matches!(e.on_ticket(t), Verdict::Reject(_)));
                    Vec::new()
                }
                Outbound::Fetch { .. } => Vec::new(),
            };
            for o in outs {
                self.handle(to, o);
            }
        }
        for i in 0..self.engines.len() {
            let outs = match self.engines[i].as_mut() {
                Some(e) => e.tick(self.now, T0 + self.now),
                None => continue,
            };
            for o in outs {
                self.handle(i, o);
            }
        }
    }

    fn handle(&mut self, from: usize, o: Outbound) {
        match o {
            Outbound::Fetch { from: height } => self.serve_sync(from, height),
            o => self.broadcast(from, &o),
        }
    }

    /// A reachable peer answers a sync request from its store.
    fn serve_sync(&mut self, to: usize, height: u64) {
        let peers: Vec<usize> = (0..self.engines.len())
            .filter(|p| *p != to && self.engines[*p].is_some() && self.connected(*p, to))
            .collect();
        if peers.is_empty() {
            return;
        }
        let p = peers[self.rng.gen_range(0..peers.len())];
        let blocks = self.engines[p]
            .as_ref()
            .unwrap()
            .chain()
            .blocks_from(height, 64, 1 << 20)
            .unwrap();
        if let Some(e) = self.engines[to].as_mut() {
            let _ = e.on_blocks(blocks);
        }
    }

    fn heights(&self) -> Vec<u64> {
        self.engines
            .iter()
            .map(|e| e.as_ref().map_or(0, |e| e.chain().height()))
            .collect()
    }

    fn chain(&self, i: usize) -> &Arc<Chain> {
        self.engines[i].as_ref().unwrap().chain()
    }
}

/// Safety: one block per height, on every running node.
fn assert_one_chain(sim: &Sim, ctx: &str) {
    let top = *sim.heights().iter().max().unwrap();
    for h in 1..=top {
        let hashes: BTreeSet<Hash32> = sim
            .engines
            .iter()
            .flatten()
            .filter_map(|e| e.chain().block(h).unwrap())
            .map(|(b, _)| b.header.hash())
            .collect();
        assert!(hashes.len() <= 1, "{ctx}: two blocks at height {h}");
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    let crash = loop {
        let c = sim.rng.gen_range(0..VALIDATORS);
        if Some(c) != sim.byzantine {
            break c;
        }
    };
    let side: BTreeSet<usize> = (0..VALIDATORS)
        .filter(|i| *i != crash && sim.rng.gen_bool(0.3))
        .take(2)
        .collect();
    let (crash_at, partition_at, heal_at, end) = (2_000, 4_000, 9_000, 22_000);
    let mut at_heal = Vec::new();
    while sim.now < end {
        if sim.now == crash_at {
            sim.crash(crash);
        }
        if sim.now == partition_at {
            sim.partition = Some(side.clone());
        }
        if sim.now == heal_at {
            sim.partition = None;
            sim.restart(crash);
            at_heal = sim.heights();
        }
        sim.step();
    }
    let heights = sim.heights();
    let ctx = format!(
        "seed {seed}: byzantine {:?}, crashed {crash}, minority {side:?}, heights at heal {at_heal:?}, at end {heights:?}",
        sim.byzantine
    );
    assert_one_chain(&sim, &ctx);
    // Liveness once the network healed.
    let healed = *at_heal.iter().max().unwrap();
    for (i, h) in heights.iter().enumerate() {
        assert!(
            *h >= healed + 5,
            "{ctx}: node {i} made no progress after the heal"
        );
    }
    // The double voter is slashed and out; a standby took its seat.
    let offender = sim.keys[sim.byzantine.unwrap()].public();
    for i in 0..VALIDATORS {
        let c = sim.chain(i);
        let v = c.validator(&offender.address()).unwrap();
        assert_eq!(
            v.deposit, 0,
            "{ctx}: node {i} did not slash the double voter"
        );
        let info = c.committee_info();
        assert!(
            !info.members.contains(&offender),
            "{ctx}: the offender still sits"
        );
        assert_eq!(
            info.members.len(),
            4,
            "{ctx}: a seat stayed empty: {info:?}"
        );
    }
    // Every node agrees on every committee it knows.
    let histories: Vec<_> = (0..VALIDATORS)
        .map(|i| sim.chain(i).committee_history())
        .collect();
    let longest = histories.iter().max_by_key(|h| h.len()).unwrap();
    for (i, h) in histories.iter().enumerate() {
        assert_eq!(
            h[..],
            longest[..h.len()],
            "{ctx}: node {i} disagrees on a committee"
        );
    }
    assert!(
        longest
            .iter()
            .any(|c| c.reason == cpc_state::ChangeReason::Election),
        "{ctx}: no election happened"
    );
}

#[test]
fn engines_stay_safe_and_live_and_remove_a_double_voter_on_every_seed() {
    if let Ok(seed) = std::env::var("CPC_ENGINE_SIM_SEED") {
        run(seed.parse().expect("CPC_ENGINE_SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("CPC_ENGINE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 0..seeds {
        run(seed);
    }
}

/// Four members; two crash at once at a random moment (blocks may be notarized and not
/// final yet, or known to one side only), so the chain halts; one restarts from its store
/// and the three must go on.
fn run_halt(seed: u64) {
    let mut sim = Sim::build(seed, 4, 600);
    let crash_at = STEP_MS * sim.rng.gen_range(50..150);
    let first = sim.rng.gen_range(0..4);
    let second = (first + sim.rng.gen_range(1..4)) % 4;
    let live: Vec<usize> = (0..4).filter(|i| *i != first && *i != second).collect();
    let (stalled_at, restart_at, end) = (crash_at + 2_000, crash_at + 5_000, crash_at + 25_000);
    let mut stalled = Vec::new();
    while sim.now < end {
        if sim.now == crash_at {
            sim.crash(first);
            sim.crash(second);
        }
        if sim.now == stalled_at {
            stalled = sim.heights();
        }
        if sim.now == restart_at {
            let heights = sim.heights();
            let ctx = format!("seed {seed}: crashed {first} and {second} at {crash_at} ms");
            for i in &live {
                assert!(
                    heights[*i] <= stalled[*i] + 1,
                    "{ctx}: the chain went on without a quorum: {stalled:?} -> {heights:?}"
                );
            }
            sim.restart(first);
        }
        sim.step();
    }
    let heights = sim.heights();
    let ctx = format!(
        "seed {seed}: crashed {first} and {second} at {crash_at} ms, restarted {first}, heights when stalled {stalled:?}, at end {heights:?}"
    );
    assert_one_chain(&sim, &ctx);
    let top = *stalled.iter().max().unwrap();
    for i in live.iter().chain([&first]) {
        assert!(heights[*i] >= top + 5, "{ctx}: node {i} did not resume");
    }
}

#[test]
fn a_halted_chain_resumes_when_one_of_two_crashed_members_returns() {
    if let Ok(seed) = std::env::var("CPC_ENGINE_SIM_SEED") {
        run_halt(seed.parse().expect("CPC_ENGINE_SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("CPC_ENGINE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for seed in 0..seeds {
        run_halt(seed);
    }
}

/// All four members crash at once at a random moment — a block may be notarized, with
/// finalize votes cast, and held only in memory — and restart together: the chain must go
/// on, unforked. Only the leader's journal still holds such a block.
fn run_full_restart(seed: u64) {
    let mut sim = Sim::build(seed, 4, 600);
    let crash_at = STEP_MS * sim.rng.gen_range(50..150);
    let (restart_at, end) = (crash_at + 1_000, crash_at + 20_000);
    let mut before = Vec::new();
    while sim.now < end {
        if sim.now == crash_at {
            before = sim.heights();
            for i in 0..4 {
                sim.crash(i);
            }
        }
        if sim.now == restart_at {
            for i in 0..4 {
                sim.restart(i);
            }
        }
        sim.step();
    }
    let heights = sim.heights();
    let ctx = format!(
        "seed {seed}: all four crashed at {crash_at} ms at heights {before:?} and restarted; at end {heights:?}"
    );
    assert_one_chain(&sim, &ctx);
    let top = *before.iter().max().unwrap();
    for (i, h) in heights.iter().enumerate() {
        assert!(*h >= top + 5, "{ctx}: node {i} did not resume");
    }
}

#[test]
fn a_committee_that_restarts_whole_goes_on() {
    if let Ok(seed) = std::env::var("CPC_ENGINE_SIM_SEED") {
        run_full_restart(seed.parse().expect("CPC_ENGINE_SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("CPC_ENGINE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for seed in 0..seeds {
        run_full_restart(seed);
    }
}
