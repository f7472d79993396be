//! The wgpu backend against the CPU reference. CI runs it on Mesa's lavapipe (a software
//! Vulkan driver, installed by deploy/setup.sh); with a GPU it runs there.
//!
//! Without any adapter the tests fail, because a silently skipped consensus test hides
//! regressions; set `CPCHAIN_TEST_NO_WGPU=1` to skip them on purpose.

mod common;

use std::sync::{Arc, OnceLock};

use cpc_accel::dispatch::AutoThreshold;
use cpc_accel::gpu::wgpu::{WgpuBackend, WgpuConfig};
use cpc_accel::{Accelerator, AutoPolicy, BackendKind, DispatchConfig, Dispatcher, Op};

/// One device for the whole test binary — software drivers compile the pipelines once per
/// device — with small chunks, so the pipelining and the pool run many rounds.
fn shared() -> Option<&'static Arc<WgpuBackend>> {
    static B: OnceLock<Arc<WgpuBackend>> = OnceLock::new();
    let b = B.get_or_init(|| {
        Arc::new(WgpuBackend::new(&WgpuConfig {
            chunk: 256,
            ..WgpuConfig::default()
        }))
    });
    if b.info().available {
        return Some(b);
    }
    if std::env::var_os("CPCHAIN_TEST_NO_WGPU").is_some() {
        return None;
    }
    panic!(
        "no wgpu adapter: {}; install mesa-vulkan-drivers (deploy/setup.sh) or set \
         CPCHAIN_TEST_NO_WGPU=1",
        b.info().unavailable_reason.unwrap_or_default()
    );
}

fn backend() -> Option<&'static WgpuBackend> {
    shared().map(Arc::as_ref)
}

#[test]
fn field_arithmetic_matches_the_reference() {
    let Some(b) = backend() else { return };
    let pairs = common::field::field_inputs(1, 300);
    let out = b.field_ops(&common::field::pack(&pairs)).unwrap();
    common::field::check_field_ops(&pairs, &out);
}

#[test]
fn sha256_matches_the_cpu() {
    let Some(b) = backend() else { return };
    common::assert_same_digests(b, &common::sha_messages(2, 5000));
}

/// Long messages take several dispatches (512 blocks each), and more than one submission
/// past 64 dispatches; lavapipe would cut a single long invocation short.
#[test]
fn long_messages_match_the_cpu() {
    let Some(b) = backend() else { return };
    let msgs: Vec<Vec<u8>> = [32_695usize, 32_696, 65_536, 2 * 1024 * 1024 + 100]
        .iter()
        .map(|&len| (0..len).map(|i| (i * 31 + len) as u8).collect())
        .chain(common::sha_messages(9, 100))
        .collect();
    common::assert_same_digests(b, &msgs);
}

#[test]
fn merkle_roots_match_the_cpu() {
    let Some(b) = backend() else { return };
    common::assert_same_roots(b, common::merkle_sizes());
}

