//! `cpchain`: the CPChain edge appliance.
//!
//! One binary for operators, accelerator engineers and fleet tooling. This crate only
//! parses commands and wires libraries together; the logic lives in the library crates.

mod accel;
mod bench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The CPChain edge appliance: an IoT blockchain node with hardware-accelerated crypto.
#[derive(Debug, Parser)]
#[command(name = "cpchain", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and use the accelerator backends (CPU, GPU, FPGA).
    #[command(subcommand)]
    Accel(accel::AccelCommand),
    /// Measure every operation on every available backend against a CPU baseline.
    Bench(bench::BenchArgs),
    /// Print the version and build information.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CPCHAIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::Accel(cmd) => accel::run(cmd),
        Command::Bench(args) => bench::run(&args),
        Command::Version => {
            println!(
                "cpchain {} ({} {}, {} build)",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
