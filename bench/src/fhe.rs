//! The homomorphic matching benchmark behind `cpchain fhe bench`.
//!
//! For each thread count it measures, in one run on one key set:
//!
//! - the **raw TFHE-rs operations** the pipeline is made of (expanding a participant's
//!   list, overflowing subtraction, negation, select, addition, select with a clear value,
//!   comparison, equality), each called directly on fresh ciphertexts, median of several
//!   calls — the figures to hold against TFHE-rs's published latencies;
//! - the **pipeline**: [`TfheMatcher::run`] on serialized inputs — deserialization,
//!   conformance and tag checks, expansion, the circuit, the arg-min tree, progress,
//!   serialization of the result — for each job size;
//! - the **raw sum**: the same job's TFHE-rs operations called one after the other in
//!   the pipeline's order, on the same inputs and the same tree shape, each timed and the
//!   times added. A per-operation median times an operation count would not do: a select
//!   between trivially encrypted indices skips most of its bootstraps, so its cost depends
//!   on the values the tree merges. The replay's decrypted answer must equal the
//!   pipeline's, or the run fails. The overhead is `pipeline / raw sum - 1`: on one thread
//!   it is the cost of everything that is not TFHE-rs; on more, the raw sum still runs one
//!   operation at a time (each spread over the threads) while the pipeline also overlaps
//!   independent drivers, so it drops below zero;
//! - the **speedup** of each job from the first thread count to each other.

use std::fmt::Write as _;
use std::time::Instant;

use cpc_accel::FheMatcher;
use cpc_accel::fhe::{
    Decryptor, Encryptor, FheConfig, NO_DRIVER, Nearest, TfheMatcher, generate_keys,
};
use cpc_accel::matching::{FheJob, FheOutput, FheTask, KeyId};
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
    /// Runs of each job size (pipeline and replay each; the best is kept). `None`: three
    /// for jobs of up to 21 items, fewer above, one from 33 on.
    pub runs: Option<usize>,
}

impl Default for FheBenchConfig {
    fn default() -> Self {
        Self {
            drivers: vec![4, 16, 64],
            records: vec![16, 256],
            threads: vec![1, 2],
            op_samples: 7,
            runs: None,
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
    /// Runs measured (of the pipeline and of the replay each).
    pub runs: usize,
    /// The job's TFHE-rs operations replayed one at a time, each timed, summed (best of
    /// the runs), at the same thread count, ms.
    pub raw_sum_ms: f64,
    /// TFHE-rs operations in the job.
    pub raw_ops: usize,
    /// `ms / raw_sum_ms - 1`, percent.
    pub overhead_pct: f64,
    /// CPU time of the whole process during the pipeline's best run, ms.
    pub cpu_ms: f64,
    /// CPU time over latency in the pipeline's fastest run: the cores it had. Below the
    /// thread count when other processes took the rest (or the job ran out of parallel
    /// work); spinning rayon threads count too.
    pub cores: f64,
    /// CPU time of the whole process during the replay's best run, ms.
    pub raw_cpu_ms: f64,
    /// `cpu_ms / raw_cpu_ms - 1`, percent: the overhead in work rather than latency, which
    /// other processes on a shared machine disturb far less.
    pub cpu_overhead_pct: f64,
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

const OPS: [&str; 10] = [
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
];

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

/// CPU time of the whole process so far (every thread, ended ones included), ms: the
/// `utime` and `stime` fields of Linux's `/proc/self/stat`, in ticks of 1/100 s (`USER_HZ`
/// is 100 on every Linux architecture we build for). `NaN` where that file is missing.
fn process_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // The command name (field 2) is in parentheses and may hold spaces; field 3 follows.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (tick(14 - 3), tick(15 - 3)) {
        (Some(user), Some(system)) => (user + system) * 10.0,
        _ => f64::NAN,
    }
}

fn time_ms<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let t = Instant::now();
    let r = std::hint::black_box(f());
    (t.elapsed().as_secs_f64() * 1e3, r)
}

/// Inputs shared by every measurement: ciphertexts and the values they encrypt.
struct Inputs {
    key: KeyId,
    rider: Vec<u8>,
    drivers: Vec<Vec<u8>>,
    query: Vec<u8>,
    records: Vec<Vec<u8>>,
    plain_rider: (u8, u8),
    plain_drivers: Vec<(u8, u8, bool)>,
    plain_query: u32,
    plain_records: Vec<u32>,
}

