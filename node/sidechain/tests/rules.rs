//! The side chain's rules on small hand-built DAGs: confirmation by n − f gateways,
//! double spends, overdrafts, equivocation evidence, invalid signatures, anchors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_sidechain::{
    Action, Config, Group, Input, MachineKind, MachineTx, Message, SideChain, SideError,
    SignedMachineTx, SignedVertex, TxInfo, TxStatus, Vertex, VertexId,
};
use cpc_types::{Address, Hash32, SecretKey, sha256};

struct Net {
    keys: Vec<SecretKey>,
    nodes: Vec<SideChain>,
    now: u64,
    group: Group,
    /// Anchor proposals never reach the last node; only the main chain's record does.
    drop_proposals: bool,
    /// The main chain: anchors the gateways submit are executed on its real state.
    main: MainChain,
    /// Per node, the transactions it pruned (as a node archives them).
    archive: Vec<BTreeMap<Hash32, TxInfo>>,
    /// Every vertex a gateway sent, in the order it sent them (what a node's log holds).
    sent: Vec<SignedVertex>,
    /// The anchors the main chain took, as the final inputs it gave the nodes.
    finals: Vec<Input>,
    /// Who sent each anchor proposal or endorsement, in order.
    anchor_senders: Vec<usize>,
}

fn net(n: usize) -> Net {
    let keys: Vec<SecretKey> = (0..n)
        .map(|i| SecretKey::from_bytes([i as u8 + 1; 32]))
        .collect();
    let group = Group::new(
        Group::id_of("rules"),
        keys.iter().map(SecretKey::public).collect(),
    )
    .unwrap();
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let cfg = config(&group);
    let nodes = keys
        .iter()
        .map(|k| SideChain::new(cfg.clone(), Some(k.clone()), accel.clone()).unwrap())
        .collect();
    Net {
        keys,
        nodes,
        now: 0,
        main: MainChain::new(&group, 900, 10_000),
        group,
        drop_proposals: false,
        archive: vec![BTreeMap::new(); n],
        sent: Vec::new(),
        finals: Vec::new(),
        anchor_senders: Vec::new(),
    }
}

fn config(group: &Group) -> Config {
    let mut cfg = Config::new(group.clone());
    cfg.heads_interval_ms = 10;
    cfg.anchor_interval_ms = 50;
    cfg.reward_per_anchor = 900;
    cfg
}

impl Net {
    /// A node of the group that is not a gateway, fed by hand.
    fn observer(&self) -> SideChain {
        let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
        SideChain::new(config(&self.group), None, accel).unwrap()
    }

    /// Gateway `g`'s vertex, signed.
    fn vertex(
        &self,
        g: usize,
        sequence: u64,
        parents: Vec<VertexId>,
        txs: Vec<SignedMachineTx>,
    ) -> SignedVertex {
        Vertex {
            group_id: self.group.id,
            creator: self.keys[g].public(),
            sequence,
            timestamp_ms: sequence,
            parents,
            txs,
        }
        .sign(&self.keys[g])
    }
    /// Runs `ms` milliseconds with instant, lossless delivery among `live` nodes; returns
    /// every action that was not a message.
    fn run(&mut self, ms: u64, live: &[usize]) -> Vec<(usize, Action)> {
        let mut other = Vec::new();
        for _ in 0..ms {
            self.now += 1;
            let mut queue: Vec<(usize, Action)> = Vec::new();
            for &i in live {
                for a in self.nodes[i].handle(self.now, Input::Tick) {
                    queue.push((i, a));
                }
            }
            while let Some((from, a)) = queue.pop() {
                match a {
                    Action::Send { to, msg } => {
                        match &msg {
                            Message::Vertex(v) => self.sent.push(v.clone()),
                            Message::Anchor(_) => self.anchor_senders.push(from),
                            _ => {}
                        }
                        let deaf = self.drop_proposals.then(|| self.nodes.len() - 1);
                        for &j in live {
                            if j == from || to.is_some_and(|t| t as usize != j) {
                                continue;
                            }
                            if matches!(msg, Message::Anchor(_)) && deaf == Some(j) {
                                continue;
                            }
                            for b in self.nodes[j].handle(
                                self.now,
                                Input::Message {
                                    from: from as u64,
                                    msg: msg.clone(),
                                },
                            ) {
                                queue.push((j, b));
                            }
                        }
                    }
                    Action::SubmitAnchor(s) => {
                        // Only what the main chain takes becomes final (a second
                        // submission of one sequence fails there).
                        if self.main.apply(s.tx_kind()).is_err() {
                            other.push((from, Action::SubmitAnchor(s)));
                            continue;
                        }
                        let fin = Input::AnchorFinal {
                            sequence: s.anchor.sequence,
                            root: s.anchor.root,
                            confirmed_vertices: s.anchor.confirmed_vertices,
                            frontier: s.anchor.frontier.clone(),
                        };
                        self.finals.push(fin.clone());
                        for &j in live {
                            for b in self.nodes[j].handle(self.now, fin.clone()) {
                                queue.push((j, b));
                            }
                        }
                        other.push((from, Action::SubmitAnchor(s)));
                    }
                    Action::Pruned { txs, .. } => self.archive[from].extend(txs),
                    a => other.push((from, a)),
                }
            }
        }
        other
    }

    fn lock(&mut self, m: &SecretKey, amount: u64) -> Hash32 {
        let id = sha256(&[b"lock", &m.public().0]);
        for node in &mut self.nodes {
            node.handle(
                self.now,
                Input::Lock {
                    id,
                    account: m.address(),
                    amount,
                },
            );
        }
        id
    }

    fn tx(&self, m: &SecretKey, nonce: u64, kind: MachineKind) -> SignedMachineTx {
        MachineTx {
            group_id: self.group.id,
            sender: m.public(),
            nonce,
            kind,
        }
        .sign(m)
    }

    /// Two transfers of `m`'s `nonce`, to each of `to`, each reaching a different pair of
    /// gateways first: each wins two endorsements of the three it needs.
    fn split_double_spend(
        &mut self,
        m: &SecretKey,
        nonce: u64,
        to: [Address; 2],
        amount: u64,
    ) -> (SignedMachineTx, SignedMachineTx) {
        let [a, b] = to.map(|to| self.tx(m, nonce, MachineKind::Transfer { to, amount }));
        self.nodes[0].submit(self.now, vec![a.clone()]);
        self.nodes[3].submit(self.now, vec![b.clone()]);
        self.run(20, &[0, 1]);
        self.run(20, &[2, 3]);
        (a, b)
    }

    /// Gateway 0's next vertex, on its latest as node 1 knows it, holding `txs`: what a
    /// faulty gateway 0 could send.
    fn next_of_gateway_0(&self, txs: Vec<SignedMachineTx>) -> SignedVertex {
        let g = self.group.index(&self.keys[0].public()).unwrap();
        let tip = self.nodes[1].status().tips[g].unwrap();
        Vertex {
            group_id: self.group.id,
            creator: self.keys[0].public(),
            sequence: self.nodes[1].vertex(&tip).unwrap().vertex.vertex.sequence + 1,
            timestamp_ms: self.now,
            parents: vec![tip],
            txs,
        }
        .sign(&self.keys[0])
    }

    /// A second vertex of `v`'s creator and sequence, signed by that gateway.
    fn twin(&self, v: &SignedVertex) -> SignedVertex {
        let key = self.keys.iter().find(|k| k.public() == v.vertex.creator);
        Vertex {
            timestamp_ms: v.vertex.timestamp_ms + 1,
            ..v.vertex.clone()
        }
        .sign(key.expect("a gateway's vertex"))
    }

    /// Hands vertex `v` from gateway `from` to node `to` alone, now; returns its actions.
    fn hand(&mut self, to: usize, from: usize, v: &SignedVertex) -> Vec<Action> {
        self.nodes[to].handle(
            self.now,
            Input::Message {
                from: from as u64,
                msg: Message::Vertex(v.clone()),
            },
        )
    }

    /// A sensor reading of machine `m`, its data hash made of `tag`.
    fn event(&self, m: &SecretKey, nonce: u64, tag: u8) -> SignedMachineTx {
        let kind = MachineKind::Event {
            event_type: 1,
            data_hash: Hash32([tag; 32]),
            x: 1,
            y: 2,
        };
        self.tx(m, nonce, kind)
    }

    /// What `node` knows of transaction `h`, in memory or pruned.
    fn info(&self, node: usize, h: &Hash32) -> Option<TxInfo> {
        self.nodes[node]
            .tx(h)
            .or_else(|| self.archive[node].get(h))
            .cloned()
    }

    fn status(&self, node: usize, h: &Hash32) -> TxStatus {
        self.info(node, h).map_or(TxStatus::Pending, |t| t.status)
    }

    /// Asserts that every one of `txs` is final on every one of `nodes`.
    fn assert_final<'a>(
        &self,
        txs: impl IntoIterator<Item = &'a SignedMachineTx>,
        nodes: &[usize],
    ) {
        for t in txs {
            for &i in nodes {
                let status = self.status(i, &t.hash());
                assert!(
                    matches!(status, TxStatus::Final { .. }),
                    "node {i}: {} is {status:?}",
                    t.hash()
                );
            }
        }
    }
}

fn confirmed(s: &TxStatus) -> bool {
    matches!(
        s,
        TxStatus::Confirmed | TxStatus::Anchored { .. } | TxStatus::Final { .. }
    )
}

#[test]
fn transactions_confirm_everywhere_and_become_final() {
    let mut net = net(4);
    let m = SecretKey::from_bytes([50; 32]);
    let to = SecretKey::from_bytes([51; 32]).address();
    let lock = net.lock(&m, 1_000);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    let t = net.tx(&m, 1, MachineKind::Transfer { to, amount: 400 });
    assert!(net.nodes[0].submit(net.now, vec![d.clone()])[0].is_ok());
    assert!(net.nodes[2].submit(net.now, vec![t.clone()])[0].is_ok());
    let all = [0, 1, 2, 3];
    let actions = net.run(400, &all);
    for i in all {
        assert!(
            matches!(net.status(i, &t.hash()), TxStatus::Final { .. }),
            "node {i}: {:?}",
            net.status(i, &t.hash())
        );
        assert!(matches!(net.status(i, &d.hash()), TxStatus::Final { .. }));
        assert_eq!(net.nodes[i].confirmed_balance(&to), 400);
        assert_eq!(net.nodes[i].confirmed_balance(&m.address()), 600);
        assert!(net.info(i, &t.hash()).unwrap().latency_ms.is_some());
    }
    assert!(
        actions
            .iter()
            .any(|(_, a)| matches!(a, Action::SubmitAnchor(_)))
    );
    // Rewards went to cooperating gateways, in proportion to their scores.
    let st = net.nodes[1].status();
    assert!(st.rewards.iter().sum::<u64>() > 0);
    assert!(st.last_anchor.unwrap().is_final);
    // The main chain paid exactly those rewards from the group's pool.
    let pool = net.main.state.side_group(&net.group.id).unwrap().pool;
    assert!(
        pool > 0,
        "the pool ran dry: the test no longer compares amounts"
    );
    let paid: Vec<u64> = net
        .group
        .gateways
        .iter()
        .map(|g| net.main.state.account(&g.address()).balance)
        .collect();
    assert_eq!(paid, st.rewards);
    assert_eq!(pool + paid.iter().sum::<u64>(), 10_000);
}

#[test]
fn final_anchors_apply_from_the_main_chain_alone_and_a_false_one_is_reported_once() {
    let mut net = net(4);
    // A gateway that never saw the proposal the main chain took (as after a restart of
    // the whole group) applies it from the frontier on chain.
    net.drop_proposals = true;
    let m = SecretKey::from_bytes([60; 32]);
    let lock = net.lock(&m, 1_000);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    assert!(net.nodes[1].submit(net.now, vec![d.clone()])[0].is_ok());
    let all = [0, 1, 2, 3];
    let actions = net.run(400, &all);
    let anchors = actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::SubmitAnchor(_)))
        .count();
    assert!(anchors > 0);
    for i in all {
        assert!(
            matches!(net.status(i, &d.hash()), TxStatus::Final { .. }),
            "node {i}: {:?}",
            net.status(i, &d.hash())
        );
        assert!(net.nodes[i].status().last_anchor.unwrap().is_final);
    }
    assert!(
        !actions
            .iter()
            .any(|(_, a)| matches!(a, Action::AnchorMismatch { .. }))
    );
    // A final anchor whose root this DAG contradicts stops anchoring here and is reported
    // once, not on every tick.
    let next = net.nodes[0].status().last_anchor.unwrap().sequence + 1;
    let mut frontier = net.nodes[0]
        .status()
        .confirmed_frontier
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    frontier.sort();
    let out = net.nodes[0].handle(
        net.now,
        Input::AnchorFinal {
            sequence: next,
            root: Hash32([7; 32]),
            confirmed_vertices: 1,
            frontier,
        },
    );
    let mut reports = out
        .iter()
        .filter(|a| matches!(a, Action::AnchorMismatch { sequence, .. } if *sequence == next))
        .count();
    for _ in 0..50 {
        net.now += 1;
        reports += net.nodes[0]
            .handle(net.now, Input::Tick)
            .iter()
            .filter(|a| matches!(a, Action::AnchorMismatch { .. }))
            .count();
    }
    assert_eq!(reports, 1);
    assert_eq!(
        net.nodes[0].status().last_anchor.unwrap().sequence,
        next - 1
    );
}

