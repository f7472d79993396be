//! The dispatcher: the one door through which the node reaches the accelerators.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{Accelerator, BackendInfo, BackendKind, Op, SigItem};
use crate::cpu::{CpuBackend, CpuConfig};
use crate::{AccelError, Digest, merkle};

/// Where one operation runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Route {
    /// The fastest healthy backend for the batch size, by [`AutoPolicy`].
    #[default]
    Auto,
    /// Always this backend (the CPU when it is unavailable or fails).
    Backend(BackendKind),
}

impl FromStr for Route {
    type Err = AccelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Route::Auto),
            other => other.parse().map(Route::Backend).map_err(|_| {
                AccelError::Config(format!(
                    "unknown route {other:?}: expected auto, cpu, wgpu, cuda or fpga"
                ))
            }),
        }
    }
}

impl TryFrom<String> for Route {
    type Error = AccelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Route> for String {
    fn from(r: Route) -> String {
        r.to_string()
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Auto => f.write_str("auto"),
            Route::Backend(kind) => kind.fmt(f),
        }
    }
}

/// From which batch size a device beats the CPU for one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoThreshold {
    /// The device.
    pub backend: BackendKind,
    /// The operation.
    pub op: Op,
    /// The smallest batch (messages, leaves or signatures) sent to the device.
    pub min_batch: usize,
    /// The device the crossover was measured on, as `cpchain accel list` names it. When
    /// set, the threshold applies only while that device is the registered one, so a
    /// threshold measured on one GPU is never applied to another. Empty: any device of
    /// this kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
}

/// How `auto` chooses: a device gets a batch only when a threshold for that device and
/// operation exists and the batch reaches it. `cpchain bench` measures the crossover per
/// device; with no thresholds everything runs on the CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoPolicy {
    /// Crossover points, at most one per device kind, device and operation.
    pub thresholds: Vec<AutoThreshold>,
}

impl AutoPolicy {
    /// The threshold for a device kind and operation that names no particular device.
    pub fn min_batch(&self, backend: BackendKind, op: Op) -> Option<usize> {
        self.thresholds
            .iter()
            .find(|t| t.backend == backend && t.op == op && t.device.is_empty())
            .map(|t| t.min_batch)
    }

    /// The threshold in force for an operation on `device` (a backend's
    /// [`BackendInfo::device`]): the one measured on that device, else one that names no
    /// device.
    pub fn min_batch_on(&self, backend: BackendKind, op: Op, device: &str) -> Option<usize> {
        self.thresholds
            .iter()
            .find(|t| t.backend == backend && t.op == op && t.device == device)
            .map(|t| t.min_batch)
            .or_else(|| self.min_batch(backend, op))
    }

    /// Adds the thresholds of `other` that this policy does not set for the same device
    /// kind, device and operation: configured thresholds win over measured ones.
    pub fn merge(&mut self, other: &AutoPolicy) {
        for t in &other.thresholds {
            let known = self
                .thresholds
                .iter()
                .any(|s| s.backend == t.backend && s.op == t.op && s.device == t.device);
            if !known {
                self.thresholds.push(t.clone());
            }
        }
    }

    /// Records a measurement: the threshold of `op` on `device` becomes `min_batch`, or is
    /// removed when the device never won (`None`).
    pub fn record(&mut self, backend: BackendKind, device: &str, op: Op, min_batch: Option<usize>) {
        self.thresholds
            .retain(|t| !(t.backend == backend && t.op == op && t.device == device));
        if let Some(min_batch) = min_batch {
            self.thresholds.push(AutoThreshold {
                backend,
                op,
                min_batch,
                device: device.to_owned(),
            });
        }
    }
}