/// Runs the benchmark; `step` hears what is being measured.
pub fn run(config: &FheBenchConfig, step: impl Fn(&str)) -> Result<FheReport, FheBenchError> {
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
    let dec = Decryptor::from_bytes(&keys.client_key).map_err(err)?;
    step("encrypting inputs");
    let plain_rider = (40, 60);
    let plain_drivers: Vec<(u8, u8, bool)> = (0..max_drivers)
        .map(|i| ((i * 37 % 128) as u8, (i * 91 % 128) as u8, i % 5 != 3))
        .collect();
    let plain_query = 42;
    let plain_records: Vec<u32> = (0..max_records)
        .map(|i| if i % 7 == 0 { plain_query } else { i as u32 })
        .collect();
    let inputs = Inputs {
        key: keys.key_id,
        rider: enc.rider(plain_rider.0, plain_rider.1).map_err(err)?,
        drivers: plain_drivers
            .iter()
            .map(|&(x, y, a)| enc.driver(x, y, a))
            .collect::<Result<_, _>>()
            .map_err(err)?,
        query: enc.search_tag(plain_query).map_err(err)?,
        records: plain_records
            .iter()
            .map(|&t| enc.search_tag(t))
            .collect::<Result<_, _>>()
            .map_err(err)?,
        plain_rider,
        plain_drivers,
        plain_query,
        plain_records,
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
                threads: matcher.info().threads,
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
            let expected = match &job.task {
                FheTask::Nearest { .. } => Answer::Nearest(expect_nearest(
                    inputs.plain_rider,
                    &inputs.plain_drivers[..n],
                )),
                FheTask::Search { .. } => Answer::Search(cpc_accel::fhe::search_plain(
                    inputs.plain_query,
                    &inputs.plain_records[..n],
                )),
            };
            // Small jobs are noisy: best of a few, large ones once (or `runs`). The pipeline and
            // the replay alternate, so both see the same share of the machine's noise.
            let runs = config.runs.unwrap_or((64 / n).clamp(1, 3)).max(1);
            let (mut best, mut best_cpu, mut cores) = (f64::INFINITY, f64::INFINITY, f64::NAN);
            let mut raw = Replay {
                ms: f64::INFINITY,
                cpu_ms: f64::INFINITY,
                ops: 0,
            };
            for run in 1..=runs {
                let cpu = process_cpu_ms();
                let (ms, out) = time_ms(|| matcher.run(&job, &|_| {}));
                let cpu = process_cpu_ms() - cpu;
                best_cpu = best_cpu.min(cpu);
                if ms < best {
                    cores = cpu / ms;
                }
                let got = decrypt(&dec, &out.map_err(err)?)?;
                if got != expected {
                    return Err(FheBenchError(format!(
                        "the pipeline answered {got:?} to {kind} over {n}, not {expected:?}"
                    )));
                }
                best = best.min(ms);
                let (replay, answer) = replay(&job.task, &server_key, &client, threads)?;
                if answer != expected {
                    return Err(FheBenchError(format!(
                        "the replay answered {answer:?} to {kind} over {n}, not {expected:?}"
                    )));
                }
                step(&format!(
                    "{threads} thread(s): {kind} over {n}: run {run}/{runs}: pipeline {ms:.0} ms, \
                     raw sum {:.0} ms",
                    replay.ms
                ));
                raw.ops = replay.ops;
                raw.ms = raw.ms.min(replay.ms);
                raw.cpu_ms = raw.cpu_ms.min(replay.cpu_ms);
            }
            // The first thread count measured is the baseline.
            let base = jobs
                .iter()
                .find(|j| j.kind == kind && j.items == n)
                .map_or(best, |j| j.ms);
            jobs.push(JobRow {
                kind: kind.to_owned(),
                items: n,
                threads: matcher.info().threads,
                ms: best,
                runs,
                raw_sum_ms: raw.ms,
                raw_ops: raw.ops,
                overhead_pct: (best / raw.ms - 1.0) * 100.0,
                cpu_ms: best_cpu,
                cores,
                raw_cpu_ms: raw.cpu_ms,
                cpu_overhead_pct: (best_cpu / raw.cpu_ms - 1.0) * 100.0,
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

/// Runs `f` on a pool of `threads` with `key` set on every thread of it.
fn on_pool<R: Send>(
    threads: usize,
    key: &tfhe::ServerKey,
    f: impl FnOnce() -> R + Send,
) -> Result<R, FheBenchError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(err)?;
    pool.broadcast(|_| tfhe::set_server_key(key.clone()));
    let out = pool.install(f);
    pool.broadcast(|_| tfhe::unset_server_key());
    Ok(out)
}

/// Median latency of each raw operation (in `OPS` order), on a pool of `threads`.
fn raw_ops(
    inputs: &Inputs,
    key: &tfhe::ServerKey,
    client: &tfhe::ClientKey,
    threads: usize,
    samples: usize,
) -> Result<[f64; 10], FheBenchError> {
    on_pool(threads, key, || -> Result<[f64; 10], FheBenchError> {
        let rider: CompactCiphertextList = de(&inputs.rider)?;
        let driver: CompactCiphertextList = de(&inputs.drivers[0])?;
        let tag: CompactCiphertextList = de(&inputs.query)?;
        let a = FheUint8::encrypt(40u8, client);
        let b = FheUint8::encrypt(77u8, client);
        let c = FheBool::encrypt(true, client);
        let t1 = FheUint32::encrypt(42u32, client);
        let t2 = FheUint32::encrypt(43u32, client);
        let (d, _) = (&a).overflowing_sub(&b);
        let mut result = [0.0; 10];
        for (i, slot) in result.iter_mut().enumerate() {
            let mut v = Vec::with_capacity(samples);
            // One call first: the first use of a lookup table allocates it.
            for round in 0..=samples {
                let (ms, ok) = time_ms(|| -> Result<(), FheBenchError> {
                    match i {
                        0 => drop(expand_rider(&rider)?),
                        1 => drop(expand_driver(&driver)?),
                        2 => drop(expand_tag(&tag)?),
                        3 => drop(std::hint::black_box((&a).overflowing_sub(&b))),
                        4 => drop(std::hint::black_box(-&d)),
                        5 => drop(std::hint::black_box(c.select(&a, &b))),
                        6 => drop(std::hint::black_box(&a + &b)),
                        7 => drop(std::hint::black_box(c.scalar_select(&a, NO_DRIVER))),
                        8 => drop(std::hint::black_box(a.le(&b))),
                        _ => drop(std::hint::black_box(t1.eq(&t2))),
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
    })?
}

fn expand_rider(list: &CompactCiphertextList) -> Result<(FheUint8, FheUint8), FheBenchError> {
    let e = list.expand().map_err(err)?;
    let missing = || FheBenchError("a rider list lost a value".into());
    Ok((
        e.get(0).map_err(err)?.ok_or_else(missing)?,
        e.get(1).map_err(err)?.ok_or_else(missing)?,
    ))
}

fn expand_driver(
    list: &CompactCiphertextList,
) -> Result<(FheUint8, FheUint8, FheBool), FheBenchError> {
    let e = list.expand().map_err(err)?;
    let missing = || FheBenchError("a driver list lost a value".into());
    Ok((
        e.get(0).map_err(err)?.ok_or_else(missing)?,
        e.get(1).map_err(err)?.ok_or_else(missing)?,
        e.get(2).map_err(err)?.ok_or_else(missing)?,
    ))
}

fn expand_tag(list: &CompactCiphertextList) -> Result<FheUint32, FheBenchError> {
    let e = list.expand().map_err(err)?;
    e.get(0)
        .map_err(err)?
        .ok_or_else(|| FheBenchError("a tag list lost its value".into()))
}

/// A decrypted answer, to compare the pipeline, the replay and the plaintext.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Nearest(Nearest),
    Search(Vec<bool>),
}

fn expect_nearest(rider: (u8, u8), drivers: &[(u8, u8, bool)]) -> Nearest {
    match cpc_accel::fhe::nearest_plain(rider, drivers) {
        Some((i, distance)) => Nearest {
            driver: u8::try_from(i).ok(),
            distance,
        },
        None => Nearest {
            driver: None,
            distance: NO_DRIVER,
        },
    }
}

fn decrypt(dec: &Decryptor, out: &FheOutput) -> Result<Answer, FheBenchError> {
    Ok(match out {
        FheOutput::Nearest { index, distance } => {
            Answer::Nearest(dec.nearest(index, distance).map_err(err)?)
        }
        FheOutput::Search { matches } => Answer::Search(dec.search(matches).map_err(err)?),
    })
}

/// The raw sum of a job: its TFHE-rs operations timed one by one.
struct Replay {
    /// Sum of the operations' latencies, ms.
    ms: f64,
    /// CPU time of the process while they ran, ms.
    cpu_ms: f64,
    /// Operations timed.
    ops: usize,
}

impl Replay {
    fn op<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let (ms, r) = time_ms(f);
        self.ms += ms;
        self.ops += 1;
        r
    }
}

/// Performs `task`'s TFHE-rs operations one after the other — those of
/// `cpc_accel::fhe::{abs_diff, distance, merge, arg_min}`, in their order, on the same
/// tree — timing each. The participants' lists are deserialized first, untimed; the
/// answer is decrypted after. Returns the sums and the answer.
fn replay(
    task: &FheTask,
    key: &tfhe::ServerKey,
    client: &tfhe::ClientKey,
    threads: usize,
) -> Result<(Replay, Answer), FheBenchError> {
    on_pool(
        threads,
        key,
        || -> Result<(Replay, Answer), FheBenchError> {
            let mut t = Replay {
                ms: 0.0,
                cpu_ms: 0.0,
                ops: 0,
            };
            match task {
                FheTask::Nearest { rider, drivers } => {
                    let rider: CompactCiphertextList = de(rider)?;
                    let drivers: Vec<CompactCiphertextList> =
                        drivers.iter().map(|d| de(d)).collect::<Result<_, _>>()?;
                    let cpu = process_cpu_ms();
                    let (rx, ry) = t.op(|| expand_rider(&rider))?;
                    let mut level = Vec::with_capacity(drivers.len());
                    for (i, list) in drivers.iter().enumerate() {
                        let (x, y, available) = t.op(|| expand_driver(list))?;
                        let mut abs_diff = |a: &FheUint8, b: &FheUint8| {
                            let (diff, borrow) = t.op(|| a.overflowing_sub(b));
                            let negated = t.op(|| -&diff);
                            t.op(|| borrow.select(&negated, &diff))
                        };
                        let dx = abs_diff(&rx, &x);
                        let dy = abs_diff(&ry, &y);
                        let sum = t.op(|| &dx + &dy);
                        let d = t.op(|| available.scalar_select(&sum, NO_DRIVER));
                        let index = t.op(|| FheUint8::encrypt_trivial(i as u8));
                        level.push((d, index));
                    }
                    while level.len() > 1 {
                        let mut next = Vec::with_capacity(level.len().div_ceil(2));
                        let mut it = level.into_iter();
                        while let Some(left) = it.next() {
                            let Some(right) = it.next() else {
                                next.push(left);
                                break;
                            };
                            let take_left = t.op(|| left.0.le(&right.0));
                            let d = t.op(|| take_left.select(&left.0, &right.0));
                            let i = t.op(|| take_left.select(&left.1, &right.1));
                            next.push((d, i));
                        }
                        level = next;
                    }
                    t.cpu_ms = process_cpu_ms() - cpu;
                    let (d, i) = level
                        .pop()
                        .ok_or_else(|| FheBenchError("a nearest job without drivers".into()))?;
                    let distance: u8 = d.decrypt(client);
                    let index: u8 = i.decrypt(client);
                    Ok((
                        t,
                        Answer::Nearest(Nearest {
                            driver: (distance != NO_DRIVER).then_some(index),
                            distance,
                        }),
                    ))
                }
                FheTask::Search { query, records } => {
                    let query: CompactCiphertextList = de(query)?;
                    let records: Vec<CompactCiphertextList> =
                        records.iter().map(|r| de(r)).collect::<Result<_, _>>()?;
                    let cpu = process_cpu_ms();
                    let query = t.op(|| expand_tag(&query))?;
                    let flags: Vec<FheBool> = records
                        .iter()
                        .map(|list| {
                            let record = t.op(|| expand_tag(list))?;
                            Ok(t.op(|| query.eq(&record)))
                        })
                        .collect::<Result<_, FheBenchError>>()?;
                    t.cpu_ms = process_cpu_ms() - cpu;
                    let flags = flags.iter().map(|f| f.decrypt(client)).collect();
                    Ok((t, Answer::Search(flags)))
                }
            }
        },
    )?
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
            "\n  {:<10} {:>5} {:>3} {:>10} {:>5} {:>10} {:>5} {:>9} {:>10} {:>10} {:>9} {:>8}",
            "job",
            "items",
            "thr",
            "latency",
            "cores",
            "raw sum",
            "ops",
            "overhead",
            "cpu",
            "raw cpu",
            "cpu ovh",
            "speedup"
        );
        for j in &self.jobs {
            let _ = writeln!(
                s,
                "  {:<10} {:>5} {:>3} {:>8.0}ms {:>5.2} {:>8.0}ms {:>5} {:>8.1}% {:>8.0}ms \
                 {:>8.0}ms {:>8.1}% {:>7.2}x",
                j.kind,
                j.items,
                j.threads,
                j.ms,
                j.cores,
                j.raw_sum_ms,
                j.raw_ops,
                j.overhead_pct,
                j.cpu_ms,
                j.raw_cpu_ms,
                j.cpu_overhead_pct,
                j.speedup
            );
        }
        s
    }
}