#[test]
fn nothing_confirms_without_a_quorum_and_everything_does_after_the_heal() {
    let mut net = net(4);
    let m = SecretKey::from_bytes([60; 32]);
    let ev = net.tx(
        &m,
        0,
        MachineKind::Event {
            event_type: 2,
            data_hash: sha256(&[b"congestion"]),
            x: 10,
            y: 20,
        },
    );
    net.nodes[0].submit(net.now, vec![ev.clone()]);
    // Two of four gateways cannot confirm (quorum 3).
    net.run(200, &[0, 1]);
    assert_eq!(net.status(0, &ev.hash()), TxStatus::Pending);
    net.run(400, &[0, 1, 2, 3]);
    for i in 0..4 {
        assert!(confirmed(&net.status(i, &ev.hash())), "node {i}");
    }
}

#[test]
fn a_double_spend_at_two_gateways_never_confirms_twice() {
    let mut net = net(4);
    let m = SecretKey::from_bytes([70; 32]);
    let lock = net.lock(&m, 1_000);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    net.nodes[0].submit(net.now, vec![d]);
    net.run(100, &[0, 1, 2, 3]);
    let (a, b) = net.split_double_spend(&m, 1, [Address([1; 20]), Address([2; 20])], 900);
    net.run(400, &[0, 1, 2, 3]);
    let mut winners = Vec::new();
    for i in 0..4 {
        let (ca, cb) = (
            confirmed(&net.status(i, &a.hash())),
            confirmed(&net.status(i, &b.hash())),
        );
        assert!(!(ca && cb), "node {i} confirmed both");
        winners.push((ca, cb));
    }
    assert!(
        winners.windows(2).all(|w| w[0] == w[1]),
        "nodes disagree: {winners:?}"
    );
    // Each side won two gateways of the three it needed: neither ever confirms. Once
    // the slot is final both leave memory, reported as never confirming.
    assert_eq!(winners[0], (false, false));
    for i in 0..4 {
        for t in [&a, &b] {
            assert!(net.nodes[i].tx(&t.hash()).is_none(), "node {i} holds it");
            match net.status(i, &t.hash()) {
                TxStatus::Rejected { reason } => {
                    assert!(
                        reason.contains("no transaction of its nonce won"),
                        "{reason}"
                    )
                }
                other => panic!("node {i}: {other:?}"),
            }
        }
    }
    // Another spend of that nonce is refused at the door: the slot is decided.
    let c = net.tx(
        &m,
        1,
        MachineKind::Transfer {
            to: Address([3; 20]),
            amount: 1,
        },
    );
    assert_eq!(
        net.nodes[1].submit(net.now, vec![c.clone()]),
        vec![Err(SideError::NonceFinal {
            nonce: 1,
            tx: c.hash()
        })]
    );
}

#[test]
fn a_lost_double_spend_made_out_to_an_account_does_not_freeze_it() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let (m, s) = (
        SecretKey::from_bytes([90; 32]),
        SecretKey::from_bytes([91; 32]),
    );
    let (lock_m, lock_s) = (net.lock(&m, 1_000), net.lock(&s, 100));
    let deposits = vec![
        net.tx(&m, 0, MachineKind::Deposit { lock: lock_m }),
        net.tx(&s, 0, MachineKind::Deposit { lock: lock_s }),
    ];
    net.nodes[0].submit(net.now, deposits);
    net.run(100, &all);
    // m pays s with one side of a double spend; each side wins two gateways of the three
    // it needs, so the credit to s never confirms.
    let (to_s, other) = net.split_double_spend(&m, 1, [s.address(), Address([2; 20])], 900);
    net.run(20, &all);
    // A spend that s's confirmed funds cover confirms, though the credit is in its history.
    let x = Address([5; 20]);
    let pay = |net: &Net, nonce: u64, amount: u64| {
        net.tx(&s, nonce, MachineKind::Transfer { to: x, amount })
    };
    let small = pay(&net, 1, 60);
    assert!(net.nodes[1].submit(net.now, vec![small.clone()])[0].is_ok());
    net.run(100, &all);
    for i in all {
        assert!(confirmed(&net.status(i, &small.hash())), "node {i}");
    }
    // One that needs the credit waits at the gateway rather than bind s to it, and is
    // refused in the end; the nonce stays free for what s can pay.
    let big = pay(&net, 2, 500);
    assert!(net.nodes[1].submit(net.now, vec![big.clone()])[0].is_ok());
    net.run(400, &all);
    let waiting = net.nodes[1].tx(&big.hash()).unwrap();
    assert!(waiting.vertices.is_empty() && waiting.status == TxStatus::Pending);
    // Meanwhile the double spend is final: both sides leave memory, saying why.
    for i in all {
        for t in [&to_s, &other] {
            assert!(net.nodes[i].tx(&t.hash()).is_none(), "node {i} holds it");
            assert!(
                matches!(net.status(i, &t.hash()), TxStatus::Rejected { reason } if reason.contains("won a quorum")),
                "node {i}"
            );
        }
    }
    net.run(30_000, &all);
    assert!(
        matches!(net.status(1, &big.hash()), TxStatus::Rejected { reason } if reason.contains("not includable in time")),
        "{:?}",
        net.status(1, &big.hash())
    );
    let rest = pay(&net, 2, 40);
    assert!(net.nodes[2].submit(net.now, vec![rest.clone()])[0].is_ok());
    net.run(200, &all);
    for i in all {
        assert!(confirmed(&net.status(i, &rest.hash())), "node {i}");
        assert_eq!(net.nodes[i].confirmed_balance(&s.address()), 0);
        assert_eq!(net.nodes[i].confirmed_balance(&x), 100);
    }
    // A gateway that includes a spend needing the credit anyway (valid: the ledger rule
    // counts every credit in the history, confirmed or not) binds s to it. That spend
    // and what follows it never confirm, and leave memory once final, saying why.
    let bound = pay(&net, 3, 500);
    let after = net.event(&s, 4, 9);
    let v = net.next_of_gateway_0(vec![bound.clone(), after.clone()]);
    for node in &mut net.nodes {
        let out = feed(node, &[&v]);
        assert!(
            !out.iter().any(|a| matches!(a, Action::Rejected { .. })),
            "{out:?}"
        );
    }
    net.run(400, &all);
    for i in all {
        for (t, why) in [
            (&bound, "credits it needs never confirmed"),
            (&after, "previous transaction never confirmed"),
        ] {
            assert!(net.nodes[i].tx(&t.hash()).is_none(), "node {i} holds it");
            match net.status(i, &t.hash()) {
                TxStatus::Rejected { reason } => assert!(reason.contains(why), "{reason}"),
                other => panic!("node {i}: {other:?}"),
            }
        }
        assert_eq!(net.nodes[i].confirmed_balance(&s.address()), 0);
    }
}

#[test]
fn overdrafts_and_wrong_groups_are_refused() {
    let mut net = net(4);
    let m = SecretKey::from_bytes([80; 32]);
    let lock = net.lock(&m, 100);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    let t = net.tx(
        &m,
        1,
        MachineKind::Transfer {
            to: Address([1; 20]),
            amount: 101,
        },
    );
    net.nodes[0].submit(net.now, vec![d, t.clone()]);
    net.run(100, &[0, 1, 2, 3]);
    assert!(
        matches!(net.status(0, &t.hash()), TxStatus::Rejected { reason } if reason.contains("insufficient"))
    );
    let other = MachineTx {
        group_id: Hash32([9; 32]),
        sender: m.public(),
        nonce: 2,
        kind: MachineKind::Deposit { lock },
    }
    .sign(&m);
    assert_eq!(
        net.nodes[0].submit(net.now, vec![other]),
        vec![Err(SideError::WrongGroup)]
    );
    let mut forged = net.tx(&m, 2, MachineKind::Deposit { lock });
    forged.signature.0[0] ^= 1;
    assert_eq!(
        net.nodes[0].submit(net.now, vec![forged]),
        vec![Err(SideError::BadSignature)]
    );
}

/// Balance and next nonce of `a` recounted from every transaction `node` knows (what the
/// node kept up to date as they arrived must agree).
#[test]
fn final_history_leaves_memory_and_the_ledger_still_holds() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let (m, s) = (
        SecretKey::from_bytes([60; 32]),
        SecretKey::from_bytes([61; 32]),
    );
    let lock = net.lock(&m, 1_000);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    let to = s.address();
    let t1 = net.tx(&m, 1, MachineKind::Transfer { to, amount: 100 });
    let t2 = net.tx(&m, 2, MachineKind::Transfer { to, amount: 100 });
    for (g, t) in [(0, &d), (1, &t1), (2, &t2)] {
        assert!(net.nodes[g].submit(net.now, vec![t.clone()])[0].is_ok());
    }
    net.run(400, &all);
    for i in all {
        let st = net.nodes[i].status();
        assert!(
            st.pruned_txs >= 3 && st.pruned_vertices > 0,
            "node {i}: {st:?}"
        );
        for t in [&d, &t1, &t2] {
            assert!(
                net.nodes[i].tx(&t.hash()).is_none(),
                "node {i} still holds it"
            );
            assert!(matches!(net.status(i, &t.hash()), TxStatus::Final { .. }));
        }
        assert_eq!(net.nodes[i].confirmed_balance(&m.address()), 800);
        assert_eq!(net.nodes[i].confirmed_balance(&to), 200);
        assert_eq!(net.nodes[i].next_nonce(&m.address()), 3);
    }
    // A pruned nonce is final: another transaction for it is refused at the door.
    let again = net.tx(&m, 1, MachineKind::Transfer { to, amount: 50 });
    assert_eq!(
        net.nodes[0].submit(net.now, vec![again.clone()])[0],
        Err(SideError::NonceFinal {
            nonce: 1,
            tx: again.hash()
        })
    );
    // Spends build on the pruned debits and credits: m has 800 of its 1,000 left, the
    // sink the 200 it received; the lock cannot be deposited twice.
    let t3 = net.tx(&m, 3, MachineKind::Transfer { to, amount: 700 });
    let over = net.tx(&m, 4, MachineKind::Transfer { to, amount: 300 });
    let redeposit = net.tx(&m, 4, MachineKind::Deposit { lock });
    let spend = net.tx(
        &s,
        0,
        MachineKind::Transfer {
            to: m.address(),
            amount: 150,
        },
    );
    assert!(net.nodes[3].submit(net.now, vec![t3.clone()])[0].is_ok());
    assert!(net.nodes[1].submit(net.now, vec![spend.clone()])[0].is_ok());
    net.run(50, &all);
    assert!(net.nodes[0].submit(net.now, vec![over.clone()])[0].is_ok());
    assert!(net.nodes[2].submit(net.now, vec![redeposit.clone()])[0].is_ok());
    net.run(400, &all);
    for i in all {
        assert!(matches!(net.status(i, &t3.hash()), TxStatus::Final { .. }));
        assert!(matches!(
            net.status(i, &spend.hash()),
            TxStatus::Final { .. }
        ));
        assert_eq!(net.nodes[i].confirmed_balance(&m.address()), 250);
        assert_eq!(net.nodes[i].confirmed_balance(&to), 750);
    }
    let refused = |net: &Net, h: Hash32, why: &str| match net.status(0, &h) {
        TxStatus::Rejected { reason } => assert!(reason.contains(why), "{reason}"),
        other => panic!("{other:?}"),
    };
    refused(&net, over.hash(), "insufficient side balance");
    assert!(matches!(
        net.status(2, &redeposit.hash()),
        TxStatus::Rejected { reason } if reason.contains("already deposited")
    ));
    // A refused transaction leaves memory a while later too; the archive still tells why.
    net.run(31_000, &all);
    assert!(net.nodes[0].tx(&over.hash()).is_none());
    refused(&net, over.hash(), "insufficient side balance");
    // A gateway's vertex holding a pruned slot is a double spend everywhere.
    let v = net.next_of_gateway_0(vec![again]);
    let out = net.nodes[1].handle(
        net.now,
        Input::Message {
            from: 0,
            msg: Message::Vertex(v),
        },
    );
    assert!(
        out.iter().any(
            |a| matches!(a, Action::Rejected { reason, .. } if reason.contains("double spend"))
        ),
        "{out:?}"
    );
}

