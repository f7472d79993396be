//! The accelerator report behind `cpchain bench`.
//!
//! For each operation, each available backend and each batch size, the report measures
//! throughput and per-batch latency (p50, p99), and divides the throughput by a baseline
//! measured in the same run: the CPU computing one item at a time on one thread. Ratios
//! from one run survive a noisy shared machine; absolute figures do not.
//!
//! The report prints as a table, serialises to JSON and draws an SVG chart. The criterion
//! benches in `benches/` cover the same operations for statistically careful comparisons
//! between commits.

mod chart;
pub mod fhe;
mod measure;
mod workload;

pub use chart::render_svg;
pub use measure::{Baseline, BenchConfig, Crossover, Report, Row, run};
pub use workload::{Batch, Workload, WorkloadData};

/// Errors of the report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A name given on the command line is not an operation.
    #[error("unknown operation {0:?}: expected sha256-64b, sha256-16kib, merkle or ed25519")]
    UnknownWorkload(String),
    /// No backend was left to measure.
    #[error("no available backend matches the selection: see `cpchain accel list`")]
    NoBackend,
    /// A batch larger than the generated inputs was asked for.
    #[error("batch of {wanted} asked for, {generated} inputs generated")]
    TooFewInputs {
        /// Batch size.
        wanted: usize,
        /// Inputs available.
        generated: usize,
    },
    /// The CPU baseline failed (it cannot, short of a bug).
    #[error("baseline failed: {0}")]
    Baseline(String),
    /// The chart could not be drawn.
    #[error("cannot draw the chart: {0}")]
    Chart(String),
}
