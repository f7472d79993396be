//! The CPU backend: the reference every other backend is compared with.
//!
//! - SHA-256 comes from `sha2`, which picks the SHA-NI (x86) or ARMv8 SHA2 instructions at
//!   run time when the CPU has them; batches are spread over a rayon pool.
//! - Ed25519 follows ZIP-215, with `ed25519-consensus`'s single verification as the
//!   reference verdict. A batch is cut into one chunk per worker (at most 512 signatures
//!   each) and each chunk is checked with one randomised, cofactored multi-scalar equation
//!   on `curve25519-dalek` 4, whose AVX2 backend is chosen at run time. Items whose
//!   encodings do not decode (a key or R off the curve, s not below the group order) fail
//!   single verification too and stay out of the equation. When a chunk fails it is
//!   bisected, and the suspect parts are checked singly with the reference, so every item
//!   gets the verdict single verification gives it. Decompressed public keys are cached
//!   per worker thread: machines and gateways sign many times, and decompression is half
//!   the cost of a signature in a batch.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_consensus::{Signature, VerificationKey};
use rand_chacha::ChaCha12Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::backend::{Accelerator, BackendInfo, BackendKind, SigItem};
use crate::{AccelError, Digest, merkle};

/// Settings of the CPU backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuConfig {
    /// Worker threads; `0` uses one per available core.
    pub threads: usize,
}

/// Below this many bytes per task, splitting a SHA-256 batch costs more than it saves.
const SHA_TASK_BYTES: usize = 32 * 1024;
/// Levels shorter than this are reduced on the calling thread.
const MERKLE_PAR_LEVEL: usize = 1024;
/// Largest chunk checked by one batch equation; bigger chunks gain little from
/// Pippenger's algorithm and make bisection after a failure more expensive.
const ED_MAX_CHUNK: usize = 512;
/// Chunks this small are checked item by item after a batch failure.
const ED_SINGLE_BELOW: usize = 16;
/// Decompressed public keys kept per thread (about 200 bytes each); the cache is emptied
/// when full, which costs one decompression per key afterwards.
const ED_KEY_CACHE: usize = 16_384;

thread_local! {
    static ED_KEYS: RefCell<HashMap<[u8; 32], EdwardsPoint>> = RefCell::new(HashMap::new());
}

/// The reference backend on the host CPU.
pub struct CpuBackend {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl std::fmt::Debug for CpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuBackend")
            .field("threads", &self.threads)
            .finish()
    }
}

impl CpuBackend {
    /// Starts the worker pool.
    pub fn new(config: CpuConfig) -> Result<Self, AccelError> {
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cpc-accel-cpu-{i}"))
            .build()
            .map_err(|e| AccelError::Config(format!("cannot start {threads} cpu workers: {e}")))?;
        Ok(Self { pool, threads })
    }

    /// Worker threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// SHA-256 of every message; infallible on the CPU.
    pub fn sha256(&self, msgs: &[&[u8]]) -> Vec<Digest> {
        // Padding adds up to a block per message; count it, or batches of tiny messages
        // look cheaper than they are.
        let work: usize = msgs.iter().map(|m| m.len() + 64).sum();
        if self.threads == 1 || msgs.len() < 2 || work < 2 * SHA_TASK_BYTES {
            return msgs.iter().map(|m| sha256_one(m)).collect();
        }
        let min_len = (SHA_TASK_BYTES * msgs.len() / work).max(1);
        self.pool.install(|| {
            msgs.par_iter()
                .with_min_len(min_len)
                .map(|m| sha256_one(m))
                .collect()
        })
    }