#[test]
fn memory_stays_bounded_under_sustained_traffic() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    // Four machines, each at its own gateway, a reading every 8 ms.
    let machines: Vec<SecretKey> = (0..4)
        .map(|i| SecretKey::from_bytes([70 + i; 32]))
        .collect();
    let mut held = Vec::new();
    for round in 0..40u64 {
        for k in 0..25 {
            let nonce = round * 25 + k;
            for (g, m) in machines.iter().enumerate() {
                let e = net.event(m, nonce, nonce as u8);
                assert!(net.nodes[g].submit(net.now, vec![e])[0].is_ok());
            }
            net.run(8, &all);
        }
        held.push(net.nodes[0].status().vertices);
    }
    net.run(300, &all);
    let st = net.nodes[0].status();
    assert_eq!(st.confirmed_txs, 4_000);
    assert!(st.pruned_txs >= 3_600, "{st:?}");
    // What stays is what is not final yet: it does not grow with the history.
    eprintln!(
        "vertices held every 200 ms: {held:?}; accepted {}",
        net.nodes[0].vertex_count()
    );
    let late = held[30..].iter().max().unwrap();
    assert!(
        *late < net.nodes[0].vertex_count() / 4 && *late < 400,
        "held {held:?} of {}",
        net.nodes[0].vertex_count()
    );
    // A restarted node replays its log far faster than real time, with no ticks in
    // between, the main chain's final anchors first (as the node does at start): it
    // prunes and summarises as it goes, so its memory stays what it is at run time, and
    // it ends where the others are.
    let mut restarted = net.observer();
    for fin in net.finals.clone() {
        restarted.handle(net.now, fin);
    }
    let (mut peak, mut held_txs) = (0, 0);
    let mut replayed = BTreeSet::new();
    for v in &net.sent {
        if !replayed.insert(v.id) {
            continue;
        }
        let out = restarted.handle(
            net.now,
            Input::Message {
                from: u64::MAX,
                msg: Message::Vertex(v.clone()),
            },
        );
        assert!(
            !out.iter().any(|a| matches!(a, Action::Rejected { .. })),
            "{out:?}"
        );
        restarted.handle(net.now, Input::SummarisePruned);
        peak = peak.max(restarted.status().vertices as usize);
        held_txs = held_txs.max(restarted.status().confirmed_txs - restarted.status().pruned_txs);
    }
    eprintln!("replay held up to {peak} vertices and {held_txs} transactions");
    let (here, there) = (restarted.status(), net.nodes[0].status());
    assert_eq!(restarted.vertex_count(), replayed.len() as u64);
    assert!(
        peak < 400 && peak < replayed.len() / 4,
        "held up to {peak} of {} replayed vertices",
        replayed.len()
    );
    assert_eq!(here.confirmed_txs, 4_000);
    let last = |a: &Option<cpc_sidechain::AnchorStatus>| {
        a.as_ref().map(|a| (a.sequence, a.root, a.is_final))
    };
    assert_eq!(last(&here.last_anchor), last(&there.last_anchor));
    assert!(here.pruned_txs >= 3_600, "{here:?}");
    assert!(held_txs < 1_000, "held up to {held_txs} transactions");
    for m in &machines {
        assert_eq!(restarted.next_nonce(&m.address()), 1_000);
    }
}

fn recount(net: &Net, node: usize, hashes: &[Hash32], a: &Address) -> (i128, u64) {
    let mut balance = 0i128;
    let mut next = 0;
    for h in hashes {
        let Some(info) = net.info(node, h) else {
            continue;
        };
        let t = &info.tx.tx;
        let mine = t.sender.address() == *a;
        if mine && !matches!(info.status, TxStatus::Rejected { .. }) {
            next = next.max(t.nonce + 1);
        }
        if !confirmed(&info.status) {
            continue;
        }
        match &t.kind {
            MachineKind::Transfer { to, amount } => {
                balance += if to == a { i128::from(*amount) } else { 0 };
                balance -= if mine { i128::from(*amount) } else { 0 };
            }
            MachineKind::Deposit { .. } if mine => balance += 1_000,
            _ => {}
        }
    }
    (balance, next)
}

#[test]
fn account_balances_and_nonces_follow_confirmations_and_the_pool() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let a = SecretKey::from_bytes([90; 32]);
    let b = SecretKey::from_bytes([91; 32]);
    let c = Address([3; 20]);
    let mut hashes = Vec::new();
    let mut submit = |net: &mut Net, node: usize, tx: SignedMachineTx| {
        hashes.push(tx.hash());
        assert!(net.nodes[node].submit(net.now, vec![tx])[0].is_ok());
    };
    let (la, lb) = (net.lock(&a, 1_000), net.lock(&b, 1_000));
    let da = net.tx(&a, 0, MachineKind::Deposit { lock: la });
    let db = net.tx(&b, 0, MachineKind::Deposit { lock: lb });
    submit(&mut net, 0, da);
    submit(&mut net, 1, db);
    net.run(50, &all);
    // Transfers both ways at different gateways, and a double spend of a's nonce 2.
    for n in 1..=3 {
        let (to, amount) = (b.address(), 10 * n);
        let t = net.tx(&a, n, MachineKind::Transfer { to, amount });
        submit(&mut net, 2, t);
        let (to, amount) = (a.address(), 7);
        let t = net.tx(&b, n, MachineKind::Transfer { to, amount });
        submit(&mut net, 3, t);
    }
    let t = net.tx(&a, 2, MachineKind::Transfer { to: c, amount: 5 });
    submit(&mut net, 1, t);
    net.run(100, &all);
    // A transaction after a nonce gap waits in its gateway's pool.
    let event = MachineKind::Event {
        event_type: 1,
        data_hash: Hash32([1; 32]),
        x: 0,
        y: 0,
    };
    let gap = net.tx(&b, 9, event);
    submit(&mut net, 0, gap.clone());
    net.run(5, &all);
    let hashes = hashes;
    for i in all {
        let mut total = 0;
        for k in [a.address(), b.address(), c] {
            let (balance, next) = recount(&net, i, &hashes, &k);
            assert_eq!(net.nodes[i].confirmed_balance(&k), balance, "node {i}");
            assert_eq!(net.nodes[i].next_nonce(&k), next, "node {i}");
            total += balance;
        }
        assert_eq!(total, 2_000, "node {i}");
        // b's transfers do not conflict: all three confirmed.
        assert!(net.nodes[i].confirmed_balance(&a.address()) >= 1_000 - 60 + 21);
    }
    assert_eq!(net.nodes[0].next_nonce(&b.address()), 10);
    assert_eq!(net.nodes[1].next_nonce(&b.address()), 4);
    // Until it expires.
    net.run(30_000, &all);
    assert!(matches!(
        net.status(0, &gap.hash()),
        TxStatus::Rejected { .. }
    ));
    assert_eq!(net.nodes[0].next_nonce(&b.address()), 4);
}

#[test]
fn a_transaction_waiting_for_its_account_is_included_once_the_account_moves() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([93; 32]);
    // Nonces 2 and 1 reach gateway 0 before nonce 0 reaches any gateway: they wait.
    let (e1, e2) = (net.event(&m, 1, 1), net.event(&m, 2, 2));
    let now = net.now;
    let res = net.nodes[0].submit(now, vec![e2.clone(), e1.clone()]);
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    net.run(20, &all);
    assert_eq!(net.nodes[0].status().pool, 2);
    assert_eq!(net.status(0, &e1.hash()), TxStatus::Pending);
    assert!(net.nodes[0].tx(&e1.hash()).unwrap().vertices.is_empty());
    // Nonce 0 at gateway 1: once its vertex reaches gateway 0, both follow it there.
    let e0 = net.event(&m, 0, 0);
    let now = net.now;
    assert!(net.nodes[1].submit(now, vec![e0.clone()])[0].is_ok());
    net.run(60, &all);
    for h in [e0.hash(), e1.hash(), e2.hash()] {
        for i in all {
            assert!(
                confirmed(&net.status(i, &h)),
                "node {i}: {:?}",
                net.status(i, &h)
            );
        }
    }
    assert_eq!(net.nodes[0].status().pool, 0);
    // A deposit sent before its lock is final waits for the lock.
    let lock = sha256(&[b"lock", &m.public().0]);
    let d = net.tx(&m, 3, MachineKind::Deposit { lock });
    let now = net.now;
    assert!(net.nodes[2].submit(now, vec![d.clone()])[0].is_ok());
    net.run(20, &all);
    assert_eq!(net.nodes[2].status().pool, 1);
    assert_eq!(net.status(2, &d.hash()), TxStatus::Pending);
    assert_eq!(net.lock(&m, 500), lock);
    net.run(60, &all);
    for i in all {
        assert!(confirmed(&net.status(i, &d.hash())), "node {i}");
        assert_eq!(
            net.nodes[i].confirmed_balance(&m.address()),
            500,
            "node {i}"
        );
    }
    assert_eq!(net.nodes[2].status().pool, 0);
}

#[test]
fn a_pooled_copy_another_gateway_confirmed_is_not_rejected_when_it_expires() {
    let mut net = net(4);
    let m = SecretKey::from_bytes([92; 32]);
    let lock = net.lock(&m, 1_000);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    // Gateway 1 takes the deposit too but does not run (it only hears the others): the
    // others confirm it, and gateway 1 wakes up after its pool time ran out.
    assert!(net.nodes[0].submit(net.now, vec![d.clone()])[0].is_ok());
    assert!(net.nodes[1].submit(net.now, vec![d.clone()])[0].is_ok());
    for _ in 0..40_000 {
        net.now += 1;
        let mut queue = Vec::new();
        for i in [0, 2, 3] {
            queue.extend(
                net.nodes[i]
                    .handle(net.now, Input::Tick)
                    .into_iter()
                    .map(|a| (i, a)),
            );
        }
        while let Some((from, a)) = queue.pop() {
            let Action::Send { to: None, msg } = a else {
                continue;
            };
            for j in 0..4 {
                if j != from {
                    let input = Input::Message {
                        from: from as u64,
                        msg: msg.clone(),
                    };
                    queue.extend(
                        net.nodes[j]
                            .handle(net.now, input)
                            .into_iter()
                            .map(|a| (j, a)),
                    );
                }
            }
        }
    }
    assert!(confirmed(&net.status(1, &d.hash())));
    assert_eq!(net.nodes[1].status().pool, 1);
    net.run(1, &[0, 1, 2, 3]);
    assert!(
        confirmed(&net.status(1, &d.hash())),
        "{:?}",
        net.status(1, &d.hash())
    );
    assert_eq!(net.nodes[1].status().pool, 0);
    assert_eq!(net.nodes[1].confirmed_balance(&m.address()), 1_000);
}

#[test]
fn a_faulty_gateway_is_caught_and_its_bad_vertices_refused() {
    let mut net = net(4);
    let key = net.keys[3].clone();
    let m = SecretKey::from_bytes([90; 32]);
    let v1 = |ts: u64| {
        Vertex {
            group_id: net.group.id,
            creator: key.public(),
            sequence: 1,
            timestamp_ms: ts,
            parents: vec![],
            txs: vec![],
        }
        .sign(&key)
    };
    let (a, b) = (v1(1), v1(2));
    let mut evidence = Vec::new();
    for v in [a.clone(), b] {
        for act in net.nodes[0].handle(
            1,
            Input::Message {
                from: 3,
                msg: Message::Vertex(v),
            },
        ) {
            if let Action::Equivocation(e) = act {
                assert_eq!(e.offender, key.public());
                assert_ne!(e.first.id, e.second.id);
                evidence.push(e);
            }
        }
    }
    assert_eq!(evidence.len(), 1);
    main_chain_takes_the_evidence(&net.group, &evidence[0]);
    assert_eq!(net.nodes[0].status().equivocators, vec![key.public()]);
    // A bad signature, and an overdraft in a vertex, are rejected.
    let mut bad: SignedVertex = Vertex {
        sequence: 2,
        parents: vec![a.id],
        ..a.vertex.clone()
    }
    .sign(&key);
    bad.signature.0[5] ^= 1;
    let out = net.nodes[1].handle(
        2,
        Input::Message {
            from: 3,
            msg: Message::Vertices(vec![a.clone(), bad]),
        },
    );
    assert!(
        out.iter()
            .any(|x| matches!(x, Action::Rejected { reason, .. } if reason.contains("signature")))
    );
    let overdraft = Vertex {
        sequence: 2,
        parents: vec![a.id],
        txs: vec![net.tx(
            &m,
            0,
            MachineKind::Transfer {
                to: Address([1; 20]),
                amount: 5,
            },
        )],
        ..a.vertex
    }
    .sign(&key);
    let out = net.nodes[1].handle(
        3,
        Input::Message {
            from: 3,
            msg: Message::Vertex(overdraft),
        },
    );
    assert!(
        out.iter().any(
            |x| matches!(x, Action::Rejected { reason, .. } if reason.contains("insufficient"))
        )
    );
}

