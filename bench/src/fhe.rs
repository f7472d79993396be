//! The homomorphic matching benchmark behind `cpchain fhe bench`.
//!
//! For each thread count it measures, in one run on one key set:
//!
//! - the **raw TFHE-rs operations** the pipeline is made of (expanding a participant's
//!   list, overflowing subtraction, negation, select, addition, select with a clear value,
//!   comparison, equality, trivial encryption), each called directly on expanded
//!   ciphertexts, median of several calls;
//! - the **pipeline**: [`TfheMatcher::run`] on serialized inputs — deserialization,
//!   conformance and tag checks, expansion, the circuit, the arg-min tree, progress,
//!   serialization of the result — for each job size;
//! - the **sum of the raw operations** the pipeline performs for that job size (the
//!   counts are fixed by the circuit), and the overhead `pipeline / sum - 1`. On one
//!   thread it is the cost of everything that is not TFHE; with more threads the
//!   pipeline also overlaps independent operations, so the ratio drops below 1;
//! - the **speedup** of each job from one thread to the most threads measured.

use std::fmt::Write as _;
use std::time::Instant;

use cpc_accel::FheMatcher;
use cpc_accel::fhe::{Encryptor, FheConfig, TfheMatcher, generate_keys};
use cpc_accel::matching::{FheJob, FheTask, KeyId};
use serde::{Deserialize, Serialize};
use tfhe::prelude::*;
use tfhe::{CompactCiphertextList, CompressedServerKey, FheBool, FheUint8, FheUint32};

/// What to measure.
#[derive(Clone, Debug)]
pub struct FheBenchConfig {
    /// Drivers per nearest-match job.
    pub drivers: Vec<usize>,
    /// Records per search job.
    pub records: Vec<usize>,
    /// Thread counts (the first is the speedup baseline).
    pub threads: Vec<usize>,
    /// Calls per raw operation (the median is kept).
    pub op_samples: usize,
}

impl Default for FheBenchConfig {
    fn default() -> Self {
        Self {
            drivers: vec![4, 16, 64],
            records: vec![16, 256],
            threads: vec![1, 2],
            op_samples: 7,
        }
    }
}

/// The median latency of one raw operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpRow {
    /// Operation.
    pub op: String,
    /// Threads of the pool it ran in.
    pub threads: usize,
    /// Median latency, milliseconds.
    pub ms: f64,
}

/// One job size at one thread count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRow {
    /// `rideshare` or `search`.
    pub kind: String,
    /// Drivers or records.
    pub items: usize,
    /// Threads.
    pub threads: usize,
    /// Pipeline latency (best of the runs), milliseconds.
    pub ms: f64,
    /// Runs measured.
    pub runs: usize,
    /// Sum of the raw operations the job performs, at the same thread count, ms.
    pub raw_sum_ms: f64,
    /// `ms / raw_sum_ms - 1`, percent.
    pub overhead_pct: f64,
    /// Latency at the first thread count divided by this one.
    pub speedup: f64,
}

/// The benchmark's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FheReport {
    /// TFHE-rs parameter set.
    pub parameters: String,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// Key generation (client, compressed server and public key), seconds.
    pub keygen_s: f64,
    /// Loading the server key on the appliance (checks and decompression), seconds.
    pub key_load_s: f64,
    /// Serialized sizes, bytes: server key, public key, rider, driver, tag ciphertext.
    pub sizes: Vec<(String, usize)>,
    /// Raw operation latencies.
    pub ops: Vec<OpRow>,
    /// Jobs.
    pub jobs: Vec<JobRow>,
}

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FheBenchError(String);

fn err(e: impl std::fmt::Display) -> FheBenchError {
    FheBenchError(e.to_string())
}

const OPS: [&str; 11] = [
    "expand rider (2 x u8)",
    "expand driver (2 x u8 + bool)",
    "expand tag (u32)",
    "overflowing_sub u8",
    "neg u8",
    "select u8",
    "add u8",
    "scalar select u8",
    "le u8",
    "eq u32",
    "trivial encrypt u8",
];

/// How often the pipeline performs each raw operation (indexed like `OPS`).
fn op_counts(task: &str, n: usize) -> [usize; 11] {
    let n1 = n.saturating_sub(1);
    match task {
        // rider expand; per driver: expand, 2 x |a-b| (sub, neg, select), add, scalar
        // select, trivial index; per merge: le and two selects.
        "rideshare" => [1, n, 0, 2 * n, 2 * n, 2 * n + 2 * n1, n, n, n1, 0, n],
        _ => [0, 0, n + 1, 0, 0, 0, 0, 0, 0, n, 0],
    }
}

fn ser<T: serde::Serialize + tfhe::Versionize + tfhe::named::Named>(
    v: &T,
) -> Result<Vec<u8>, FheBenchError> {
    let mut out = Vec::new();
    tfhe::safe_serialization::SerializationConfig::new(1 << 30)
        .serialize_into(v, &mut out)
        .map_err(err)?;
    Ok(out)
}