/// Settings of the dispatcher and the CPU backend it always owns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// Where SHA-256 batches run.
    pub sha256: Route,
    /// Where Merkle roots are computed.
    pub merkle: Route,
    /// Where Ed25519 batches are verified.
    pub ed25519: Route,
    /// CPU worker threads; `0` uses every core.
    pub cpu_threads: usize,
    /// How `auto` picks a device.
    pub auto: AutoPolicy,
    /// The wgpu backend: adapter choice and limits.
    pub wgpu: crate::gpu::wgpu::WgpuConfig,
    /// The CUDA backend: device, limits and the compiled-kernel cache.
    pub cuda: crate::gpu::cuda::CudaConfig,
    /// How the FPGA backend reaches its device (`[accel.fpga]`).
    pub fpga: crate::fpga::FpgaConfig,
}

impl DispatchConfig {
    /// Every operation on one backend (what `--backend B` means on the command line).
    pub fn only(kind: BackendKind) -> Self {
        let r = Route::Backend(kind);
        Self {
            sha256: r,
            merkle: r,
            ed25519: r,
            ..Self::default()
        }
    }

    /// The route of an operation.
    pub fn route(&self, op: Op) -> Route {
        match op {
            Op::Sha256 => self.sha256,
            Op::Merkle => self.merkle,
            Op::Ed25519 => self.ed25519,
        }
    }