#[test]
fn a_twin_is_reported_even_when_it_is_refused() {
    // A late twin is often refused (here an overdraft; in a network, history pruned since
    // it was signed) and never taken: the signed pair still proves the equivocation.
    let mut net = net(4);
    let m = SecretKey::from_bytes([93; 32]);
    let a = net.vertex(3, 1, vec![], vec![]);
    let overdraft = net.tx(
        &m,
        0,
        MachineKind::Transfer {
            to: Address([1; 20]),
            amount: 5,
        },
    );
    let b = net.vertex(3, 1, vec![], vec![overdraft]);
    let out = feed(&mut net.nodes[0], &[&a, &b]);
    assert!(
        out.iter().any(
            |x| matches!(x, Action::Rejected { vertex, reason, .. } if *vertex == b.id && reason.contains("insufficient"))
        ),
        "{out:?}"
    );
    let evidence: Vec<_> = out
        .iter()
        .filter_map(|x| match x {
            Action::Equivocation(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(evidence.len(), 1, "{out:?}");
    let ids = BTreeSet::from([evidence[0].first.id, evidence[0].second.id]);
    assert_eq!(ids, BTreeSet::from([a.id, b.id]));
    main_chain_takes_the_evidence(&net.group, evidence[0]);
    assert_eq!(
        net.nodes[0].status().equivocators,
        vec![net.keys[3].public()]
    );
    assert!(net.nodes[0].vertex(&b.id).is_none());
    // Sent again, it is refused again and not reported twice.
    let out = feed(&mut net.nodes[0], &[&b]);
    assert!(
        !out.iter().any(|x| matches!(x, Action::Equivocation(_))),
        "{out:?}"
    );
}

#[test]
fn a_refused_twin_sent_with_its_original_is_reported_whichever_is_tried_first() {
    // Vertices of one message are tried in id order: the refused twin may come before
    // the original it forks, when nothing held shows it is a twin yet.
    let m = SecretKey::from_bytes([96; 32]);
    for refused_first in [true, false] {
        let mut net = net(4);
        let a = net.vertex(3, 1, vec![], vec![]);
        let b = (1..)
            .map(|amount| {
                let overdraft = net.tx(
                    &m,
                    0,
                    MachineKind::Transfer {
                        to: Address([1; 20]),
                        amount,
                    },
                );
                net.vertex(3, 1, vec![], vec![overdraft])
            })
            .find(|b| (b.id < a.id) == refused_first)
            .unwrap();
        let out = net.nodes[0].handle(
            10,
            Input::Message {
                from: 0,
                msg: Message::Vertices(vec![a.clone(), b.clone()]),
            },
        );
        let evidence: Vec<BTreeSet<VertexId>> = out
            .iter()
            .filter_map(|x| match x {
                Action::Equivocation(e) => Some(BTreeSet::from([e.first.id, e.second.id])),
                _ => None,
            })
            .collect();
        assert_eq!(evidence, vec![BTreeSet::from([a.id, b.id])], "{out:?}");
        assert!(net.nodes[0].vertex(&a.id).is_some());
        assert!(net.nodes[0].vertex(&b.id).is_none());
    }
}

#[test]
fn a_twin_of_pruned_history_is_reported_through_the_archive() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([94; 32]);
    let tx = net.event(&m, 0, 1);
    assert!(net.nodes[0].submit(net.now, vec![tx])[0].is_ok());
    net.run(400, &all);
    assert!(net.nodes[1].status().pruned_vertices > 0);
    // Gateway 0 signs a second vertex of sequence 1 (the one that held the transaction)
    // long after the first was pruned.
    let gw = net.keys[0].public();
    let original = net
        .sent
        .iter()
        .find(|v| v.vertex.creator == gw && v.vertex.sequence == 1)
        .expect("gateway 0 signed")
        .clone();
    let twin = net.twin(&original);
    let out = net.hand(1, 0, &twin);
    assert!(
        out.iter()
            .any(|x| matches!(x, Action::Rejected { vertex, reason, .. }
            if *vertex == twin.id && reason.contains("pruned (final) history"))),
        "{out:?}"
    );
    let reported: Vec<_> = out
        .iter()
        .filter_map(|x| match x {
            Action::PrunedTwin { vertex, pruned } => Some((vertex.id, *pruned)),
            _ => None,
        })
        .collect();
    assert_eq!(reported, vec![(twin.id, original.id)], "{out:?}");
    // The node reads the pruned one back from its archive; the pair convicts.
    let ev = cpc_sidechain::EquivocationEvidence::of(original, twin.clone());
    main_chain_takes_the_evidence(&net.group, &ev);
    assert_eq!(net.nodes[1].status().equivocators, vec![gw]);
    // Once known, further twins of pruned history are dropped unread.
    assert!(!net.nodes[1].is_new(&twin));
    assert!(net.hand(1, 0, &twin).is_empty());
}

#[test]
fn pruning_goes_on_after_an_equivocation() {
    // Gateways stop referencing an equivocator's vertices, so none of its later ones is
    // seen by every gateway: settling must not wait for one.
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([95; 32]);
    let first = net.event(&m, 0, 0);
    assert!(net.nodes[0].submit(net.now, vec![first])[0].is_ok());
    net.run(100, &all);
    let gw = net.keys[3].public();
    let last = net
        .sent
        .iter()
        .rev()
        .find(|v| v.vertex.creator == gw)
        .expect("gateway 3 signed")
        .clone();
    let twin = net.twin(&last);
    for i in 0..3 {
        let out = net.hand(i, 3, &twin);
        assert!(
            out.iter().any(|a| matches!(a, Action::Equivocation(_))),
            "node {i}: {out:?}"
        );
    }
    let later: Vec<SignedMachineTx> = (1..=5).map(|k| net.event(&m, k, k as u8)).collect();
    for (k, t) in later.iter().enumerate() {
        assert!(net.nodes[k % 3].submit(net.now, vec![t.clone()])[0].is_ok());
        net.run(20, &all);
    }
    net.run(600, &all);
    for i in 0..3 {
        assert_eq!(net.nodes[i].status().equivocators, vec![gw]);
        for t in &later {
            assert!(matches!(net.status(i, &t.hash()), TxStatus::Final { .. }));
            assert!(net.nodes[i].tx(&t.hash()).is_none(), "node {i} holds it");
        }
    }
}

/// Hands `vs` to `node` one message each; returns what it did besides sending.
fn feed(node: &mut SideChain, vs: &[&SignedVertex]) -> Vec<Action> {
    let mut out = Vec::new();
    for v in vs {
        out.extend(
            node.handle(
                10,
                Input::Message {
                    from: 0,
                    msg: Message::Vertex((*v).clone()),
                },
            )
            .into_iter()
            .filter(|a| !matches!(a, Action::Send { .. })),
        );
    }
    out
}

#[test]
fn a_fork_is_not_in_the_history_of_its_twin_whichever_arrives_first() {
    let net = net(4);
    let (y, m) = (
        SecretKey::from_bytes([91; 32]),
        SecretKey::from_bytes([92; 32]),
    );
    let event = net.event(&m, 0, 7);
    let lock = sha256(&[b"lock", &y.public().0]);
    let deposit = net.tx(&y, 0, MachineKind::Deposit { lock });
    // Gateway 3 signs three vertices of sequence 1 that share transactions: each is valid
    // on its own history (none of its twins is in it), on every node, in any order.
    let a = net.vertex(3, 1, vec![], vec![event.clone(), deposit.clone()]);
    let b = net.vertex(3, 1, vec![], vec![event]);
    let c = net.vertex(3, 1, vec![], vec![deposit]);
    for order in [[&a, &b, &c], [&c, &b, &a]] {
        let mut node = net.observer();
        node.handle(
            1,
            Input::Lock {
                id: lock,
                account: y.address(),
                amount: 1_000,
            },
        );
        let out = feed(&mut node, &order);
        assert!(
            !out.iter().any(|x| matches!(x, Action::Rejected { .. })),
            "{out:?}"
        );
        for v in [&a, &b, &c] {
            assert!(node.vertex(&v.id).is_some());
        }
        let evidence = out
            .iter()
            .filter(|x| matches!(x, Action::Equivocation(_)))
            .count();
        assert_eq!(evidence, 1);
        assert_eq!(node.status().equivocators, vec![net.keys[3].public()]);
    }
}

#[test]
fn a_credit_confirmed_in_one_copy_funds_its_spends_on_every_node() {
    // A credit D (z → y) sits in two vertices. One copy also counts a credit E to z that
    // loses a double spend, so that copy never confirms; the other confirms. A spend of y
    // that sees both copies confirms on every node, whichever copy a node received first.
    let net = net(4);
    let [w, z, y] = [81, 82, 83].map(|b| SecretKey::from_bytes([b; 32]));
    let transfer = |k: &SecretKey, nonce, to: Address, amount| {
        net.tx(k, nonce, MachineKind::Transfer { to, amount })
    };
    let (lw, lz) = (
        sha256(&[b"lock", &w.public().0]),
        sha256(&[b"lock", &z.public().0]),
    );
    let dw = net.tx(&w, 0, MachineKind::Deposit { lock: lw });
    let dz = net.tx(&z, 0, MachineKind::Deposit { lock: lz });
    let e = transfer(&w, 1, z.address(), 1);
    let e2 = transfer(&w, 1, Address([9; 20]), 1);
    let d = transfer(&z, 1, y.address(), 5);
    let u = transfer(&y, 0, Address([9; 20]), 5);
    let g0v1 = net.vertex(0, 1, vec![], vec![dw, dz]);
    let g1v1 = net.vertex(1, 1, vec![g0v1.id], vec![e2.clone()]);
    let g2v1 = net.vertex(2, 1, vec![g0v1.id], vec![e2.clone()]);
    let g3v1 = net.vertex(3, 1, vec![g0v1.id], vec![e.clone(), d.clone()]);
    let g0v2 = net.vertex(0, 2, vec![g0v1.id, g1v1.id, g2v1.id], vec![]);
    let g2v2 = net.vertex(2, 2, vec![g2v1.id], vec![d.clone()]);
    let g1v2 = net.vertex(1, 2, vec![g1v1.id, g2v2.id, g3v1.id], vec![u.clone()]);
    let g0v3 = net.vertex(0, 3, vec![g0v2.id, g1v2.id], vec![]);
    let g3v2 = net.vertex(3, 2, vec![g3v1.id, g0v3.id], vec![]);
    let g2v3 = net.vertex(2, 3, vec![g2v2.id, g3v2.id], vec![]);
    for (first, second) in [(&g3v1, &g2v2), (&g2v2, &g3v1)] {
        let mut node = net.observer();
        for (id, k) in [(lw, &w), (lz, &z)] {
            node.handle(
                1,
                Input::Lock {
                    id,
                    account: k.address(),
                    amount: 10,
                },
            );
        }
        let order = [
            &g0v1, &g1v1, &g2v1, first, second, &g0v2, &g1v2, &g0v3, &g3v2, &g2v3,
        ];
        let out = feed(&mut node, &order);
        assert!(
            !out.iter().any(|x| matches!(x, Action::Rejected { .. })),
            "{out:?}"
        );
        let status = |h: &Hash32| node.tx(h).unwrap().status.clone();
        assert!(confirmed(&status(&e2.hash())));
        assert!(!confirmed(&status(&e.hash())));
        assert!(confirmed(&status(&d.hash())));
        assert!(confirmed(&status(&u.hash())), "{:?}", status(&u.hash()));
        assert_eq!(node.confirmed_balance(&y.address()), 0);
        assert_eq!(node.confirmed_balance(&z.address()), 5);
        assert_eq!(node.confirmed_balance(&Address([9; 20])), 6);
    }
}

#[test]
fn an_own_vertex_twice_in_one_message_does_not_stop_a_restarted_gateway() {
    let mut net = net(4);
    let v = net.vertex(0, 1, vec![], vec![]);
    let m = SecretKey::from_bytes([93; 32]);
    let event = net.event(&m, 0, 8);
    // Gateway 0 restarted: its first vertex comes back from a peer, twice in one message.
    let node = &mut net.nodes[0];
    node.handle(1, Input::Tick);
    node.handle(
        2,
        Input::Message {
            from: 1,
            msg: Message::Vertices(vec![v.clone(), v]),
        },
    );
    assert!(node.submit(3, vec![event])[0].is_ok());
    let mut emitted = Vec::new();
    for now in 3..60 {
        for a in node.handle(now, Input::Tick) {
            if let Action::Send {
                msg: Message::Vertex(x),
                ..
            } = a
            {
                emitted.push(x.vertex.sequence);
            }
        }
    }
    assert_eq!(emitted.first(), Some(&2), "{emitted:?}");
}

#[test]
fn a_halted_gateway_signs_nothing_more_and_sends_clients_elsewhere() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([95; 32]);
    let first = net.event(&m, 0, 1);
    assert!(net.nodes[0].submit(net.now, vec![first.clone()])[0].is_ok());
    net.run(100, &all);
    assert!(confirmed(&net.status(0, &first.hash())));
    let signed = net.nodes[0].status().own_sequence.unwrap();
    assert!(signed > 0);
    // One waits in its pool (its nonce follows one not sent yet).
    let waiting = net.event(&m, 5, 9);
    assert!(net.nodes[0].submit(net.now, vec![waiting.clone()])[0].is_ok());
    net.run(10, &all);
    assert_eq!(net.status(0, &waiting.hash()), TxStatus::Pending);
    net.nodes[0].halt("its log cannot be written".into());
    net.nodes[0].halt("a later reason".into());
    // Its client hears at once to go elsewhere.
    assert!(
        matches!(
            net.status(0, &waiting.hash()),
            TxStatus::Rejected { reason } if reason.contains("stopped signing: its log cannot be written")
        ),
        "{:?}",
        net.status(0, &waiting.hash())
    );
    assert_eq!(net.nodes[0].status().pool, 0);
    // Sent again, the refused one gets the same answer; a final one is final.
    assert!(matches!(
        net.nodes[0].submit(net.now, vec![waiting])[0],
        Err(SideError::Halted(_))
    ));
    assert!(matches!(
        net.nodes[0].submit(net.now, vec![first])[0],
        Err(SideError::NonceFinal { .. })
    ));
    let sent_before = net.sent.len();
    let next = net.event(&m, 1, 2);
    let refused = net.nodes[0].submit(net.now, vec![next.clone()]);
    assert_eq!(
        refused[0],
        Err(SideError::Halted("its log cannot be written".into()))
    );
    assert!(
        refused[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("another gateway")
    );
    assert!(net.nodes[1].submit(net.now, vec![next.clone()])[0].is_ok());
    net.run(400, &all);
    // It follows the group: the transaction another gateway took is final there too.
    net.assert_final([&next], &all);
    let st = net.nodes[0].status();
    assert_eq!(st.own_sequence, Some(signed));
    assert_eq!(st.halted.as_deref(), Some("its log cannot be written"));
    // It sent no vertex, and its heads leave out its own last one (peers would ask for
    // it for ever, were it withheld).
    let own = net.keys[0].public();
    assert!(
        net.sent[sent_before..]
            .iter()
            .all(|v| v.vertex.creator != own)
    );
    let own_tip = st.tips[st.gateways.iter().position(|k| *k == own).unwrap()].unwrap();
    let heads: Vec<Vec<VertexId>> = net.nodes[0]
        .handle(net.now + 1_000, Input::Tick)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send {
                msg: Message::Heads(ids),
                ..
            } => Some(ids),
            _ => None,
        })
        .collect();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].len(), 3);
    assert!(!heads[0].contains(&own_tip));
}

