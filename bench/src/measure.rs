//! Timing loops and the report they fill.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cpc_accel::{BackendKind, Dispatcher};
use serde::{Deserialize, Serialize};

use crate::{BenchError, Workload};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Operations to measure.
    pub workloads: Vec<Workload>,
    /// Batch sizes.
    pub sizes: Vec<usize>,
    /// Backends to measure; empty means every available one.
    pub backends: Vec<BackendKind>,
    /// Minimum time spent per measurement.
    pub budget: Duration,
    /// Minimum batches per measurement, however long they take.
    pub min_iterations: usize,
}

impl BenchConfig {
    /// The full report: every workload at batch sizes 1, 64, 1024 and 16384.
    pub fn full() -> Self {
        Self {
            workloads: Workload::ALL.to_vec(),
            sizes: vec![1, 64, 1024, 16384],
            backends: Vec::new(),
            budget: Duration::from_millis(500),
            min_iterations: 5,
        }
    }

    /// A quick look: batch sizes up to 1024 and shorter measurements.
    pub fn quick() -> Self {
        Self {
            sizes: vec![1, 64, 1024],
            budget: Duration::from_millis(120),
            min_iterations: 3,
            ..Self::full()
        }
    }
}

/// The one-at-a-time single-thread CPU rate of a workload at a batch size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baseline {
    /// The workload.
    pub op: Workload,
    /// The batch size it was measured on.
    pub batch: usize,
    /// Items per second.
    pub items_per_sec: f64,
}

/// One measurement: a workload on a backend at a batch size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// The workload.
    pub op: Workload,
    /// The backend.
    pub backend: BackendKind,
    /// Items per batch.
    pub batch: usize,
    /// Batches timed.
    pub iterations: usize,
    /// Items per second over all timed batches.
    pub items_per_sec: f64,
    /// Bytes hashed per second, for hashing workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<f64>,
    /// Median batch latency, microseconds.
    pub p50_us: f64,
    /// 99th-percentile batch latency, microseconds.
    pub p99_us: f64,
    /// Throughput divided by the baseline of the same workload.
    pub speedup: f64,
    /// The device error, when the backend failed (the row then has no figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything one `cpchain bench` run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The report format.
    pub version: u32,
    /// Worker threads of the CPU backend.
    pub cpu_threads: usize,
    /// CPU features in use.
    pub cpu_features: Vec<String>,
    /// Devices measured, as `cpchain accel list` names them.
    pub devices: Vec<String>,
    /// Baselines, one per workload.
    pub baselines: Vec<Baseline>,
    /// Measurements.
    pub rows: Vec<Row>,
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    // Nearest rank; `timed` guarantees at least one sample.
    let rank = (sorted.len() * pct)
        .div_ceil(100)
        .clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn rate(items: usize, samples: &[Duration]) -> f64 {
    let secs = samples.iter().sum::<Duration>().as_secs_f64();
    if secs > 0.0 { items as f64 / secs } else { 0.0 }
}

fn timed(
    budget: Duration,
    min_iter: usize,
    mut f: impl FnMut() -> Result<usize, String>,
) -> Result<(Vec<Duration>, usize), String> {
    f()?; // warm-up: pipelines, caches, thread pools
    let mut samples = Vec::new();
    let mut items = 0;
    let start = Instant::now();
    while samples.len() < min_iter.max(1) || start.elapsed() < budget {
        let t = Instant::now();
        items += f()?;
        samples.push(t.elapsed());
        if samples.len() >= 100_000 {
            break;
        }
    }
    samples.sort();
    Ok((samples, items))
}

