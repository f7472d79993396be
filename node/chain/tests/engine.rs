//! Four consensus engines over real chains, wired by an in-memory network: they agree on
//! every block, and forged or malformed messages are rejected before the machine sees them.

use std::collections::BTreeMap;
use std::sync::Arc;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_chain::{Chain, ChainConfig, Engine, EngineConfig, Outbound, Verdict};
use cpc_state::{Genesis, GenesisValidator, Params};
use cpc_storage::StoreConfig;
use cpc_types::{
    ConsensusMessage, Encode, Hash32, SecretKey, Signature, TOTAL_SUPPLY, Transaction, TxKind,
    UNITS_PER_CPC, Vote, VoteKind,
};

const T0: u64 = 1_767_225_600_000;

struct Net {
    _dirs: Vec<tempfile::TempDir>,
    engines: Vec<Engine>,
    keys: Vec<SecretKey>,
    user: SecretKey,
    now: u64,
    /// Nodes that neither tick nor hear anything.
    down: Vec<bool>,
}

/// `n` validators.
fn network(n: usize) -> Net {
    network_with_followers(n, 0)
}

/// `n` validators, then `followers` nodes whose keys are not in the committee.
fn network_with_followers(n: usize, followers: usize) -> Net {
    let keys: Vec<SecretKey> = (0..n)
        .map(|i| SecretKey::from_bytes([10 + i as u8; 32]))
        .collect();
    let user = SecretKey::from_bytes([99; 32]);
    let foundation = SecretKey::from_bytes([98; 32]).address();
    let deposit = 10_000 * UNITS_PER_CPC;
    let mut allocations = BTreeMap::new();
    allocations.insert(user.address(), 1_000 * UNITS_PER_CPC);
    // Validators pay for the evidence they report.
    for k in &keys {
        allocations.insert(k.address(), 1_000 * UNITS_PER_CPC);
    }
    allocations.insert(
        foundation,
        TOTAL_SUPPLY - 1_000 * UNITS_PER_CPC * (n as u64 + 1) - deposit * n as u64,
    );
    let genesis = Genesis {
        chain_id: 5,
        timestamp_ms: T0,
        params: Params::with_foundation(foundation),
        allocations,
        validators: keys
            .iter()
            .map(|k| GenesisValidator {
                key: k.public(),
                vrf_key: k.public(),
                endpoint: String::new(),
                deposit,
            })
            .collect(),
    };
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let mut dirs = Vec::new();
    let mut engines = Vec::new();
    let outsiders: Vec<SecretKey> = (0..followers)
        .map(|i| SecretKey::from_bytes([60 + i as u8; 32]))
        .collect();
    for k in keys.iter().chain(&outsiders) {
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::open(
            genesis.clone(),
            &StoreConfig {
                path: dir.path().join("db"),
                sync: false,
            },
            accel.clone(),
            Some(k.clone()),
            ChainConfig::default(),
        )
        .unwrap();
        let config = EngineConfig {
            block_interval_ms: 100,
            view_timeout_ms: 1000,
            max_clock_drift_ms: 2000,
        };
        engines.push(Engine::new(Arc::new(chain), config).unwrap());
        dirs.push(dir);
    }
    Net {
        _dirs: dirs,
        engines,
        keys,
        user,
        now: 0,
        down: vec![false; n + followers],
    }
}

impl Net {
    /// Advances 20 ms: ticks every engine, then delivers every message to every other
    /// engine until the network is quiet. Every verdict on an honest message is Accept or
    /// Ignore.
    fn step(&mut self) {
        self.now += 20;
        let mut queue: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, e) in self.engines.iter_mut().enumerate() {
            if self.down[i] {
                continue;
            }
            for o in e.tick(self.now, T0 + self.now) {
                if let Outbound::Gossip(m) = o {
                    queue.push((i, m));
                }
            }
        }
        while let Some((from, msg)) = queue.pop() {
            for (j, e) in self.engines.iter_mut().enumerate() {
                if j == from || self.down[j] {
                    continue;
                }
                let (verdict, out) = e.on_gossip(&msg);
                assert!(!matches!(verdict, Verdict::Reject(_)), "{verdict:?}");
                for o in out {
                    if let Outbound::Gossip(m) = o {
                        queue.push((j, m));
                    }
                }
            }
        }
    }

    fn heights(&self) -> Vec<u64> {
        self.engines.iter().map(|e| e.chain().height()).collect()
    }
}

