//! The `cpchain` binary driven the way a user drives it.

use assert_cmd::Command;
use ed25519_consensus::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

fn cpchain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cpchain"));
    c.env_remove("CPCHAIN_ACCEL_BACKEND")
        .env_remove("CPCHAIN_ACCEL_THREADS");
    c
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

#[test]
fn accel_list_shows_the_cpu_backend_as_json() {
    let out = stdout_of(cpchain().args(["accel", "list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cpu = &v.as_array().unwrap()[0];
    assert_eq!(cpu["kind"], "cpu");
    assert_eq!(cpu["available"], true);
    assert!(
        cpu["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "ed25519-zip215")
    );

    let table = stdout_of(cpchain().args(["accel", "list"]));
    assert!(
        table.contains("cpu") && table.contains("available"),
        "{table}"
    );
}

#[test]
fn accel_hash_files_stdin_and_merkle() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, b"abc").unwrap();
    std::fs::write(&b, vec![7u8; 100_000]).unwrap();

    let out = stdout_of(
        cpchain()
            .args(["accel", "hash", "--backend", "cpu"])
            .arg(&a)
            .arg(&b),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  ")
    );
    assert!(lines[1].starts_with(&hex::encode(Sha256::digest(vec![7u8; 100_000]))));

    let out = stdout_of(cpchain().args(["accel", "hash", "-"]).write_stdin("abc"));
    assert!(out.starts_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));

    let leaves = [
        Sha256::digest(b"abc").into(),
        Sha256::digest(vec![7u8; 100_000]).into(),
    ];
    let want = cpc_accel::merkle::reference_root(&leaves);
    let out = stdout_of(
        cpchain()
            .args(["accel", "hash", "--merkle"])
            .arg(&a)
            .arg(&b),
    );
    assert_eq!(out.split_whitespace().next().unwrap(), hex::encode(want));
}

#[test]
fn accel_hash_reports_missing_files_and_unknown_backends() {
    let out = cpchain()
        .args(["accel", "hash", "/nonexistent/file"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/file"));

    let out = cpchain()
        .args(["accel", "hash", "--backend", "tpu", "-"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected auto, cpu, wgpu, cuda or fpga")
    );
}

fn line(pk: &[u8], msg: &[u8], sig: &[u8]) -> String {
    format!(
        r#"{{"pk":"{}","msg":"{}","sig":"{}"}}"#,
        hex::encode(pk),
        hex::encode(msg),
        hex::encode(sig)
    )
}

#[test]
fn accel_verify_gives_one_verdict_per_line_and_survives_malformed_lines() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let sk = SigningKey::new(&mut rng);
    let pk = sk.verification_key().to_bytes();
    let msg = b"roadside unit 17: speed 52 km/h";
    let sig = sk.sign(msg).to_bytes();
    let mut bad_sig = sig;
    bad_sig[5] ^= 0x10;

    let input = [
        line(&pk, msg, &sig),
        "{not json".to_owned(),
        line(&pk, msg, &bad_sig),
        r#"{"pk":"zz","msg":"","sig":"00"}"#.to_owned(),
        line(&pk[..31], msg, &sig),
        line(&pk, msg, &sig[..63]),
        r#"{"pk":"00","msg":"","sig":"00","extra":1}"#.to_owned(),
        String::new(),
        line(&pk, b"another message", &sig),
        line(&pk, msg, &sig),
    ]
    .join("\n");

    for batch in ["1", "3", "16384"] {
        let out = cpchain()
            .args(["accel", "verify", "--backend", "cpu", "--batch", batch])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert!(out.status.success());
        let verdicts: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(verdicts.len(), 10, "batch {batch}");
        assert_eq!(verdicts[0]["valid"], true);
        assert!(
            verdicts[1]["error"]
                .as_str()
                .unwrap()
                .contains("not a verify object")
        );
        assert_eq!(verdicts[2]["valid"], false);
        assert!(
            verdicts[3]["error"]
                .as_str()
                .unwrap()
                .contains("pk is not hex")
        );
        assert!(
            verdicts[4]["error"]
                .as_str()
                .unwrap()
                .contains("pk must be 32 bytes, got 31")
        );
        assert!(
            verdicts[5]["error"]
                .as_str()
                .unwrap()
                .contains("sig must be 64 bytes, got 63")
        );
        assert!(
            verdicts[6]["error"]
                .as_str()
                .unwrap()
                .contains("unknown field")
        );
        assert!(verdicts[7]["error"].is_string());
        assert_eq!(verdicts[8]["valid"], false);
        assert_eq!(verdicts[9]["valid"], true);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("2 valid, 2 invalid, 6 malformed"),
            "{stderr}"
        );
    }
}

#[test]
fn accel_verify_answers_non_utf8_lines_with_an_error_and_goes_on() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let sk = SigningKey::new(&mut rng);
    let sig = sk.sign(b"m").to_bytes();
    let good = line(&sk.verification_key().to_bytes(), b"m", &sig);
    let mut input = good.clone().into_bytes();
    input.extend_from_slice(b"\n\xff\xfe{}\n");
    input.extend_from_slice(good.as_bytes());
    input.push(b'\n');
    let out = cpchain()
        .args(["accel", "verify"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            r#"{"valid":true}"#,
            r#"{"error":"line is not utf-8"}"#,
            r#"{"valid":true}"#
        ]
    );
}

#[test]
fn accel_hash_reads_standard_input_once() {
    let out = cpchain()
        .args(["accel", "hash", "-", "-"])
        .write_stdin("x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only once"));
}

