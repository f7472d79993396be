//! A single node driven as a user drives it: through the HTTP API and the CLI.

use std::time::{Duration, Instant};

use cpc_tests::{Node, cpchain};
use cpc_types::{Address, SecretKey, SignedTransaction, Transaction, TxKind, UNITS_PER_CPC};

const FEE: u64 = UNITS_PER_CPC / 1000;

fn chain_id(node: &Node) -> u32 {
    node.get("/v1/status").body["chain_id"].as_u64().unwrap() as u32
}

fn transfer(
    chain_id: u32,
    from: &SecretKey,
    nonce: u64,
    to: Address,
    amount: u64,
) -> SignedTransaction {
    Transaction {
        chain_id,
        sender: from.public(),
        nonce,
        max_fee: FEE,
        kind: TxKind::Transfer { to, amount },
    }
    .sign(from)
}

#[test]
fn transactions_commit_are_read_back_and_survive_a_restart() {
    let mut node = Node::init();
    node.start();
    let cid = chain_id(&node);
    let from = node.key("validator");
    let to = SecretKey::from_bytes([42; 32]).address();
    let mut ids = Vec::new();
    for n in 0..20 {
        let a = node.submit(&transfer(cid, &from, n, to, UNITS_PER_CPC));
        assert_eq!(a.status, 202, "{a:?}");
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    let last = node.wait_committed(&ids[19]);
    assert_eq!(last["receipt"]["tx"], ids[19].as_str());
    let acct = node.get(&format!("/v1/accounts/{to}")).body;
    assert_eq!(acct["balance"], 20 * UNITS_PER_CPC);
    let sender = node.get(&format!("/v1/accounts/{}", from.address())).body;
    assert_eq!(sender["nonce"], 20);
    let height = last["height"].as_u64().unwrap();
    let block = node.get(&format!("/v1/blocks/{height}")).body;
    assert!(
        block["tx_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == ids[19].as_str())
    );
    assert_eq!(node.get("/v1/blocks/latest").status, 200);

    assert!(
        node.stop(),
        "SIGTERM stops the node cleanly:\n{}",
        node.log()
    );
    node.start();
    for id in &ids {
        assert_eq!(
            node.get(&format!("/v1/txs/{id}")).body["status"],
            "committed"
        );
    }
    assert_eq!(
        node.get(&format!("/v1/accounts/{to}")).body["balance"],
        20 * UNITS_PER_CPC
    );
    assert!(node.get("/v1/status").body["height"].as_u64().unwrap() >= height);
    assert!(node.stop(), "{}", node.log());

    let out = cpchain(&["check", "--home", node.home.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}

#[test]
fn the_cli_sends_a_transfer_and_reads_the_status() {
    let mut node = Node::init();
    node.start();
    let home = node.home.to_str().unwrap().to_owned();
    let api = format!("http://127.0.0.1:{}", node.port);
    let to = SecretKey::from_bytes([7; 32]).address().to_string();
    let out = cpchain(&[
        "tx", "transfer", "--home", &home, "--api", &api, "--to", &to, "--amount", "2.5", "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        node.get(&format!("/v1/accounts/{to}")).body["balance"],
        250_000_000
    );
    let out = cpchain(&["status", "--api", &api]);
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["producing"], true);
}

#[test]
fn bad_requests_get_their_status_and_the_node_keeps_serving() {
    let mut node = Node::init();
    node.start();
    let cid = chain_id(&node);
    let from = node.key("validator");
    let to = SecretKey::from_bytes([9; 32]).address();
    let expect = |a: cpc_tests::Answer, status: u16, code: &str| {
        assert_eq!(a.status, status, "{a:?}");
        assert_eq!(a.body["code"], code, "{a:?}");
        assert!(!a.body["message"].as_str().unwrap_or_default().is_empty());
    };

    expect(
        node.post_raw("/v1/txs", "application/json", b"{not json", None),
        400,
        "malformed",
    );
    expect(
        node.post_raw("/v1/txs", "application/octet-stream", &[1, 2, 3], None),
        400,
        "malformed",
    );
    // Just over the 4 MiB limit: the node answers 413 and closes without reading the rest, and
    // a client still writing megabytes may see the reset before the answer.
    expect(
        node.post_raw(
            "/v1/txs",
            "application/json",
            &vec![b' '; (4 << 20) + 4096],
            None,
        ),
        413,
        "too_large",
    );
    let mut forged = transfer(cid, &from, 0, to, 1);
    forged.signature.0[3] ^= 4;
    expect(node.submit(&forged), 422, "invalid_signature");
    let too_much = transfer(cid, &from, 0, to, 2_000_000_000 * UNITS_PER_CPC / 2);
    expect(node.submit(&too_much), 422, "invalid");
    let wrong_chain = transfer(cid + 1, &from, 0, to, 1);
    expect(node.submit(&wrong_chain), 422, "invalid");

    let good = transfer(cid, &from, 0, to, 1);
    let bin = cpc_types::Encode::encode(&good);
    let a = node.post_raw("/v1/txs", "application/octet-stream", &bin, None);
    assert_eq!(a.status, 202, "{a:?}");
    expect(node.submit(&good), 409, "duplicate");
    let id = a.body["id"].as_str().unwrap().to_owned();
    node.wait_committed(&id);
    expect(node.submit(&good), 409, "duplicate");
    let replay = transfer(cid, &from, 0, to, 2);
    expect(node.submit(&replay), 409, "nonce");
    let far = transfer(cid, &from, 1_000_000, to, 2);
    expect(node.submit(&far), 409, "nonce");

    expect(node.get("/v1/txs/xyz"), 400, "malformed");
    expect(
        node.get(&format!("/v1/txs/{}", "ab".repeat(32))),
        404,
        "not_found",
    );
    expect(node.get("/v1/blocks/abc"), 400, "malformed");
    expect(node.get("/v1/blocks/99999999"), 404, "not_found");
    expect(node.get("/v1/accounts/nope"), 400, "malformed");
    expect(node.get("/v2/anything"), 404, "not_found");
    expect(
        node.post_raw("/v1/status", "application/json", b"{}", None),
        405,
        "method_not_allowed",
    );

    // A transaction over the size limit, alone or in a batch.
    let huge = Transaction {
        chain_id: cid,
        sender: from.public(),
        nonce: 1,
        max_fee: FEE,
        kind: TxKind::RegisterValidator {
            deposit: 1,
            vrf_key: from.public(),
            endpoint: "x".repeat(70_000),
        },
    }
    .sign(&from);
    expect(node.submit(&huge), 413, "too_large");
    let a = node.post_raw(
        "/v1/txs/batch",
        "application/json",
        &serde_json::to_vec(&vec![huge]).unwrap(),
        None,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body[0]["error"]["code"], "too_large");

    // Batch submission: one result per transaction, errors in place.
    let batch = vec![transfer(cid, &from, 1, to, 1), forged];
    let a = node.post_raw(
        "/v1/txs/batch",
        "application/json",
        &serde_json::to_vec(&batch).unwrap(),
        None,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body[0]["id"].is_string());
    assert_eq!(a.body[1]["error"]["code"], "invalid_signature");

    let doc = node.get("/v1/openapi.json");
    assert_eq!(doc.status, 200);
    for path in [
        "/v1/status",
        "/v1/txs",
        "/v1/txs/{hash}",
        "/v1/blocks/{id}",
        "/v1/accounts/{address}",
        "/metrics",
    ] {
        assert!(
            doc.body["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let (status, metrics) = node.get_text("/metrics", None);
    assert_eq!(status, 200);
    for m in [
        "cpchain_build_info{",
        "cpchain_txs_refused_total ",
        "cpchain_accel_ops_total{backend=\"cpu\",op=\"ed25519\"}",
    ] {
        assert!(metrics.contains(m), "{m} missing:\n{metrics}");
    }
    assert!(
        node.get("/v1/accel").body["backends"][0]["available"]
            .as_bool()
            .unwrap()
    );
    assert_eq!(node.get("/v1/health").status, 200, "still serving");
}

#[test]
fn a_node_without_the_validator_key_follows_and_keeps_serving() {
    let mut node = Node::init();
    std::fs::remove_file(node.home.join("keys/validator.key")).unwrap();
    node.start();
    std::thread::sleep(Duration::from_millis(500));
    let status = node.get("/v1/status").body;
    assert_eq!(status["producing"], false);
    assert_eq!(status["height"], 0);
    assert_eq!(
        node.get("/v1/health").status,
        200,
        "still running:\n{}",
        node.log()
    );
    assert!(node.stop());
}

#[test]
fn beyond_loopback_the_api_requires_a_token() {
    let mut open = Node::init().listen_on("0.0.0.0");
    let status = open.spawn().wait().unwrap();
    assert!(!status.success());
    assert!(open.log().contains("api.token"), "{}", open.log());

    let mut node = Node::init()
        .listen_on("0.0.0.0")
        .with_flags(&["--api.token", "s3cret"]);
    node.start();
    let cid = chain_id(&node);
    let tx = transfer(
        cid,
        &node.key("validator"),
        0,
        SecretKey::from_bytes([1; 32]).address(),
        1,
    );
    let body = serde_json::to_vec(&tx).unwrap();
    let a = node.post_raw("/v1/txs", "application/json", &body, None);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        node.post_raw("/v1/txs", "application/json", &body, Some("wrong"))
            .status,
        401
    );
    assert_eq!(node.get_text("/metrics", None).0, 401);
    assert_eq!(node.get_text("/metrics", Some("s3cret")).0, 200);
    assert_eq!(node.get("/v1/status").status, 200, "reads stay public");
    assert_eq!(
        node.post_raw("/v1/txs", "application/json", &body, Some("s3cret"))
            .status,
        202
    );
}

#[test]
fn kill_9_under_load_loses_no_committed_transaction() {
    let mut node = Node::init();
    node.start();
    let cid = chain_id(&node);
    let from = node.key("validator");
    let to = SecretKey::from_bytes([11; 32]).address();
    let mut nonce = 0u64;
    let mut committed: Vec<(String, u64)> = Vec::new();
    let mut seen_height = node.get("/v1/status").body["height"].as_u64().unwrap();
    let start = Instant::now();
    // Keep batches flowing while following the blocks the API reports committed.
    while start.elapsed() < Duration::from_millis(2500) {
        let batch: Vec<SignedTransaction> = (0..200)
            .map(|i| transfer(cid, &from, nonce + i, to, 1))
            .collect();
        nonce += 200;
        let body = cpc_types::Encode::encode(&batch);
        let a = node.post_raw("/v1/txs/batch", "application/octet-stream", &body, None);
        assert_eq!(a.status, 200, "{a:?}");
        let head = node.get("/v1/status").body["height"].as_u64().unwrap();
        for h in seen_height + 1..=head {
            let b = node.get(&format!("/v1/blocks/{h}")).body;
            for id in b["tx_ids"].as_array().unwrap() {
                committed.push((id.as_str().unwrap().to_owned(), h));
            }
        }
        seen_height = head;
    }
    node.kill9();
    assert!(
        committed.len() > 200,
        "the load committed too little to test: {}",
        committed.len()
    );

    node.start();
    for (id, height) in &committed {
        let st = node.get(&format!("/v1/txs/{id}")).body;
        assert_eq!(
            st["status"], "committed",
            "{id} was reported committed before the crash"
        );
        assert_eq!(st["height"], *height);
    }
    // The node goes on from where it was.
    let a = node.submit(&transfer(
        cid,
        &from,
        node.get(&format!("/v1/accounts/{}", from.address())).body["next_nonce"]
            .as_u64()
            .unwrap(),
        to,
        1,
    ));
    assert_eq!(a.status, 202, "{a:?}");
    node.wait_committed(a.body["id"].as_str().unwrap());
    assert!(node.stop(), "{}", node.log());
    let out = cpchain(&["check", "--home", node.home.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "state differs from a replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
