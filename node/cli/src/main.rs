//! `cpchain`: the CPChain edge appliance.
//!
//! One binary for operators, accelerator engineers and fleet tooling. This crate only
//! parses commands and wires libraries together; the logic lives in the library crates.

mod accel;
mod bench;
mod client;
mod config;
mod data;
mod data_cli;
mod data_net;
mod fhe;
mod gpu;
mod hdl;
mod keys;
mod node;
mod side;
mod side_client;
mod side_files;
mod side_outbox;
#[cfg(test)]
mod testing;
mod testnet;
mod thresholds;

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
    /// The FPGA designs: emit their Verilog and testbenches.
    #[command(subcommand)]
    Hdl(hdl::HdlCommand),
    /// Create a node home: keys, a single-validator genesis and a commented config.toml.
    Init(node::InitArgs),
    /// Write keys, a genesis and configs for an N-node network on loopback.
    Testnet(testnet::TestnetArgs),
    /// Run the node until SIGINT or SIGTERM.
    Start(node::StartArgs),
    /// Replay the stored chain from genesis and compare it with the stored state.
    Check(node::CheckArgs),
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Build, sign and submit transactions through a node's API.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Store, read and share encrypted sensor data (through a node's API).
    #[command(subcommand)]
    Data(data_cli::DataCommand),
    /// Send machine transactions to a side-chain gateway and follow them.
    #[command(subcommand)]
    Sidechain(side_client::SideCommand),
    /// Show a running node's status.
    Status(client::StatusArgs),
    /// Load a node with signed transfers and report throughput and commit latency.
    Loadgen(client::LoadgenArgs),
    /// Measure every operation on every available backend against a CPU baseline.
    Bench(bench::BenchArgs),
    /// Homomorphic matching: keys, encryption, ride-sharing matches and encrypted search.
    #[command(subcommand)]
    Fhe(fhe::FheCommand),
    /// Print the version and build information.
    Version,
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// Transfer CPC to another account.
    Transfer(client::TransferArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A running node reports what it does; one-shot commands only warnings.
    let default_log = if matches!(cli.command, Command::Start(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CPCHAIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .init();
    let result = match cli.command {
        Command::Accel(cmd) => accel::run(cmd),
        Command::Hdl(cmd) => hdl::run(cmd),
        Command::Init(args) => node::init(&args),
        Command::Testnet(args) => testnet::run(&args),
        Command::Start(args) => node::start(&args),
        Command::Check(args) => node::check(&args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Tx(TxCommand::Transfer(args)) => client::transfer(&args),
        Command::Data(cmd) => data_cli::run(cmd),
        Command::Sidechain(cmd) => side_client::run(cmd),
        Command::Status(args) => client::status(&args),
        Command::Loadgen(args) => client::loadgen(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fhe(cmd) => fhe::run(cmd),
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
