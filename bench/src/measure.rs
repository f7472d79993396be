//! Timing loops and the report they fill.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cpc_accel::{AutoPolicy, BackendKind, Dispatcher, Op};
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

/// Where a device starts to beat the CPU backend on one operation: the dispatcher's
/// `auto` threshold for that device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossover {
    /// The device's backend.
    pub backend: BackendKind,
    /// The device, as `cpchain accel list` names it.
    pub device: String,
    /// The operation.
    pub op: Op,
    /// The smallest measured batch from which the device out-ran the CPU backend at every
    /// larger measured batch, for every workload of the operation; `None` when it never
    /// did.
    pub min_batch: Option<usize>,
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
    /// Selected backends that could not be measured, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Baselines, one per workload.
    pub baselines: Vec<Baseline>,
    /// Measurements.
    pub rows: Vec<Row>,
    /// Per device and operation, the batch size from which the device beats the CPU
    /// backend (empty when the CPU backend was not measured).
    #[serde(default)]
    pub crossovers: Vec<Crossover>,
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
    let (backends, skipped): (Vec<_>, Vec<_>) = dispatcher
        .backends()
        .into_iter()
        .filter(|b| config.backends.is_empty() || config.backends.contains(&b.kind))
        .partition(|b| b.available);
    if backends.is_empty() {
        return Err(BenchError::NoBackend);
    }
    let cpu = dispatcher.cpu();
    let mut report = Report {
        version: 2,
        cpu_threads: cpu.threads(),
        cpu_features: cpc_accel::cpu::cpu_features(),
        devices: backends
            .iter()
            .map(|b| format!("{}: {}", b.name, b.device))
            .collect(),
        skipped: skipped
            .iter()
            .map(|b| {
                let reason = b.unavailable_reason.as_deref().unwrap_or("unavailable");
                format!("{}: {reason}", b.name)
            })
            .collect(),
        baselines: Vec::new(),
        rows: Vec::new(),
        crossovers: Vec::new(),
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
                // A device is timed only once its answer equals the CPU's: a fast wrong
                // answer is no result, and would set a wrong `auto` threshold.
                let checked = if info.kind == BackendKind::Cpu {
                    Ok(())
                } else {
                    batch.check(backend.as_ref(), limit, cpu)
                };
                let row = match checked.and_then(|()| {
                    timed(config.budget, config.min_iterations, || {
                        batch.run(backend.as_ref(), limit)
                    })
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
    report.crossovers = crossovers(&report, &backends);
    Ok(report)
}

/// The crossover of every measured device and operation. A workload's crossover is the
/// smallest measured batch from which the device was faster than the CPU backend at that
/// and every larger measured batch; an operation's is the largest over its workloads (the
/// device must win on every input shape), and `None` if it loses on any.
fn crossovers(report: &Report, backends: &[cpc_accel::BackendInfo]) -> Vec<Crossover> {
    let rate = |backend: BackendKind, op: crate::Workload, batch: usize| {
        report
            .rows
            .iter()
            .find(|r| r.backend == backend && r.op == op && r.batch == batch && r.error.is_none())
            .map(|r| r.items_per_sec)
    };
    let mut out = Vec::new();
    for info in backends.iter().filter(|b| b.kind != BackendKind::Cpu) {
        for op in Op::ALL {
            let workloads: Vec<crate::Workload> = crate::Workload::ALL
                .into_iter()
                .filter(|w| w.op() == op && report.rows.iter().any(|r| r.op == *w))
                .collect();
            if workloads.is_empty() {
                continue;
            }
            let mut op_min = Some(0usize);
            for w in workloads {
                let mut sizes: Vec<usize> = report
                    .rows
                    .iter()
                    .filter(|r| r.op == w && r.backend == info.kind)
                    .map(|r| r.batch)
                    .collect();
                sizes.sort_unstable();
                sizes.dedup();
                // Walk down from the largest batch while the device keeps winning.
                let mut from = None;
                for &n in sizes.iter().rev() {
                    match (rate(info.kind, w, n), rate(BackendKind::Cpu, w, n)) {
                        (Some(dev), Some(cpu)) if dev > cpu => from = Some(n),
                        (_, None) => return Vec::new(),
                        _ => break,
                    }
                }
                op_min = match (op_min, from) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            out.push(Crossover {
                backend: info.kind,
                device: info.device.clone(),
                op,
                min_batch: op_min,
            });
        }
    }
    out
}

impl Report {
    /// The crossovers as `auto` thresholds (devices that never won get none).
    pub fn auto_policy(&self) -> AutoPolicy {
        let mut policy = AutoPolicy::default();
        for c in &self.crossovers {
            policy.record(c.backend, &c.device, c.op, c.min_batch);
        }
        policy
    }
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
        for d in &self.skipped {
            let _ = writeln!(out, "skipped {d}");
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
        if !self.crossovers.is_empty() {
            let _ = writeln!(
                out,
                "\nauto thresholds (device faster than the cpu backend from):"
            );
            for c in &self.crossovers {
                let from = c
                    .min_batch
                    .map_or("never, at the sizes measured".to_owned(), |n| {
                        format!("batch {n}")
                    });
                let _ = writeln!(
                    out,
                    "  {:<5} {:<8} {from}  [{}]",
                    c.backend.as_str(),
                    c.op.as_str(),
                    c.device
                );
            }
        }
        out
    }
}