    /// The Merkle root of `leaves`; infallible on the CPU.
    pub fn merkle(&self, leaves: &[Digest]) -> Digest {
        if self.threads == 1 || leaves.len() < MERKLE_PAR_LEVEL {
            return merkle::reference_root(leaves);
        }
        self.pool.install(|| {
            let mut level: Vec<Digest> = leaves
                .par_iter()
                .with_min_len(256)
                .map(merkle::leaf_hash)
                .collect();
            while level.len() >= MERKLE_PAR_LEVEL {
                let odd = (level.len() % 2 == 1).then(|| level[level.len() - 1]);
                let mut next: Vec<Digest> = level
                    .par_chunks_exact(2)
                    .with_min_len(256)
                    .map(|p| merkle::node_hash(&p[0], &p[1]))
                    .collect();
                next.extend(odd);
                level = next;
            }
            merkle::root_of_nodes(level)
        })
    }

    /// ZIP-215 verdict of every item; infallible on the CPU.
    pub fn ed25519(&self, items: &[SigItem<'_>]) -> Vec<bool> {
        match items.len() {
            0 => Vec::new(),
            1 => vec![ed25519_verify_one(&items[0])],
            n => {
                let chunk = n.div_ceil(self.threads).clamp(2, ED_MAX_CHUNK);
                if n <= chunk {
                    return verify_chunk(items);
                }
                self.pool.install(|| {
                    items
                        .par_chunks(chunk)
                        .flat_map_iter(verify_chunk)
                        .collect()
                })
            }
        }
    }
}

/// SHA-256 of one message: the one-at-a-time baseline.
pub fn sha256_one(msg: &[u8]) -> Digest {
    Sha256::digest(msg).into()
}

/// SHA-256 of a stream on the calling thread, for inputs too large to hold in a batch.
pub fn sha256_reader(mut r: impl std::io::Read) -> std::io::Result<Digest> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h.finalize().into()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// ZIP-215 single verification of one item: the reference verdict.
pub fn ed25519_verify_one(item: &SigItem<'_>) -> bool {
    VerificationKey::try_from(item.public_key)
        .and_then(|vk| vk.verify(&Signature::from(item.signature), item.message))
        .is_ok()
}

/// A signature decoded for the batch equation: ZIP-215 decodes A and R from any 32-byte
/// y (canonical or not) and requires s below the group order.
struct Prepared<'a> {
    item: &'a SigItem<'a>,
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    /// H(R ‖ A ‖ M), over the encodings as given.
    k: Scalar,
}

/// `None` when an encoding does not decode: single verification rejects such an item too.
fn prepare<'a>(
    item: &'a SigItem<'a>,
    keys: &mut HashMap<[u8; 32], EdwardsPoint>,
) -> Option<Prepared<'a>> {
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&item.signature[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&item.signature[..32]);
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let a = match keys.get(&item.public_key) {
        Some(a) => *a,
        None => {
            let a = CompressedEdwardsY(item.public_key).decompress()?;
            if keys.len() >= ED_KEY_CACHE {
                keys.clear();
            }
            keys.insert(item.public_key, a);
            a
        }
    };
    let k = ed25519_challenge(item);
    Some(Prepared { item, a, r, s, k })
}

/// The challenge `k = SHA-512(R || A || M) mod L` of an item, as ZIP-215 defines it (over
/// the encodings as given, canonical or not).
pub fn ed25519_challenge(item: &SigItem<'_>) -> Scalar {
    let h = sha2::Sha512::new()
        .chain_update(&item.signature[..32])
        .chain_update(item.public_key)
        .chain_update(item.message)
        .finalize();
    Scalar::from_bytes_mod_order_wide(&h.into())
}