#[test]
fn four_engines_commit_the_same_blocks_with_finalize_certificates() {
    let mut net = network(4);
    let tx = Transaction {
        chain_id: 5,
        sender: net.user.public(),
        nonce: 0,
        max_fee: 0,
        kind: TxKind::Transfer {
            to: SecretKey::from_bytes([1; 32]).address(),
            amount: 5,
        },
    }
    .sign(&net.user);
    // Submitted to one node only: the leader of some view must have it, so give it to all
    // as gossip would.
    for e in &net.engines {
        assert!(e.chain().submit_from_peer(vec![tx.clone()], T0)[0].is_ok());
    }
    for _ in 0..200 {
        net.step();
    }
    let heights = net.heights();
    let h = *heights.iter().min().unwrap();
    assert!(h >= 5, "{heights:?}");
    for height in 1..=h {
        let blocks: Vec<_> = net
            .engines
            .iter()
            .map(|e| e.chain().block(height).unwrap().unwrap().0)
            .collect();
        assert!(blocks.iter().all(|b| b.header == blocks[0].header));
    }
    let (head, _) = net.engines[0].chain().block(h).unwrap().unwrap();
    assert_eq!(head.certificate.kind, VoteKind::Finalize);
    assert!(head.certificate.votes.len() >= 3);
    assert!(matches!(
        net.engines[2].chain().tx_status(&tx.id()).unwrap(),
        cpc_chain::TxStatus::Committed { .. }
    ));
}

#[test]
fn forged_and_malformed_messages_are_rejected() {
    let mut net = network(4);
    for _ in 0..20 {
        net.step();
    }
    let e = &mut net.engines[0];
    let vote = Vote {
        chain_id: 5,
        kind: VoteKind::Nullify,
        view: 50,
        parent_view: 0,
        parent: Hash32::ZERO,
        block: Hash32::ZERO,
    };
    let reject = |e: &mut Engine, m: &ConsensusMessage| {
        matches!(e.on_gossip(&m.encode()).0, Verdict::Reject(_))
    };
    // Garbage.
    assert!(matches!(e.on_gossip(&[7, 1, 2]).0, Verdict::Reject(_)));
    // A vote signed by a key outside the committee.
    let outsider = SecretKey::from_bytes([3; 32]);
    let m = ConsensusMessage::Vote {
        voter: outsider.public(),
        vote,
        signature: outsider.sign(&vote.signing_bytes()),
    };
    assert!(reject(e, &m));
    // A member's key with a signature over something else.
    let m = ConsensusMessage::Vote {
        voter: net.keys[1].public(),
        vote,
        signature: net.keys[1].sign(b"something else"),
    };
    assert!(reject(e, &m));
    // A forged certificate: three members named, one signature forged.
    let mut votes: Vec<_> = net.keys[1..]
        .iter()
        .map(|k| (k.public(), k.sign(&vote.signing_bytes())))
        .collect();
    votes[2].1 = Signature([5; 64]);
    votes.sort_by_key(|v| v.0);
    assert!(reject(e, &ConsensusMessage::Certificate { vote, votes }));
    // A certificate short of a quorum.
    let mut votes: Vec<_> = net.keys[1..3]
        .iter()
        .map(|k| (k.public(), k.sign(&vote.signing_bytes())))
        .collect();
    votes.sort_by_key(|v| v.0);
    assert!(reject(e, &ConsensusMessage::Certificate { vote, votes }));
    // A nullify vote that names a block is not canonical.
    let odd = Vote {
        block: Hash32([1; 32]),
        ..vote
    };
    let m = ConsensusMessage::Vote {
        voter: net.keys[1].public(),
        vote: odd,
        signature: net.keys[1].sign(&odd.signing_bytes()),
    };
    assert!(reject(e, &m));
    // A valid certificate is accepted and moves the node on.
    let mut votes: Vec<_> = net.keys[1..]
        .iter()
        .map(|k| (k.public(), k.sign(&vote.signing_bytes())))
        .collect();
    votes.sort_by_key(|v| v.0);
    let (verdict, _) = e.on_gossip(&ConsensusMessage::Certificate { vote, votes }.encode());
    assert_eq!(verdict, Verdict::Accept);
    assert!(e.status().view > 50);
}