#[test]
fn ed25519_random_batches_match_the_cpu() {
    let Some(b) = backend() else { return };
    let (valid, invalid) = common::assert_same_verdicts(b, &common::random_items(3, 2000));
    assert!(
        valid > 1400 && invalid > 300,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn ed25519_adversarial_inputs_match_the_cpu() {
    let Some(b) = backend() else { return };
    let items = common::adversarial_items(4);
    assert!(items.len() > 1000, "{} adversarial items", items.len());
    let (valid, invalid) = common::assert_same_verdicts(b, &items);
    assert!(
        valid > 100 && invalid > 100,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn known_answers_pass() {
    let Some(b) = backend() else { return };
    common::assert_selftest(b);
}

#[test]
fn the_adapter_is_named() {
    let Some(b) = backend() else { return };
    let info = b.info();
    assert_eq!(info.kind, BackendKind::Wgpu);
    assert!(!info.device.is_empty() && info.device != "none");
}

#[test]
fn dispatched_through_the_wgpu_route() {
    let Some(_) = backend() else { return };
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Wgpu)).unwrap();
    d.register(Arc::new(WgpuBackend::new(&WgpuConfig {
        max_batch: 100,
        chunk: 64,
        ..WgpuConfig::default()
    })))
    .unwrap();
    let items = common::random_items(7, 250);
    let refs: Vec<_> = items.iter().map(common::Owned::item).collect();
    assert_eq!(d.ed25519_verify_batch(&refs), common::cpu().ed25519(&refs));
    let leaves = common::leaves(8, 1000);
    assert_eq!(
        d.merkle_root(&leaves),
        cpc_accel::merkle::reference_root(&leaves)
    );
    let c = d
        .counters()
        .into_iter()
        .filter(|c| c.backend == BackendKind::Wgpu)
        .map(|c| (c.ops_total, c.fallbacks_total))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(c, (2, 0), "both calls ran on the device");
}

/// `auto` with a threshold measured on this adapter: smaller batches stay on the CPU,
/// larger ones go to the device; a threshold for another adapter is ignored.
#[test]
fn auto_uses_the_adapter_from_its_threshold() {
    let Some(b) = shared() else { return };
    let device = b.info().device;
    let threshold = |device: &str, min_batch| AutoThreshold {
        backend: BackendKind::Wgpu,
        op: Op::Ed25519,
        min_batch,
        device: device.to_owned(),
    };
    let config = DispatchConfig {
        auto: AutoPolicy {
            thresholds: vec![threshold(&device, 100), threshold("another gpu", 1)],
        },
        ..DispatchConfig::default()
    };
    let mut d = Dispatcher::new(config).unwrap();
    d.register(b.clone()).unwrap();
    assert_eq!(d.plan(Op::Ed25519, 99), BackendKind::Cpu);
    assert_eq!(d.plan(Op::Ed25519, 100), BackendKind::Wgpu);
    assert_eq!(
        d.plan(Op::Sha256, 1 << 20),
        BackendKind::Cpu,
        "no threshold: cpu"
    );
    let items = common::random_items(11, 160);
    let refs: Vec<_> = items.iter().map(common::Owned::item).collect();
    let want = common::cpu().ed25519(&refs);
    assert_eq!(d.ed25519_verify_batch(&refs[..60]), want[..60]);
    assert_eq!(d.ed25519_verify_batch(&refs), want);
    let ops = |kind| {
        d.counters()
            .into_iter()
            .find(|c| c.backend == kind && c.op == Op::Ed25519)
            .map(|c| (c.ops_total, c.items_total, c.fallbacks_total))
    };
    assert_eq!(ops(BackendKind::Cpu), Some((1, 60, 0)));
    assert_eq!(ops(BackendKind::Wgpu), Some((1, 160, 0)));
}

/// A real device error — here a submission that outlives the configured timeout — is
/// answered by the CPU and counted.
#[test]
fn a_device_timeout_falls_back_to_the_cpu() {
    let Some(_) = backend() else { return };
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Wgpu)).unwrap();
    d.register(Arc::new(WgpuBackend::new(&WgpuConfig {
        timeout_ms: 1,
        ..WgpuConfig::default()
    })))
    .unwrap();
    let items = common::random_items(12, 400);
    let refs: Vec<_> = items.iter().map(common::Owned::item).collect();
    assert_eq!(d.ed25519_verify_batch(&refs), common::cpu().ed25519(&refs));
    let c = d
        .counters()
        .into_iter()
        .find(|c| c.backend == BackendKind::Wgpu && c.op == Op::Ed25519)
        .unwrap();
    // 400 verifications take lavapipe far longer than a millisecond; a fast GPU may
    // finish in time, and then the call simply ran on it.
    let software = d
        .backend(BackendKind::Wgpu)
        .is_some_and(|w| w.info().device.contains("software"));
    if software {
        assert_eq!((c.ops_total, c.errors_total, c.fallbacks_total), (0, 1, 1));
    } else {
        assert_eq!(c.ops_total + c.fallbacks_total, 1);
    }
}

#[test]
fn an_adapter_that_does_not_exist_is_reported() {
    let b = WgpuBackend::new(&WgpuConfig {
        adapter: "no such adapter 1234".into(),
        ..WgpuConfig::default()
    });
    assert!(!b.info().available);
    let reason = b.info().unavailable_reason.unwrap();
    assert!(
        reason.contains("no such adapter 1234") || reason.contains("no adapter"),
        "{reason}"
    );
}
