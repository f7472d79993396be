//! The DAG side chain on four real gateway processes (`cpchain testnet` declares the group
//! in genesis and makes every node a gateway): machine transactions posted at any gateway
//! confirm on all four and become final once an anchor is in a final main-chain block;
//! main-chain locks fund side balances; a double spend sent to two gateways at once never
//! confirms twice; a gateway that was down catches up; after a restart of every node the
//! history is still final and new transactions become final too; malformed requests get
//! 4xx.

use std::time::{Duration, Instant};

use cpc_sidechain::{Group, MachineKind, MachineTx, SignedMachineTx};
use cpc_tests::{Node, Testnet, cpchain};
use cpc_types::{Hash32, SecretKey, sha256};
use serde_json::Value;

fn event(group: Hash32, key: &SecretKey, nonce: u64, reading: u32) -> SignedMachineTx {
    MachineTx {
        group_id: group,
        sender: key.public(),
        nonce,
        kind: MachineKind::Event {
            event_type: 1,
            data_hash: sha256(&[&reading.to_be_bytes()]),
            x: reading,
            y: 7,
        },
    }
    .sign(key)
}

fn post(node: &Node, body: &impl serde::Serialize) -> cpc_tests::Answer {
    let body = serde_json::to_vec(body).unwrap();
    node.post_raw("/v1/sidechain/txs", "application/json", &body, None)
}

