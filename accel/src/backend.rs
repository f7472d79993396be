//! The backend trait and the types every backend shares.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{AccelError, Digest};

/// One signature to check: a 32-byte public key `A`, a 64-byte signature `R || S` and the
/// signed message. Lengths are fixed by the type; a caller that receives keys or
/// signatures of another length has a malformed input, not an invalid signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigItem<'a> {
    /// The encoded public key `A`.
    pub public_key: [u8; 32],
    /// The signature: encoded `R` followed by the scalar `S`, little-endian.
    pub signature: [u8; 64],
    /// The signed message.
    pub message: &'a [u8],
}

/// The class of device a backend runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The reference backend on the host CPU.
    Cpu,
    /// WGSL compute shaders on any GPU that wgpu drives.
    Wgpu,
    /// CUDA kernels compiled at run time by NVRTC.
    Cuda,
    /// An FPGA running the `hdl` cores, through a transport.
    Fpga,
}

impl BackendKind {
    /// Every kind, in the order the dispatcher prefers devices under `auto`.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Cuda,
        BackendKind::Wgpu,
        BackendKind::Fpga,
        BackendKind::Cpu,
    ];

    /// The lowercase name used in config files, flags and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Fpga => "fpga",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            BackendKind::Cpu => 0,
            BackendKind::Wgpu => 1,
            BackendKind::Cuda => 2,
            BackendKind::Fpga => 3,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = AccelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(BackendKind::Cpu),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            "fpga" => Ok(BackendKind::Fpga),
            other => Err(AccelError::Config(format!(
                "unknown backend {other:?}: expected cpu, wgpu, cuda or fpga"
            ))),
        }
    }
}

/// The operations a backend offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// SHA-256 of each message of a batch.
    Sha256,
    /// The Merkle root of a list of leaves.
    Merkle,
    /// Ed25519 (ZIP-215) verification of each item of a batch.
    Ed25519,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 3] = [Op::Sha256, Op::Merkle, Op::Ed25519];

    /// The name used in config files, flags and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Sha256 => "sha256",
            Op::Merkle => "merkle",
            Op::Ed25519 => "ed25519",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Op::Sha256 => 0,
            Op::Merkle => 1,
            Op::Ed25519 => 2,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a backend is and what it can do, as shown by `cpchain accel list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// Short name, unique among registered backends (for example `cpu`).
    pub name: String,
    /// The class of device.
    pub kind: BackendKind,
    /// Whether the backend can run operations now.
    pub available: bool,
    /// The device it runs on (CPU model, GPU adapter, FPGA board and transport).
    pub device: String,
    /// Hardware or software features in use (for example `sha-ni`, `avx2`).
    pub features: Vec<String>,
    /// The largest batch (messages, leaves or signatures) accepted in one call; `None` when
    /// the backend takes any size.
    pub max_batch: Option<usize>,
    /// Worker threads or compute units the backend spreads a batch over.
    pub parallelism: usize,
    /// Why the backend is unavailable, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
}

/// A device that runs the node's heavy cryptography.
///
/// # Validation rules
///
/// An implementation must uphold these for every input, because the node's consensus relies
/// on every backend answering exactly as the CPU reference does:
///
/// - [`sha256_batch`](Self::sha256_batch) returns one FIPS 180-4 digest per message, in
///   input order. Messages may be empty.
/// - [`merkle_root`](Self::merkle_root) follows the tree rule of [`crate::merkle`] exactly,
///   including the empty and single-leaf cases.
/// - [`ed25519_verify_batch`](Self::ed25519_verify_batch) returns one verdict per item, in
///   input order, and each verdict equals ZIP-215 single verification of that item. A valid
///   signature is never rejected because an invalid one shares its batch.
/// - A call with more than [`BackendInfo::max_batch`] inputs may fail with
///   [`AccelError::BatchTooLarge`]; the dispatcher splits batches so it never makes one.
/// - Errors are for device trouble only (lost device, timeout, out of memory). An invalid
///   signature is a `false` verdict, never an error.
/// - Backends are `Send + Sync` and may be called from several threads at once.
///
/// A backend that breaks a rule is a consensus bug: differential tests compare every
/// backend with [`crate::cpu::CpuBackend`] on random and adversarial inputs.
pub trait Accelerator: Send + Sync {
    /// Describes the backend and whether it can run now.
    fn info(&self) -> BackendInfo;

    /// Whether the backend can run now. Called before every dispatched operation, so a
    /// backend whose [`info`](Self::info) is expensive should override it.
    fn is_available(&self) -> bool {
        self.info().available
    }

    /// SHA-256 of every message.
    fn sha256_batch(&self, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError>;

    /// The Merkle root of `leaves` under the rule of [`crate::merkle`].
    fn merkle_root(&self, leaves: &[Digest]) -> Result<Digest, AccelError>;

    /// ZIP-215 verdict of every item.
    fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError>;
}

/// A device that computes on encrypted data: the homomorphic matching of
/// [`crate::matching`] (nearest available driver, encrypted search) under TFHE.
///
/// The CPU implementation is [`crate::fhe::TfheMatcher`] (feature `fhe`); the same type
/// runs TFHE-rs's CUDA backend with feature `fhe-gpu`.
///
/// # Validation rules
///
/// - A server key is accepted only when it deserializes within the size limit and conforms
///   to the matcher's parameter set; its id is [`crate::matching::KeyId::of`] its bytes.
/// - Every input ciphertext must deserialize within the size limit, conform to the
///   parameter set (packed compact list of exactly the expected element count and types)
///   and carry the tag of the job's key set; anything else is an error that names the
///   offending input, never a panic and never a result.
/// - [`validate`](Self::validate) applies exactly the checks [`run`](Self::run) applies
///   before computing, so a job that validates only fails later on a device fault.
/// - Results decrypt to exactly the plaintext computation of [`crate::matching`]
///   (`nearest_plain`, `search_plain` in `fhe`): correctness does not depend on the
///   device, the thread count or the order drivers finish in.
/// - Implementations are `Send + Sync`; calls may come from several threads.
pub trait FheMatcher: Send + Sync {
    /// The device, parameters and loaded keys.
    fn info(&self) -> crate::matching::FheInfo;

    /// Checks a serialized compressed server key — size, header, parameters — without
    /// loading it (cheap next to [`load_key`](Self::load_key)), and returns its id.
    fn check_key(
        &self,
        compressed_server_key: &[u8],
    ) -> Result<crate::matching::KeyId, crate::matching::FheError>;

    /// Loads a serialized compressed server key (once: a key already held is only
    /// touched) and returns its id. Takes seconds: the key is decompressed.
    fn load_key(
        &self,
        compressed_server_key: &[u8],
    ) -> Result<crate::matching::FheKeyInfo, crate::matching::FheError>;

    /// The loaded key with this id.
    fn key_info(&self, id: &crate::matching::KeyId) -> Option<crate::matching::FheKeyInfo>;

    /// Checks a job's inputs without computing.
    fn validate(&self, job: &crate::matching::FheJob) -> Result<(), crate::matching::FheError>;

    /// Runs a job, reporting progress as steps finish.
    fn run(
        &self,
        job: &crate::matching::FheJob,
        progress: &(dyn Fn(crate::matching::Progress) + Sync),
    ) -> Result<crate::matching::FheOutput, crate::matching::FheError>;
}