#[test]
fn a_member_that_votes_twice_in_a_view_is_slashed_on_every_node() {
    let mut net = network(4);
    for _ in 0..10 {
        net.step();
    }
    let byzantine = net.keys[1].clone();
    let view = net.engines[0].status().view + 2;
    let notarize = |block: u8| Vote {
        chain_id: 5,
        kind: VoteKind::Notarize,
        view,
        parent_view: view - 1,
        parent: Hash32([1; 32]),
        block: Hash32([block; 32]),
    };
    for v in [notarize(7), notarize(8)] {
        let m = ConsensusMessage::Vote {
            voter: byzantine.public(),
            vote: v,
            signature: byzantine.sign(&v.signing_bytes()),
        };
        let (verdict, _) = net.engines[0].on_gossip(&m.encode());
        assert_eq!(verdict, Verdict::Accept);
    }
    assert_eq!(net.engines[0].status().metrics.evidence, 1);
    // Node 1 reported it in a transaction; gossip hands it to the others.
    let reported = net.engines[0].chain().take_outbox();
    assert!(reported.is_empty(), "gossip is off in this test");
    let mine = net.engines[0]
        .chain()
        .account(&net.keys[0].address(), T0)
        .pending;
    assert_eq!(mine, 1, "the evidence waits in node 1's mempool");
    for _ in 0..100 {
        net.step();
    }
    for e in &net.engines {
        let v = e.chain().validator(&byzantine.address()).unwrap();
        // Slashed to zero; blocks it proposed since earn back a little.
        assert_eq!(v.deposit, 0);
        assert!(v.credit < 50, "{}", v.credit);
    }
}

#[test]
fn a_follower_outside_the_committee_commits_the_same_chain() {
    let mut net = network_with_followers(4, 1);
    for _ in 0..100 {
        net.step();
    }
    let follower = &net.engines[4];
    assert!(!follower.status().member);
    let h = follower.chain().height();
    assert!(h >= 3, "{:?}", net.heights());
    for height in 1..=h {
        let a = net.engines[0].chain().block(height).unwrap().unwrap().0;
        let b = follower.chain().block(height).unwrap().unwrap().0;
        assert_eq!(a.header, b.header);
    }
}

#[test]
fn a_node_that_was_down_syncs_final_blocks_and_refuses_a_tampered_run() {
    let mut net = network(4);
    for _ in 0..20 {
        net.step();
    }
    net.down[3] = true;
    // Its views time out now (1 s each), so this takes a while of simulated time.
    for _ in 0..400 {
        net.step();
    }
    let behind = net.engines[3].chain().height();
    let ahead = net.engines[0].chain().height();
    assert!(ahead > behind + 5, "{:?}", net.heights());
    let run = net.engines[0]
        .chain()
        .blocks_from(behind + 1, 256, 4 << 20)
        .unwrap();
    // A run with a block swapped out in the middle is refused as invalid.
    let mut tampered = run.clone();
    tampered.swap(1, 2);
    assert!(matches!(
        net.engines[3].on_blocks(tampered),
        Err(cpc_chain::SyncError::Invalid(_))
    ));
    // The honest run applies up to its last finalize certificate.
    let applied = net.engines[3].on_blocks(run).unwrap();
    assert!(applied > 0);
    let h = net.engines[3].chain().height();
    assert!(h > behind);
    let a = net.engines[0].chain().block(h).unwrap().unwrap().0;
    let b = net.engines[3].chain().block(h).unwrap().unwrap().0;
    assert_eq!(a.header, b.header);
    // While down it led views that timed out: every node charged it the same credit,
    // and the others earned credit for their blocks.
    let credit = |e: &Engine, k: &SecretKey| e.chain().validator(&k.address()).unwrap().credit;
    let missed = credit(&net.engines[0], &net.keys[3]);
    assert!(missed < 500, "{missed}");
    assert_eq!(credit(&net.engines[3], &net.keys[3]), missed);
    assert!(credit(&net.engines[0], &net.keys[0]) > 500);
    // Back online, it takes part again.
    net.down[3] = false;
    for _ in 0..100 {
        net.step();
    }
    assert!(net.engines[3].chain().height() > h);
}
