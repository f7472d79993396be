//! Known-answer tests of the CPU reference.

use cpc_accel::cpu::{CpuBackend, CpuConfig, ed25519_verify_one, sha256_one};
use cpc_accel::vectors::{self, selftest};
use cpc_accel::{Accelerator, merkle};

#[test]
fn fips_180_4_examples() {
    for v in vectors::sha256_vectors() {
        assert_eq!(sha256_one(&v.message), v.digest, "{}", v.name);
    }
}

#[test]
fn merkle_roots_match_the_independent_implementation() {
    for v in vectors::merkle_vectors() {
        assert_eq!(
            merkle::reference_root(&v.leaf_values()),
            v.root,
            "{} leaves",
            v.leaves
        );
    }
}

#[test]
fn every_ed25519_vector_has_its_zip215_verdict_singly() {
    let all = vectors::ed25519_vectors();
    assert!(all.len() > 200, "the small-order matrix is missing");
    for v in &all {
        assert_eq!(ed25519_verify_one(&v.item()), v.valid, "{}", v.name);
    }
}

#[test]
fn small_order_encodings_are_distinct_and_fourteen() {
    let mut e = vectors::small_order_encodings();
    e.sort();
    e.dedup();
    assert_eq!(e.len(), 14);
}

#[test]
fn selftest_passes_on_the_cpu_with_one_and_many_threads() {
    for threads in [1, 2, 4] {
        let cpu = CpuBackend::new(CpuConfig { threads }).unwrap();
        let report = selftest(&cpu);
        assert!(report.passed(), "{threads} threads: {:?}", report.failures);
        assert!(report.checked > 200);
    }
}

#[test]
fn cpu_info_reports_features_and_threads() {
    let cpu = CpuBackend::new(CpuConfig { threads: 3 }).unwrap();
    let info = cpu.info();
    assert!(info.available);
    assert_eq!(info.parallelism, 3);
    assert!(info.features.iter().any(|f| f == "ed25519-zip215"));
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        info.features.iter().any(|f| f == "sha-ni"),
        std::arch::is_x86_feature_detected!("sha")
    );
}