#[test]
fn a_gateway_that_was_down_catches_up_in_a_few_round_trips() {
    let mut net = net(4);
    // Gateway 3 is down while the others build a DAG hundreds of vertices deep.
    let up = [0, 1, 2];
    for k in 0..120u8 {
        let m = SecretKey::from_bytes([k.wrapping_add(100); 32]);
        let e = net.event(&m, 0, k);
        assert!(net.nodes[usize::from(k % 3)].submit(net.now, vec![e])[0].is_ok());
        net.run(5, &up);
    }
    let st = net.nodes[0].status();
    let tips: Vec<VertexId> = st.tips.iter().flatten().copied().collect();
    assert!(
        st.vertices > 300,
        "too shallow to need several answers: {}",
        st.vertices
    );
    // Final history waits for it in memory, and the status says whom it waits for.
    assert!(
        st.awaiting_settling > 100 && st.pruned_vertices == 0,
        "{st:?}"
    );
    let down = st
        .gateways
        .iter()
        .position(|k| *k == net.keys[3].public())
        .unwrap();
    for (g, t) in st.last_vertex_ms.iter().enumerate() {
        assert_eq!(t.is_none(), g == down, "{:?}", st.last_vertex_ms);
        assert!(t.is_none_or(|t| t + 50 >= net.now));
    }
    // It hears gateway 0's heads, and asks gateway 0 for what it lacks until it has it.
    let now = net.now;
    let mut inbox = vec![Message::Heads(tips.clone())];
    let mut rounds = 0;
    loop {
        let mut asks = Vec::new();
        for msg in inbox.drain(..) {
            for a in net.nodes[3].handle(now, Input::Message { from: 0, msg }) {
                if let Action::Send {
                    msg: ask @ Message::Request { .. },
                    ..
                } = a
                {
                    asks.push(ask);
                }
            }
        }
        if asks.is_empty() {
            break;
        }
        rounds += 1;
        assert!(
            rounds <= 4,
            "round {rounds}: one round trip per layer again?"
        );
        for msg in asks {
            for a in net.nodes[0].handle(now, Input::Message { from: 3, msg }) {
                if let Action::Send { to: Some(3), msg } = a {
                    inbox.push(msg);
                }
            }
        }
    }
    for t in &tips {
        assert!(net.nodes[3].vertex(t).is_some(), "tip {t} missing");
    }
    assert_eq!(net.nodes[3].status().vertices, st.vertices);
    // Once it is back, everything confirms on it too, and the history it held up leaves.
    net.run(200, &[0, 1, 2, 3]);
    assert_eq!(
        net.nodes[3].status().confirmed_vertices,
        net.nodes[0].status().confirmed_vertices
    );
    let back = net.nodes[0].status();
    assert!(back.last_vertex_ms[down].is_some());
    assert!(
        back.pruned_vertices >= st.awaiting_settling
            && back.awaiting_settling < st.awaiting_settling / 4,
        "{} pruned, {} of {} still waiting",
        back.pruned_vertices,
        back.awaiting_settling,
        st.awaiting_settling
    );
}

#[test]
fn a_retired_gateway_no_longer_holds_up_pruning() {
    let mut net = net(4);
    let up = [0, 1, 2];
    let gone = net.keys[3].public();
    // Gateway 3 signs its first vertex, which only gateway 0 takes, and is gone for good.
    let stale = net.vertex(3, 1, vec![], vec![]);
    net.nodes[0].handle(
        net.now,
        Input::Message {
            from: 3,
            msg: Message::Vertex(stale.clone()),
        },
    );
    let mut machines = Vec::new();
    for k in 0..60u8 {
        let m = SecretKey::from_bytes([k.wrapping_add(150); 32]);
        let e = net.event(&m, 0, k);
        assert!(net.nodes[usize::from(k % 3)].submit(net.now, vec![e])[0].is_ok());
        machines.push(m);
        net.run(5, &up);
    }
    let before = net.nodes[0].status();
    assert!(
        before.awaiting_settling > 50 && before.pruned_vertices == 0,
        "{before:?}"
    );
    // The group's owner retires it on the main chain, which allows no second one (f = 1).
    let retire = |gateway| cpc_types::TxKind::SideRetire {
        group_id: net.group.id,
        gateway,
    };
    let (r3, r2) = (retire(gone), retire(net.keys[2].public()));
    net.main.apply(r3.clone()).unwrap();
    let again = net.main.apply(r3).unwrap_err().to_string();
    assert!(again.contains("retired already"), "{again}");
    let second = net.main.apply(r2).unwrap_err().to_string();
    assert!(second.contains("at most 1"), "{second}");
    let group = net.main.state.side_group(&net.group.id).unwrap();
    assert_eq!(group.retired, vec![gone]);
    // Its next vertex reached the others just before they learnt of it.
    let late = net.vertex(3, 2, vec![stale.id], vec![]);
    for i in up {
        let msg = Message::Vertex(late.clone());
        net.nodes[i].handle(net.now, Input::Message { from: 3, msg });
        assert!(net.nodes[i].vertex(&late.id).is_some());
    }
    let sent_at_retire = net.sent.len();
    for i in 0..4 {
        net.nodes[i].handle(net.now, Input::Retire(gone));
    }
    // A second one (a later set's, say) is one more than f = 1: ignored.
    for i in 0..3 {
        net.nodes[i].handle(net.now, Input::Retire(net.keys[1].public()));
    }
    // What every other gateway has seen is settled now: pruning goes on without it.
    net.run(100, &up);
    let after = net.nodes[0].status();
    assert_eq!(after.retired, vec![gone]);
    assert!(
        after.pruned_vertices >= before.awaiting_settling
            && after.awaiting_settling < before.awaiting_settling / 4,
        "{} pruned, {} of {} still waiting",
        after.pruned_vertices,
        after.awaiting_settling,
        before.awaiting_settling
    );
    // The group goes on: new transactions confirm and become final without it, and its
    // last vertex, which every gateway took, is referenced by nobody.
    let later: Vec<SignedMachineTx> = machines
        .iter()
        .take(6)
        .enumerate()
        .map(|(k, m)| net.event(m, 1, k as u8))
        .collect();
    for (k, t) in later.iter().enumerate() {
        assert!(net.nodes[k % 3].submit(net.now, vec![t.clone()])[0].is_ok());
    }
    net.run(300, &up);
    net.assert_final(&later, &up);
    assert!(
        net.sent[sent_at_retire..]
            .iter()
            .all(|v| !v.vertex.parents.contains(&late.id))
    );
    assert!(net.nodes[0].status().awaiting_settling < before.awaiting_settling / 4);
    // A retired gateway that comes back signs nothing and sends clients elsewhere.
    let vertices_before = net.sent.len();
    net.run(100, &[0, 1, 2, 3]);
    assert!(
        net.sent[vertices_before..]
            .iter()
            .all(|v| v.vertex.creator != gone)
    );
    let st = net.nodes[3].status();
    assert_eq!(st.retired, vec![gone]);
    assert!(
        st.halted.as_deref().is_some_and(|h| h.contains("retired")),
        "{st:?}"
    );
    let e = net.event(&SecretKey::from_bytes([99; 32]), 0, 1);
    assert!(matches!(
        net.nodes[3].submit(net.now, vec![e])[0],
        Err(SideError::Halted(_))
    ));
    // A snapshot keeps the retirement, and a restored retired gateway stays halted.
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    for i in [1, 3] {
        let snap = net.nodes[i].snapshot();
        let back = SideChain::restore(
            config(&net.group),
            Some(net.keys[i].clone()),
            accel.clone(),
            &snap,
        )
        .unwrap();
        assert_eq!(back.snapshot(), snap);
        let st = back.status();
        assert_eq!(st.retired, vec![gone]);
        assert_eq!(st.halted.is_some(), i == 3);
    }
}

