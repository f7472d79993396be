//! `cpchain bench`: the accelerator report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use cpc_accel::BackendKind;
use cpc_bench::{BenchConfig, Workload};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Batch sizes up to 1024 and shorter measurements (about a minute instead of several).
    #[arg(long)]
    quick: bool,
    /// Operations to measure (default: all): sha256-64b, sha256-16kib, merkle, ed25519.
    #[arg(long, value_delimiter = ',')]
    ops: Vec<Workload>,
    /// Batch sizes (default: 1,64,1024,16384; with --quick 1,64,1024).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    sizes: Vec<u64>,
    /// Backends to measure (default: every available one).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<BackendKind>,
    /// CPU worker threads (0 = one per core); `--threads 1` measures one core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Minimum milliseconds per measurement.
    #[arg(long)]
    budget_ms: Option<u64>,
    /// Directory for report.json and report.svg.
    #[arg(long, default_value = "cpchain-bench")]
    out: PathBuf,
    /// Print the JSON report on standard output instead of the table.
    #[arg(long)]
    json: bool,
    /// A node's home directory: measure the devices its `[accel]` settings select, and
    /// store the measured `auto` thresholds in its accel-thresholds.toml, which
    /// `cpchain start` applies.
    #[arg(long)]
    home: Option<PathBuf>,
    /// The FPGA backend's transport (see `cpchain accel list --help`): `serial` measures a
    /// board, `sim` the rust-hdl simulation (which measures the simulator, not hardware).
    #[arg(long, default_value = "none", env = "CPCHAIN_ACCEL_FPGA")]
    fpga: String,
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let mut config = if args.quick {
        BenchConfig::quick()
    } else {
        BenchConfig::full()
    };
    if !args.ops.is_empty() {
        config.workloads = args.ops.clone();
    }
    if !args.sizes.is_empty() {
        config.sizes = args.sizes.iter().map(|&s| s as usize).collect();
    }
    config.backends = args.backends.clone();
    if let Some(ms) = args.budget_ms {
        config.budget = std::time::Duration::from_millis(ms);
    }
    let mut accel = crate::accel::node_accel_config(args.home.as_deref())?;
    if args.threads != 0 || args.home.is_none() {
        accel.cpu_threads = args.threads;
    }
    if args.fpga != "none" || args.home.is_none() {
        accel.fpga = cpc_accel::fpga::FpgaConfig::parse_flag(&args.fpga)?;
    }
    let dispatcher = crate::accel::build_dispatcher(accel)?;
    let report = cpc_bench::run(&dispatcher, &config, |step| eprintln!("bench: {step}"))?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    let json_path = args.out.join("report.json");
    let svg_path = args.out.join("report.svg");
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&json_path, &json)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    let svg = cpc_bench::render_svg(&report)?;
    std::fs::write(&svg_path, svg)
        .with_context(|| format!("cannot write {}", svg_path.display()))?;
    let thresholds_path = args.out.join("thresholds.toml");
    crate::thresholds::write(&thresholds_path, &report.auto_policy())?;
    let stored = match &args.home {
        Some(home) => Some(crate::thresholds::store(home, &report)?),
        None => None,
    };

    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.table());
        println!(
            "wrote {}, {} and {}",
            json_path.display(),
            svg_path.display(),
            thresholds_path.display()
        );
        if let Some(file) = stored {
            println!(
                "stored the thresholds in {}; `cpchain start` applies them",
                file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct FheBenchArgs {
    /// Drivers per nearest-match job.
    #[arg(long, value_delimiter = ',', default_values_t = [4u64, 16, 64], value_parser = clap::value_parser!(u64).range(1..=256))]
    drivers: Vec<u64>,
    /// Records per search job.
    #[arg(long, value_delimiter = ',', default_values_t = [16u64, 256], value_parser = clap::value_parser!(u64).range(1..=256))]
    records: Vec<u64>,
    /// Thread counts; speedups are against the first.
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 2], value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Vec<u64>,
    /// Calls per raw TFHE operation (the median is kept).
    #[arg(long, default_value_t = 7)]
    op_samples: usize,
    /// Runs of each job size, the best kept (default: 3 up to 21 items, 1 from 33 on).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: Option<u64>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "cpchain-bench/fhe.json")]
    out: PathBuf,
}

/// `cpchain fhe bench`.
pub(crate) fn fhe(args: &FheBenchArgs) -> Result<ExitCode> {
    let config = cpc_bench::fhe::FheBenchConfig {
        drivers: args.drivers.iter().map(|&n| n as usize).collect(),
        records: args.records.iter().map(|&n| n as usize).collect(),
        threads: args.threads.iter().map(|&n| n as usize).collect(),
        op_samples: args.op_samples.max(1),
        runs: args.runs.map(|n| n as usize),
    };
    let report = cpc_bench::fhe::run(&config, |step| eprintln!("fhe bench: {step}"))
        .map_err(anyhow::Error::msg)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    print!("{}", report.table());
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