/// The value of a counter on a `/metrics` page.
fn metric(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Whether `node`'s gateway stopped signing, by its metric.
fn halted(node: &Node) -> Option<u64> {
    metric(&node.get_text("/metrics", None).1, "cpchain_side_halted")
}

/// Waits until `node`'s gateway stopped signing for a reason that says `why`, as its
/// status and its metric tell.
fn wait_halted(node: &Node, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = node.get("/v1/sidechain/status").body;
        // The metric follows the status within microseconds.
        if let Some(reason) = st["halted"].as_str()
            && halted(node) == Some(1)
        {
            assert!(reason.contains(why), "{st}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not halted: {st}\n{}",
            tail(&node.log())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status_of(node: &Node, hash: &Hash32) -> Value {
    node.get(&format!("/v1/sidechain/txs/{hash}")).body
}

/// Waits until `hash` has one of `states` on `node`; returns its view.
fn wait_status(node: &Node, hash: &Hash32, states: &[&str], secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = status_of(node, hash);
        if v["status"].as_str().is_some_and(|s| states.contains(&s)) {
            return v;
        }
        if Instant::now() >= deadline {
            keep_logs(node);
        }
        assert!(
            Instant::now() < deadline,
            "{hash} on {} is {v} after {secs} s, not {states:?}\nside chain: {}\nmain chain: \
             {}\n{}",
            node.home.display(),
            node.get("/v1/sidechain/status").body,
            node.get("/v1/consensus").body,
            tail(&node.log())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Posts `tx` at a restarted `node` once it takes transactions again, and waits until it
/// is final on every node.
fn post_final(node: &Node, nodes: &[Node], tx: &SignedMachineTx) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while post(node, tx).status != 202 {
        assert!(Instant::now() < deadline, "{}", tail(&node.log()));
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in nodes {
        wait_status(n, &tx.hash(), &["final"], 60);
    }
}

/// Copies every node's log of the network to `CPC_SIDE_E2E_LOGS`, when set, before a
/// failure removes the temporary directory.
fn keep_logs(node: &Node) {
    let (Some(to), Some(net)) = (std::env::var_os("CPC_SIDE_E2E_LOGS"), node.home.parent()) else {
        return;
    };
    let to = std::path::PathBuf::from(to);
    let _ = std::fs::create_dir_all(&to);
    for i in 1..=4 {
        let _ = std::fs::copy(
            net.join(format!("node{i}/node.log")),
            to.join(format!("node{i}.log")),
        );
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Asserts that `node` said `text` in its log.
fn assert_logged(node: &Node, text: &str) {
    let log = node.log();
    assert!(log.contains(text), "{text:?} not logged:\n{}", tail(&log));
}

const CONFIRMED: &[&str] = &["confirmed", "anchored", "final"];

#[test]
fn machine_transactions_confirm_on_every_gateway_and_become_final() {
    let mut net = Testnet::with_args(4, &["--side-group", "e2e-district"]);
    let group = Group::id_of("e2e-district");
    // Anchor every second so the test sees several anchors, and snapshot the side chain
    // once the log passes 1 MiB, so that the restarts below restore snapshots. Node 2
    // keeps at most 1 MiB of final history in its store.
    for (i, n) in net.nodes.iter().enumerate() {
        let path = n.home.join("config.toml");
        let cfg = std::fs::read_to_string(&path).unwrap();
        assert!(cfg.contains("group = \"e2e-district\"") && cfg.contains("gateway = true"));
        let mut cfg = cfg
            .replace("anchor_interval_ms = 5000", "anchor_interval_ms = 1000")
            .replace("snapshot_log_mib = 256", "snapshot_log_mib = 1");
        if i == 2 {
            cfg = cfg.replace("archive_max_mib = 0", "archive_max_mib = 1");
        }
        std::fs::write(&path, cfg).unwrap();
    }
    net.start_all();
    for n in &net.nodes {
        n.wait_height(2, 60);
    }
    let machines: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_bytes([i; 32])).collect();

    // The group's status lists the four gateways and a quorum of three.
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        let a = net.nodes[0].get("/v1/sidechain/status");
        if a.status == 200 {
            break a.body;
        }
        assert!(Instant::now() < deadline, "no side-chain status: {a:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["group_id"], group.to_string());
    assert_eq!(st["gateways"].as_array().unwrap().len(), 4);
    assert_eq!(st["quorum"], 3);

    // One event posted at each gateway, and a batch of 100 at the first.
    let mut hashes = Vec::new();
    for (i, n) in net.nodes.iter().enumerate() {
        let tx = event(group, &machines[i], 0, i as u32);
        let a = post(n, &tx);
        assert_eq!(a.status, 202, "{a:?}");
        assert_eq!(a.body["hash"], tx.hash().to_string());
        hashes.push(tx.hash());
    }
    let batch: Vec<SignedMachineTx> = (1..=100)
        .map(|k| event(group, &machines[0], k, 1000 + k as u32))
        .collect();
    let a = post(&net.nodes[0], &batch);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["hash"].is_string())
    );
    hashes.extend(batch.iter().map(SignedMachineTx::hash));

    // Confirmed on every gateway, then final everywhere after anchoring.
    for n in &net.nodes {
        for h in &hashes {
            wait_status(n, h, CONFIRMED, 30);
        }
    }
    let v = status_of(&net.nodes[2], &hashes[0]);
    assert!(v["latency_ms"].is_u64(), "{v}");
    for n in &net.nodes {
        for h in &hashes {
            let v = wait_status(n, h, &["final"], 60);
            assert!(v["anchor"].as_u64().unwrap() >= 1);
        }
    }
    // The vertex holding a transaction is confirmed and anchored.
    let v = status_of(&net.nodes[1], &hashes[1]);
    let vid = v["vertices"][0].as_str().unwrap().to_owned();
    let vx = net.nodes[3].get(&format!("/v1/sidechain/vertices/{vid}"));
    assert_eq!(vx.status, 200, "{vx:?}");
    assert_eq!(vx.body["confirmed"], true);
    assert!(vx.body["seen_by"].as_array().unwrap().len() >= 3);
    assert!(vx.body["anchor"].as_u64().is_some());

    // Final history leaves memory for the node's store, and the API still serves it: the
    // transactions, their vertices, and a transaction posted again.
    for n in &net.nodes {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = n.get("/v1/sidechain/status").body;
            if st["pruned_txs"].as_u64().unwrap_or(0) >= hashes.len() as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "nothing pruned: {st}");
            std::thread::sleep(Duration::from_millis(100));
        }
        for h in &hashes {
            let v = status_of(n, h);
            assert_eq!(v["status"], "final", "{v}");
            assert!(v["latency_ms"].is_u64(), "{v}");
            let vid = v["vertices"][0].as_str().unwrap().to_owned();
            let vx = n.get(&format!("/v1/sidechain/vertices/{vid}"));
            assert_eq!(vx.status, 200, "{vx:?}");
            assert!(
                vx.body["txs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == &h.to_string())
            );
        }
    }
    let again = post(&net.nodes[3], &batch[0]);
    assert!(matches!(again.status, 200 | 202), "{again:?}");
    assert_eq!(again.body["hash"], batch[0].hash().to_string());
    let other = event(group, &machines[0], 1, 4242);
    let refused = post(&net.nodes[3], &other);
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("already final"),
        "{refused:?}"
    );

    // A main-chain lock funds a machine: deposit at one gateway, transfer at another.
    // The lock goes through the CLI, as an operator sends it.
    let user_key = net.dir.path().join("keys/user-1.key");
    let out = cpchain(&[
        "sidechain",
        "lock",
        "--home",
        net.nodes[0].home.to_str().unwrap(),
        "--key",
        user_key.to_str().unwrap(),
        "--group",
        "e2e-district",
        "--account",
        &machines[1].address().to_string(),
        "--amount",
        "0.00001",
        "--wait",
    ]);
    assert!(out.status.success(), "{out:?}");
    let lock_id: Hash32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let deposit = MachineTx {
        group_id: group,
        sender: machines[1].public(),
        nonce: 1,
        kind: MachineKind::Deposit { lock: lock_id },
    }
    .sign(&machines[1]);
    // The gateway may not have read the lock's block yet: it waits for it.
    assert_eq!(post(&net.nodes[1], &deposit).status, 202);
    wait_status(&net.nodes[1], &deposit.hash(), CONFIRMED, 30);
    let pay = |nonce: u64, to: &SecretKey, amount: u64| {
        MachineTx {
            group_id: group,
            sender: machines[1].public(),
            nonce,
            kind: MachineKind::Transfer {
                to: to.address(),
                amount,
            },
        }
        .sign(&machines[1])
    };
    let t1 = pay(2, &machines[2], 400);
    assert_eq!(post(&net.nodes[2], &t1).status, 202);
    for n in &net.nodes {
        wait_status(n, &t1.hash(), CONFIRMED, 30);
    }
    let acct = |n: &Node, k: &SecretKey| {
        n.get(&format!("/v1/sidechain/accounts/{}", k.address()))
            .body
    };
    assert_eq!(acct(&net.nodes[3], &machines[1])["balance"], 600);
    assert_eq!(acct(&net.nodes[3], &machines[2])["balance"], 400);
    assert_eq!(acct(&net.nodes[3], &machines[1])["next_nonce"], 3);

    // A double spend sent to two gateways at once: never both confirmed.
    let (d1, d2) = (pay(3, &machines[2], 500), pay(3, &machines[3], 500));
    let (a1, a2) = std::thread::scope(|s| {
        let x = s.spawn(|| post(&net.nodes[0], &d1));
        let y = s.spawn(|| post(&net.nodes[3], &d2));
        (x.join().unwrap(), y.join().unwrap())
    });
    assert_eq!((a1.status, a2.status), (202, 202));
    // Something after them confirms, so the DAG has moved past both.
    let later = event(group, &machines[3], 1, 77);
    assert_eq!(post(&net.nodes[2], &later).status, 202);
    for n in &net.nodes {
        wait_status(n, &later.hash(), CONFIRMED, 30);
    }
    std::thread::sleep(Duration::from_millis(500));
    for n in &net.nodes {
        let s1 = status_of(n, &d1.hash())["status"].clone();
        let s2 = status_of(n, &d2.hash())["status"].clone();
        let ok = |s: &Value| s.as_str().is_some_and(|s| CONFIRMED.contains(&s));
        assert!(
            !(ok(&s1) && ok(&s2)),
            "both sides of a double spend confirmed: {s1} {s2}"
        );
    }
    // Once final, at most one side wins, the same on every node (with two gateways
    // endorsing each, neither may win its slot). A side that did not win lost its slot
    // (reported as never confirming, and it leaves memory), or its gateway already held
    // the other when it came to include it: then it refused it, and no other node ever
    // heard of it (transactions travel only in vertices).
    let sides = [(&d1, 0), (&d2, 3)];
    let refused: Vec<bool> = sides
        .iter()
        .map(|(d, at)| {
            let v = wait_status(&net.nodes[*at], &d.hash(), &["final", "rejected"], 60);
            v["status"] == "rejected" && v["vertices"].as_array().is_some_and(Vec::is_empty)
        })
        .collect();
    let mut winners = Vec::new();
    for (k, n) in net.nodes.iter().enumerate() {
        let mut won = Vec::new();
        for (i, (d, at)) in sides.iter().enumerate() {
            if refused[i] && k != *at {
                let a = n.get(&format!("/v1/sidechain/txs/{}", d.hash()));
                assert_eq!(a.status, 404, "{a:?}");
                continue;
            }
            let v = wait_status(n, &d.hash(), &["final", "rejected"], 60);
            if v["status"] == "final" {
                won.push(i);
                continue;
            }
            let why = v["reason"].as_str().unwrap_or_default();
            assert!(
                why.starts_with("never confirms")
                    || (refused[i] && why.starts_with("double spend")),
                "{v}"
            );
        }
        assert!(won.len() <= 1, "node {k}: {won:?}");
        winners.push(won);
    }
    assert!(winners.windows(2).all(|w| w[0] == w[1]), "{winners:?}");

    // Every node recorded the same final anchors: once the group is idle, each one's last
    // is the main chain's, with the same root and count.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st: Vec<Value> = net
            .nodes
            .iter()
            .map(|n| n.get("/v1/sidechain/status").body)
            .collect();
        let on_chain = &st[0]["on_chain"]["last_anchor"];
        let seq = on_chain["sequence"].as_u64().unwrap_or(0);
        let settled = st
            .iter()
            .all(|s| s["last_anchor"]["is_final"] == true && s["last_anchor"]["sequence"] == seq);
        if settled {
            assert!(seq >= 1, "{on_chain}");
            for s in &st {
                let a = &s["last_anchor"];
                assert_eq!(a["root"], on_chain["frontier_root"], "{a} {on_chain}");
                assert_eq!(
                    a["confirmed_vertices"], on_chain["confirmed_vertices"],
                    "{a} {on_chain}"
                );
            }
            break;
        }
        let anchors: Vec<&Value> = st.iter().map(|s| &s["last_anchor"]).collect();
        assert!(
            Instant::now() < deadline,
            "anchors {anchors:?}, on chain {on_chain}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let main_anchor = net.nodes[0].get("/v1/status").body["height"]
        .as_u64()
        .unwrap();
    assert!(main_anchor > 0);
    // The main chain took endorsed anchors and paid cooperation rewards from the group's
    // pool (100,000 CPC at genesis, at most 1 CPC per anchor), the same on every node.
    let on_chain: Vec<Value> = net
        .nodes
        .iter()
        .map(|n| n.get("/v1/sidechain/status").body["on_chain"].clone())
        .collect();
    let pool = on_chain[0]["reward_pool"].as_u64().unwrap();
    let seq = on_chain[0]["last_anchor"]["sequence"].as_u64().unwrap();
    assert!(seq >= 1, "{on_chain:?}");
    assert!(pool < 100_000 * 100_000_000, "no reward paid: {on_chain:?}");
    assert!(
        pool >= 100_000 * 100_000_000 - seq * 100_000_000,
        "{on_chain:?}"
    );
    assert_eq!(on_chain[0]["offenders"], serde_json::json!([]));
    assert_eq!(on_chain[0]["reward_per_anchor"], 100_000_000);

    // Metrics: the confirmation latency histogram and the counters.
    let (code, page) = net.nodes[0].get_text("/metrics", None);
    assert_eq!(code, 200);
    let count = metric(&page, "cpchain_side_confirmation_latency_seconds_count").unwrap_or(0);
    assert!(count >= hashes.len() as u64, "{count}");
    for name in [
        "cpchain_side_vertices_total",
        "cpchain_side_txs_confirmed_total",
        "cpchain_side_equivocations_total 0",
        "cpchain_side_vertices_per_second",
        "cpchain_side_anchors_submitted_total",
    ] {
        assert!(page.contains(name), "{name} missing");
    }
    // The gateway's vertices left after its log was synced.
    let syncs = metric(&page, "cpchain_side_log_syncs_total");
    assert!(syncs.is_some_and(|n| n > 0), "{syncs:?}");
    assert_eq!(metric(&page, "cpchain_side_withheld_total"), Some(0));

    // Malformed requests get clear 4xx answers.
    let n0 = &net.nodes[0];
    let a = n0.post_raw("/v1/sidechain/txs", "application/json", b"{\"tx\":", None);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (400, Some("malformed"))
    );
    let a = n0.post_raw(
        "/v1/sidechain/txs",
        "application/octet-stream",
        &[1, 2, 3],
        None,
    );
    assert_eq!(a.status, 400);
    let mut forged = event(group, &machines[0], 500, 1);
    forged.signature = event(group, &machines[0], 501, 1).signature;
    let a = post(n0, &forged);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (422, Some("invalid_signature"))
    );
    let a = post(n0, &event(Group::id_of("elsewhere"), &machines[0], 500, 1));
    assert_eq!(a.status, 422);
    assert_eq!(n0.get("/v1/sidechain/txs/nothex").status, 400);
    assert_eq!(
        n0.get(&format!("/v1/sidechain/txs/{}", Hash32([9; 32])))
            .status,
        404
    );
    assert_eq!(n0.get("/v1/sidechain/vertices/12").status, 400);
    assert_eq!(
        n0.get(&format!("/v1/sidechain/vertices/{}", Hash32([9; 32])))
            .status,
        404
    );
    assert_eq!(n0.get("/v1/sidechain/accounts/cpcnope").status, 400);

    // The CLI: a reading sent at node 2, followed until final.
    let key_file = net.dir.path().join("machine.key");
    std::fs::write(&key_file, hex::encode([5u8; 32])).unwrap();
    let api = format!("http://127.0.0.1:{}", net.nodes[1].port);
    let out = cpchain(&[
        "sidechain",
        "send",
        "--api",
        &api,
        "--key",
        key_file.to_str().unwrap(),
        "--wait",
        "final",
        "event",
        "--event-type",
        "2",
        "--data",
        "congestion at 12/7",
        "--x",
        "12",
        "--y",
        "7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash: Hash32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    wait_status(&net.nodes[3], &hash, CONFIRMED, 30);

    // A gateway that was down catches up with what the others confirmed meanwhile.
    net.nodes[3].kill9();
    let missed: Vec<SignedMachineTx> = (0..20)
        .map(|k| event(group, &machines[2], 1 + k, k as u32))
        .collect();
    assert_eq!(post(&net.nodes[1], &missed).status, 200);
    for n in &net.nodes[..3] {
        for t in &missed {
            wait_status(n, &t.hash(), CONFIRMED, 30);
        }
    }
    net.nodes[3].start();
    for t in &missed {
        wait_status(&net.nodes[3], &t.hash(), CONFIRMED, 60);
    }
    // And it takes part again: a transaction posted at it confirms everywhere.
    let back = event(group, &machines[3], 2, 99);
    assert_eq!(post(&net.nodes[3], &back).status, 202);
    for n in &net.nodes {
        wait_status(n, &back.hash(), CONFIRMED, 30);
    }
    wait_status(&net.nodes[0], &back.hash(), &["final"], 60);

    // The owner raises the reward per anchor and tops the pool up through the CLI; the
    // gateways read the change from the final block and anchor on at the new rate.
    let foundation = net.dir.path().join("keys/foundation.key");
    let st = net.nodes[0].get("/v1/sidechain/status").body;
    let mut args: Vec<String> = [
        "sidechain",
        "group",
        "--home",
        net.nodes[0].home.to_str().unwrap(),
        "--key",
        foundation.to_str().unwrap(),
        "--group",
        "e2e-district",
        "--reward-per-anchor",
        "2",
        "--fund",
        "50",
        "--wait",
    ]
    .map(String::from)
    .to_vec();
    let gateways = st["gateways"].as_array().unwrap();
    for g in gateways {
        args.extend(["--gateway".into(), g.as_str().unwrap().to_owned()]);
    }
    // Another set of gateways is refused: the running ones sign the group's history.
    let mut fewer = args.clone();
    fewer.truncate(fewer.len() - 2);
    let out = cpchain(&fewer.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("keeps the gateways it was declared with"),
        "{out:?}"
    );
    let out = cpchain(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{out:?}");
    let on_chain = net.nodes[0].get("/v1/sidechain/status").body["on_chain"].clone();
    assert_eq!(on_chain["reward_per_anchor"], 200_000_000, "{on_chain}");
    let topped = on_chain["reward_pool"].as_u64().unwrap();
    assert!(topped > pool + 40 * 100_000_000, "{on_chain}");

    // The whole network restarts: every node restores its side-chain snapshot and replays
    // the log after it, so the history is still final.
    // Traffic enough to pass the 1 MiB of log (every node logs every vertex).
    let busy = SecretKey::from_bytes([9; 32]);
    let traffic: Vec<SignedMachineTx> = (0..8_000)
        .map(|k| event(group, &busy, k, k as u32))
        .collect();
    for part in traffic.chunks(500) {
        assert_eq!(post(&net.nodes[0], &part).status, 200);
    }
    for n in &net.nodes {
        wait_status(n, &traffic[traffic.len() - 1].hash(), CONFIRMED, 60);
    }
    let snapshot = |n: &Node| n.home.join(format!("sidechain/{group}.snapshot"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !net.nodes.iter().all(|n| snapshot(n).is_file()) {
        assert!(
            Instant::now() < deadline,
            "no side-chain snapshot after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in &mut net.nodes {
        assert!(n.stop(), "unclean stop:\n{}", tail(&n.log()));
        // The logs before the snapshot's are gone: the first log (`<group>.log`) is one.
        assert!(!n.home.join(format!("sidechain/{group}.log")).exists());
    }
    net.start_all();
    for (i, n) in net.nodes.iter().enumerate() {
        if i == 2 {
            wait_status(n, &traffic[traffic.len() - 1].hash(), &["final"], 60);
        } else {
            wait_status(n, &hashes[0], &["final"], 60);
            wait_status(n, &back.hash(), &["final"], 60);
        }
        assert_logged(n, "side-chain state restored from its snapshot");
    }
    // Past its 1 MiB, node 2's store deleted the oldest anchors' history (the first
    // transactions among it), and it says so; the others keep it all.
    let metrics = |n: &Node| n.get_text("/metrics", None).1;
    let anchor_of = |h: &Hash32| status_of(&net.nodes[0], h)["anchor"].as_u64().unwrap();
    let first_vertex = status_of(&net.nodes[0], &hashes[0])["vertices"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let vertex_anchor = net.nodes[0]
        .get(&format!("/v1/sidechain/vertices/{first_vertex}"))
        .body["anchor"]
        .as_u64()
        .unwrap();
    let first_anchor = anchor_of(&hashes[0])
        .max(anchor_of(&back.hash()))
        .max(vertex_anchor);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = metrics(&net.nodes[2]);
        let kept_from = metric(&page, "cpchain_side_archive_kept_from_anchor").unwrap();
        if kept_from > first_anchor {
            assert!(metric(&page, "cpchain_side_archive_bytes").unwrap() > 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 2 keeps history from anchor {kept_from}, first anchor {first_anchor}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for path in [
        format!("/v1/sidechain/txs/{}", hashes[0]),
        format!("/v1/sidechain/txs/{}", back.hash()),
        format!("/v1/sidechain/vertices/{first_vertex}"),
    ] {
        let a = net.nodes[2].get(&path);
        assert_eq!(a.status, 404, "{a:?}");
        let why = a.body["message"].as_str().unwrap();
        assert!(why.contains("keeps final history from anchor"), "{why}");
    }
    for n in [&net.nodes[0], &net.nodes[1], &net.nodes[3]] {
        assert_eq!(
            metric(&metrics(n), "cpchain_side_archive_kept_from_anchor"),
            Some(0)
        );
    }
    // New transactions confirm and become final after the restart: the anchor the main
    // chain took carries its frontier, so no gateway needs the lost proposal.
    let after = event(group, &machines[0], 101, 5);
    assert_eq!(post(&net.nodes[2], &after).status, 202);
    for n in &net.nodes {
        wait_status(n, &after.hash(), &["final"], 60);
    }
    // A damaged snapshot stops nothing: the node says so, replays the logs after it, gets
    // the history it lacks from its peers, and takes part again.
    net.nodes[2].kill9();
    let damaged = snapshot(&net.nodes[2]);
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&damaged, bytes).unwrap();
    net.nodes[2].start();
    let again = event(group, &SecretKey::from_bytes([10; 32]), 0, 6);
    post_final(&net.nodes[2], &net.nodes, &again);
    assert_logged(&net.nodes[2], "cannot read the side-chain snapshot");
    // A gateway whose log cannot be written must send none of its vertices (a power loss
    // would make it forget them, and sign their sequence numbers again), so it stops
    // signing and says so: it sends clients to another gateway rather than take
    // transactions into vertices nobody would see. The others confirm without it, and
    // it follows them.
    let st = net.nodes[1].get("/v1/sidechain/status").body;
    let me = st["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .position(|g| *g == st["gateway"])
        .unwrap();
    net.nodes[1].kill9();
    // The last of its vertices the others hold, once what was in flight arrived.
    std::thread::sleep(Duration::from_secs(1));
    let tip_sequence = |n0: &Node| {
        let tip = n0.get("/v1/sidechain/status").body["tips"][me].clone();
        let v = n0.get(&format!("/v1/sidechain/vertices/{}", tip.as_str().unwrap()));
        v.body["sequence"].as_u64().unwrap()
    };
    let before = tip_sequence(&net.nodes[0]);
    let side_dir = net.nodes[1].home.join("sidechain");
    let aside = net.nodes[1].home.join("sidechain.aside");
    std::fs::rename(&side_dir, &aside).unwrap();
    std::fs::write(&side_dir, b"not a directory").unwrap();
    net.nodes[1].start();
    wait_halted(&net.nodes[1], "log cannot be written");
    assert_logged(&net.nodes[1], "this side-chain gateway stops signing");
    assert_eq!(halted(&net.nodes[0]), Some(0));
    let without = event(group, &SecretKey::from_bytes([11; 32]), 0, 7);
    let refused = post(&net.nodes[1], &without);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped signing") && m.contains("another gateway")),
        "{}",
        refused.body
    );
    assert_eq!(post(&net.nodes[0], &without).status, 202);
    for n in &net.nodes {
        wait_status(n, &without.hash(), CONFIRMED, 60);
    }
    assert_eq!(
        metric(&metrics(&net.nodes[0]), "cpchain_side_withheld_total"),
        Some(0)
    );
    // It signed nothing since, and nothing of it reached the others.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(tip_sequence(&net.nodes[0]), before);
    let own = net.nodes[1].get("/v1/sidechain/status").body["own_sequence"].as_u64();
    assert!(own.unwrap_or(0) <= before, "{own:?} > {before}");
    // With its log back it signs on from what the log holds.
    // A transaction posted at it reaches the others only in its vertices (transactions
    // are not gossiped), so `with` becoming final shows its vertices leave again.
    net.nodes[1].kill9();
    std::fs::remove_file(&side_dir).unwrap();
    std::fs::rename(&aside, &side_dir).unwrap();
    net.nodes[1].start();
    let with = event(group, &SecretKey::from_bytes([11; 32]), 1, 8);
    post_final(&net.nodes[1], &net.nodes, &with);
    // Through every restart no gateway signed a sequence number twice.
    for n in &net.nodes {
        let st = n.get("/v1/sidechain/status").body;
        assert_eq!(st["equivocators"], serde_json::json!([]), "{st}");
        assert!(
            st["resuming_to"].is_null() && st["own_sequence"].as_u64() > Some(0),
            "{st}"
        );
    }
    // A gateway gone for good holds every node's final history in memory until the
    // group's owner retires it; then pruning goes on without it, and the group with it.
    let gone = net.nodes[3].get("/v1/sidechain/status").body["gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    net.nodes[3].kill9();
    let awaiting = |n: &Node| metric(&metrics(n), "cpchain_side_awaiting_settling").unwrap();
    let load = SecretKey::from_bytes([12; 32]);
    let mut nonce = 0;
    let mut held = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while held < 200 {
        let part: Vec<SignedMachineTx> = (0..50)
            .map(|k| event(group, &load, nonce + k, k as u32))
            .collect();
        nonce += 50;
        assert_eq!(post(&net.nodes[0], &part).status, 200);
        std::thread::sleep(Duration::from_millis(300));
        held = awaiting(&net.nodes[0]);
        assert!(
            Instant::now() < deadline,
            "{held} vertices wait for settling after 60 s"
        );
    }
    let retire = |gateway: &str| {
        cpchain(&[
            "sidechain",
            "retire",
            "--home",
            net.nodes[0].home.to_str().unwrap(),
            "--key",
            foundation.to_str().unwrap(),
            "--group",
            "e2e-district",
            "--gateway",
            gateway,
            "--wait",
        ])
    };
    let out = retire(&gone);
    assert!(out.status.success(), "{out:?}");
    let after = event(group, &load, nonce, 1);
    assert_eq!(post(&net.nodes[2], &after).status, 202);
    for n in &net.nodes[..3] {
        wait_status(n, &after.hash(), &["final"], 60);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in &net.nodes[..3] {
        while awaiting(n) * 4 > held {
            assert!(
                Instant::now() < deadline,
                "{} vertices still wait for settling, {held} before the retirement\n{}",
                awaiting(n),
                n.get("/v1/sidechain/status").body
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let st = n.get("/v1/sidechain/status").body;
        assert_eq!(st["retired"], serde_json::json!([gone]), "{st}");
        assert_eq!(st["on_chain"]["retired"], serde_json::json!([gone]), "{st}");
    }
    // The main chain retires at most f = 1 of four.
    let out = retire(
        net.nodes[0].get("/v1/sidechain/status").body["gateway"]
            .as_str()
            .unwrap(),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("at most 1"),
        "{said}"
    );
    // A restart replays the retirement where its log has it (unless a snapshot since
    // holds it), and the node goes on pruning without the retired gateway.
    let snapshots = |n: &Node| n.log().matches("side-chain snapshot written").count();
    let written = snapshots(&net.nodes[0]);
    net.nodes[0].kill9();
    net.nodes[0].start();
    let again = event(group, &load, nonce + 1, 2);
    post_final(&net.nodes[0], &net.nodes[..3], &again);
    if snapshots(&net.nodes[0]) == written {
        assert_logged(&net.nodes[0], "retirements=1");
    }
    let st = net.nodes[0].get("/v1/sidechain/status").body;
    assert_eq!(st["retired"], serde_json::json!([gone]), "{st}");
    assert!(awaiting(&net.nodes[0]) * 4 <= held, "{st}");
    // The retired gateway's box comes back with its key: it reads the retirement, signs
    // nothing and sends clients elsewhere, and the group goes on without it.
    net.nodes[3].start();
    wait_halted(&net.nodes[3], "retired");
    let back = event(group, &load, nonce + 2, 3);
    assert_eq!(post(&net.nodes[3], &back).status, 503);
    post_final(&net.nodes[1], &net.nodes[..3], &back);
    for n in &net.nodes[..3] {
        let st = n.get("/v1/sidechain/status").body;
        assert!(st["halted"].is_null(), "{st}");
        assert!(metric(&metrics(n), "cpchain_side_unneeded_vertices_total").is_some());
    }
    // Anchors after the change paid from the topped-up pool, at most 2 CPC each.
    let on_chain = net.nodes[0].get("/v1/sidechain/status").body["on_chain"].clone();
    let left = on_chain["reward_pool"].as_u64().unwrap();
    assert!(left < topped, "no reward paid after the change: {on_chain}");
    for n in &mut net.nodes {
        assert!(n.stop(), "unclean stop:\n{}", tail(&n.log()));
    }
}