#[test]
fn accel_verify_agrees_with_the_known_answers_from_a_file() {
    let vectors = cpc_accel::vectors::ed25519_vectors();
    let input: String = vectors
        .iter()
        .map(|v| line(&v.public_key, &v.message, &v.signature) + "\n")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.jsonl");
    std::fs::write(&path, input).unwrap();
    let out = stdout_of(cpchain().args(["accel", "verify", "--input"]).arg(&path));
    let got: Vec<bool> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["valid"]
                .as_bool()
                .unwrap()
        })
        .collect();
    let want: Vec<bool> = vectors.iter().map(|v| v.valid).collect();
    assert_eq!(got, want);
}

#[test]
fn an_explicit_backend_that_is_not_here_is_a_clear_error() {
    let out = cpchain()
        .args(["accel", "verify", "--backend", "fpga"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("backend fpga is unavailable here: no fpga transport configured"),
        "{stderr}"
    );

    if backend_json("cuda")["available"] == true {
        return; // a machine with a CUDA device
    }
    let out = cpchain()
        .args(["accel", "verify", "--backend", "cuda"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("backend cuda is unavailable here") && stderr.contains("accel list"),
        "{stderr}"
    );
}

/// The entry of one backend in `cpchain accel list --json`.
fn backend_json(name: &str) -> serde_json::Value {
    let out = stdout_of(cpchain().args(["accel", "list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {out}"))
        .clone()
}

/// Whether the wgpu backend must be present: it runs on Mesa's lavapipe without a GPU
/// (deploy/setup.sh installs it); `CPCHAIN_TEST_NO_WGPU=1` skips the GPU checks.
fn wgpu_expected() -> bool {
    std::env::var_os("CPCHAIN_TEST_NO_WGPU").is_none()
}

#[test]
fn accel_list_shows_the_gpu_backends() {
    let cuda = backend_json("cuda");
    assert_eq!(cuda["kind"], "cuda");
    if cuda["available"] == false {
        let reason = cuda["unavailable_reason"].as_str().unwrap();
        assert!(!reason.is_empty());
    }
    let wgpu = backend_json("wgpu");
    if !wgpu_expected() {
        return;
    }
    assert_eq!(
        wgpu["available"], true,
        "no wgpu adapter: {}; install mesa-vulkan-drivers (deploy/setup.sh) or set \
         CPCHAIN_TEST_NO_WGPU=1",
        wgpu["unavailable_reason"]
    );
    let device = wgpu["device"].as_str().unwrap().to_owned();
    let table = stdout_of(cpchain().args(["accel", "list"]));
    assert!(table.contains(&device), "{table}");
    assert!(table.contains("auto thresholds: none"), "{table}");
    if cuda["available"] == false {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("cuda") && l.contains("unavailable")),
            "{table}"
        );
    }

    // The adapter by name, from the environment and from a node's config; a name that
    // matches nothing leaves the backend unavailable and says why.
    let name = device.split_whitespace().next().unwrap().to_owned();
    let named = stdout_of(
        cpchain()
            .env("WGPU_ADAPTER_NAME", &name)
            .args(["accel", "list", "--json"]),
    );
    assert!(named.contains(&device), "{named}");
    let missing = stdout_of(
        cpchain()
            .env("WGPU_ADAPTER_NAME", "no such adapter 42")
            .args(["accel", "list", "--json"]),
    );
    assert!(missing.contains("no adapter name contains"), "{missing}");

    let home = tempfile::tempdir().unwrap();
    stdout_of(cpchain().args(["init", "--home"]).arg(home.path()));
    let config = home.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("adapter = \"\"", "adapter = \"no such adapter 43\""),
    )
    .unwrap();
    let from_config = stdout_of(cpchain().args(["accel", "list", "--home"]).arg(home.path()));
    assert!(
        from_config.contains("no adapter name contains \"no such adapter 43\""),
        "{from_config}"
    );
    // A measured threshold for this device shows in the list.
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        home.path().join("accel-thresholds.toml"),
        format!(
            "[[thresholds]]\nbackend = \"wgpu\"\nop = \"ed25519\"\nmin_batch = 512\ndevice = {}\n",
            serde_json::Value::from(device)
        ),
    )
    .unwrap();
    let with_threshold = stdout_of(cpchain().args(["accel", "list", "--home"]).arg(home.path()));
    assert!(
        with_threshold.contains("auto thresholds: ed25519 from 512"),
        "{with_threshold}"
    );
}