#[test]
fn a_retired_equivocator_no_longer_holds_up_pruning() {
    // Gateway 3 signs two first vertices, one for gateway 0 and one for gateway 1, which
    // each reference theirs before they learn of the other, and is gone: known to
    // equivocate, its bit waits for its chain, which goes no further.
    let mut net = net(4);
    let up = [0, 1, 2];
    net.run(100, &up);
    let gone = net.keys[3].public();
    let (a, b) = (
        SecretKey::from_bytes([158; 32]),
        SecretKey::from_bytes([159; 32]),
    );
    let (ta, tb) = (net.event(&a, 0, 1), net.event(&b, 0, 2));
    let first = net.vertex(3, 1, vec![], vec![ta.clone()]);
    let twin = net.vertex(3, 1, vec![], vec![tb.clone()]);
    for (i, v) in [(0, &first), (1, &twin)] {
        let msg = Message::Vertex(v.clone());
        net.nodes[i].handle(net.now, Input::Message { from: 3, msg });
    }
    let mut machines = Vec::new();
    for k in 0..60u8 {
        let m = SecretKey::from_bytes([k.wrapping_add(160); 32]);
        let e = net.event(&m, 0, k);
        assert!(net.nodes[usize::from(k % 3)].submit(net.now, vec![e])[0].is_ok());
        machines.push(m);
        net.run(5, &up);
    }
    let before = net.nodes[0].status();
    assert!(
        before.equivocators == [gone] && before.awaiting_settling > 50,
        "{before:?}"
    );
    for i in 0..4 {
        net.nodes[i].handle(net.now, Input::Retire(gone));
    }
    // Retired, it is waited for no more, and its vertices, both twins among them, are
    // pruned once settled, like any other (what they hold leaves memory).
    let later: Vec<SignedMachineTx> = machines
        .iter()
        .take(6)
        .enumerate()
        .map(|(k, m)| net.event(m, 1, k as u8))
        .collect();
    for (k, t) in later.iter().enumerate() {
        assert!(net.nodes[k % 3].submit(net.now, vec![t.clone()])[0].is_ok());
    }
    net.run(300, &up);
    for i in up {
        let after = net.nodes[i].status();
        assert!(
            after.awaiting_settling < before.awaiting_settling / 4,
            "node {i}: {} of {} still waiting",
            after.awaiting_settling,
            before.awaiting_settling
        );
        for t in [&ta, &tb] {
            assert!(
                net.archive[i].contains_key(&t.hash()),
                "node {i} holds a twin's transaction: {:?}",
                net.status(i, &t.hash())
            );
        }
    }
    net.assert_final(&later, &up);
}

#[test]
fn a_retired_gateway_that_runs_on_signs_proposes_and_endorses_nothing() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([120; 32]);
    for k in 0..10u8 {
        let e = net.event(&m, u64::from(k), k);
        assert!(net.nodes[usize::from(k % 4)].submit(net.now, vec![e])[0].is_ok());
        net.run(10, &all);
    }
    assert!(net.anchor_senders.contains(&2));
    let retired = net.keys[2].public();
    for i in all {
        net.nodes[i].handle(net.now, Input::Retire(retired));
    }
    let (vertices, anchors, finals) = (net.sent.len(), net.anchor_senders.len(), net.finals.len());
    let mut later = Vec::new();
    for k in 10..30u8 {
        let e = net.event(&m, u64::from(k), k);
        // Gateway 2 sends its clients elsewhere.
        assert!(matches!(
            net.nodes[2].submit(net.now, vec![e.clone()])[0],
            Err(SideError::Halted(_))
        ));
        assert!(net.nodes[usize::from(k % 2)].submit(net.now, vec![e.clone()])[0].is_ok());
        later.push(e);
        net.run(10, &all);
    }
    net.run(300, &all);
    // It follows the group: what the others took is final on it too.
    net.assert_final(&later, &all);
    assert!(
        net.sent[vertices..]
            .iter()
            .all(|v| v.vertex.creator != retired)
    );
    assert!(net.finals.len() > finals + 2);
    assert!(!net.anchor_senders[anchors..].contains(&2));
}

#[test]
fn a_retired_gateways_endorsement_does_not_count() {
    // Gateway 3 is retired on chain, but its node has not read that yet and endorses on;
    // gateway 2 is down. With gateway 3, gateways 0 and 1 would make three endorsements,
    // a quorum of four, but the main chain counts no retired gateway's, so they send none.
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([121; 32]);
    let mut nonce = 0;
    let mut load = |net: &mut Net, at: &[usize], ms: u64| {
        let mut submitted = Vec::new();
        for k in 0..10u8 {
            let e = net.event(&m, nonce, k);
            nonce += 1;
            assert!(
                net.nodes[at[usize::from(k) % at.len()]].submit(net.now, vec![e.clone()])[0]
                    .is_ok()
            );
            submitted.push(e);
            for (from, a) in net.run(ms, &[0, 1, 3]) {
                assert!(
                    from == 3 || !matches!(a, Action::SubmitAnchor(_)),
                    "gateway {from} sent an anchor gateway 3 endorsed"
                );
            }
        }
        submitted
    };
    let first = SecretKey::from_bytes([122; 32]);
    for k in 0..10u8 {
        let e = net.event(&first, u64::from(k), k);
        assert!(net.nodes[usize::from(k % 4)].submit(net.now, vec![e])[0].is_ok());
        net.run(10, &all);
    }
    let finals = net.finals.len();
    assert!(finals > 0);
    let retired = net.keys[3].public();
    net.main
        .apply(cpc_types::TxKind::SideRetire {
            group_id: net.group.id,
            gateway: retired,
        })
        .unwrap();
    for i in [0, 1, 2] {
        net.nodes[i].handle(net.now, Input::Retire(retired));
    }
    let taken = load(&mut net, &[0, 1], 30);
    for _ in 0..10 {
        load(&mut net, &[0, 1], 30);
    }
    // Never final. Gateway 3's node confirms them (vertices of three gateways reach them
    // there), but nodes 0 and 1 take no vertex of it that nothing needs: it has no say
    // there any more, as on the main chain.
    for e in &taken {
        for i in [0, 1, 3] {
            let status = net.status(i, &e.hash());
            let expected = if i == 3 {
                matches!(status, TxStatus::Confirmed | TxStatus::Anchored { .. })
            } else {
                status == TxStatus::Pending
            };
            assert!(expected, "node {i}: {status:?}");
        }
    }
    assert_eq!(net.finals.len(), finals);
    // With gateway 2 back, the three not retired endorse, and anchors go on.
    net.run(500, &all);
    net.assert_final(&taken, &[0, 1, 2]);
    assert!(net.finals.len() > finals);
}

#[test]
fn a_retired_key_cannot_grow_the_nodes_memory() {
    // Gateway 3 is gone and retired, and a thief signs on with its key. What it signs
    // is dropped unchecked, but for a vertex a gateway took before it learnt of the
    // retirement: the others take that one once that gateway's vertex names it.
    let mut net = net(4);
    let (all, up) = ([0, 1, 2, 3], [0, 1, 2]);
    let m = SecretKey::from_bytes([123; 32]);
    let mut early = Vec::new();
    for k in 0..20u8 {
        let e = net.event(&m, u64::from(k), k);
        let at = if k < 10 { k % 4 } else { k % 3 };
        assert!(net.nodes[usize::from(at)].submit(net.now, vec![e.clone()])[0].is_ok());
        early.push(e);
        net.run(10, if k < 10 { &all } else { &up });
    }
    let gone = net.keys[3].public();
    for i in [0, 1, 3] {
        net.nodes[i].handle(net.now, Input::Retire(gone));
    }
    let thief = SecretKey::from_bytes([124; 32]);
    let sign = |net: &Net, last: &SignedVertex, parents: Vec<VertexId>, tag: u8| {
        let mut all = vec![last.id];
        all.extend(parents);
        Vertex {
            group_id: net.group.id,
            creator: gone,
            sequence: last.vertex.sequence + 1,
            timestamp_ms: net.now,
            parents: all,
            txs: (0..20).map(|k| net.event(&thief, k, tag)).collect(),
        }
        .sign(&net.keys[3])
    };
    // On every other gateway's latest vertex, as node 2 sees them.
    let (tips, g) = (net.nodes[2].status().tips, net.group.index(&gone).unwrap());
    let last = net.nodes[2]
        .vertex(&tips[g].unwrap())
        .unwrap()
        .vertex
        .clone();
    let others = tips.iter().enumerate().filter(|(c, _)| *c != g);
    let taken = sign(&net, &last, others.filter_map(|(_, t)| *t).collect(), 0);
    for i in up {
        let out = net.hand(i, 3, &taken);
        let dropped = out
            .iter()
            .any(|a| matches!(a, Action::Unneeded { vertex } if *vertex == taken.id));
        // Node 2 does not know of the retirement yet.
        assert_eq!(dropped, i != 2, "node {i}: {out:?}");
        assert_eq!(
            net.nodes[i].vertex(&taken.id).is_some(),
            i == 2,
            "node {i}: {out:?}"
        );
    }
    // Node 2's gateway references it; the others ask for it then, and take it.
    net.run(50, &up);
    for i in up {
        assert!(net.nodes[i].vertex(&taken.id).is_some(), "node {i}");
        net.nodes[i].handle(net.now, Input::Retire(gone));
    }
    // Once every node knows, nothing the thief signs is kept, alone, next to a forged
    // vertex that names it, or named by an anchor proposal only the retired key endorsed.
    let mut last = taken;
    let (mut dropped, mut stolen) = (0, Vec::new());
    for k in 1..=30u8 {
        let v = sign(&net, &last, Vec::new(), k);
        stolen.extend(v.vertex.txs.iter().map(SignedMachineTx::hash));
        let mut forged = net.vertex(0, 1_000, vec![v.id], Vec::new());
        forged.signature.0[3] ^= 1;
        let both = Message::Vertices(vec![forged.clone(), v.clone()]);
        let anchor = cpc_sidechain::Anchor {
            group_id: net.group.id,
            sequence: net.finals.len() as u64 + 1,
            frontier: vec![v.id],
            root: Hash32([7; 32]),
            confirmed_vertices: 1_000_000,
            rewards: Vec::new(),
        };
        let endorsement = cpc_sidechain::Endorsement {
            gateway: gone,
            signature: net.keys[3].sign(&anchor.signing_bytes()),
        };
        let proposal = Message::Anchor(cpc_sidechain::SignedAnchor {
            anchor,
            endorsements: vec![endorsement],
        });
        for i in up {
            for msg in [proposal.clone(), Message::Vertex(v.clone()), both.clone()] {
                for a in net.nodes[i].handle(net.now, Input::Message { from: 3, msg }) {
                    match a {
                        Action::Unneeded { vertex } if vertex == v.id => dropped += 1,
                        Action::Rejected { vertex, .. } if vertex == forged.id => {}
                        a => panic!("node {i}: {a:?}"),
                    }
                }
            }
            assert!(net.nodes[i].vertex(&v.id).is_none());
        }
        last = v;
        net.run(5, &up);
    }
    assert_eq!(dropped, 2 * 30 * up.len());
    // The group went on meanwhile, and whatever it holds is its own.
    let later: Vec<SignedMachineTx> = (20..26u8).map(|k| net.event(&m, u64::from(k), k)).collect();
    for (k, t) in later.iter().enumerate() {
        assert!(net.nodes[k % 3].submit(net.now, vec![t.clone()])[0].is_ok());
    }
    net.run(300, &up);
    net.assert_final(early.iter().chain(&later), &up);
    for i in up {
        assert!(stolen.iter().all(|h| net.nodes[i].tx(h).is_none()));
    }
}

#[test]
fn messages_round_trip_and_garbage_is_refused() {
    use cpc_types::codec::Encode;
    let net = net(4);
    let v = Vertex {
        group_id: net.group.id,
        creator: net.keys[0].public(),
        sequence: 1,
        timestamp_ms: 5,
        parents: vec![],
        txs: vec![net.event(&net.keys[1], 0, 4)],
    }
    .sign(&net.keys[0]);
    let ask = Message::Request {
        ids: vec![v.id],
        have: vec![3, 0, 7, 1],
    };
    assert_eq!(Message::decode_untrusted(&ask.encode()).unwrap(), ask);
    // A request of the old form (ids only) is refused, not misread.
    let mut old = ask.encode();
    old.truncate(1 + 4 + 32);
    assert!(Message::decode_untrusted(&old).is_err());
    let m = Message::Vertex(v);
    assert_eq!(Message::decode_untrusted(&m.encode()).unwrap(), m);
    assert!(Message::decode_untrusted(&[9, 1, 2]).is_err());
    assert!(Message::decode_untrusted(&[]).is_err());
}

/// A real main-chain state holding the group, and an account that sends its transactions.
struct MainChain {
    state: cpc_state::State,
    sender: SecretKey,
    nonce: u64,
}