fn de<T: serde::de::DeserializeOwned + tfhe::Unversionize + tfhe::named::Named>(
    bytes: &[u8],
) -> Result<T, FheBenchError> {
    tfhe::safe_serialization::DeserializationConfig::new(1 << 30)
        .disable_conformance()
        .deserialize_from(bytes)
        .map_err(err)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn time_ms<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let t = Instant::now();
    let r = std::hint::black_box(f());
    (t.elapsed().as_secs_f64() * 1e3, r)
}

/// Inputs shared by every measurement.
struct Inputs {
    key: KeyId,
    rider: Vec<u8>,
    drivers: Vec<Vec<u8>>,
    query: Vec<u8>,
    records: Vec<Vec<u8>>,
}

/// Runs the benchmark; `step` hears what is being measured.
pub fn run(
    config: &FheBenchConfig,
    step: impl Fn(&str),
) -> Result<FheReport, FheBenchError> {
    let max_drivers = config.drivers.iter().copied().max().unwrap_or(0);
    let max_records = config.records.iter().copied().max().unwrap_or(0);
    if max_drivers > cpc_accel::fhe::MAX_DRIVERS || config.threads.is_empty() {
        return Err(FheBenchError(
            "at most 256 drivers, and at least one thread count".into(),
        ));
    }
    step("generating keys");
    let (keygen_s, keys) = time_ms(generate_keys);
    let keys = keys.map_err(err)?;
    let keygen_s = keygen_s / 1e3;
    let enc = Encryptor::from_bytes(&keys.public_key).map_err(err)?;
    step("encrypting inputs");
    let inputs = Inputs {
        key: keys.key_id,
        rider: enc.rider(40, 60).map_err(err)?,
        drivers: (0..max_drivers)
            .map(|i| enc.driver((i * 37 % 128) as u8, (i * 91 % 128) as u8, i % 5 != 3))
            .collect::<Result<_, _>>()
            .map_err(err)?,
        query: enc.search_tag(42).map_err(err)?,
        records: (0..max_records)
            .map(|i| enc.search_tag(if i % 7 == 0 { 42 } else { i as u32 }))
            .collect::<Result<_, _>>()
            .map_err(err)?,
    };
    let sizes = vec![
        ("server key".to_owned(), keys.server_key.len()),
        ("public key".to_owned(), keys.public_key.len()),
        ("rider".to_owned(), inputs.rider.len()),
        (
            "driver".to_owned(),
            inputs.drivers.first().map_or(0, Vec::len),
        ),
        ("tag".to_owned(), inputs.query.len()),
    ];
    let compressed: CompressedServerKey = de(&keys.server_key)?;
    let server_key = compressed.decompress();
    let client: tfhe::ClientKey = de(&keys.client_key)?;
    let mut key_load_s = f64::NAN;
    let mut ops = Vec::new();
    let mut jobs: Vec<JobRow> = Vec::new();
    for &threads in &config.threads {
        let matcher = TfheMatcher::new(FheConfig {
            threads,
            ..FheConfig::default()
        })
        .map_err(err)?;
        step(&format!("{threads} thread(s): loading the server key"));
        let (ms, loaded) = time_ms(|| matcher.load_key(&keys.server_key));
        loaded.map_err(err)?;
        if key_load_s.is_nan() {
            key_load_s = ms / 1e3;
        }
        step(&format!("{threads} thread(s): raw operations"));
        let op_ms = raw_ops(&inputs, &server_key, &client, threads, config.op_samples)?;
        for (op, ms) in OPS.iter().zip(op_ms) {
            ops.push(OpRow {
                op: (*op).to_owned(),
                threads,
                ms,
            });
        }
        let sizes = config
            .drivers
            .iter()
            .map(|&n| ("rideshare", n))
            .chain(config.records.iter().map(|&n| ("search", n)));
        for (kind, n) in sizes {
            step(&format!("{threads} thread(s): {kind} over {n}"));
            let job = FheJob {
                key: inputs.key,
                task: if kind == "rideshare" {
                    FheTask::Nearest {
                        rider: inputs.rider.clone(),
                        drivers: inputs.drivers[..n].to_vec(),
                    }
                } else {
                    FheTask::Search {
                        query: inputs.query.clone(),
                        records: inputs.records[..n].to_vec(),
                    }
                },
            };
            // Small jobs are noisy: best of a few. Large ones run once.
            let runs = (64 / n).clamp(1, 3);
            let mut best = f64::INFINITY;
            for _ in 0..runs {
                let (ms, out) = time_ms(|| matcher.run(&job, &|_| {}));
                out.map_err(err)?;
                best = best.min(ms);
            }
            let raw_sum_ms: f64 = op_counts(kind, n)
                .iter()
                .zip(op_ms)
                .map(|(&c, ms)| c as f64 * ms)
                .sum();
            let base = jobs
                .iter()
                .find(|j| j.kind == kind && j.items == n && j.threads == config.threads[0])
                .map_or(best, |j| j.ms);
            jobs.push(JobRow {
                kind: kind.to_owned(),
                items: n,
                threads: matcher.info().threads,
                ms: best,
                runs,
                raw_sum_ms,
                overhead_pct: (best / raw_sum_ms - 1.0) * 100.0,
                speedup: base / best,
            });
        }
    }
    Ok(FheReport {
        parameters: cpc_accel::fhe::PARAMETERS.to_owned(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        keygen_s,
        key_load_s,
        sizes,
        ops,
        jobs,
    })
}

/// Median latency of each raw operation (in `OPS` order), on a pool of `threads`.
fn raw_ops(
    inputs: &Inputs,
    key: &tfhe::ServerKey,
    client: &tfhe::ClientKey,
    threads: usize,
    samples: usize,
) -> Result<[f64; 11], FheBenchError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(err)?;
    pool.broadcast(|_| tfhe::set_server_key(key.clone()));
    let out = pool.install(|| -> Result<[f64; 11], FheBenchError> {
        let rider: CompactCiphertextList = de(&inputs.rider)?;
        let driver: CompactCiphertextList = de(&inputs.drivers[0])?;
        let tag: CompactCiphertextList = de(&inputs.query)?;
        let a = FheUint8::encrypt(40u8, client);
        let b = FheUint8::encrypt(77u8, client);
        let c = FheBool::encrypt(true, client);
        let t1 = FheUint32::encrypt(42u32, client);
        let t2 = FheUint32::encrypt(43u32, client);
        let (d, _) = (&a).overflowing_sub(&b);
        let mut result = [0.0; 11];
        for (i, slot) in result.iter_mut().enumerate() {
            let mut v = Vec::with_capacity(samples);
            // One call first: the first use of a lookup table allocates it.
            for round in 0..=samples {
                let (ms, ok) = time_ms(|| -> Result<(), FheBenchError> {
                    match i {
                        0 => {
                            let e = rider.expand().map_err(err)?;
                            let _x: Option<FheUint8> = e.get(0).map_err(err)?;
                            let _y: Option<FheUint8> = e.get(1).map_err(err)?;
                        }
                        1 => {
                            let e = driver.expand().map_err(err)?;
                            let _x: Option<FheUint8> = e.get(0).map_err(err)?;
                            let _y: Option<FheUint8> = e.get(1).map_err(err)?;
                            let _a: Option<FheBool> = e.get(2).map_err(err)?;
                        }
                        2 => {
                            let e = tag.expand().map_err(err)?;
                            let _t: Option<FheUint32> = e.get(0).map_err(err)?;
                        }
                        3 => drop(std::hint::black_box((&a).overflowing_sub(&b))),
                        4 => drop(std::hint::black_box(-&d)),
                        5 => drop(std::hint::black_box(c.select(&a, &b))),
                        6 => drop(std::hint::black_box(&a + &b)),
                        7 => drop(std::hint::black_box(c.scalar_select(&a, 255u8))),
                        8 => drop(std::hint::black_box(a.le(&b))),
                        9 => drop(std::hint::black_box(t1.eq(&t2))),
                        _ => drop(std::hint::black_box(FheUint8::encrypt_trivial(3u8))),
                    }
                    Ok(())
                });
                ok?;
                if round > 0 {
                    v.push(ms);
                }
            }
            *slot = median(v);
        }
        Ok(result)
    });
    pool.broadcast(|_| tfhe::unset_server_key());
    out
}

