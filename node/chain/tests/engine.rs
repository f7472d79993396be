//! Consensus engines over real chains, wired by an in-memory network with simulated time:
//! they agree on every block, forged or malformed messages are rejected before the machine
//! sees them, committees are elected every term and replaced below the credit threshold,
//! and the end of an epoch becomes final through empty suffix blocks.

use std::collections::BTreeMap;
use std::sync::Arc;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_chain::{Chain, ChainConfig, Engine, EngineConfig, Outbound, Verdict};
use cpc_state::{Genesis, GenesisValidator, Params};
use cpc_storage::StoreConfig;
use cpc_types::codec::decode_exact;
use cpc_types::{
    ConsensusMessage, Encode, Hash32, PublicKey, SecretKey, Signature, TOTAL_SUPPLY, Transaction,
    TxKind, UNITS_PER_CPC, Vote, VoteKind,
};

const T0: u64 = 1_767_225_600_000;

type Filter = Box<dyn FnMut(&ConsensusMessage) -> bool>;

struct Net {
    _dirs: Vec<tempfile::TempDir>,
    engines: Vec<Engine>,
    keys: Vec<SecretKey>,
    user: SecretKey,
    now: u64,
    /// Nodes that neither tick nor hear anything.
    down: Vec<bool>,
    /// Consensus messages for which this returns false are lost on the way.
    pass: Filter,
}

/// `n` validators.
fn network(n: usize) -> Net {
    network_with(n, 0, |_| {})
}

/// `n` validators, then `followers` nodes whose keys are not in the committee.
fn network_with_followers(n: usize, followers: usize) -> Net {
    network_with(n, followers, |_| {})
}

/// `n` validators (the first `committee_size` form the genesis committee, the others
/// stand by), then `followers` nodes that are not validators; `tweak` sets parameters.
fn network_with(n: usize, followers: usize, tweak: impl FnOnce(&mut Params)) -> Net {
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
    let mut params = Params::with_foundation(foundation);
    params.committee_size = 4;
    tweak(&mut params);
    let genesis = Genesis {
        chain_id: 5,
        timestamp_ms: T0,
        params,
        allocations,
        validators: keys
            .iter()
            .map(|k| GenesisValidator::new(k.public(), deposit))
            .collect(),
        side_groups: Vec::new(),
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
        pass: Box::new(|_| true),
    }
}

impl Net {
    /// Advances 20 ms: ticks every engine, then delivers every message to every other
    /// engine until the network is quiet. Every verdict on an honest message is Accept or
    /// Ignore.
    fn step(&mut self) {
        self.now += 20;
        let mut queue: Vec<(usize, Outbound)> = Vec::new();
        for (i, e) in self.engines.iter_mut().enumerate() {
            if self.down[i] {
                continue;
            }
            for o in e.tick(self.now, T0 + self.now) {
                queue.push((i, o));
            }
        }
        while let Some((from, o)) = queue.pop() {
            if let Outbound::Gossip(m) = &o
                && !(self.pass)(&decode_exact::<ConsensusMessage>(m).unwrap())
            {
                continue;
            }
            for (j, e) in self.engines.iter_mut().enumerate() {
                if j == from || self.down[j] {
                    continue;
                }
                match &o {
                    Outbound::Gossip(m) => {
                        let (verdict, out) = e.on_gossip(m);
                        assert!(!matches!(verdict, Verdict::Reject(_)), "{verdict:?}");
                        queue.extend(out.into_iter().map(|o| (j, o)));
                    }
                    Outbound::Ticket(t) => {
                        let verdict = e.on_ticket(t);
                        assert!(!matches!(verdict, Verdict::Reject(_)), "{verdict:?}");
                    }
                    Outbound::Fetch { .. } => {}
                }
            }
        }
    }

    /// Steps until every node that is up reached `height`, at most `max` steps.
    fn run_to(&mut self, height: u64, max: usize) {
        for _ in 0..max {
            if self
                .engines
                .iter()
                .zip(&self.down)
                .all(|(e, down)| *down || e.chain().height() >= height)
            {
                return;
            }
            self.step();
        }
        panic!("height {height} not reached: {:?}", self.heights());
    }

    /// Every node holds the same blocks up to the lowest head.
    fn assert_same_chain(&self) {
        let h = *self.heights().iter().min().unwrap();
        for height in 1..=h {
            let a = self.engines[0].chain().block(height).unwrap().unwrap().0;
            for e in &self.engines[1..] {
                let b = e.chain().block(height).unwrap().unwrap().0;
                assert_eq!(a.header, b.header, "block {height}");
            }
        }
    }

