//! `cpchain hdl …`: the hardware designs of `cpc-hdl`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use cpc_hdl::emit::{designs, standard_exchanges, uart_testbench};
use cpc_hdl::protocol::FRAME_TIMEOUT_CYCLES;
use cpc_hdl::top::{BOARD_CLOCK_MHZ, BOARD_CLOCKS_PER_BIT};

#[derive(Debug, Subcommand)]
pub(crate) enum HdlCommand {
    /// Write the Verilog of every top level (cores, UART links, iCE40-HX8K boards), and
    /// self-checking Icarus Verilog testbenches for the UART links.
    ///
    /// Build a bitstream from a board design with `hdl/flow/build.sh DIR/cpc_sha256_hx8k.v
    /// OUT`; run a testbench with `iverilog -o tb DIR/tb_cpc_sha256_uart.v
    /// DIR/cpc_sha256_uart.v && vvp tb`.
    Emit {
        /// Output directory (created if missing).
        #[arg(long, default_value = "cpchain-hdl")]
        out: PathBuf,
    },
}

pub(crate) fn run(cmd: HdlCommand) -> Result<ExitCode> {
    match cmd {
        HdlCommand::Emit { out } => emit(&out),
    }
}

fn emit(out: &PathBuf) -> Result<ExitCode> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    for d in designs() {
        let path = write(&format!("{}.v", d.name), &d.verilog)?;
        println!("{:<36} {}", path.display(), d.description);
    }
    for (module, dual) in [("cpc_sha256_uart", false), ("cpc_dual_uart", true)] {
        let exchanges = standard_exchanges(dual, BOARD_CLOCK_MHZ, FRAME_TIMEOUT_CYCLES);
        let tb = uart_testbench(module, BOARD_CLOCKS_PER_BIT, &exchanges);
        let path = write(&format!("tb_{module}.v"), &tb)?;
        println!(
            "{:<36} testbench: {} exchanges with {module}, prints PASS or FAIL",
            path.display(),
            exchanges.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
