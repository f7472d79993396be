//! The encrypted data layer on a four-node network of real processes, driven through the
//! `cpchain data` commands as a user would: put → get by the owner → a second put takes
//! the next intervals → grant → get by the grantee → revoke → the grantee is refused with
//! a clear error; a lost node's chunks are re-created by the repair task, and with n − k
//! nodes down the data is still read back.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cpc_tests::{Testnet, binary};

/// Runs `cpchain data …` against the node with API port `port`.
fn data(port: u16, key: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let api = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(binary());
    cmd.arg("data")
        .arg(args[0])
        .args(["--api", &api, "--key"])
        .arg(key)
        .args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cpchain runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("cpchain finishes")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded but must not");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const STREAM_FLAGS: &[&str] = &[
    "-k",
    "2",
    "-n",
    "4",
    "--blocks-per-interval",
    "2",
    "--intervals-per-upload",
    "4",
    "--max-block-bytes",
    "65536",
];

#[test]
fn put_get_grant_revoke_and_survive_node_loss() {
    let mut net = Testnet::new(4);
    net.nodes = std::mem::take(&mut net.nodes)
        .into_iter()
        .map(|n| n.with_flags(&["--data.repair-interval-ms", "1000"]))
        .collect();
    net.start_all();
    for n in &net.nodes {
        n.wait_height(2, 60);
    }
    // Every node sees the other three, so a block's chunks land on four distinct nodes.
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &net.nodes {
        while n.get("/v1/peers").body["peers"].as_array().map(Vec::len) != Some(3) {
            assert!(Instant::now() < deadline, "peers did not connect");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    api_checks(&net.nodes[0], &net.nodes[1]);
    let ports: Vec<u16> = net.nodes.iter().map(|n| n.port).collect();
    let owner = net.dir.path().join("keys/user-1.key");
    let grantee_key = net.dir.path().join("keys/user-2.key");
    let grantee = net.user(2).address().to_string();
    let work = tempfile::tempdir().unwrap();

    // A file of five blocks, stored through node 1 and read back by the owner.
    let file = work.path().join("readings.bin");
    let content: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &content).unwrap();
    let mut put = vec!["put", "--stream", "greenhouse"];
    put.extend_from_slice(STREAM_FLAGS);
    put.push(file.to_str().unwrap());
    let said = ok(&data(ports[0], &owner, &put, None), "put");
    assert!(said.contains("intervals 0..3"), "{said}");
    let out1 = work.path().join("owner.bin");
    let get = |port, key: &Path, interval: &str, out: &Path| {
        data(
            port,
            key,
            &[
                "get",
                "--stream",
                "greenhouse",
                "--interval",
                interval,
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        )
    };
    ok(&get(ports[1], &owner, "0..3", &out1), "owner get");
    assert_eq!(std::fs::read(&out1).unwrap(), content);

    // A file over three upload windows: three records, each submitted while the next
    // window is stored, all committed when put returns.
    let long_file = work.path().join("long.bin");
    let long = content.repeat(4);
    std::fs::write(&long_file, &long).unwrap();
    let mut put_long = vec!["put", "--stream", "orchard"];
    put_long.extend_from_slice(STREAM_FLAGS);
    put_long.push(long_file.to_str().unwrap());
    let said = ok(
        &data(ports[0], &owner, &put_long, None),
        "put over three windows",
    );
    assert!(said.contains("intervals 0..11 (3 records)"), "{said}");
    let long_out = work.path().join("long.out");
    let got = data(
        ports[3],
        &owner,
        &[
            "get",
            "--stream",
            "orchard",
            "--interval",
            "0..11",
            "--out",
            long_out.to_str().unwrap(),
        ],
        None,
    );
    ok(&got, "owner get over three windows");
    assert_eq!(std::fs::read(&long_out).unwrap(), long);

    // Records on stdin: the next upload window of the stream.
    let lines = b"t=21.5\nt=21.7\nt=22.0\n";
    let mut put2 = vec!["put", "--stream", "greenhouse"];
    put2.extend_from_slice(STREAM_FLAGS);
    let said = ok(
        &data(ports[2], &owner, &put2, Some(lines)),
        "put from stdin",
    );
    assert!(said.contains("intervals 4..7"), "{said}");
    let out2 = work.path().join("lines.txt");
    ok(
        &get(ports[3], &owner, "4..7", &out2),
        "owner get of the records",
    );
    assert_eq!(std::fs::read(&out2).unwrap(), lines);

    // Nothing to read where nothing was put; a non-owner cannot read without a grant.
    let none = fails(
        &get(ports[0], &owner, "40..41", &out2),
        "get of empty intervals",
    );
    assert!(none.contains("holds no data"), "{none}");
    let denied = fails(
        &get(ports[0], &grantee_key, "0", &out2),
        "get without a grant",
    );
    assert!(denied.contains("no grant on chain"), "{denied}");

    // Grant intervals 0..3 to user 2, who announced its receiving key.
    ok(
        &data(ports[1], &grantee_key, &["announce"], None),
        "announce",
    );
    let granted = ok(
        &data(
            ports[0],
            &owner,
            &[
                "grant",
                "--stream",
                "greenhouse",
                "--to",
                &grantee,
                "--intervals",
                "0..3",
            ],
            None,
        ),
        "grant",
    );
    assert!(granted.contains("granted"), "{granted}");
    let out3 = work.path().join("grantee.bin");
    ok(&get(ports[2], &grantee_key, "0..3", &out3), "grantee get");
    assert_eq!(std::fs::read(&out3).unwrap(), content);
    let outside = fails(
        &get(ports[2], &grantee_key, "4", &out2),
        "get beyond the grant",
    );
    assert!(outside.contains("covers intervals 0..=3"), "{outside}");

    // Revoked: the proxies refuse, the grantee is told why.
    ok(
        &data(
            ports[0],
            &owner,
            &["revoke", "--stream", "greenhouse", "--to", &grantee],
            None,
        ),
        "revoke",
    );
    let revoked = fails(
        &get(ports[3], &grantee_key, "0..3", &out3),
        "get after revoke",
    );
    assert!(
        revoked.contains("access denied") && revoked.contains("never granted or revoked"),
        "{revoked}"
    );

    // A public stream: anyone reads it without a grant, with the keys from the record.
    let mut put3 = vec!["put", "--stream", "traffic-public", "--public"];
    put3.extend_from_slice(STREAM_FLAGS);
    put3.push(file.to_str().unwrap());
    let said = ok(&data(ports[1], &owner, &put3, None), "public put");
    assert!(said.contains("intervals 0..3"), "{said}");
    let out4 = work.path().join("public.bin");
    ok(
        &data(
            ports[2],
            &grantee_key,
            &[
                "get",
                "--stream",
                "traffic-public",
                "--interval",
                "0..3",
                "--out",
                out4.to_str().unwrap(),
            ],
            None,
        ),
        "get of public data without a grant",
    );
    assert_eq!(std::fs::read(&out4).unwrap(), content);

    // One node lost: the repair task re-creates its chunks on the others.
    net.nodes[3].kill9();
    let repaired = || -> u64 {
        net.nodes[..3]
            .iter()
            .map(|n| {
                n.get("/v1/data/status").body["chunks_repaired"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while repaired() == 0 {
        assert!(Instant::now() < deadline, "no chunk was repaired");
        std::thread::sleep(Duration::from_millis(250));
    }
    // n − k = 2 nodes down: the data is still read back in full.
    net.nodes[2].kill9();
    let out4 = work.path().join("after-loss.bin");
    ok(
        &get(ports[0], &owner, "0..3", &out4),
        "get with two nodes down",
    );
    assert_eq!(std::fs::read(&out4).unwrap(), content);
    ok(
        &get(ports[1], &owner, "4..7", &out2),
        "records with two nodes down",
    );
    assert_eq!(std::fs::read(&out2).unwrap(), lines);
}

/// The `/v1/data` endpoints directly: a chunk larger than the ordinary body limit placed
/// through one node and fetched through another, and clear errors for bad input.
fn api_checks(a: &cpc_tests::Node, b: &cpc_tests::Node) {
    let chunk: Vec<u8> = (0..5u32 << 20).map(|i| (i % 95 + 32) as u8).collect();
    let frame = |id: &[u8; 32]| {
        let mut body = id.to_vec();
        body.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        body.extend_from_slice(&chunk);
        body
    };
    // A chunk that does not hash to the id it came with is refused, and says so.
    let r = a.post_raw(
        "/v1/data/chunks",
        "application/octet-stream",
        &frame(&[7; 32]),
        None,
    );
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not hash to its id")),
        "{:?}",
        r.body
    );
    let body = frame(&cpc_types::sha256(&[&chunk]).0);
    let r = a.post_raw(
        "/v1/data/chunks?replicas=2",
        "application/octet-stream",
        &body,
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body[0]["stored_on"].as_array().unwrap().len(), 2);
    let (status, text) = b.get_text(&format!("/v1/data/chunks/{id}"), None);
    assert_eq!(status, 200);
    assert!(
        text.as_bytes() == chunk.as_slice(),
        "the chunk came back altered"
    );
    for (path, want) in [
        ("/v1/data/chunks/nothex", 400),
        (&format!("/v1/data/chunks/{}", "00".repeat(32)) as &str, 404),
        (&format!("/v1/data/streams/{}", "11".repeat(32)), 404),
        (&format!("/v1/data/keys/cpc{}", "22".repeat(20)), 404),
    ] {
        let r = b.get(path);
        assert_eq!(r.status, want, "{path}: {:?}", r.body);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for (path, body) in [
        ("/v1/data/chunks", &[0u8, 0, 0, 9, 1][..]),
        ("/v1/data/blocks", b"{}"),
        ("/v1/data/kfrags", b"[]"),
        ("/v1/data/cfrags", b"{\"stream\": 1}"),
        ("/v1/data/keys", b"null"),
    ] {
        let r = a.post_raw(path, "application/octet-stream", body, None);
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
    }
    let doc = a.get("/v1/openapi.json").body;
    assert!(doc["paths"]["/v1/data/chunks"].is_object());
    assert_eq!(a.get("/v1/data/status").body["chunks_placed"], 1);
}