    fn heights(&self) -> Vec<u64> {
        self.engines.iter().map(|e| e.chain().height()).collect()
    }
}

/// Has member `who` notarize two different blocks in one view, delivered to node 1, which
/// accepts both (and so holds the evidence). Returns the offender's key.
fn double_vote(net: &mut Net, who: usize) -> SecretKey {
    let byzantine = net.keys[who].clone();
    let view = net.engines[0].status().view + 2;
    let notarize = |block: u8| Vote {
        chain_id: 5,
        epoch: 0,
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
    byzantine
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
        epoch: 0,
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
    let byzantine = double_vote(&mut net, 1);
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
        // Slashed to zero, and out of the committee: it earns nothing back.
        assert_eq!((v.deposit, v.credit), (0, 0));
        // Nobody stood by to take its seat: the committee shrinks to three.
        let c = e.chain().committee();
        assert_eq!(c.len(), 3);
        assert!(!c.contains(&byzantine.public()));
    }
    // The three go on.
    let h = net.engines[0].chain().height();
    net.run_to(h + 5, 300);
    net.assert_same_chain();
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

/// The committee in office on node `i`.
fn committee(net: &Net, i: usize) -> Vec<PublicKey> {
    net.engines[i].chain().committee()
}

#[test]
fn every_term_elects_a_committee_by_ticket_and_every_node_agrees() {
    // Five validators for four seats, a term of 10 blocks: elections at heights 10, 20, 30.
    let mut net = network_with(5, 0, |p| p.term_length = 10);
    net.run_to(32, 3000);
    net.assert_same_chain();
    let history = net.engines[0].chain().committee_history();
    for e in &net.engines[1..] {
        assert_eq!(e.chain().committee_history(), history);
    }
    assert!(history.len() >= 4, "{history:?}");
    let genesis_members = history[0].members.clone();
    for (e, c) in history.iter().enumerate().skip(1) {
        assert_eq!(c.epoch, e as u64);
        assert_eq!(c.term, e as u64, "one election per term, no removals");
        assert_eq!(c.from_height, 10 * e as u64 + 1);
        assert_eq!(c.reason, cpc_state::ChangeReason::Election);
        assert_eq!(c.members.len(), 4);
        // Every member and standby candidate was elected by a ticket it proved.
        for k in c.members.iter().chain(&c.standby) {
            assert!(c.lucky_of(k).is_some(), "{k} has no lucky value");
        }
        // The block that ends each term carries the change, and certifies nothing after
        // it: the next block belongs to the new committee.
        let (end, _) = net.engines[0]
            .chain()
            .block(10 * e as u64)
            .unwrap()
            .unwrap();
        let change = end.header.committee_change.clone().unwrap();
        assert_eq!((change.epoch, &change.members), (c.epoch, &c.members));
        let (next, _) = net.engines[0]
            .chain()
            .block(10 * e as u64 + 1)
            .unwrap()
            .unwrap();
        assert_eq!(next.header.epoch, c.epoch);
        assert!(c.members.contains(&next.header.proposer));
        assert!(
            next.header.vrf_proof.is_some(),
            "a term's first block seeds the next"
        );
        let votes: Vec<_> = next.certificate.votes.iter().map(|(k, _)| *k).collect();
        assert!(votes.iter().all(|k| c.members.contains(k)), "{votes:?}");
    }
    // Luck moved somebody: not every election returned the genesis committee's members.
    assert!(
        history[1..].iter().any(|c| {
            let mut a = c.members.clone();
            let mut b = genesis_members.clone();
            a.sort();
            b.sort();
            a != b
        }),
        "the standby validator never got a seat"
    );
    // Blocks carry the parent's votes, and voters earn credit beyond proposals alone.
    let (b, _) = net.engines[0].chain().block(5).unwrap().unwrap();
    assert!(b.parent_votes.votes.len() >= 3, "{:?}", b.parent_votes);
    let status = net.engines[0].status();
    assert_eq!(status.term, history.last().unwrap().term);
    assert!(status.committee.iter().all(|m| m.lucky.is_some()));
}

#[test]
fn a_slashed_member_is_replaced_by_the_standby_from_the_next_block() {
    let mut net = network_with(5, 0, |p| p.term_length = 1000);
    net.run_to(3, 300);
    assert_eq!(
        committee(&net, 0),
        net.keys[..4].iter().map(|k| k.public()).collect::<Vec<_>>()
    );
    let byzantine = double_vote(&mut net, 1);
    let start = net.engines[0].chain().height();
    let replaced = |net: &Net| {
        net.engines
            .iter()
            .all(|e| e.chain().committee_info().epoch == 1)
    };
    for _ in 0..300 {
        if replaced(&net) {
            break;
        }
        net.step();
    }
    assert!(replaced(&net), "{:?}", net.heights());
    // The standby takes the offender's seat; the other seats stay where they were, so
    // leader rotation is otherwise undisturbed.
    let expected = vec![
        net.keys[0].public(),
        net.keys[4].public(),
        net.keys[2].public(),
        net.keys[3].public(),
    ];
    for i in 0..5 {
        assert_eq!(committee(&net, i), expected, "node {i}");
    }
    let info = net.engines[0].chain().committee_info();
    assert_eq!(info.reason, cpc_state::ChangeReason::Removal);
    assert_eq!(info.term, 0, "a removal does not start a term");
    let (end, _) = net.engines[0]
        .chain()
        .block(info.from_height - 1)
        .unwrap()
        .unwrap();
    assert!(end.header.height > start);
    let change = end.header.committee_change.unwrap();
    assert_eq!(change.removed, vec![byzantine.public()]);
    assert_eq!(change.added, vec![net.keys[4].public()]);
    // The new committee goes on, and the newcomer proposes and votes.
    net.run_to(info.from_height + 12, 1000);
    net.assert_same_chain();
    let newcomer = net.keys[4].public();
    let mut proposed = false;
    for h in info.from_height..=info.from_height + 12 {
        let (b, _) = net.engines[0].chain().block(h).unwrap().unwrap();
        assert_eq!(b.header.epoch, 1);
        proposed |= b.header.proposer == newcomer;
        assert!(
            !b.certificate
                .votes
                .iter()
                .any(|(k, _)| *k == byzantine.public())
        );
    }
    assert!(proposed, "the newcomer never proposed");
    assert!(net.engines[4].status().member && !net.engines[1].status().member);
}

#[test]
fn the_end_of_an_epoch_becomes_final_through_suffix_blocks() {
    let mut net = network_with(4, 0, |p| p.term_length = 10);
    net.run_to(8, 1000);
    // From now on no finalize vote gets through: block 10, which ends the term, is
    // notarized but cannot be finalized by its own votes.
    net.pass = Box::new(
        |m| !matches!(m, ConsensusMessage::Vote { vote, .. } | ConsensusMessage::Certificate { vote, .. } if vote.kind == VoteKind::Finalize),
    );
    for _ in 0..150 {
        net.step();
    }
    assert!(net.heights().iter().all(|h| *h < 10), "{:?}", net.heights());
    let suffix: u64 = net
        .engines
        .iter()
        .map(|e| e.status().metrics.suffix_blocks)
        .sum();
    assert!(suffix > 0, "no leader proposed past the end of the epoch");
    // Finalize votes flow again: the suffix blocks finalize block 10, which is committed
    // and they are not; the next committee builds on it.
    net.pass = Box::new(|_| true);
    net.run_to(14, 2000);
    net.assert_same_chain();
    let chain = net.engines[0].chain();
    let (end, _) = chain.block(10).unwrap().unwrap();
    let (next, _) = chain.block(11).unwrap().unwrap();
    assert!(end.header.committee_change.is_some());
    assert_eq!(next.header.parent, end.header.hash());
    assert_eq!((end.header.epoch, next.header.epoch), (0, 1));
}

#[test]
fn a_node_that_was_down_for_several_terms_syncs_through_every_committee() {
    let mut net = network_with(5, 0, |p| p.term_length = 8);
    net.run_to(3, 300);
    // Node 5 stands by at genesis; while it is down, elections go on without it.
    net.down[4] = true;
    net.run_to(30, 3000);
    let ahead = net.engines[0].chain().height();
    let behind = net.engines[4].chain().height();
    assert!(behind < 8, "{:?}", net.heights());
    let run = net.engines[0]
        .chain()
        .blocks_from(behind + 1, 256, 4 << 20)
        .unwrap();
    let applied = net.engines[4].on_blocks(run).unwrap();
    assert!(applied as u64 + behind >= 28, "{applied}");
    let h = net.engines[4].chain().height();
    let synced = net.engines[4].chain().committee_history();
    let full = net.engines[0].chain().committee_history();
    assert!(synced.len() >= 4, "{synced:?}");
    assert_eq!(synced, full[..synced.len()]);
    let a = net.engines[0].chain().block(h).unwrap().unwrap().0;
    let b = net.engines[4].chain().block(h).unwrap().unwrap().0;
    assert_eq!(a.header, b.header);
    net.down[4] = false;
    net.run_to(ahead + 10, 2000);
    net.assert_same_chain();
}
