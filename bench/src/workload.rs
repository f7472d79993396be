//! The inputs of each benchmarked operation, generated from a fixed seed.

use std::fmt;
use std::str::FromStr;

use cpc_accel::{
    Accelerator, Digest, Op, SigItem, cpu, ed25519_split, merkle, merkle_split, sha256_split,
};
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

    /// The accelerator operation the workload exercises.
    pub fn op(self) -> Op {
        match self {
            Workload::Sha256Small | Workload::Sha256Large => Op::Sha256,
            Workload::Merkle => Op::Merkle,
            Workload::Ed25519 => Op::Ed25519,
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
    /// Items generated.
    pub fn len(&self) -> usize {
        match self {
            WorkloadData::Messages(m) => m.len(),
            WorkloadData::Leaves(l) => l.len(),
            WorkloadData::Signatures(s) => s.len(),
        }
    }

    /// Whether nothing was generated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` items as one batch, prepared so that timing a run measures the
    /// operation and not the set-up.
    pub fn batch(&self, n: usize) -> Result<Batch<'_>, BenchError> {
        if n > self.len() {
            return Err(BenchError::TooFewInputs {
                wanted: n,
                generated: self.len(),
            });
        }
        Ok(match self {
            WorkloadData::Messages(m) => {
                Batch::Messages(m[..n].iter().map(Vec::as_slice).collect())
            }
            WorkloadData::Leaves(l) => Batch::Leaves(&l[..n]),
            WorkloadData::Signatures(s) => Batch::Signatures(sig_items(&s[..n])),
        })
    }
}

/// A prepared batch of inputs.
#[derive(Debug)]
pub enum Batch<'a> {
    /// Messages to hash.
    Messages(Vec<&'a [u8]>),
    /// Merkle leaves.
    Leaves(&'a [Digest]),
    /// Signatures to verify (all valid).
    Signatures(Vec<SigItem<'a>>),
}

impl Batch<'_> {
    /// Items in the batch.
    pub fn len(&self) -> usize {
        match self {
            Batch::Messages(m) => m.len(),
            Batch::Leaves(l) => l.len(),
            Batch::Signatures(s) => s.len(),
        }
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the batch on `backend` in calls of at most its `max_batch`; `Err` carries the
    /// device error or a wrong answer.
    pub fn run(&self, backend: &dyn Accelerator, max: usize) -> Result<usize, String> {
        let n = self.len();
        match self {
            Batch::Messages(m) => sha256_split(backend, m, max)
                .map(|v| std::hint::black_box(v).len())
                .map_err(|e| e.to_string()),
            Batch::Leaves(l) => merkle_split(backend, l, max)
                .map(|r| {
                    std::hint::black_box(r);
                    n
                })
                .map_err(|e| e.to_string()),
            Batch::Signatures(items) => {
                let verdicts = ed25519_split(backend, items, max).map_err(|e| e.to_string())?;
                // Every generated signature is valid: a fast wrong answer is no result.
                if verdicts.len() != n || !verdicts.iter().all(|ok| *ok) {
                    return Err("wrong verdicts on valid signatures".into());
                }
                Ok(n)
            }
        }
    }

    /// Runs the batch once on `backend` and compares the answer with the CPU backend's;
    /// `Err` names the device error or the first difference.
    pub fn check(
        &self,
        backend: &dyn Accelerator,
        max: usize,
        cpu: &cpu::CpuBackend,
    ) -> Result<(), String> {
        let same = match self {
            Batch::Messages(m) => {
                sha256_split(backend, m, max).map_err(|e| e.to_string())? == cpu.sha256(m)
            }
            Batch::Leaves(l) => {
                merkle_split(backend, l, max).map_err(|e| e.to_string())? == cpu.merkle(l)
            }
            Batch::Signatures(items) => {
                ed25519_split(backend, items, max).map_err(|e| e.to_string())? == cpu.ed25519(items)
            }
        };
        if same {
            Ok(())
        } else {
            Err("the device's answer differs from the cpu backend's".into())
        }
    }

    /// Runs the batch one item at a time on the calling thread with the CPU reference: the
    /// baseline every speedup is measured against. A Merkle tree has no "one item"; its
    /// baseline is the sequential reference implementation over the same leaves.
    pub fn run_one_at_a_time(&self) -> usize {
        match self {
            Batch::Messages(m) => {
                for x in m {
                    std::hint::black_box(cpu::sha256_one(x));
                }
                m.len()
            }
            Batch::Leaves(l) => {
                std::hint::black_box(merkle::reference_root(l));
                l.len()
            }
            Batch::Signatures(items) => items
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