#[test]
fn accel_selftest_passes() {
    let out = stdout_of(cpchain().args(["accel", "selftest"]));
    assert!(out.contains("cpu   ok:"), "{out}");
    let json = stdout_of(cpchain().args(["accel", "selftest", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["failures"].as_array().unwrap().len(), 0);
}

#[test]
fn bench_writes_a_table_json_and_an_svg_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout_of(
        cpchain()
            .args([
                "bench",
                "--quick",
                "--sizes",
                "1,8",
                "--budget-ms",
                "5",
                "--backends",
                "cpu",
                "--out",
            ])
            .arg(dir.path()),
    );
    for op in [
        "sha256-64b",
        "sha256-16kib",
        "merkle",
        "ed25519",
        "baseline",
    ] {
        assert!(out.contains(op), "{op} missing from\n{out}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4 * 2, "4 workloads x 2 sizes on the cpu");
    for r in rows {
        assert!(r["items_per_sec"].as_f64().unwrap() > 0.0);
        assert!(r["speedup"].as_f64().unwrap() > 0.0);
        assert!(r["p99_us"].as_f64().unwrap() >= r["p50_us"].as_f64().unwrap());
    }
    assert_eq!(
        report["baselines"].as_array().unwrap().len(),
        4 * 2,
        "a baseline per workload and size"
    );
    let svg = std::fs::read_to_string(dir.path().join("report.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("ed25519"),
        "not an svg chart"
    );
}

#[test]
fn bench_rejects_unknown_operations() {
    let out = cpchain().args(["bench", "--ops", "md5"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown operation \"md5\""));
}

#[test]
fn bench_measures_the_gpu_backends_and_stores_their_thresholds() {
    if !wgpu_expected() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    stdout_of(cpchain().args(["init", "--home"]).arg(home.path()));
    let out_dir = tempfile::tempdir().unwrap();
    let out = stdout_of(
        cpchain()
            .args([
                "bench",
                "--quick",
                "--ops",
                "sha256-64b,merkle,ed25519",
                "--sizes",
                "1,64",
                "--budget-ms",
                "5",
                "--backends",
                "cpu,wgpu,cuda",
                "--home",
            ])
            .arg(home.path())
            .arg("--out")
            .arg(out_dir.path()),
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("ed25519") && l.contains(" wgpu ")),
        "no wgpu row in\n{out}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("report.json")).unwrap())
            .unwrap();
    let rows = report["rows"].as_array().unwrap();
    let wgpu_rows: Vec<_> = rows.iter().filter(|r| r["backend"] == "wgpu").collect();
    assert_eq!(
        wgpu_rows.len(),
        3 * 2,
        "3 workloads x 2 sizes on wgpu:\n{out}"
    );
    for r in &wgpu_rows {
        assert!(r["error"].is_null(), "{r}");
        assert!(r["items_per_sec"].as_f64().unwrap() > 0.0);
    }
    let cuda_available = backend_json("cuda")["available"] == true;
    if !cuda_available {
        assert!(rows.iter().all(|r| r["backend"] != "cuda"));
        assert!(out.contains("skipped cuda: "), "{out}");
    }
    // One crossover per device and operation, stored in the node's home for `start`.
    let crossovers = report["crossovers"].as_array().unwrap();
    assert!(
        crossovers.iter().filter(|c| c["backend"] == "wgpu").count() == 3,
        "{crossovers:?}"
    );
    assert!(out.contains("auto thresholds (device faster than the cpu backend from):"));
    let stored = std::fs::read_to_string(home.path().join("accel-thresholds.toml")).unwrap();
    assert!(stored.starts_with("# Batch sizes"), "{stored}");
    assert!(out_dir.path().join("thresholds.toml").exists());
    // `accel list --home` reads what the bench stored.
    let list = stdout_of(cpchain().args(["accel", "list", "--home"]).arg(home.path()));
    assert!(list.contains("auto thresholds:"), "{list}");
}

#[test]
fn accel_list_shows_the_fpga_backend_and_its_transport() {
    let out = stdout_of(cpchain().args(["accel", "list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fpga = v
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["kind"] == "fpga")
        .expect("the fpga backend is listed");
    assert_eq!(fpga["available"], false);
    assert!(
        fpga["unavailable_reason"]
            .as_str()
            .unwrap()
            .contains("transport"),
        "{fpga}"
    );

    let table = stdout_of(cpchain().args(["accel", "list", "--fpga", "sim"]));
    let row = table
        .lines()
        .find(|l| l.starts_with("fpga"))
        .unwrap_or_else(|| panic!("no fpga row in\n{table}"));
    assert!(
        row.contains("available") && !row.contains("unavailable"),
        "{table}"
    );
    assert!(table.contains("transport=sim"), "{table}");
}

#[test]
fn accel_hash_runs_on_the_simulated_fpga() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, vec![3u8; 300]).unwrap();
    let out = stdout_of(
        cpchain()
            .args(["accel", "hash", "--backend", "fpga", "--fpga", "sim"])
            .arg(&a),
    );
    assert!(
        out.starts_with(&hex::encode(Sha256::digest(vec![3u8; 300]))),
        "{out}"
    );
    let out = stdout_of(
        cpchain()
            .args([
                "accel",
                "hash",
                "--merkle",
                "--backend",
                "fpga",
                "--fpga",
                "sim:sha256",
            ])
            .arg(&a)
            .arg(&a),
    );
    let leaf: [u8; 32] = Sha256::digest(vec![3u8; 300]).into();
    let want = cpc_accel::merkle::reference_root(&[leaf, leaf]);
    assert!(out.starts_with(&hex::encode(want)), "{out}");
    // A board that is not there is a clear error when asked for by name.
    let out = cpchain()
        .args([
            "accel",
            "hash",
            "--backend",
            "fpga",
            "--fpga",
            "serial:/dev/cpchain-no-such-tty",
        ])
        .arg(&a)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("backend fpga is unavailable here"),
        "{stderr}"
    );
}

#[test]
fn hdl_emit_writes_every_design_and_the_testbenches() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout_of(cpchain().args(["hdl", "emit", "--out"]).arg(dir.path()));
    for name in [
        "cpc_sha256_core.v",
        "cpc_sha512_core.v",
        "cpc_sha256_uart.v",
        "cpc_dual_uart.v",
        "cpc_sha256_hx8k.v",
        "cpc_dual_hx8k.v",
        "tb_cpc_sha256_uart.v",
        "tb_cpc_dual_uart.v",
    ] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.contains("module "), "{name} holds no module");
        assert!(out.contains(name), "{name} not reported in\n{out}");
    }
}
