//! The dispatcher: routing, splitting, fallback and counters, against mock devices.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cpc_accel::cpu::{CpuBackend, CpuConfig};
use cpc_accel::vectors;
use cpc_accel::{
    AccelError, Accelerator, AutoPolicy, BackendInfo, BackendKind, DispatchConfig, Dispatcher, Op,
    Route, SigItem, merkle,
};

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Correct,
    Fails,
    ShortAnswer,
    Unavailable,
}

/// A device that answers through the CPU reference, or misbehaves on purpose.
struct Mock {
    kind: BackendKind,
    behaviour: Behaviour,
    max_batch: usize,
    calls: AtomicUsize,
    largest: AtomicUsize,
    cpu: CpuBackend,
}

impl Mock {
    fn new(kind: BackendKind, behaviour: Behaviour, max_batch: usize) -> Arc<Self> {
        Arc::new(Self {
            kind,
            behaviour,
            max_batch,
            calls: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
            cpu: CpuBackend::new(CpuConfig { threads: 1 }).unwrap(),
        })
    }

    fn enter(&self, n: usize) -> Result<(), AccelError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.largest.fetch_max(n, Ordering::SeqCst);
        if n > self.max_batch {
            return Err(AccelError::BatchTooLarge {
                kind: self.kind,
                len: n,
                max: self.max_batch,
            });
        }
        match self.behaviour {
            Behaviour::Fails => Err(AccelError::Device {
                kind: self.kind,
                message: "device lost".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl Accelerator for Mock {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: format!("mock-{}", self.kind),
            kind: self.kind,
            available: self.behaviour != Behaviour::Unavailable,
            device: "mock".into(),
            features: vec![],
            max_batch: Some(self.max_batch),
            parallelism: 1,
            unavailable_reason: None,
        }
    }

    fn sha256_batch(&self, msgs: &[&[u8]]) -> Result<Vec<[u8; 32]>, AccelError> {
        self.enter(msgs.len())?;
        let mut v = self.cpu.sha256(msgs);
        if self.behaviour == Behaviour::ShortAnswer {
            v.pop();
        }
        Ok(v)
    }

    fn merkle_root(&self, leaves: &[[u8; 32]]) -> Result<[u8; 32], AccelError> {
        self.enter(leaves.len())?;
        Ok(self.cpu.merkle(leaves))
    }

    fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        self.enter(items.len())?;
        let mut v = self.cpu.ed25519(items);
        if self.behaviour == Behaviour::ShortAnswer {
            v.pop();
        }
        Ok(v)
    }
}

fn msgs(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("message {i}").into_bytes())
        .collect()
}

fn counter(d: &Dispatcher, backend: BackendKind, op: Op) -> cpc_accel::CounterSnapshot {
    d.counters()
        .into_iter()
        .find(|c| c.backend == backend && c.op == op)
        .unwrap_or_else(|| panic!("no counters for {backend} {op}"))
}

#[test]
fn routes_to_the_configured_device_and_splits_batches() {
    let mock = Mock::new(BackendKind::Wgpu, Behaviour::Correct, 10);
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Wgpu)).unwrap();
    d.register(mock.clone()).unwrap();

    let m = msgs(95);
    let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
    assert_eq!(d.sha256_batch(&refs), d.cpu().sha256(&refs));
    assert_eq!(mock.calls.load(Ordering::SeqCst), 10);
    assert_eq!(mock.largest.load(Ordering::SeqCst), 10);

    let c = counter(&d, BackendKind::Wgpu, Op::Sha256);
    assert_eq!(
        (
            c.ops_total,
            c.items_total,
            c.errors_total,
            c.fallbacks_total
        ),
        (1, 95, 0, 0)
    );
    assert_eq!(counter(&d, BackendKind::Cpu, Op::Sha256).ops_total, 0);
}

#[test]
fn merkle_trees_larger_than_the_device_limit_are_split_by_the_tree_rule() {
    let mock = Mock::new(BackendKind::Fpga, Behaviour::Correct, 6);
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Fpga)).unwrap();
    d.register(mock.clone()).unwrap();
    for n in [0usize, 1, 5, 6, 7, 33, 100] {
        let leaves: Vec<[u8; 32]> = (0..n).map(|i| [i as u8; 32]).collect();
        assert_eq!(
            d.merkle_root(&leaves),
            merkle::reference_root(&leaves),
            "n={n}"
        );
        assert!(mock.largest.load(Ordering::SeqCst) <= 6);
    }
    assert_eq!(
        counter(&d, BackendKind::Fpga, Op::Merkle).fallbacks_total,
        0
    );
}

