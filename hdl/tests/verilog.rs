//! The emitted Verilog simulated on its own by Icarus Verilog, with a generated testbench
//! that speaks the protocol over the UART pins: the artefact that becomes a bitstream is
//! what is tested.

use std::path::Path;
use std::process::Command;

use cpc_hdl::emit::{designs, standard_exchanges, uart_testbench};
use cpc_hdl::protocol::FRAME_TIMEOUT_CYCLES;
use cpc_hdl::top::{BOARD_CLOCK_MHZ, BOARD_CLOCKS_PER_BIT};

fn run_iverilog(dir: &Path, module: &str, dual: bool) {
    let design = designs()
        .into_iter()
        .find(|d| d.name == module)
        .expect("design is emitted");
    let dut = dir.join(format!("{module}.v"));
    std::fs::write(&dut, &design.verilog).unwrap();
    let exchanges = standard_exchanges(dual, BOARD_CLOCK_MHZ, FRAME_TIMEOUT_CYCLES);
    let tb = dir.join(format!("tb_{module}.v"));
    std::fs::write(
        &tb,
        uart_testbench(module, BOARD_CLOCKS_PER_BIT, &exchanges),
    )
    .unwrap();
    let sim = dir.join(format!("{module}.vvp"));
    let out = Command::new("iverilog")
        .args(["-g2005", "-o"])
        .arg(&sim)
        .arg(&tb)
        .arg(&dut)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run iverilog ({e}); install it with deploy/setup.sh (Debian: iverilog)")
        });
    assert!(
        out.status.success(),
        "iverilog rejected the emitted Verilog:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("vvp").arg("-n").arg(&sim).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("PASS {}", exchanges.len())),
        "{module} failed in Icarus Verilog:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn emitted_sha256_link_passes_in_icarus_verilog() {
    let dir = tempfile::tempdir().unwrap();
    run_iverilog(dir.path(), "cpc_sha256_uart", false);
}

#[test]
fn emitted_dual_link_passes_in_icarus_verilog() {
    let dir = tempfile::tempdir().unwrap();
    run_iverilog(dir.path(), "cpc_dual_uart", true);
}

#[test]
fn every_design_is_emitted_with_its_own_module_name() {
    for d in designs() {
        assert!(
            d.verilog.contains(&format!("module {}(", d.name)),
            "{} has no module of its name",
            d.name
        );
    }
}
