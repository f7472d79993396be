//! The CUDA kernels, compiled for the host through `host_shim.h`, behind the CUDA
//! backend's host logic, against the CPU reference; and the real CUDA backend's behaviour
//! on a machine without a device.

mod common;

use std::sync::Arc;

use common::host_cuda::HostLauncher;
use cpc_accel::gpu::cuda::{CudaBackend, CudaConfig};
use cpc_accel::{Accelerator, BackendKind, DispatchConfig, Dispatcher, Op};

/// Small chunks, so the pipelining and the splitting run many rounds.
fn backend() -> CudaBackend<HostLauncher> {
    CudaBackend::with_launcher(
        HostLauncher::start(),
        &CudaConfig {
            chunk: 128,
            ..CudaConfig::default()
        },
    )
}

#[test]
fn field_arithmetic_matches_the_reference() {
    let pairs = common::field::field_inputs(1, 300);
    let out = backend().field_ops(&common::field::pack(&pairs)).unwrap();
    common::field::check_field_ops(&pairs, &out);
}

#[test]
fn sha256_matches_the_cpu() {
    common::assert_same_digests(&backend(), &common::sha_messages(2, 3000));
}

#[test]
fn merkle_roots_match_the_cpu() {
    common::assert_same_roots(&backend(), common::merkle_sizes());
}

#[test]
fn ed25519_random_batches_match_the_cpu() {
    let (valid, invalid) = common::assert_same_verdicts(&backend(), &common::random_items(3, 3000));
    assert!(
        valid > 2000 && invalid > 500,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn ed25519_adversarial_inputs_match_the_cpu() {
    let items = common::adversarial_items(4);
    assert!(items.len() > 1000, "{} adversarial items", items.len());
    let (valid, invalid) = common::assert_same_verdicts(&backend(), &items);
    assert!(
        valid > 100 && invalid > 100,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn known_answers_pass() {
    common::assert_selftest(&backend());
}

#[test]
fn without_a_device_everything_falls_back_to_the_cpu() {
    let cuda = CudaBackend::new(&CudaConfig::default());
    if cuda.info().available {
        return; // a machine with a CUDA device
    }
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Cuda)).unwrap();
    d.register(Arc::new(cuda)).unwrap();
    let items = common::random_items(5, 40);
    let refs: Vec<_> = items.iter().map(common::Owned::item).collect();
    let cpu = common::cpu();
    assert_eq!(d.ed25519_verify_batch(&refs), cpu.ed25519(&refs));
    let msgs: Vec<&[u8]> = vec![b"a", b"bc"];
    assert_eq!(d.sha256_batch(&msgs), cpu.sha256(&msgs));
    let leaves = common::leaves(6, 9);
    assert_eq!(d.merkle_root(&leaves), cpu.merkle(&leaves));
    let fallbacks: u64 = d
        .counters()
        .iter()
        .filter(|c| c.backend == BackendKind::Cuda)
        .map(|c| c.fallbacks_total)
        .sum();
    assert_eq!(fallbacks, 3, "each call fell back once");
    assert_eq!(d.plan(Op::Ed25519, 1_000_000), BackendKind::Cuda);
}
