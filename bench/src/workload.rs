//! The inputs of each benchmarked operation, generated from a fixed seed.

use std::fmt;
use std::str::FromStr;

use cpc_accel::{Accelerator, Digest, SigItem, cpu, merkle};
use ed25519_consensus::SigningKey;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::BenchError;

/// One benchmarked operation and the shape of its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Workload {
    /// SHA-256 of 64-byte messages (transaction-sized).
    #[serde(rename = "sha256-64b")]
    Sha256Small,
    /// SHA-256 of 16 KiB messages (block- and chunk-sized).
    #[serde(rename = "sha256-16kib")]
    Sha256Large,
    /// The Merkle root of a list of 32-byte leaves.
    #[serde(rename = "merkle")]
    Merkle,
    /// ZIP-215 verification of valid Ed25519 signatures over 100-byte messages.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 4] = [
        Workload::Sha256Small,
        Workload::Sha256Large,
        Workload::Merkle,
        Workload::Ed25519,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Sha256Small => "sha256-64b",
            Workload::Sha256Large => "sha256-16kib",
            Workload::Merkle => "merkle",
            Workload::Ed25519 => "ed25519",
        }
    }

    /// Bytes hashed per item, for the workloads where bytes per second mean something.
    pub fn item_bytes(self) -> Option<usize> {
        match self {
            Workload::Sha256Small => Some(64),
            Workload::Sha256Large => Some(16 * 1024),
            Workload::Merkle | Workload::Ed25519 => None,
        }
    }

    /// The unit counted by throughput figures.
    pub fn item_unit(self) -> &'static str {
        match self {
            Workload::Sha256Small | Workload::Sha256Large => "hashes",
            Workload::Merkle => "leaves",
            Workload::Ed25519 => "signatures",
        }
    }

    /// Inputs for batches of up to `n` items.
    pub fn generate(self, n: usize) -> WorkloadData {
        let mut rng = ChaCha20Rng::seed_from_u64(0xC9C_0001);
        match self {
            Workload::Sha256Small | Workload::Sha256Large => {
                let len = self.item_bytes().unwrap_or(64);
                let msgs = (0..n)
                    .map(|_| {
                        let mut m = vec![0u8; len];
                        rng.fill_bytes(&mut m);
                        m
                    })
                    .collect();
                WorkloadData::Messages(msgs)
            }
            Workload::Merkle => WorkloadData::Leaves(
                (0..n)
                    .map(|_| {
                        let mut l = [0u8; 32];
                        rng.fill_bytes(&mut l);
                        l
                    })
                    .collect(),
            ),
            Workload::Ed25519 => WorkloadData::Signatures(
                (0..n)
                    .map(|_| {
                        let sk = SigningKey::new(&mut rng);
                        let mut msg = vec![0u8; 100];
                        rng.fill_bytes(&mut msg);
                        let sig = sk.sign(&msg).to_bytes();
                        (sk.verification_key().to_bytes(), sig, msg)
                    })
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| BenchError::UnknownWorkload(s.to_owned()))
    }
}

/// Generated inputs.
#[derive(Clone, Debug)]
pub enum WorkloadData {
    /// Messages to hash.
    Messages(Vec<Vec<u8>>),
    /// Merkle leaves.
    Leaves(Vec<Digest>),
    /// Public key, signature, message.
    Signatures(Vec<([u8; 32], [u8; 64], Vec<u8>)>),
}

impl WorkloadData {
    /// Runs the first `n` items as one batch on `backend`; `Err` carries the device error.
    pub fn run_batch(&self, backend: &dyn Accelerator, n: usize) -> Result<usize, String> {
        match self {
            WorkloadData::Messages(m) => {
                let refs: Vec<&[u8]> = m[..n].iter().map(Vec::as_slice).collect();
                backend
                    .sha256_batch(&refs)
                    .map(|v| v.len())
                    .map_err(|e| e.to_string())
            }
            WorkloadData::Leaves(l) => backend
                .merkle_root(&l[..n])
                .map(|_| n)
                .map_err(|e| e.to_string()),
            WorkloadData::Signatures(s) => {
                let items = sig_items(&s[..n]);
                let verdicts = backend
                    .ed25519_verify_batch(&items)
                    .map_err(|e| e.to_string())?;
                // Every generated signature is valid: a fast wrong answer is no result.
                if verdicts.len() != n || !verdicts.iter().all(|ok| *ok) {
                    return Err("wrong verdicts on valid signatures".into());
                }
                Ok(n)
            }
        }
    }

    /// Runs the first `n` items one at a time on the calling thread with the CPU reference:
    /// the baseline every speedup is measured against.
    pub fn run_one_at_a_time(&self, n: usize) -> usize {
        match self {
            WorkloadData::Messages(m) => {
                for x in &m[..n] {
                    std::hint::black_box(cpu::sha256_one(x));
                }
                n
            }
            // A Merkle root has no "one item"; its baseline is the sequential reference.
            WorkloadData::Leaves(l) => {
                std::hint::black_box(merkle::reference_root(&l[..n]));
                n
            }
            WorkloadData::Signatures(s) => sig_items(&s[..n])
                .iter()
                .filter(|it| cpu::ed25519_verify_one(it))
                .count(),
        }
    }
}

fn sig_items(s: &[([u8; 32], [u8; 64], Vec<u8>)]) -> Vec<SigItem<'_>> {
    s.iter()
        .map(|(pk, sig, msg)| SigItem {
            public_key: *pk,
            signature: *sig,
            message: msg,
        })
        .collect()
}