    fn validate(&self) -> Result<(), AccelError> {
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.auto.thresholds {
            if t.backend == BackendKind::Cpu {
                return Err(AccelError::Config(
                    "auto thresholds name devices; the cpu is the default".into(),
                ));
            }
            if !seen.insert((t.backend, t.op, t.device.as_str())) {
                return Err(AccelError::Config(if t.device.is_empty() {
                    format!("two auto thresholds for {} {}", t.backend, t.op)
                } else {
                    format!(
                        "two auto thresholds for {} {} on {:?}",
                        t.backend, t.op, t.device
                    )
                }));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    items: AtomicU64,
    errors: AtomicU64,
    fallbacks: AtomicU64,
    busy_ns: AtomicU64,
}

/// Counters of one backend and operation since the dispatcher started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// The backend.
    pub backend: BackendKind,
    /// The operation.
    pub op: Op,
    /// Calls that completed on this backend.
    pub ops_total: u64,
    /// Messages, leaves or signatures processed by those calls.
    pub items_total: u64,
    /// Calls that failed on this backend.
    pub errors_total: u64,
    /// Calls routed here that the CPU had to answer instead (failure or unavailability).
    pub fallbacks_total: u64,
    /// Time spent inside this backend, in nanoseconds.
    pub busy_ns_total: u64,
}

struct Device {
    backend: Arc<dyn Accelerator>,
    max_batch: usize,
    /// What the backend runs on, which selects its measured `auto` thresholds.
    device: String,
}

/// Owns the backends and routes every operation; see the crate documentation.
pub struct Dispatcher {
    config: DispatchConfig,
    cpu: Arc<CpuBackend>,
    devices: [Option<Device>; 4],
    counters: [[Counters; 3]; 4],
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher with the CPU backend; devices join with [`Dispatcher::register`].
    pub fn new(config: DispatchConfig) -> Result<Self, AccelError> {
        config.validate()?;
        let cpu = Arc::new(CpuBackend::new(CpuConfig {
            threads: config.cpu_threads,
        })?);
        Ok(Self {
            config,
            cpu,
            devices: Default::default(),
            counters: Default::default(),
        })
    }

    /// Adds a device backend, replacing any earlier one of the same kind.
    pub fn register(&mut self, backend: Arc<dyn Accelerator>) -> Result<(), AccelError> {
        let info = backend.info();
        if info.kind == BackendKind::Cpu {
            return Err(AccelError::Config(
                "the cpu backend is built in; set cpu_threads instead of registering one".into(),
            ));
        }
        if info.max_batch == Some(0) {
            return Err(AccelError::Config(format!(
                "backend {} declares a max_batch of 0",
                info.name
            )));
        }
        self.devices[info.kind.index()] = Some(Device {
            backend,
            max_batch: info.max_batch.unwrap_or(usize::MAX),
            device: info.device,
        });
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    /// The CPU backend.
    pub fn cpu(&self) -> &CpuBackend {
        &self.cpu
    }

    /// A registered backend of this kind (the CPU is always registered).
    pub fn backend(&self, kind: BackendKind) -> Option<Arc<dyn Accelerator>> {
        match kind {
            BackendKind::Cpu => Some(self.cpu.clone()),
            _ => self.devices[kind.index()]
                .as_ref()
                .map(|d| d.backend.clone()),
        }
    }

    /// Every registered backend, CPU first.
    pub fn backends(&self) -> Vec<BackendInfo> {
        std::iter::once(self.cpu.info())
            .chain(self.devices.iter().flatten().map(|d| d.backend.info()))
            .collect()
    }

    /// Which backend an operation on `n` items is sent to first.
    pub fn plan(&self, op: Op, n: usize) -> BackendKind {
        match self.config.route(op) {
            Route::Backend(kind) => kind,
            Route::Auto => BackendKind::ALL
                .into_iter()
                .filter(|k| *k != BackendKind::Cpu)
                .find(|&k| {
                    self.devices[k.index()].as_ref().is_some_and(|d| {
                        self.config
                            .auto
                            .min_batch_on(k, op, &d.device)
                            .is_some_and(|min| n >= min)
                            && d.backend.is_available()
                    })
                })
                .unwrap_or(BackendKind::Cpu),
        }
    }

    /// SHA-256 of every message.
    pub fn sha256_batch(&self, msgs: &[&[u8]]) -> Vec<Digest> {
        let n = msgs.len();
        let device = self.on_device(Op::Sha256, n, |dev, max| sha256_split(dev, msgs, max));
        device.unwrap_or_else(|| self.on_cpu(Op::Sha256, n, |cpu| cpu.sha256(msgs)))
    }

    /// The Merkle root of `leaves` (see [`crate::merkle`] for the rule).
    pub fn merkle_root(&self, leaves: &[Digest]) -> Digest {
        let n = leaves.len();
        let device = self.on_device(Op::Merkle, n, |dev, max| merkle_split(dev, leaves, max));
        device.unwrap_or_else(|| self.on_cpu(Op::Merkle, n, |cpu| cpu.merkle(leaves)))
    }

    /// The ZIP-215 verdict of every item.
    pub fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Vec<bool> {
        let n = items.len();
        let device = self.on_device(Op::Ed25519, n, |dev, max| ed25519_split(dev, items, max));
        device.unwrap_or_else(|| self.on_cpu(Op::Ed25519, n, |cpu| cpu.ed25519(items)))
    }

    /// Counters of every registered backend and operation, and of unregistered backends
    /// that a route sent work to (their fallbacks).
    pub fn counters(&self) -> Vec<CounterSnapshot> {
        let mut out = Vec::new();
        for kind in BackendKind::ALL {
            for op in Op::ALL {
                let c = &self.counters[kind.index()][op.index()];
                let s = CounterSnapshot {
                    backend: kind,
                    op,
                    ops_total: c.ops.load(Ordering::Relaxed),
                    items_total: c.items.load(Ordering::Relaxed),
                    errors_total: c.errors.load(Ordering::Relaxed),
                    fallbacks_total: c.fallbacks.load(Ordering::Relaxed),
                    busy_ns_total: c.busy_ns.load(Ordering::Relaxed),
                };
                let registered = kind == BackendKind::Cpu || self.devices[kind.index()].is_some();
                if registered || s.fallbacks_total > 0 {
                    out.push(s);
                }
            }
        }
        out
    }

    fn counter(&self, kind: BackendKind, op: Op) -> &Counters {
        &self.counters[kind.index()][op.index()]
    }

    /// Runs `f` on the planned device. `None` means the CPU must answer; the reason has
    /// been counted and logged.
    fn on_device<T>(
        &self,
        op: Op,
        n: usize,
        f: impl FnOnce(&dyn Accelerator, usize) -> Result<T, AccelError>,
    ) -> Option<T> {
        let kind = self.plan(op, n);
        if kind == BackendKind::Cpu {
            return None;
        }
        let c = self.counter(kind, op);
        let device = self.devices[kind.index()]
            .as_ref()
            .filter(|d| d.backend.is_available());
        let Some(device) = device else {
            if c.fallbacks.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(backend = %kind, %op, "backend unavailable; running on the cpu");
            }
            return None;
        };
        let start = Instant::now();
        // A device driver that panics must not take the node down: it is one more device
        // error, and the CPU answers.
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            f(device.backend.as_ref(), device.max_batch)
        }))
        .unwrap_or_else(|_| {
            Err(AccelError::Device {
                kind,
                message: "the backend panicked".into(),
            })
        });
        c.busy_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        match result {
            Ok(v) => {
                c.ops.fetch_add(1, Ordering::Relaxed);
                c.items.fetch_add(n as u64, Ordering::Relaxed);
                Some(v)
            }
            Err(error) => {
                let errors = c.errors.fetch_add(1, Ordering::Relaxed);
                c.fallbacks.fetch_add(1, Ordering::Relaxed);
                // A broken device fails every call; the counters carry the rate.
                if errors.is_power_of_two() || errors == 0 {
                    tracing::warn!(backend = %kind, %op, %error, errors = errors + 1, "backend failed; running on the cpu");
                }
                None
            }
        }
    }

    fn on_cpu<T>(&self, op: Op, n: usize, f: impl FnOnce(&CpuBackend) -> T) -> T {
        let c = self.counter(BackendKind::Cpu, op);
        let start = Instant::now();
        let v = f(&self.cpu);
        c.busy_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        c.ops.fetch_add(1, Ordering::Relaxed);
        c.items.fetch_add(n as u64, Ordering::Relaxed);
        v
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn check_len(kind: BackendKind, expected: usize, got: usize) -> Result<(), AccelError> {
    if expected == got {
        Ok(())
    } else {
        Err(AccelError::BadAnswer {
            kind,
            expected,
            got,
        })
    }
}

/// SHA-256 on one backend, in calls of at most `max` messages, with the answer's length
/// checked. The dispatcher, the self-test and the bench all call backends this way.
pub fn sha256_split(
    dev: &dyn Accelerator,
    msgs: &[&[u8]],
    max: usize,
) -> Result<Vec<Digest>, AccelError> {
    let mut out = Vec::with_capacity(msgs.len());
    for chunk in msgs.chunks(max.max(1)) {
        let got = dev.sha256_batch(chunk)?;
        check_len(dev.info().kind, chunk.len(), got.len())?;
        out.extend(got);
    }
    Ok(out)
}

/// A Merkle root on one backend; trees larger than `max` leaves are cut into power-of-two
/// subtrees whose roots are combined by the tree rule (see [`crate::merkle`]).
pub fn merkle_split(
    dev: &dyn Accelerator,
    leaves: &[Digest],
    max: usize,
) -> Result<Digest, AccelError> {
    if leaves.len() <= max {
        return dev.merkle_root(leaves);
    }
    let roots = leaves
        .chunks(merkle::split_chunk_len(max))
        .map(|chunk| dev.merkle_root(chunk))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merkle::root_of_nodes(roots))
}

/// Ed25519 verdicts on one backend, in calls of at most `max` items, with the answer's
/// length checked.
pub fn ed25519_split(
    dev: &dyn Accelerator,
    items: &[SigItem<'_>],
    max: usize,
) -> Result<Vec<bool>, AccelError> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(max.max(1)) {
        let got = dev.ed25519_verify_batch(chunk)?;
        check_len(dev.info().kind, chunk.len(), got.len())?;
        out.extend(got);
    }
    Ok(out)
}