impl FheReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "parameters: {}", self.parameters);
        let _ = writeln!(
            s,
            "keygen {:.1} s, server key load {:.1} s, {} CPUs",
            self.keygen_s, self.key_load_s, self.cpus
        );
        for (what, bytes) in &self.sizes {
            let _ = writeln!(s, "  {what:<12} {bytes:>10} bytes");
        }
        let _ = writeln!(s, "\nraw TFHE-rs operations (median, ms):");
        let threads: Vec<usize> = {
            let mut t: Vec<_> = self.ops.iter().map(|o| o.threads).collect();
            t.dedup();
            t
        };
        let _ = write!(s, "  {:<32}", "operation");
        for t in &threads {
            let _ = write!(s, " {:>10}", format!("{t} thr"));
        }
        let _ = writeln!(s);
        for op in OPS {
            let _ = write!(s, "  {op:<32}");
            for t in &threads {
                let ms = self
                    .ops
                    .iter()
                    .find(|o| o.op == op && o.threads == *t)
                    .map_or(f64::NAN, |o| o.ms);
                let _ = write!(s, " {ms:>10.2}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "\n  {:<10} {:>6} {:>5} {:>11} {:>13} {:>9} {:>8}",
            "job", "items", "thr", "latency ms", "raw sum ms", "overhead", "speedup"
        );
        for j in &self.jobs {
            let _ = writeln!(
                s,
                "  {:<10} {:>6} {:>5} {:>11.0} {:>13.0} {:>8.1}% {:>7.2}x",
                j.kind, j.items, j.threads, j.ms, j.raw_sum_ms, j.overhead_pct, j.speedup
            );
        }
        s
    }
}
