//! A four-node appliance network of real processes on loopback: transactions sent to any
//! node commit on all with identical blocks; the chain survives a `kill -9` of one node,
//! which catches up after a restart; with two of four nodes down it halts without forking
//! and resumes when one returns. Five processes for four seats elect a committee every
//! term and agree on every one.

use cpc_tests::Testnet;
use cpc_types::{Address, SecretKey, SignedTransaction, Transaction, TxKind, UNITS_PER_CPC};

fn transfer(from: &SecretKey, nonce: u64, to: Address) -> SignedTransaction {
    Transaction {
        chain_id: 1,
        sender: from.public(),
        nonce,
        max_fee: UNITS_PER_CPC / 1000,
        kind: TxKind::Transfer { to, amount: 7 },
    }
    .sign(from)
}

/// Every running node in `nodes` has the same hash at every height up to `upto`.
fn same_chain(net: &Testnet, nodes: &[usize], upto: u64) {
    for h in 1..=upto {
        let hashes: Vec<_> = nodes.iter().map(|i| net.nodes[*i].block_hash(h)).collect();
        assert!(
            hashes.iter().all(|x| x.is_some() && *x == hashes[0]),
            "nodes {nodes:?} differ at height {h}: {hashes:?}"
        );
    }
}

#[test]
fn four_nodes_agree_survive_a_crash_and_halt_without_forking() {
    let mut net = Testnet::new(4);
    net.start_all();
    for n in &net.nodes {
        n.wait_height(2, 60);
    }
    let to = SecretKey::from_bytes([77; 32]).address();

    // Transactions sent to different nodes commit everywhere.
    let a = transfer(&net.user(1), 0, to);
    let b = transfer(&net.user(2), 0, to);
    assert_eq!(net.nodes[0].submit(&a).status, 202);
    assert_eq!(net.nodes[2].submit(&b).status, 202);
    let mut top = 0;
    for n in &net.nodes {
        for tx in [&a, &b] {
            let c = n.wait_committed(&tx.id().to_string());
            top = top.max(c["height"].as_u64().unwrap());
        }
    }
    for n in &net.nodes {
        n.wait_height(top, 30);
    }
    same_chain(&net, &[0, 1, 2, 3], top);
    let balance = net.nodes[3].get(&format!("/v1/accounts/{to}")).body["balance"].clone();
    assert_eq!(balance, 14);

    // The consensus API shows the committee and this node's view.
    let c = net.nodes[1].get("/v1/consensus").body;
    assert_eq!(c["committee"].as_array().unwrap().len(), 4);
    assert_eq!(c["member"], true);
    let peers = || {
        net.nodes[1].get("/v1/peers").body["peers"]
            .as_array()
            .map(Vec::len)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while peers() != Some(3) {
        assert!(std::time::Instant::now() < deadline, "peers: {:?}", peers());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // kill -9 one node: the other three go on.
    net.nodes[3].kill9();
    let h = net.nodes[0].height();
    let c = transfer(&net.user(1), 1, to);
    assert_eq!(net.nodes[1].submit(&c).status, 202);
    // Rarely (about one run in fifteen, 2026-12-05) this is not committed in time; what
    // the three nodes say then is in the message.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while net.nodes[0].get(&format!("/v1/txs/{}", c.id())).body["status"] != "committed" {
        assert!(
            std::time::Instant::now() < deadline,
            "{} not committed after the crash:\n{}",
            c.id(),
            net.diagnose(&[0, 1, 2])
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Long enough (about 4 s) that gossipsub's message cache cannot hand the restarted
    // node what it missed: it must sync.
    net.nodes[0].wait_height(h + 40, 60);

    // Restarted, it catches up from its peers.
    net.nodes[3].start();
    let target = net.nodes[0].height();
    net.nodes[3].wait_height(target, 90);
    same_chain(&net, &[0, 3], target);
    let synced = || net.nodes[3].get("/v1/consensus").body["metrics"]["synced"].as_u64();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while synced() < Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "caught up without syncing?"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Two of four down: no quorum, so no new block, and no fork.
    net.nodes[2].kill9();
    net.nodes[3].kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let stalled = net.nodes[0].height();
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        net.nodes[0].height() <= stalled + 1,
        "the chain went on without a quorum"
    );
    let h0 = net.nodes[0].height().min(net.nodes[1].height());
    same_chain(&net, &[0, 1], h0);

    // One returns: the chain resumes.
    net.nodes[2].start();
    let resume = net.nodes[0].height() + 2;
    for i in [0, 1, 2] {
        net.nodes[i].wait_height(resume, 120);
    }
    same_chain(&net, &[0, 1, 2], resume);
    for n in &mut net.nodes {
        n.stop();
    }
}

#[test]
fn five_nodes_elect_a_committee_every_term_and_agree_on_each() {
    let mut net = Testnet::with_args(5, &["--committee", "4", "--term-length", "10"]);
    net.start_all();
    for n in &net.nodes {
        n.wait_height(36, 120);
    }
    same_chain(&net, &[0, 1, 2, 3, 4], 36);
    let history = |i: usize| net.nodes[i].get("/v1/committee/history").body["committees"].clone();
    let h0 = history(0);
    let terms = h0.as_array().unwrap();
    assert!(terms.len() >= 4, "{h0}");
    for (e, c) in terms.iter().enumerate().skip(1).take(3) {
        assert_eq!(c["epoch"], e as u64);
        assert_eq!(c["term"], e as u64);
        assert_eq!(c["from_height"], 10 * e as u64 + 1);
        assert_eq!(c["reason"], "election");
        assert_eq!(c["members"].as_array().unwrap().len(), 4);
        // A node that lags (this machine is shared) may miss a term's ticket window.
        let tickets = c["lucky"].as_array().unwrap().len();
        assert!((4..=5).contains(&tickets), "term {e}: {tickets} tickets");
    }
    assert!(
        terms
            .iter()
            .skip(1)
            .any(|c| c["lucky"].as_array().unwrap().len() == 5),
        "no term where every node proved a ticket: {h0}"
    );
    for i in 1..5 {
        let hi = history(i);
        for e in 0..4 {
            assert_eq!(hi[e], h0[e], "node {i} disagrees on committee {e}");
        }
    }
    let c = net.nodes[4].get("/v1/consensus").body;
    assert!(c["term"].as_u64().unwrap() >= 3, "{c}");
    assert!(
        c["committee"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["lucky"].is_u64())
    );
    assert_eq!(c["committee"].as_array().unwrap().len(), 4);
    assert_eq!(c["standby"].as_array().unwrap().len(), 1);
    for n in &mut net.nodes {
        n.stop();
    }
}