#[test]
fn a_failing_device_falls_back_to_the_cpu_and_is_counted() {
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Cuda)).unwrap();
    d.register(Mock::new(BackendKind::Cuda, Behaviour::Fails, 1000))
        .unwrap();
    let v = vectors::ed25519_vectors();
    let items: Vec<SigItem<'_>> = v.iter().map(|x| x.item()).collect();
    let want: Vec<bool> = v.iter().map(|x| x.valid).collect();
    assert_eq!(d.ed25519_verify_batch(&items), want);
    assert_eq!(d.ed25519_verify_batch(&items), want);

    let c = counter(&d, BackendKind::Cuda, Op::Ed25519);
    assert_eq!((c.ops_total, c.errors_total, c.fallbacks_total), (0, 2, 2));
    let cpu = counter(&d, BackendKind::Cpu, Op::Ed25519);
    assert_eq!(
        (cpu.ops_total, cpu.items_total),
        (2, 2 * items.len() as u64)
    );
}

#[test]
fn a_wrong_number_of_answers_is_an_error_not_a_verdict() {
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Wgpu)).unwrap();
    d.register(Mock::new(BackendKind::Wgpu, Behaviour::ShortAnswer, 1000))
        .unwrap();
    let m = msgs(5);
    let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
    assert_eq!(d.sha256_batch(&refs).len(), 5);
    let c = counter(&d, BackendKind::Wgpu, Op::Sha256);
    assert_eq!((c.errors_total, c.fallbacks_total), (1, 1));
}

#[test]
fn unavailable_and_unregistered_devices_fall_back() {
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Wgpu)).unwrap();
    d.register(Mock::new(BackendKind::Wgpu, Behaviour::Unavailable, 10))
        .unwrap();
    let leaves = [[1u8; 32]; 3];
    assert_eq!(d.merkle_root(&leaves), merkle::reference_root(&leaves));
    let c = counter(&d, BackendKind::Wgpu, Op::Merkle);
    assert_eq!((c.ops_total, c.errors_total, c.fallbacks_total), (0, 0, 1));

    // No CUDA backend registered at all: still answered, still counted.
    let d = Dispatcher::new(DispatchConfig::only(BackendKind::Cuda)).unwrap();
    assert_eq!(d.merkle_root(&leaves), merkle::reference_root(&leaves));
    assert_eq!(
        counter(&d, BackendKind::Cuda, Op::Merkle).fallbacks_total,
        1
    );
}

#[test]
fn auto_uses_a_device_only_from_its_threshold() {
    let mock = Mock::new(BackendKind::Wgpu, Behaviour::Correct, 1 << 20);
    let config = DispatchConfig {
        sha256: Route::Auto,
        auto: AutoPolicy {
            thresholds: vec![cpc_accel::dispatch::AutoThreshold {
                backend: BackendKind::Wgpu,
                op: Op::Sha256,
                min_batch: 64,
                device: String::new(),
            }],
        },
        ..DispatchConfig::default()
    };
    let mut d = Dispatcher::new(config).unwrap();
    d.register(mock.clone()).unwrap();
    assert_eq!(d.plan(Op::Sha256, 63), BackendKind::Cpu);
    assert_eq!(d.plan(Op::Sha256, 64), BackendKind::Wgpu);
    assert_eq!(d.plan(Op::Ed25519, 1_000_000), BackendKind::Cpu);
    let m = msgs(64);
    let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
    d.sha256_batch(&refs[..63]);
    assert_eq!(mock.calls.load(Ordering::SeqCst), 0);
    d.sha256_batch(&refs);
    assert_eq!(mock.calls.load(Ordering::SeqCst), 1);
    assert_eq!(counter(&d, BackendKind::Cpu, Op::Sha256).items_total, 63);
}