impl MainChain {
    fn new(group: &Group, reward_per_anchor: u64, reward_pool: u64) -> MainChain {
        use cpc_state::{Genesis, GenesisSideGroup, GenesisValidator, Params, State};
        let sender = SecretKey::from_bytes([200; 32]);
        let genesis = Genesis {
            chain_id: 3,
            timestamp_ms: 0,
            params: Params::with_foundation(sender.address()),
            allocations: [(sender.address(), cpc_types::TOTAL_SUPPLY - reward_pool)]
                .into_iter()
                .collect(),
            validators: vec![GenesisValidator::new(sender.public(), 0)],
            side_groups: vec![GenesisSideGroup {
                id: group.id,
                owner: sender.address(),
                gateways: group.gateways.clone(),
                reward_per_anchor,
                reward_pool,
            }],
        };
        MainChain {
            state: State::from_genesis(&genesis).unwrap(),
            sender,
            nonce: 0,
        }
    }

    /// Executes `kind` in a block of its own.
    fn apply(&mut self, kind: cpc_types::TxKind) -> Result<(), cpc_state::TxError> {
        let env = cpc_state::BlockEnv {
            height: self.nonce + 1,
            timestamp_ms: self.nonce,
            proposer: self.sender.address(),
        };
        let tx = cpc_types::Transaction {
            chain_id: 3,
            sender: self.sender.public(),
            nonce: self.nonce,
            // The sender pays the main chain's fee: blocks after the first few cost one.
            max_fee: 1_000_000,
            kind,
        }
        .sign(&self.sender);
        self.state.begin_block(&env);
        self.state.apply_tx(&env, &tx)?;
        self.nonce += 1;
        Ok(())
    }
}

/// The main chain accepts the gateway's evidence once, and records the offender.
fn main_chain_takes_the_evidence(group: &Group, ev: &cpc_sidechain::EquivocationEvidence) {
    let mut main = MainChain::new(group, 0, 0);
    main.apply(ev.tx_kind()).unwrap();
    assert!(
        main.state
            .side_offender(&group.id, &ev.offender.address())
            .is_some()
    );
    assert!(main.apply(ev.tx_kind()).is_err(), "reported twice");
}

#[test]
fn a_snapshot_restores_only_into_its_own_node_and_garbage_is_refused() {
    let mut net = net(4);
    let m = SecretKey::from_bytes([50; 32]);
    let lock = net.lock(&m, 1_000);
    let d = net.tx(&m, 0, MachineKind::Deposit { lock });
    assert!(net.nodes[0].submit(net.now, vec![d.clone()])[0].is_ok());
    net.run(100, &[0, 1, 2, 3]);
    let snap = net.nodes[1].snapshot();
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let restore = |key: Option<SecretKey>, cfg: Config, bytes: &[u8]| {
        SideChain::restore(cfg, key, accel.clone(), bytes)
    };
    let cfg = config(&net.group);
    let back = restore(Some(net.keys[1].clone()), cfg.clone(), &snap).unwrap();
    assert_eq!(back.snapshot(), snap);
    assert_eq!(
        format!("{:?}", back.tx(&d.hash())),
        format!("{:?}", net.nodes[1].tx(&d.hash()))
    );
    let refused = |r: Result<SideChain, SideError>| match r {
        Err(SideError::Snapshot(why)) => why,
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("restored"),
    };
    // Another gateway's key, or none: that node would sign as someone else.
    assert!(refused(restore(Some(net.keys[2].clone()), cfg.clone(), &snap)).contains("key"));
    assert!(refused(restore(None, cfg.clone(), &snap)).contains("key"));
    // Another group.
    let other = Group::new(Group::id_of("other"), net.group.gateways.clone()).unwrap();
    let why = refused(restore(Some(net.keys[1].clone()), config(&other), &snap));
    assert!(why.contains("another group"), "{why}");
    // Torn, extended, flipped, or not a snapshot at all: an error, never a panic.
    for cut in [0, 10, 20, snap.len() / 2, snap.len() - 1] {
        refused(restore(
            Some(net.keys[1].clone()),
            cfg.clone(),
            &snap[..cut],
        ));
    }
    let mut longer = snap.clone();
    longer.push(0);
    refused(restore(Some(net.keys[1].clone()), cfg.clone(), &longer));
    let mut flipped = snap;
    flipped[16] ^= 1;
    assert!(refused(restore(Some(net.keys[1].clone()), cfg.clone(), &flipped)).contains("version"));
    refused(restore(
        Some(net.keys[1].clone()),
        cfg,
        b"{\"not\": \"a snapshot\"}",
    ));
}

#[test]
fn a_gateway_restored_from_a_snapshot_never_signs_a_logged_sequence_again() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([60; 32]);
    let first = net.event(&m, 0, 1);
    assert!(net.nodes[0].submit(net.now, vec![first])[0].is_ok());
    net.run(50, &all);
    let snap = net.nodes[0].snapshot();
    // What the node logs after the snapshot: every vertex, its own later ones among them.
    let logged_from = net.sent.len();
    for k in 1..=5 {
        let tx = net.event(&m, k, k as u8);
        assert!(net.nodes[0].submit(net.now, vec![tx])[0].is_ok());
        net.run(10, &all);
    }
    let logged: Vec<SignedVertex> = net.sent[logged_from..].to_vec();
    let me = net.keys[0].public();
    let last_own = logged
        .iter()
        .filter(|v| v.vertex.creator == me)
        .map(|v| v.vertex.sequence)
        .max()
        .expect("gateway 0 signed after the snapshot");
    // Restored with a transaction waiting in its pool, it would sign at once if it could.
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let key = Some(net.keys[0].clone());
    let mut node = SideChain::restore(config(&net.group), key, accel, &snap).unwrap();
    let pending = net.event(&m, 6, 6);
    assert!(node.submit(net.now, vec![pending])[0].is_ok());
    let signed = |out: &[Action]| -> Vec<u64> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    msg: Message::Vertex(v),
                    ..
                } if v.vertex.creator == me => Some(v.vertex.sequence),
                _ => None,
            })
            .collect()
    };
    // The log replays with no tick between its messages, as the node replays it.
    for v in &logged {
        let out = node.handle(
            net.now,
            Input::Message {
                from: u64::MAX,
                msg: Message::Vertex(v.clone()),
            },
        );
        assert_eq!(signed(&out), Vec::<u64>::new(), "signed during the replay");
    }
    // Once running, it signs its next vertex after the last one it logged.
    let mut next = Vec::new();
    for t in 1..=2_000 {
        next.extend(signed(&node.handle(net.now + t, Input::Tick)));
        if !next.is_empty() {
            break;
        }
    }
    assert_eq!(next.first(), Some(&(last_own + 1)));
    assert!(node.status().equivocators.is_empty());
}

#[test]
fn a_gateway_that_lost_its_chain_stays_silent_until_it_is_back() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([61; 32]);
    for k in 0..3 {
        let tx = net.event(&m, k, k as u8);
        assert!(net.nodes[0].submit(net.now, vec![tx])[0].is_ok());
        net.run(50, &all);
    }
    let me = net.keys[0].public();
    let last = net
        .sent
        .iter()
        .filter(|v| v.vertex.creator == me)
        .max_by_key(|v| v.vertex.sequence)
        .unwrap()
        .clone();
    assert!(last.vertex.sequence > 1);
    // Gateway 0 lost everything; a peer hands it its own last vertex, whose parents never
    // come. Once that waited too long and went, the gateway still does not start its
    // chain again from sequence 1.
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let cfg = config(&net.group);
    let mut node = SideChain::new(cfg.clone(), Some(net.keys[0].clone()), accel).unwrap();
    let t0 = net.now;
    node.handle(t0, Input::Tick);
    node.handle(
        t0,
        Input::Message {
            from: 1,
            msg: Message::Vertex(last),
        },
    );
    let other = SecretKey::from_bytes([62; 32]);
    for t in (1..=cfg.max_pending_ms * 2).step_by(5) {
        if t == cfg.max_pending_ms + 1 {
            // Something to sign once the vertex went.
            assert!(node.submit(t0 + t, vec![net.event(&other, 0, 9)])[0].is_ok());
        }
        for a in node.handle(t0 + t, Input::Tick) {
            if let Action::Send {
                msg: Message::Vertex(v),
                ..
            } = a
            {
                panic!(
                    "signed sequence {} with its chain missing",
                    v.vertex.sequence
                );
            }
        }
    }
}

#[test]
fn an_idle_group_prunes_its_last_transactions_too() {
    let mut net = net(4);
    let all = [0, 1, 2, 3];
    let m = SecretKey::from_bytes([63; 32]);
    let tx = net.event(&m, 0, 1);
    assert!(net.nodes[0].submit(net.now, vec![tx.clone()])[0].is_ok());
    // Gateway 3 is away while the other three confirm it; nothing else comes. Back, it
    // still acknowledges the vertex that holds it, and every gateway acknowledges the
    // others' first vertices above it, so that it settles and leaves memory once final.
    net.run(100, &[0, 1, 2]);
    assert!(matches!(net.status(0, &tx.hash()), TxStatus::Final { .. }));
    // Back, it reads the final anchors from the main chain, as a node does.
    for fin in net.finals.clone() {
        net.nodes[3].handle(net.now, fin);
    }
    net.run(500, &all);
    for i in all {
        assert!(matches!(net.status(i, &tx.hash()), TxStatus::Final { .. }));
        assert!(net.nodes[i].tx(&tx.hash()).is_none(), "node {i} holds it");
        assert_eq!(net.nodes[i].status().pruned_txs, 1);
    }
    // Then the group falls silent.
    let sent = net.sent.len();
    net.run(200, &all);
    assert_eq!(net.sent.len(), sent);
}

/// Every rule a vertex's form must meet, each refused with its reason and nothing of it
/// kept; the form is checked before any signature, so a malformed vertex costs none.
#[test]
fn malformed_vertices_are_refused_with_their_reason() {
    let mut net = net(4);
    let stamped = |g: usize, sequence: u64, timestamp_ms: u64, parents: Vec<VertexId>| {
        Vertex {
            group_id: net.group.id,
            creator: net.keys[g].public(),
            sequence,
            timestamp_ms,
            parents,
            txs: Vec::new(),
        }
        .sign(&net.keys[g])
    };
    // A valid start: gateways 1, 2 and 3 at sequence 1; gateway 1 at 2 on 2's first.
    let a1 = net.vertex(3, 1, vec![], vec![]);
    let b1 = net.vertex(1, 1, vec![], vec![]);
    let c1 = net.vertex(2, 1, vec![], vec![]);
    let b2 = net.vertex(1, 2, vec![b1.id, c1.id], vec![]);
    let out = feed(&mut net.nodes[0], &[&a1, &b1, &c1, &b2]);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Rejected { .. })),
        "{out:?}"
    );
    let m = SecretKey::from_bytes([94; 32]);
    let event = net.event(&m, 0, 1);
    let foreign = MachineTx {
        group_id: Hash32([9; 32]),
        ..event.tx.clone()
    }
    .sign(&m);
    let outsider = SecretKey::from_bytes([95; 32]);
    // Sequence 0 is below every gateway's history: dropped as no news, unchecked.
    let zero = net.vertex(3, 0, vec![], vec![]);
    assert!(!net.nodes[0].is_new(&zero));
    assert_eq!(feed(&mut net.nodes[0], &[&zero]), vec![]);
    assert!(net.nodes[0].vertex(&zero.id).is_none());
    let mut cases: Vec<(SignedVertex, &str)> = vec![
        (net.vertex(3, 2, vec![a1.id; 10], vec![]), "10 parents"),
        (
            Vertex {
                group_id: Hash32([9; 32]),
                ..a1.vertex.clone()
            }
            .sign(&net.keys[3]),
            "another group's vertex",
        ),
        (
            Vertex {
                creator: outsider.public(),
                ..a1.vertex.clone()
            }
            .sign(&outsider),
            "the creator is not a gateway of the group",
        ),
        (
            net.vertex(3, 2, vec![a1.id], vec![event.clone(), event]),
            "a transaction twice",
        ),
        (
            net.vertex(3, 2, vec![a1.id], vec![foreign]),
            "a transaction of another group",
        ),
        (
            net.vertex(3, 2, vec![b1.id], vec![]),
            "the first parent is not the creator's previous vertex",
        ),
        (
            net.vertex(3, 3, vec![a1.id], vec![]),
            "the first parent is not the creator's previous vertex",
        ),
        (stamped(2, 2, 0, vec![c1.id]), "time runs backwards"),
        (
            net.vertex(3, 2, vec![a1.id, b1.id, b2.id], vec![]),
            "two parents of one gateway",
        ),
        (
            net.vertex(3, 2, vec![a1.id, a1.id], vec![]),
            "a parent the creator's previous vertex already reaches",
        ),
        (
            net.vertex(1, 3, vec![b2.id, c1.id], vec![]),
            "a parent the creator's previous vertex already reaches",
        ),
    ];
    // Form before signature: a malformed vertex with a broken signature is refused for
    // its form, unverified.
    let mut unsigned = Vertex {
        creator: outsider.public(),
        ..a1.vertex.clone()
    }
    .sign(&outsider);
    unsigned.signature.0[7] ^= 1;
    cases.push((unsigned, "the creator is not a gateway of the group"));
    for (v, why) in &cases {
        let out = feed(&mut net.nodes[0], &[v]);
        assert!(
            out.iter().any(
                |a| matches!(a, Action::Rejected { vertex, reason, .. } if *vertex == v.id && reason == why)
            ),
            "{why}: {out:?}"
        );
        assert!(net.nodes[0].vertex(&v.id).is_none(), "{why}");
    }
    // The node goes on: a well-formed next vertex of gateway 3 is taken.
    let a2 = net.vertex(3, 2, vec![a1.id, b2.id], vec![]);
    feed(&mut net.nodes[0], &[&a2]);
    assert!(net.nodes[0].vertex(&a2.id).is_some());
}