/// Measures every selected workload on every selected, available backend.
pub fn run(
    dispatcher: &Dispatcher,
    config: &BenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<Report, BenchError> {
    let backends: Vec<_> = dispatcher
        .backends()
        .into_iter()
        .filter(|b| {
            b.available && (config.backends.is_empty() || config.backends.contains(&b.kind))
        })
        .collect();
    if backends.is_empty() {
        return Err(BenchError::NoBackend);
    }
    let cpu = dispatcher.cpu();
    let mut report = Report {
        version: 1,
        cpu_threads: cpu.threads(),
        cpu_features: cpc_accel::cpu::cpu_features(),
        devices: backends
            .iter()
            .map(|b| format!("{}: {}", b.name, b.device))
            .collect(),
        baselines: Vec::new(),
        rows: Vec::new(),
    };
    let max = config.sizes.iter().copied().max().unwrap_or(1).max(1);
    for &op in &config.workloads {
        progress(&format!("{op}: generating {max} inputs"));
        let data = op.generate(max);
        for &n in &config.sizes {
            let batch = data.batch(n)?;
            // Small batches are repeated within a sample so the clock's own cost stays small.
            let reps = 256usize.div_ceil(n.max(1));
            let (samples, items) = timed(config.budget, config.min_iterations, || {
                Ok((0..reps).map(|_| batch.run_one_at_a_time()).sum())
            })
            .map_err(BenchError::Baseline)?;
            let base_rate = rate(items, &samples);
            report.baselines.push(Baseline {
                op,
                batch: n,
                items_per_sec: base_rate,
            });
            for info in &backends {
                let Some(backend) = dispatcher.backend(info.kind) else {
                    continue;
                };
                progress(&format!("{op}: {} batch {n}", info.name));
                let limit = info.max_batch.unwrap_or(usize::MAX);
                let row = match timed(config.budget, config.min_iterations, || {
                    batch.run(backend.as_ref(), limit)
                }) {
                    Ok((samples, items)) => {
                        let r = rate(items, &samples);
                        Row {
                            op,
                            backend: info.kind,
                            batch: n,
                            iterations: samples.len(),
                            items_per_sec: r,
                            bytes_per_sec: op.item_bytes().map(|b| r * b as f64),
                            p50_us: percentile(&samples, 50).as_secs_f64() * 1e6,
                            p99_us: percentile(&samples, 99).as_secs_f64() * 1e6,
                            speedup: if base_rate > 0.0 { r / base_rate } else { 0.0 },
                            error: None,
                        }
                    }
                    Err(e) => Row {
                        op,
                        backend: info.kind,
                        batch: n,
                        iterations: 0,
                        items_per_sec: 0.0,
                        bytes_per_sec: None,
                        p50_us: 0.0,
                        p99_us: 0.0,
                        speedup: 0.0,
                        error: Some(e),
                    },
                };
                report.rows.push(row);
            }
        }
    }
    Ok(report)
}

pub(crate) fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.1}"),
    }
}

impl Report {
    /// The baseline of a workload at a batch size.
    pub fn baseline(&self, op: Workload, batch: usize) -> Option<&Baseline> {
        self.baselines
            .iter()
            .find(|b| b.op == op && b.batch == batch)
    }

    /// A fixed-width table for the terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cpu: {} threads, features [{}]",
            self.cpu_threads,
            self.cpu_features.join(", ")
        );
        for d in &self.devices {
            let _ = writeln!(out, "device {d}");
        }
        let _ = writeln!(
            out,
            "\n{:<13} {:<9} {:>6} {:>6} {:>10} {:>9} {:>10} {:>10} {:>8}",
            "op", "backend", "batch", "iters", "items/s", "MB/s", "p50 µs", "p99 µs", "speedup"
        );
        let mb = |op: Workload, rate: f64| {
            op.item_bytes()
                .map_or(String::new(), |b| format!("{:.1}", rate * b as f64 / 1e6))
        };
        for op in Workload::ALL {
            for base in self.baselines.iter().filter(|b| b.op == op) {
                let _ = writeln!(
                    out,
                    "{:<13} {:<9} {:>6} {:>6} {:>10} {:>9} {:>10} {:>10} {:>8}",
                    op.name(),
                    "baseline",
                    base.batch,
                    "",
                    si(base.items_per_sec),
                    mb(op, base.items_per_sec),
                    "",
                    "",
                    "1.00×"
                );
                for r in self
                    .rows
                    .iter()
                    .filter(|r| r.op == op && r.batch == base.batch)
                {
                    if let Some(e) = &r.error {
                        let _ = writeln!(
                            out,
                            "{:<13} {:<9} {:>6}  failed: {e}",
                            op.name(),
                            r.backend.as_str(),
                            r.batch
                        );
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "{:<13} {:<9} {:>6} {:>6} {:>10} {:>9} {:>10.1} {:>10.1} {:>7.2}×",
                        op.name(),
                        r.backend.as_str(),
                        r.batch,
                        r.iterations,
                        si(r.items_per_sec),
                        mb(op, r.items_per_sec),
                        r.p50_us,
                        r.p99_us,
                        r.speedup
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nbaseline = the CPU reference, one item at a time on one thread, on the same batch \
             (Merkle: the sequential reference over the same leaves); speedup = items/s ÷ baseline"
        );
        out
    }
}