#[test]
fn thresholds_measured_on_another_device_do_not_apply() {
    let threshold = |device: &str, min_batch| cpc_accel::dispatch::AutoThreshold {
        backend: BackendKind::Wgpu,
        op: Op::Ed25519,
        min_batch,
        device: device.to_owned(),
    };
    let plan = |thresholds: Vec<cpc_accel::dispatch::AutoThreshold>, n| {
        let mut d = Dispatcher::new(DispatchConfig {
            auto: AutoPolicy { thresholds },
            ..DispatchConfig::default()
        })
        .unwrap();
        d.register(Mock::new(BackendKind::Wgpu, Behaviour::Correct, 1 << 20))
            .unwrap();
        d.plan(Op::Ed25519, n)
    };
    // The mock's device is "mock".
    assert_eq!(plan(vec![threshold("other gpu", 8)], 100), BackendKind::Cpu);
    assert_eq!(plan(vec![threshold("mock", 8)], 100), BackendKind::Wgpu);
    assert_eq!(plan(vec![threshold("mock", 800)], 100), BackendKind::Cpu);
    // A threshold for this device wins over one for any device.
    assert_eq!(
        plan(vec![threshold("", 8), threshold("mock", 800)], 100),
        BackendKind::Cpu
    );
    assert_eq!(
        plan(vec![threshold("", 8), threshold("other gpu", 800)], 100),
        BackendKind::Wgpu
    );
    // One per device, not one per kind.
    assert!(
        Dispatcher::new(DispatchConfig {
            auto: AutoPolicy {
                thresholds: vec![threshold("a", 1), threshold("b", 2)]
            },
            ..DispatchConfig::default()
        })
        .is_ok()
    );
    assert!(
        Dispatcher::new(DispatchConfig {
            auto: AutoPolicy {
                thresholds: vec![threshold("a", 1), threshold("a", 2)]
            },
            ..DispatchConfig::default()
        })
        .is_err()
    );
}

#[test]
fn measured_thresholds_merge_under_configured_ones() {
    let t = |device: &str, op, min_batch| cpc_accel::dispatch::AutoThreshold {
        backend: BackendKind::Wgpu,
        op,
        min_batch,
        device: device.to_owned(),
    };
    let mut configured = AutoPolicy {
        thresholds: vec![t("gpu", Op::Ed25519, 100)],
    };
    let mut measured = AutoPolicy::default();
    measured.record(BackendKind::Wgpu, "gpu", Op::Ed25519, Some(5));
    measured.record(BackendKind::Wgpu, "gpu", Op::Sha256, Some(7));
    measured.record(BackendKind::Wgpu, "gpu", Op::Sha256, Some(9));
    measured.record(BackendKind::Wgpu, "gpu", Op::Merkle, Some(3));
    measured.record(BackendKind::Wgpu, "gpu", Op::Merkle, None);
    assert_eq!(
        measured.thresholds,
        vec![t("gpu", Op::Ed25519, 5), t("gpu", Op::Sha256, 9)]
    );
    configured.merge(&measured);
    assert_eq!(
        configured.min_batch_on(BackendKind::Wgpu, Op::Ed25519, "gpu"),
        Some(100)
    );
    assert_eq!(
        configured.min_batch_on(BackendKind::Wgpu, Op::Sha256, "gpu"),
        Some(9)
    );
    assert_eq!(
        configured.min_batch_on(BackendKind::Wgpu, Op::Merkle, "gpu"),
        None
    );
}

#[test]
fn config_is_validated_and_routes_parse() {
    assert!("auto".parse::<Route>().is_ok());
    assert_eq!(
        "fpga".parse::<Route>().unwrap(),
        Route::Backend(BackendKind::Fpga)
    );
    let err = "tpu".parse::<Route>().unwrap_err().to_string();
    assert!(
        err.contains("expected auto, cpu, wgpu, cuda or fpga"),
        "{err}"
    );

    let t = cpc_accel::dispatch::AutoThreshold {
        backend: BackendKind::Cpu,
        op: Op::Merkle,
        min_batch: 1,
        device: String::new(),
    };
    let bad = DispatchConfig {
        auto: AutoPolicy {
            thresholds: vec![t],
        },
        ..DispatchConfig::default()
    };
    assert!(Dispatcher::new(bad).is_err());

    let mut d = Dispatcher::new(DispatchConfig::default()).unwrap();
    let cpu = Arc::new(CpuBackend::new(CpuConfig::default()).unwrap());
    assert!(
        d.register(cpu).is_err(),
        "a second cpu backend must be refused"
    );
}
