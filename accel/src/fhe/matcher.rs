//! [`TfheMatcher`]: the appliance side — the key cache, input validation and the jobs.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::prelude::*;
use tfhe::{CompactCiphertextList, CompressedServerKey, FheBool, FheTypes, FheUint8, FheUint32};

use super::circuit::{Driver, Rider, arg_min, distance};
use super::keys::guard;
use super::{MAX_INPUT_BYTES, MAX_RESULT_BYTES, PARAMETERS, deserialize, serialize};
use crate::backend::FheMatcher;
use crate::matching::{
    FheError, FheInfo, FheJob, FheKeyInfo, FheOutput, FheTask, KeyId, MAX_DRIVERS, Progress,
};

/// Where the matcher computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FheDevice {
    /// The host CPU, spread over a rayon pool.
    #[default]
    Cpu,
    /// An NVIDIA GPU through TFHE-rs's CUDA backend (cargo feature `fhe-gpu`).
    Cuda,
}

impl FheDevice {
    /// `cpu` or `cuda`.
    pub fn as_str(self) -> &'static str {
        match self {
            FheDevice::Cpu => "cpu",
            FheDevice::Cuda => "cuda",
        }
    }
}

impl fmt::Display for FheDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FheDevice {
    type Err = FheError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(FheDevice::Cpu),
            "cuda" => Ok(FheDevice::Cuda),
            other => Err(FheError::Malformed(format!(
                "unknown FHE device {other:?}: expected cpu or cuda"
            ))),
        }
    }
}

/// Settings of a [`TfheMatcher`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FheConfig {
    /// Where to compute.
    pub device: FheDevice,
    /// Threads a job is spread over on the CPU; 0 uses every core.
    pub threads: usize,
    /// Most bytes of loaded server keys; the least recently used key is dropped to make
    /// room (a job that holds it keeps it until it ends).
    pub max_key_cache_bytes: u64,
    /// Largest serialized compressed server key accepted.
    pub max_key_bytes: u64,
    /// Most drivers or records in one job (at most 256 drivers).
    pub max_items: usize,
}

impl Default for FheConfig {
    fn default() -> Self {
        Self {
            device: FheDevice::Cpu,
            threads: 0,
            max_key_cache_bytes: 1 << 30,
            max_key_bytes: 256 << 20,
            max_items: 256,
        }
    }
}

/// A loaded server key.
struct LoadedKey {
    info: FheKeyInfo,
    tag: Vec<u8>,
    key: DeviceKey,
}

#[derive(Clone)]
enum DeviceKey {
    Cpu(tfhe::ServerKey),
    #[cfg(feature = "fhe-gpu")]
    Cuda(tfhe::CudaServerKey),
}

impl DeviceKey {
    fn set_on_this_thread(&self) {
        match self {
            DeviceKey::Cpu(k) => tfhe::set_server_key(k.clone()),
            #[cfg(feature = "fhe-gpu")]
            DeviceKey::Cuda(k) => tfhe::set_server_key(k.clone()),
        }
    }
}

#[derive(Default)]
struct Cache {
    keys: HashMap<KeyId, (Arc<LoadedKey>, u64)>,
    bytes: u64,
    clock: u64,
}

impl Cache {
    fn get(&mut self, id: &KeyId) -> Option<Arc<LoadedKey>> {
        self.clock += 1;
        let clock = self.clock;
        self.keys.get_mut(id).map(|(k, used)| {
            *used = clock;
            k.clone()
        })
    }

    fn insert(&mut self, key: Arc<LoadedKey>, bound: u64) {
        let size = key.info.loaded_bytes;
        while self.bytes + size > bound {
            let Some(oldest) = self
                .keys
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((old, _)) = self.keys.remove(&oldest) {
                self.bytes -= old.info.loaded_bytes;
                tracing::info!(key = %oldest, "fhe key dropped from the cache to make room");
            }
        }
        self.clock += 1;
        self.bytes += size;
        self.keys.insert(key.info.id, (key, self.clock));
    }
}

/// The TFHE-rs matcher: loads server keys, validates ciphertexts and runs jobs on a
/// rayon pool (see the [module docs](super) for the threading rule).
pub struct TfheMatcher {
    config: FheConfig,
    pool: rayon::ThreadPool,
    threads: usize,
    cache: Mutex<Cache>,
    /// Held while a job owns the pool's thread-local server keys.
    running: Mutex<()>,
}

