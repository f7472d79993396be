//! What a homomorphic matcher takes and returns: the types behind [`crate::FheMatcher`].
//!
//! They hold ciphertexts as bytes (TFHE-rs's safe serialization), so callers — the API, the
//! job queue — never depend on `tfhe` and the trait exists whether or not the `fhe` feature
//! is built.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The largest coordinate of the grid positions are encrypted on: `0..=GRID_MAX` on each
/// axis. Positions are 8-bit ciphertexts and the Manhattan distance of two grid points,
/// at most `2 * GRID_MAX = 254`, must fit beside [`NO_DRIVER`].
pub const GRID_MAX: u8 = 127;

/// The encrypted distance of the winner when no driver is available: larger than any
/// distance on the grid.
pub const NO_DRIVER: u8 = 255;

/// Most drivers in one nearest-match job (the winner's index is an 8-bit ciphertext).
pub const MAX_DRIVERS: usize = 256;

/// The id of a server key: SHA-256 of its serialized compressed form, so an id names one
/// key and cannot be taken over by uploading another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// The id of the serialized compressed server key `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(bytes).into())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = FheError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(s, &mut id).map_err(|_| {
            FheError::Malformed(format!(
                "key id {s:?} is not 64 hex digits (the id `cpchain fhe keygen` printed)"
            ))
        })?;
        Ok(Self(id))
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A computation over ciphertexts of one key set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FheJob {
    /// The server key to compute with (loaded beforehand).
    pub key: KeyId,
    /// What to compute.
    pub task: FheTask,
}

/// The computations a matcher offers. Every input is a compact ciphertext list made with
/// the key set's compact public key (`cpchain fhe encrypt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FheTask {
    /// The nearest available driver to a rider.
    Nearest {
        /// The rider's position: a list of two 8-bit integers `[x, y]`.
        rider: Vec<u8>,
        /// Each driver's position and availability: `[x: u8, y: u8, available: bool]`.
        drivers: Vec<Vec<u8>>,
    },
    /// Which records carry a tag.
    Search {
        /// The query tag: a list of one 32-bit integer.
        query: Vec<u8>,
        /// Each record's tag: a list of one 32-bit integer.
        records: Vec<Vec<u8>>,
    },
}

impl FheTask {
    /// Steps the computation reports progress in: one per driver or record, plus one per
    /// merge of the arg-min tree.
    pub fn steps(&self) -> u64 {
        match self {
            FheTask::Nearest { drivers, .. } => (2 * drivers.len()).saturating_sub(1) as u64,
            FheTask::Search { records, .. } => records.len() as u64,
        }
    }

    /// The bytes of ciphertext the task holds.
    pub fn size(&self) -> usize {
        match self {
            FheTask::Nearest { rider, drivers } => {
                rider.len() + drivers.iter().map(Vec::len).sum::<usize>()
            }
            FheTask::Search { query, records } => {
                query.len() + records.iter().map(Vec::len).sum::<usize>()
            }
        }
    }

    /// `rideshare` or `search`.
    pub fn kind(&self) -> &'static str {
        match self {
            FheTask::Nearest { .. } => "rideshare",
            FheTask::Search { .. } => "search",
        }
    }
}

/// The encrypted answer of a job, as serialized ciphertexts only the key holder can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FheOutput {
    /// The nearest available driver.
    Nearest {
        /// Its index among the job's drivers (an 8-bit integer; lowest index on ties).
        index: Vec<u8>,
        /// Its Manhattan distance to the rider (an 8-bit integer; [`NO_DRIVER`] when no
        /// driver is available).
        distance: Vec<u8>,
    },
    /// One encrypted boolean per record: whether its tag equals the query.
    Search {
        /// The flags, in record order.
        matches: Vec<Vec<u8>>,
    },
}

/// Progress of a running job: `done` of `total` steps (see [`FheTask::steps`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Steps finished.
    pub done: u64,
    /// Steps in all.
    pub total: u64,
}

/// A server key held by a matcher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FheKeyInfo {
    /// Its id.
    pub id: KeyId,
    /// The key set's tag, hex: every ciphertext made with the set carries it.
    pub tag: String,
    /// Size of the compressed key as uploaded.
    pub compressed_bytes: u64,
    /// Memory the loaded key takes, counted against the cache bound.
    pub loaded_bytes: u64,
}

/// What a matcher is and what it holds, for `/v1/fhe` and `cpchain accel list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FheInfo {
    /// `cpu`, `cuda` or `hpu`.
    pub device: String,
    /// TFHE-rs version and parameter set every key and ciphertext must use.
    pub parameters: String,
    /// Threads a job is spread over (CPU).
    pub threads: usize,
    /// Most drivers or records in one job.
    pub max_items: usize,
    /// Bound on the memory of loaded keys.
    pub max_key_cache_bytes: u64,
    /// Memory the loaded keys take now.
    pub key_cache_bytes: u64,
    /// The loaded keys, most recently used first.
    pub keys: Vec<FheKeyInfo>,
}

/// Why a matcher refused or failed a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FheError {
    /// The job names a key the matcher does not hold.
    #[error("server key {0} is not loaded: upload it first (POST /v1/fhe/keys)")]
    UnknownKey(KeyId),
    /// Bytes that are not a well-formed ciphertext or key of the expected shape and
    /// parameters: truncated, corrupt, another type, other TFHE parameters.
    #[error("{0}")]
    Malformed(String),
    /// A well-formed ciphertext made under another key set.
    #[error("{0}")]
    WrongKey(String),
    /// More items or bytes than the matcher accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The matcher cannot run here (device missing, feature not built).
    #[error("{0}")]
    Unavailable(String),
    /// The computation failed (a device error, or a fault caught instead of a crash).
    #[error("{0}")]
    Failed(String),
}
