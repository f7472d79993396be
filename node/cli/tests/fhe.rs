//! `cpchain fhe` driven the way a key holder and participants drive it: keygen, encrypt
//! and decrypt through the binary. The appliance's part — a node's job — is computed
//! in-process by the matcher a node runs, and saved the way `cpchain fhe match` saves it.

use std::path::Path;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cpc_accel::FheMatcher;
use cpc_accel::fhe::{FheConfig, TfheMatcher};
use cpc_accel::matching::{FheJob, FheOutput, FheTask, KeyId};
use serde_json::json;

fn cpchain() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpchain"))
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of_failure(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn encrypt(dir: &Path, args: &[&str], out: &str) -> Vec<u8> {
    let printed = stdout_of(
        cpchain()
            .args(["fhe", "encrypt"])
            .args(args)
            .arg("--public-key")
            .arg(dir.join("keys/public.key"))
            .arg("--out")
            .arg(dir.join(out)),
    );
    assert!(
        printed.starts_with(&dir.join(out).display().to_string()),
        "{printed}"
    );
    std::fs::read(dir.join(out)).unwrap()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_key_holder_and_participants_match_and_search() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keys = dir.join("keys");
    let printed = stdout_of(cpchain().args(["fhe", "keygen", "--out"]).arg(&keys));
    assert!(
        printed.contains("client.key") && printed.contains("server.key"),
        "{printed}"
    );
    let meta: serde_json::Value = serde_json::from_slice(&read(&keys.join("key.json"))).unwrap();
    let key_id: KeyId = meta["key_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(key_id, KeyId::of(&read(&keys.join("server.key"))));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys.join("client.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "client.key is readable by others: {mode:o}"
        );
    }
    // A second key set would orphan every result made under the first.
    let refused = stderr_of_failure(cpchain().args(["fhe", "keygen", "--out"]).arg(&keys));
    assert!(refused.contains("--force"), "{refused}");

    // Riders and drivers encrypt; off-grid positions are refused before encryption.
    let rider = encrypt(dir, &["rider", "--x", "20", "--y", "30"], "rider.ct");
    let drivers = [
        encrypt(dir, &["driver", "--x", "25", "--y", "30"], "d0.ct"),
        encrypt(
            dir,
            &["driver", "--x", "20", "--y", "31", "--unavailable"],
            "d1.ct",
        ),
        encrypt(dir, &["driver", "--x", "18", "--y", "29"], "d2.ct"),
    ];
    let off_grid = stderr_of_failure(
        cpchain()
            .args(["fhe", "encrypt", "rider", "--x", "128", "--y", "0", "--out"])
            .arg(dir.join("bad.ct"))
            .arg("--public-key")
            .arg(keys.join("public.key")),
    );
    assert!(off_grid.contains("0..=127"), "{off_grid}");
    let query = encrypt(dir, &["tag", "--keyword", "traffic"], "query.ct");
    let records = [
        encrypt(dir, &["tag", "--keyword", "parking"], "r0.ct"),
        encrypt(dir, &["tag", "--keyword", "traffic"], "r1.ct"),
    ];

    // The appliance computes on what it cannot read.
    let matcher = TfheMatcher::new(FheConfig::default()).unwrap();
    matcher.load_key(&read(&keys.join("server.key"))).unwrap();
    let run = |task| matcher.run(&FheJob { key: key_id, task }, &|_| {}).unwrap();
    let FheOutput::Nearest { index, distance } = run(FheTask::Nearest {
        rider,
        drivers: drivers.to_vec(),
    }) else {
        panic!("a nearest job answered something else")
    };
    let FheOutput::Search { matches } = run(FheTask::Search {
        query,
        records: records.to_vec(),
    }) else {
        panic!("a search answered something else")
    };
    // Saved as `cpchain fhe match` and `search` save a finished job.
    let saved_match = dir.join("match.json");
    std::fs::write(
        &saved_match,
        json!({
            "status": "done",
            "result": {"driver": B64.encode(index), "distance": B64.encode(distance)},
            "drivers": ["d0.ct", "d1.ct", "d2.ct"],
        })
        .to_string(),
    )
    .unwrap();
    let saved_search = dir.join("search.json");
    std::fs::write(
        &saved_search,
        json!({
            "status": "done",
            "result": {"matches": matches.iter().map(|m| B64.encode(m)).collect::<Vec<_>>()},
            "records": ["r0.ct", "r1.ct"],
        })
        .to_string(),
    )
    .unwrap();

    // Only the key holder reads the answers. Driver 1 is nearer but unavailable.
    let decrypt = |file: &Path, json: bool| {
        let mut cmd = cpchain();
        cmd.args(["fhe", "decrypt", "--client-key"])
            .arg(keys.join("client.key"))
            .arg(file);
        if json {
            cmd.arg("--json");
        }
        stdout_of(&mut cmd)
    };
    assert_eq!(
        decrypt(&saved_match, false),
        "nearest available driver: 2 (d2.ct), at distance 3\n"
    );
    let v: serde_json::Value = serde_json::from_str(&decrypt(&saved_match, true)).unwrap();
    assert_eq!(v, json!({"driver": 2, "distance": 3}));
    assert_eq!(
        decrypt(&saved_search, false),
        "1 of 2 records match:\n  record 1 (r1.ct)\n"
    );

    // A job that is not done, or a file that is no result, is refused by name.
    let running = dir.join("running.json");
    std::fs::write(&running, json!({"status": "running"}).to_string()).unwrap();
    let err = stderr_of_failure(
        cpchain()
            .args(["fhe", "decrypt", "--client-key"])
            .arg(keys.join("client.key"))
            .arg(&running),
    );
    assert!(err.contains("the job is running, not done"), "{err}");
    let err = stderr_of_failure(
        cpchain()
            .args(["fhe", "decrypt", "--client-key"])
            .arg(keys.join("public.key"))
            .arg(&saved_match),
    );
    assert!(err.contains("is not a client key"), "{err}");
}