impl fmt::Debug for TfheMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TfheMatcher")
            .field("config", &self.config)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holding these locks can leave them inconsistent: a panic inside a job is
    // caught before it reaches them.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TfheMatcher {
    /// A matcher with `config`. Fails when the device is not built in.
    pub fn new(config: FheConfig) -> Result<Self, FheError> {
        if config.max_items == 0 || config.max_key_cache_bytes == 0 || config.max_key_bytes == 0 {
            return Err(FheError::Malformed(
                "fhe.max_items, fhe.max_key_cache_bytes and fhe.max_key_bytes must be positive"
                    .into(),
            ));
        }
        let threads = match config.device {
            FheDevice::Cpu => config.threads,
            // The CUDA backend runs a job on one host thread that drives the GPU's streams.
            FheDevice::Cuda => {
                if !cfg!(feature = "fhe-gpu") {
                    return Err(FheError::Unavailable(
                        "fhe.device = \"cuda\" needs a cpchain built with the `fhe-gpu` feature \
                         (cargo build --features cpc-accel/fhe-gpu, with the CUDA toolkit)"
                            .into(),
                    ));
                }
                1
            }
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cpc-fhe-{i}"))
            .build()
            .map_err(|e| FheError::Unavailable(format!("cannot start the FHE threads: {e}")))?;
        Ok(Self {
            threads: pool.current_num_threads(),
            config,
            pool,
            cache: Mutex::new(Cache::default()),
            running: Mutex::new(()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &FheConfig {
        &self.config
    }

    fn read_key(&self, bytes: &[u8]) -> Result<CompressedServerKey, FheError> {
        let limit = self.config.max_key_bytes;
        if bytes.len() as u64 > limit {
            return Err(FheError::TooLarge(format!(
                "the server key is {} bytes, more than fhe.max_key_bytes ({limit})",
                bytes.len()
            )));
        }
        deserialize(bytes, limit, &super::tfhe_config().into(), "the server key")
    }

    fn loaded(&self, id: &KeyId) -> Result<Arc<LoadedKey>, FheError> {
        lock(&self.cache).get(id).ok_or(FheError::UnknownKey(*id))
    }

    fn decompress(&self, key: &CompressedServerKey) -> Result<DeviceKey, FheError> {
        match self.config.device {
            FheDevice::Cpu => guard(|| DeviceKey::Cpu(key.decompress())),
            #[cfg(feature = "fhe-gpu")]
            FheDevice::Cuda => guard(|| DeviceKey::Cuda(key.decompress_to_gpu())),
            #[cfg(not(feature = "fhe-gpu"))]
            FheDevice::Cuda => Err(FheError::Unavailable("built without `fhe-gpu`".into())),
        }
    }

    /// Deserializes and checks the participants' lists of a job.
    fn parse(&self, job: &FheJob, key: &LoadedKey) -> Result<Inputs, FheError> {
        let list = |bytes: &[u8], kinds: &[FheTypes], what: &dyn Fn() -> String| {
            parse_list(bytes, kinds, &key.tag, what)
        };
        let max = self.config.max_items;
        match &job.task {
            FheTask::Nearest { rider, drivers } => {
                let max = max.min(MAX_DRIVERS);
                check_count(drivers.len(), max, "drivers")?;
                let rider = list(rider, RIDER, &|| "the rider".into())?;
                let drivers = drivers
                    .iter()
                    .enumerate()
                    .map(|(i, d)| list(d, DRIVER, &|| format!("driver {i}")))
                    .collect::<Result<_, _>>()?;
                Ok(Inputs::Nearest { rider, drivers })
            }
            FheTask::Search { query, records } => {
                check_count(records.len(), max, "records")?;
                let query = list(query, TAG, &|| "the query".into())?;
                let records = records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| list(r, TAG, &|| format!("record {i}")))
                    .collect::<Result<_, _>>()?;
                Ok(Inputs::Search { query, records })
            }
        }
    }

    /// Runs `f` on the pool with `key` set on every pool thread, one job at a time.
    fn with_key<R: Send>(&self, key: &LoadedKey, f: impl FnOnce() -> R + Send) -> R {
        let _running = lock(&self.running);
        struct Unset<'a>(&'a rayon::ThreadPool);
        impl Drop for Unset<'_> {
            fn drop(&mut self) {
                self.0.broadcast(|_| tfhe::unset_server_key());
            }
        }
        self.pool.broadcast(|_| key.key.set_on_this_thread());
        let _unset = Unset(&self.pool);
        self.pool.install(f)
    }
}

const RIDER: &[FheTypes] = &[FheTypes::Uint8, FheTypes::Uint8];
const DRIVER: &[FheTypes] = &[FheTypes::Uint8, FheTypes::Uint8, FheTypes::Bool];
const TAG: &[FheTypes] = &[FheTypes::Uint32];

enum Inputs {
    Nearest {
        rider: CompactCiphertextList,
        drivers: Vec<CompactCiphertextList>,
    },
    Search {
        query: CompactCiphertextList,
        records: Vec<CompactCiphertextList>,
    },
}

fn check_count(n: usize, max: usize, what: &str) -> Result<(), FheError> {
    if n == 0 {
        return Err(FheError::Malformed(format!("the job has no {what}")));
    }
    if n > max {
        return Err(FheError::TooLarge(format!(
            "{n} {what} in one job, the limit is {max}"
        )));
    }
    Ok(())
}

fn parse_list(
    bytes: &[u8],
    kinds: &[FheTypes],
    tag: &[u8],
    what: &dyn Fn() -> String,
) -> Result<CompactCiphertextList, FheError> {
    let params = tfhe::CompactCiphertextListConformanceParams::from_parameters_and_size_constraint(
        super::pke_parameters(),
        tfhe::conformance::ListSizeConstraint::exact_size(kinds.len()),
    );
    let list: CompactCiphertextList = deserialize(bytes, MAX_INPUT_BYTES, &params, &what())
        .map_err(|e| match e {
            FheError::Malformed(m) => FheError::Malformed(format!(
                "{m} (expected a packed list of {})",
                describe(kinds)
            )),
            other => other,
        })?;
    if list.tag().data() != tag {
        return Err(FheError::WrongKey(format!(
            "{} was encrypted under key set {}, not {}: encrypt with this key set's public key",
            what(),
            hex::encode(list.tag().data()),
            hex::encode(tag)
        )));
    }
    let found: Vec<Option<FheTypes>> = (0..list.len()).map(|i| list.get_kind_of(i)).collect();
    if found.iter().zip(kinds).any(|(f, k)| *f != Some(*k)) {
        return Err(FheError::Malformed(format!(
            "{} holds {} where {} is expected",
            what(),
            found
                .iter()
                .map(|f| f.map_or_else(|| "?".to_owned(), |k| format!("{k:?}")))
                .collect::<Vec<_>>()
                .join(", "),
            describe(kinds)
        )));
    }
    Ok(list)
}

fn describe(kinds: &[FheTypes]) -> String {
    kinds
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values of an expanded list, in order; the list was checked by `parse_list`.
fn expand<T>(list: &CompactCiphertextList, index: usize) -> Result<T, FheError>
where
    T: tfhe::HlExpandable + Tagged,
{
    list.expand()
        .and_then(|e| e.get::<T>(index))
        .map_err(|e| FheError::Failed(format!("cannot expand a ciphertext: {e}")))?
        .ok_or_else(|| FheError::Failed("an expanded list lost a value".into()))
}

fn expand_rider(list: &CompactCiphertextList) -> Result<Rider, FheError> {
    let e = list
        .expand()
        .map_err(|e| FheError::Failed(format!("cannot expand the rider: {e}")))?;
    let get = |i| {
        e.get::<FheUint8>(i)
            .map_err(|e| FheError::Failed(format!("cannot expand the rider: {e}")))?
            .ok_or_else(|| FheError::Failed("the rider list lost a value".into()))
    };
    Ok(Rider {
        x: get(0)?,
        y: get(1)?,
    })
}

fn expand_driver(list: &CompactCiphertextList) -> Result<Driver, FheError> {
    let e = list
        .expand()
        .map_err(|e| FheError::Failed(format!("cannot expand a driver: {e}")))?;
    let fail = || FheError::Failed("a driver list lost a value".into());
    let err = |e: tfhe::Error| FheError::Failed(format!("cannot expand a driver: {e}"));
    Ok(Driver {
        x: e.get::<FheUint8>(0).map_err(err)?.ok_or_else(fail)?,
        y: e.get::<FheUint8>(1).map_err(err)?.ok_or_else(fail)?,
        available: e.get::<FheBool>(2).map_err(err)?.ok_or_else(fail)?,
    })
}

impl FheMatcher for TfheMatcher {
    fn info(&self) -> FheInfo {
        let cache = lock(&self.cache);
        let mut keys: Vec<_> = cache.keys.values().collect();
        keys.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        FheInfo {
            device: self.config.device.to_string(),
            parameters: PARAMETERS.into(),
            threads: self.threads,
            max_items: self.config.max_items,
            max_key_cache_bytes: self.config.max_key_cache_bytes,
            key_cache_bytes: cache.bytes,
            keys: keys.into_iter().map(|(k, _)| k.info.clone()).collect(),
        }
    }

    fn check_key(&self, bytes: &[u8]) -> Result<KeyId, FheError> {
        self.read_key(bytes).map(drop)?;
        Ok(KeyId::of(bytes))
    }

    fn load_key(&self, bytes: &[u8]) -> Result<FheKeyInfo, FheError> {
        let id = KeyId::of(bytes);
        if let Some(k) = lock(&self.cache).get(&id) {
            return Ok(k.info.clone());
        }
        let compressed = self.read_key(bytes)?;
        let tag = compressed.tag().data().to_vec();
        let key = self.decompress(&compressed)?;
        drop(compressed);
        let loaded_bytes = match &key {
            DeviceKey::Cpu(k) => tfhe::safe_serialization::safe_serialized_size(k)
                .map_err(|e| FheError::Failed(format!("cannot size the server key: {e}")))?,
            #[cfg(feature = "fhe-gpu")]
            // Device memory; the host keeps no copy.
            DeviceKey::Cuda(_) => 0,
        };
        let bound = self.config.max_key_cache_bytes;
        if loaded_bytes > bound {
            return Err(FheError::TooLarge(format!(
                "the loaded server key takes {loaded_bytes} bytes, more than \
                 fhe.max_key_cache_bytes ({bound})"
            )));
        }
        let info = FheKeyInfo {
            id,
            tag: hex::encode(&tag),
            compressed_bytes: bytes.len() as u64,
            loaded_bytes,
        };
        tracing::info!(key = %id, tag = %info.tag, loaded_bytes, "fhe server key loaded");
        lock(&self.cache).insert(
            Arc::new(LoadedKey {
                info: info.clone(),
                tag,
                key,
            }),
            bound,
        );
        Ok(info)
    }

    fn key_info(&self, id: &KeyId) -> Option<FheKeyInfo> {
        lock(&self.cache).get(id).map(|k| k.info.clone())
    }

    fn validate(&self, job: &FheJob) -> Result<(), FheError> {
        let key = self.loaded(&job.key)?;
        self.parse(job, &key).map(drop)
    }

    fn run(
        &self,
        job: &FheJob,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<FheOutput, FheError> {
        let key = self.loaded(&job.key)?;
        let inputs = self.parse(job, &key)?;
        let total = job.task.steps();
        let done = AtomicU64::new(0);
        let step = || {
            let done = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress { done, total });
        };
        progress(Progress { done: 0, total });
        self.with_key(&key, || guard(|| compute(&inputs, &step)))?
    }
}

fn compute(inputs: &Inputs, step: &(dyn Fn() + Sync)) -> Result<FheOutput, FheError> {
    match inputs {
        Inputs::Nearest { rider, drivers } => {
            let rider = expand_rider(rider)?;
            let candidates = drivers
                .par_iter()
                .enumerate()
                .map(|(i, list)| {
                    let driver = expand_driver(list)?;
                    let d = distance(&rider, &driver);
                    // Indices are public: a trivial (noiseless) encryption.
                    let index = FheUint8::encrypt_trivial(i as u8);
                    step();
                    Ok((d, index))
                })
                .collect::<Result<Vec<_>, FheError>>()?;
            let (distance, index) = arg_min(candidates, step)
                .ok_or_else(|| FheError::Malformed("the job has no drivers".into()))?;
            Ok(FheOutput::Nearest {
                index: serialize(&index, MAX_RESULT_BYTES)?,
                distance: serialize(&distance, MAX_RESULT_BYTES)?,
            })
        }
        Inputs::Search { query, records } => {
            let query: FheUint32 = expand(query, 0)?;
            let matches = records
                .par_iter()
                .map(|list| {
                    let record: FheUint32 = expand(list, 0)?;
                    let flag = query.eq(&record);
                    step();
                    serialize(&flag, MAX_RESULT_BYTES)
                })
                .collect::<Result<_, _>>()?;
            Ok(FheOutput::Search { matches })
        }
    }
}