fn verify_chunk(items: &[SigItem<'_>]) -> Vec<bool> {
    // The batch coefficients must be unpredictable to whoever chose the signatures; one
    // OS-seeded stream per chunk avoids a system call per item.
    // Without OS randomness a batch equation is unsafe, but single checks need none.
    let Ok(mut rng) = ChaCha12Rng::from_rng(OsRng) else {
        return items.iter().map(ed25519_verify_one).collect();
    };
    let mut at = Vec::with_capacity(items.len());
    let prepared: Vec<Prepared<'_>> = ED_KEYS.with_borrow_mut(|keys| {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = prepare(item, keys)?;
                at.push(i);
                Some(p)
            })
            .collect()
    });
    let mut ok = vec![false; prepared.len()];
    if batch_ok(&prepared, &mut rng) {
        ok.fill(true);
    } else {
        bisect(&prepared, &mut ok, &mut rng);
    }
    let mut verdicts = vec![false; items.len()];
    for (i, v) in at.into_iter().zip(ok) {
        verdicts[i] = v;
    }
    verdicts
}

/// [8]( Σ z_i·R_i + Σ z_i·k_i·A_i − (Σ z_i·s_i)·B ) = 0 for random 128-bit z_i: holds
/// when every item meets the cofactored equation, and otherwise with probability 2⁻¹²⁸.
fn batch_ok(items: &[Prepared<'_>], rng: &mut ChaCha12Rng) -> bool {
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut b = Scalar::ZERO;
    for p in items {
        let z = Scalar::from((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()));
        b -= z * p.s;
        scalars.push(z);
        points.push(p.r);
        scalars.push(z * p.k);
        points.push(p.a);
    }
    scalars.push(b);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

fn singles(items: &[Prepared<'_>], verdicts: &mut [bool]) {
    for (p, v) in items.iter().zip(verdicts.iter_mut()) {
        *v = ed25519_verify_one(p.item);
    }
}

/// Finds the bad items of a chunk whose batch equation failed. Each half is batch-checked;
/// a half that fails is searched further, unless both halves failed: then bad items are
/// dense and single checks are cheaper than more batches. An adversary filling a batch
/// with bad signatures so costs at most about twice what single verification costs.
fn bisect(items: &[Prepared<'_>], verdicts: &mut [bool], rng: &mut ChaCha12Rng) {
    if items.len() < ED_SINGLE_BELOW {
        singles(items, verdicts);
        return;
    }
    let mid = items.len() / 2;
    let (left, right) = items.split_at(mid);
    let (left_v, right_v) = verdicts.split_at_mut(mid);
    let left_ok = batch_ok(left, rng);
    let right_ok = batch_ok(right, rng);
    match (left_ok, right_ok) {
        (true, true) => {
            // Only possible if the whole-chunk failure was a false negative of the
            // randomised check, which cannot happen for valid items; check singly.
            singles(items, verdicts);
        }
        (true, false) => {
            left_v.fill(true);
            bisect(right, right_v, rng);
        }
        (false, true) => {
            right_v.fill(true);
            bisect(left, left_v, rng);
        }
        (false, false) => {
            singles(left, left_v);
            singles(right, right_v);
        }
    }
}

/// CPU features that speed up this backend, as reported by `cpchain accel list`.
pub fn cpu_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut features = Vec::new();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("sha") {
            features.push("sha-ni".to_owned());
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            features.push("avx2".to_owned());
        }
        if std::arch::is_x86_feature_detected!("bmi2") {
            features.push("bmi2".to_owned());
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("sha2") {
            features.push("armv8-sha2".to_owned());
        }
    }
    features
}

impl Accelerator for CpuBackend {
    fn info(&self) -> BackendInfo {
        let mut features = cpu_features();
        features.push("ed25519-zip215".to_owned());
        BackendInfo {
            name: "cpu".to_owned(),
            kind: BackendKind::Cpu,
            available: true,
            device: format!(
                "host {} CPU, {} worker threads",
                std::env::consts::ARCH,
                self.threads
            ),
            features,
            max_batch: None,
            parallelism: self.threads,
            unavailable_reason: None,
        }
    }

    fn sha256_batch(&self, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError> {
        Ok(self.sha256(msgs))
    }

    fn merkle_root(&self, leaves: &[Digest]) -> Result<Digest, AccelError> {
        Ok(self.merkle(leaves))
    }

    fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        Ok(self.ed25519(items))
    }
}
