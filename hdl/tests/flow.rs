//! The yosys / nextpnr-ice40 / icepack flow on the SHA-256 board design: a real
//! iCE40-HX8K bitstream that must fit and meet 48 MHz.

use std::path::Path;
use std::process::Command;

use cpc_hdl::emit::designs;

#[test]
fn sha256_bitstream_fits_the_hx8k_and_meets_48_mhz() {
    // Under the target directory, so the logs and the bitstream stay for inspection.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flow-sha256");
    std::fs::create_dir_all(&dir).unwrap();
    let design = designs()
        .into_iter()
        .find(|d| d.name == "cpc_sha256_hx8k")
        .unwrap();
    let src = dir.as_path().join("cpc_sha256_hx8k.v");
    std::fs::write(&src, &design.verilog).unwrap();
    // The crate's directory as cargo gives it at run time: CI shares one target
    // directory between clones at different paths, and a test binary still fresh from
    // another clone would carry that clone's path.
    let root = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let script = Path::new(&root).join("flow/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&src)
        .arg(dir.as_path().join("out"))
        .arg("48")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The figures go to the test log (`cargo test -- --nocapture` shows them).
    println!("{stdout}");
    assert!(out.status.success(), "flow failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("luts "), "{stdout}");
    assert!(stdout.contains("PASS at 48"), "{stdout}");
    let bin = dir.as_path().join("out/cpc_sha256_hx8k.bin");
    let size = std::fs::metadata(&bin).unwrap().len();
    // An HX8K bitstream is 135,100 bytes.
    assert!(size > 100_000, "bitstream of {size} bytes");
}