/// Heads are anyone's word: made-up ids are asked for a while, a bounded number of them
/// (a few per peer and interval, 4,096 in all), and never crowd out what a waiting vertex
/// lacks, which is asked for first and kept until it comes.
#[test]
fn made_up_heads_are_asked_for_within_bounds_and_then_given_up() {
    let mut net = net(4);
    let requests = |out: &[Action]| -> Vec<(Option<u64>, Vec<VertexId>)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    to,
                    msg: Message::Request { ids, .. },
                } => Some((*to, ids.clone())),
                _ => None,
            })
            .collect()
    };
    let made_up = |peer: u64| -> Vec<VertexId> {
        (0..64u32)
            .map(|i| Hash32(sha256(&[&peer.to_be_bytes(), &i.to_be_bytes()]).0))
            .collect()
    };
    let heads = |node: &mut SideChain, now: u64, peer: u64, ids: Vec<VertexId>| {
        node.handle(
            now,
            Input::Message {
                from: peer,
                msg: Message::Heads(ids),
            },
        )
    };
    // A real vertex a peer announces, whose child comes 29 s later.
    let parent = net.vertex(1, 1, vec![], vec![]);
    let child = net.vertex(2, 1, vec![parent.id], vec![]);
    let node = &mut net.nodes[0];
    let mut now = 1;
    let out = heads(node, now, 7, vec![parent.id]);
    assert_eq!(requests(&out), vec![(Some(7), vec![parent.id])]);
    // One peer: its heads once an interval, one id per gateway of each.
    let mut asked = 0;
    for _ in 0..100 {
        for (to, ids) in requests(&heads(node, now, 8, made_up(8))) {
            assert_eq!(to, Some(8));
            asked += ids.len();
        }
    }
    assert_eq!(asked, 4);
    // Heads sent too soon are dropped without putting off the next ones (the interval
    // is 10 ms here).
    let taken =
        |node: &mut SideChain, at: u64| !requests(&heads(node, at, 9, made_up(at))).is_empty();
    assert!(taken(node, 100));
    assert!(!taken(node, 103));
    assert!(taken(node, 106));
    asked += 8;
    // Many peers: 4,096 in all.
    for peer in 10..1_200 {
        for (_, ids) in requests(&heads(node, now, peer, made_up(peer))) {
            asked += ids.len();
        }
    }
    assert_eq!(asked + 1, 4096);
    // Asked again of every peer, no more than a peer answers, until given up.
    let mut again = Vec::new();
    while now < 62_000 {
        now += 10;
        if now == 29_001 {
            let out = node.handle(
                now,
                Input::Message {
                    from: 2,
                    msg: Message::Vertex(child.clone()),
                },
            );
            // Asked for already: not again at once.
            assert!(requests(&out).is_empty(), "{out:?}");
        }
        for (to, ids) in requests(&node.handle(now, Input::Tick)) {
            assert!(to.is_none() && ids.len() <= 256);
            // What the waiting child lacks comes first.
            if now > 29_001 {
                assert_eq!(ids[0], parent.id, "at {now}");
            }
            again.push((now, ids.len()));
        }
    }
    // The made-up ones are given up after 30 s; the parent is asked for while the child
    // waits (30 s from its arrival), and no longer.
    let last_full = again.iter().filter(|(_, n)| *n > 1).map(|(t, _)| *t).max();
    assert!(
        last_full.is_some_and(|t| (29_000..=31_000).contains(&t)),
        "{last_full:?}"
    );
    let last = again.last().map(|(t, _)| *t).unwrap();
    assert!((58_500..=59_500).contains(&last), "{last}");
    // A vertex's missing parent is asked for even while heads fill the room.
    for peer in 2_000..3_100 {
        heads(node, now, peer, made_up(peer));
    }
    let lone = net.vertex(3, 1, vec![], vec![]);
    let orphan = net.vertex(1, 1, vec![lone.id], vec![]);
    let out = net.nodes[0].handle(
        now,
        Input::Message {
            from: 2,
            msg: Message::Vertex(orphan),
        },
    );
    assert!(
        requests(&out).contains(&(Some(2), vec![lone.id])),
        "{out:?}"
    );
}

/// An anchor message is news only for the endorsements it brings that this node lacks:
/// one per gateway, by a gateway of the group, that verify.
#[test]
fn an_anchor_brings_only_fresh_endorsements() {
    let mut net = net(4);
    let anchor = cpc_sidechain::Anchor {
        group_id: net.group.id,
        sequence: 1,
        frontier: vec![Hash32([1; 32])],
        root: Hash32([7; 32]),
        confirmed_vertices: 1,
        rewards: Vec::new(),
    };
    let by = |k: &SecretKey, a: &cpc_sidechain::Anchor| cpc_sidechain::Endorsement {
        gateway: k.public(),
        signature: k.sign(&a.signing_bytes()),
    };
    let signed = |a: &cpc_sidechain::Anchor, endorsements| cpc_sidechain::SignedAnchor {
        anchor: a.clone(),
        endorsements,
    };
    let node = &mut net.nodes[0];
    let e1 = by(&net.keys[1], &anchor);
    // Another group's, a sequence out of reach, an outsider's and a forged endorsement.
    let other_group = cpc_sidechain::Anchor {
        group_id: Hash32([9; 32]),
        ..anchor.clone()
    };
    let far = cpc_sidechain::Anchor {
        sequence: 17,
        ..anchor.clone()
    };
    let mut forged = by(&net.keys[2], &anchor);
    forged.signature.0[1] ^= 1;
    for a in [
        signed(&other_group, vec![by(&net.keys[1], &other_group)]),
        signed(&far, vec![by(&net.keys[1], &far)]),
        signed(&anchor, vec![by(&SecretKey::from_bytes([96; 32]), &anchor)]),
        signed(&anchor, vec![forged]),
    ] {
        assert!(node.fresh_endorsements(&a).is_empty(), "{a:?}");
    }
    // An endorsement repeated, or out of order, is no gateway's making: nothing is taken.
    let padded = signed(&anchor, vec![e1.clone(); 2]);
    assert!(!node.anchor_well_formed(&padded));
    assert!(node.fresh_endorsements(&padded).is_empty());
    let one = signed(&anchor, vec![e1.clone()]);
    assert!(node.anchor_well_formed(&one));
    assert_eq!(node.fresh_endorsements(&one), vec![e1.clone()]);
    node.handle(
        1,
        Input::Message {
            from: 1,
            msg: Message::Anchor(one.clone()),
        },
    );
    // Once held, it is no news; another gateway's is.
    assert!(node.fresh_endorsements(&one).is_empty());
    let e2 = by(&net.keys[2], &anchor);
    let mut both = vec![e1, e2.clone()];
    both.sort_by_key(|e| e.gateway);
    let more = signed(&anchor, both.clone());
    assert_eq!(node.fresh_endorsements(&more), vec![e2]);
    both.reverse();
    assert!(!node.anchor_well_formed(&signed(&anchor, both)));
}

/// Timestamps and nonces are whatever a gateway or a client sends: the extremes are
/// taken without a panic.
#[test]
fn extreme_timestamps_and_nonces_are_handled() {
    let mut net = net(4);
    let stamped = |g: usize, timestamp_ms: u64, parents: Vec<VertexId>| {
        Vertex {
            group_id: net.group.id,
            creator: net.keys[g].public(),
            sequence: 1,
            timestamp_ms,
            parents,
            txs: Vec::new(),
        }
        .sign(&net.keys[g])
    };
    // Two faulty gateways: one stamps 99, the other u64::MAX on top of it (the relay
    // delay's discount once divided by zero).
    let low = stamped(2, 99, vec![]);
    let high = stamped(3, u64::MAX, vec![low.id]);
    feed(&mut net.nodes[0], &[&low, &high]);
    assert!(net.nodes[0].vertex(&high.id).is_some());
    // A client's nonce u64::MAX waits in the pool; the account's next nonce stays sane.
    let m = SecretKey::from_bytes([97; 32]);
    let last = net.event(&m, u64::MAX, 1);
    assert!(net.nodes[0].submit(1, vec![last])[0].is_ok());
    assert_eq!(net.nodes[0].next_nonce(&m.public().address()), u64::MAX);
}

/// Cooperation rewards: a gateway whose vertices reference only its own earns nothing;
/// one that references the others late (as its timestamps tell) earns a small share.
#[test]
fn cooperation_rewards_pass_over_a_lazy_gateway_and_discount_a_slow_one() {
    // Gateway 3 is driven by hand, the others run; `lag` is how far after the others'
    // latest vertices gateway 3 stamps its own (None: it references none of them). Status
    // vectors are in the group's key order: gateway 3 is `g` there.
    let run = |lag: Option<u64>| {
        let mut net = net(4);
        let live = [0, 1, 2];
        let g = net.group.index(&net.keys[3].public()).unwrap();
        let m = SecretKey::from_bytes([98; 32]);
        let mut last: Option<SignedVertex> = None;
        for k in 0..40u64 {
            let t = net.event(&m, k, k as u8);
            assert!(net.nodes[(k % 3) as usize].submit(net.now, vec![t])[0].is_ok());
            net.run(10, &live);
            let st = net.nodes[0].status();
            let mut parents: Vec<VertexId> = last.iter().map(|v| v.id).collect();
            let mut stamp = net.now;
            if let Some(lag) = lag {
                let others = st.tips.iter().enumerate().filter(|(c, _)| *c != g);
                for tip in others.filter_map(|(_, t)| t.as_ref()) {
                    // Gateway 3's chain reaches it already: no reference.
                    let info = net.nodes[0].vertex(tip).unwrap();
                    if info.seen_by & (1 << g) == 0 {
                        parents.push(*tip);
                        stamp = stamp.max(info.vertex.vertex.timestamp_ms + lag);
                    }
                }
            }
            if let Some(l) = &last {
                stamp = stamp.max(l.vertex.timestamp_ms);
            }
            let v = Vertex {
                group_id: net.group.id,
                creator: net.keys[3].public(),
                sequence: k + 1,
                timestamp_ms: stamp,
                parents,
                txs: Vec::new(),
            }
            .sign(&net.keys[3]);
            for i in live {
                let out = net.hand(i, 3, &v);
                assert!(
                    !out.iter().any(|a| matches!(a, Action::Rejected { .. })),
                    "{out:?}"
                );
            }
            last = Some(v);
        }
        net.run(200, &live);
        let st = net.nodes[1].status();
        assert!(st.last_anchor.is_some_and(|a| a.is_final));
        let (mut scores, mut rewards) = (st.scores, st.rewards);
        let (score, reward) = (scores.remove(g), rewards.remove(g));
        assert!(rewards.iter().all(|r| *r > 0), "{rewards:?}");
        (score, reward, scores, rewards)
    };
    let (score, reward, _, _) = run(None);
    assert_eq!((score, reward), (0, 0), "lazy");
    // 1,000 ms late: about 9 points a reference against about 100 for a prompt one.
    let (score, reward, scores, rewards) = run(Some(1_000));
    assert!(reward > 0, "slow but not lazy");
    for (s, r) in scores.iter().zip(&rewards) {
        assert!(
            score * 4 < *s && reward * 4 < *r,
            "slow: {score}/{reward} against {scores:?} {rewards:?}"
        );
    }
}
