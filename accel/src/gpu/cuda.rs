//! The CUDA backend: the CUDA C kernels of `cpc-kernels`, compiled at run time by NVRTC
//! and launched through cudarc.
//!
//! - **No toolkit at build time.** cudarc loads `libcuda` and `libnvrtc` when the backend
//!   starts. [`CudaBackend::new`] first checks that both libraries can be loaded and that
//!   the configured device exists; otherwise the backend reports itself unavailable, with
//!   the reason, and never panics (cudarc panics on a missing library or symbol; every
//!   call into it is guarded).
//! - **Compilation** happens once per process, at the first launch or in
//!   [`CudaBackend::warm_up`], for the device's own architecture; the module is kept. With
//!   [`CudaConfig::cache_dir`] the PTX is also kept on disk, keyed by the source and the
//!   architecture, so later processes skip NVRTC.
//! - **Host logic** (splitting to the device limits, the Merkle level loop, pipelining
//!   Ed25519 chunks so the host computes the next chunk's SHA-512 challenges while the
//!   device verifies the current one) is written once against the [`Launcher`] trait. The
//!   driver implements it; the tests implement it with the same kernels compiled as host
//!   C++, so this code runs in CI without a GPU.
//! - **Memory**: buffers come from the driver's stream-ordered allocator (a per-device
//!   pool) when the device supports it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::layout::{self, ED25519_ITEM_WORDS, FIELD_OPS_OUT_WORDS, NODE_WORDS, WORKGROUP_SIZE};
use crate::backend::{Accelerator, BackendInfo, BackendKind, SigItem};
use crate::{AccelError, Digest};

const KIND: BackendKind = BackendKind::Cuda;

/// Settings of the CUDA backend (`[accel.cuda]` in the node's configuration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CudaConfig {
    /// Whether to look for a CUDA device at all.
    pub enabled: bool,
    /// The device ordinal, as `nvidia-smi` numbers devices.
    pub device: usize,
    /// The largest batch the dispatcher hands over in one call.
    pub max_batch: usize,
    /// Ed25519 signatures per launch; the host prepares the next launch while the device
    /// runs this one. Hashes and leaves use 16 times as many.
    pub chunk: usize,
    /// A directory where compiled PTX is kept between runs; empty keeps it in memory only.
    pub cache_dir: String,
}

impl Default for CudaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            device: 0,
            max_batch: 1 << 20,
            chunk: 65536,
            cache_dir: String::new(),
        }
    }
}

/// A kernel of the CUDA sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `sha256_batch(data, spans, digests, count)`.
    Sha256Batch,
    /// `merkle_leaves(leaves, nodes, count)`.
    MerkleLeaves,
    /// `merkle_nodes(level, next, count)`, launched with ⌈count/2⌉ threads.
    MerkleNodes,
    /// `ed25519_verify(items, verdicts, count)`.
    Ed25519Verify,
    /// `field_ops(pairs, out, count)`: the field arithmetic check of the tests.
    FieldOps,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 5] = [
        Kernel::Sha256Batch,
        Kernel::MerkleLeaves,
        Kernel::MerkleNodes,
        Kernel::Ed25519Verify,
        Kernel::FieldOps,
    ];

    /// The kernel's name in the source.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Sha256Batch => "sha256_batch",
            Kernel::MerkleLeaves => "merkle_leaves",
            Kernel::MerkleNodes => "merkle_nodes",
            Kernel::Ed25519Verify => "ed25519_verify",
            Kernel::FieldOps => "field_ops",
        }
    }

    /// The kernel's number in the host harness protocol (`host_harness.cpp`).
    pub fn harness_id(self) -> u32 {
        match self {
            Kernel::Sha256Batch => 1,
            Kernel::MerkleLeaves => 2,
            Kernel::MerkleNodes => 3,
            Kernel::Ed25519Verify => 4,
            Kernel::FieldOps => 5,
        }
    }
}

/// Where the CUDA kernels run: a CUDA device ([`DriverLauncher`]), or the same sources
/// compiled for the host (the tests). Buffers hold 32-bit words.
///
/// # Safety
///
/// Implementations are safe to call; the device-side contract is the caller's: `launch`
/// must get the buffers the kernel's signature names, in order (inputs, then the output),
/// each at least as long as the kernel reads or writes for `count` and `threads`. The
/// backend's host logic upholds this for every kernel.
pub trait Launcher: Send + Sync + 'static {
    /// A device buffer.
    type Buffer: Send;

    /// The device, for `cpchain accel list`.
    fn describe(&self) -> String;

    /// A buffer holding `words` (at least one word long).
    fn upload(&self, words: &[u32]) -> Result<Self::Buffer, AccelError>;

    /// A zero-filled buffer of `words` words (at least one).
    fn zeroed(&self, words: usize) -> Result<Self::Buffer, AccelError>;

    /// Launches `kernel` over `threads` threads (in blocks of 64) with arguments
    /// `inputs…, output, count`. May return before the kernel finishes; `download` waits.
    fn launch(
        &self,
        kernel: Kernel,
        threads: usize,
        inputs: &[&Self::Buffer],
        output: &mut Self::Buffer,
        count: u32,
    ) -> Result<(), AccelError>;

    /// The first `words` words of a buffer, once every launch before has finished.
    fn download(&self, buffer: &Self::Buffer, words: usize) -> Result<Vec<u32>, AccelError>;
}

fn device_error(message: impl Into<String>) -> AccelError {
    AccelError::Device {
        kind: KIND,
        message: message.into(),
    }
}

/// Runs a call into cudarc, which panics when a library or symbol is missing; a panic
/// becomes a device error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, AccelError>) -> Result<T, AccelError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(device_error(format!("the CUDA library panicked in {what}"))))
}

/// The CUDA backend over a [`Launcher`]; [`CudaBackend::new`] uses the CUDA driver.
pub struct CudaBackend<L: Launcher = DriverLauncher> {
    info: BackendInfo,
    launcher: Option<L>,
    chunk: usize,
    /// Set after a launch error that leaves the context unusable (sticky CUDA errors).
    faulted: AtomicBool,
}

impl<L: Launcher> std::fmt::Debug for CudaBackend<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl CudaBackend<DriverLauncher> {
    /// Probes for the driver, NVRTC and the configured device. Never fails and never
    /// panics: without them the backend reports itself unavailable, with the reason.
    pub fn new(config: &CudaConfig) -> Self {
        match DriverLauncher::probe(config) {
            Ok(launcher) => Self::with_launcher(launcher, config),
            Err(reason) => Self::unopened(config, reason),
        }
    }

    /// A backend that does not probe for a device and reports itself unavailable for
    /// `reason` — for a node whose configuration sends no work to CUDA, which then creates
    /// no CUDA context.
    pub fn unopened(config: &CudaConfig, reason: impl Into<String>) -> Self {
        Self {
            info: BackendInfo {
                name: "cuda".to_owned(),
                kind: KIND,
                available: false,
                device: "none".to_owned(),
                features: Vec::new(),
                max_batch: Some(config.max_batch.max(1)),
                parallelism: 0,
                unavailable_reason: Some(reason.into()),
            },
            launcher: None,
            chunk: config.chunk.max(1),
            faulted: AtomicBool::new(false),
        }
    }

    /// Compiles the kernels now instead of at the first launch.
    pub fn warm_up(&self) -> Result<(), AccelError> {
        let l = self.launcher()?;
        guarded("compilation", || l.functions().map(|_| ()))
    }
}

impl<L: Launcher> CudaBackend<L> {
    /// The backend's host logic over another launcher (the tests run the kernels compiled
    /// for the host this way).
    pub fn with_launcher(launcher: L, config: &CudaConfig) -> Self {
        Self {
            info: BackendInfo {
                name: "cuda".to_owned(),
                kind: KIND,
                available: true,
                device: launcher.describe(),
                features: vec![
                    "sha256".to_owned(),
                    "merkle".to_owned(),
                    "ed25519-zip215".to_owned(),
                    "nvrtc".to_owned(),
                ],
                max_batch: Some(config.max_batch.max(1)),
                parallelism: config.chunk.max(1),
                unavailable_reason: None,
            },
            launcher: Some(launcher),
            chunk: config.chunk.clamp(64, 1 << 22),
            faulted: AtomicBool::new(false),
        }
    }

    fn launcher(&self) -> Result<&L, AccelError> {
        if self.faulted.load(Ordering::SeqCst) {
            return Err(AccelError::Unavailable {
                kind: KIND,
                reason: "the device failed and its context is unusable; restart the node".into(),
            });
        }
        self.launcher
            .as_ref()
            .ok_or_else(|| AccelError::Unavailable {
                kind: KIND,
                reason: self
                    .info
                    .unavailable_reason
                    .clone()
                    .unwrap_or_else(|| "no device".into()),
            })
    }

    /// Runs the `field_ops` test kernel over pairs of 256-bit little-endian inputs (16
    /// words per pair) and returns its 57 words per pair. For tests of the field
    /// arithmetic; the node never calls it.
    #[doc(hidden)]
    pub fn field_ops(&self, pairs: &[u32]) -> Result<Vec<u32>, AccelError> {
        let l = self.launcher()?;
        let n = pairs.len() / 16;
        if n == 0 {
            return Ok(Vec::new());
        }
        self.run("field_ops", || {
            let input = l.upload(&pairs[..n * 16])?;
            let mut out = l.zeroed(n * FIELD_OPS_OUT_WORDS)?;
            l.launch(Kernel::FieldOps, n, &[&input], &mut out, n as u32)?;
            l.download(&out, n * FIELD_OPS_OUT_WORDS)
        })
    }

    fn run<T>(
        &self,
        what: &str,
        f: impl FnOnce() -> Result<T, AccelError>,
    ) -> Result<T, AccelError> {
        let result = guarded(what, f);
        if let Err(AccelError::Device { message, .. }) = &result {
            // CUDA errors from a kernel (illegal address, launch failure) are sticky: the
            // context answers every later call with the same error.
            if message.contains("CUDA_ERROR_ILLEGAL_ADDRESS")
                || message.contains("CUDA_ERROR_LAUNCH_FAILED")
                || message.contains("panicked")
            {
                self.faulted.store(true, Ordering::SeqCst);
            }
        }
        result
    }

    fn sha256(&self, l: &L, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError> {
        // Buffers past 2^31 words would overflow the kernels' 32-bit word offsets.
        let max_words = 1usize << 30;
        let runs = layout::split_messages(msgs, self.chunk * 16, max_words).map_err(|i| {
            device_error(format!(
                "message {i} ({} bytes) is longer than the kernel accepts",
                msgs[i].len()
            ))
        })?;
        let mut out = Vec::with_capacity(msgs.len());
        for run in runs {
            let batch = &msgs[run];
            let packed = layout::pack_messages(batch);
            let data = l.upload(&packed.data)?;
            let spans = l.upload(&packed.spans)?;
            let words = batch.len() * NODE_WORDS;
            let mut digests = l.zeroed(words)?;
            l.launch(
                Kernel::Sha256Batch,
                batch.len(),
                &[&data, &spans],
                &mut digests,
                batch.len() as u32,
            )?;
            out.extend(layout::digests_from_words(&l.download(&digests, words)?));
        }
        Ok(out)
    }

    fn merkle(&self, l: &L, leaves: &[Digest]) -> Result<Digest, AccelError> {
        let words = leaves.len() * NODE_WORDS;
        let input = l.upload(&layout::node_words(leaves))?;
        let mut a = l.zeroed(words)?;
        let mut b = l.zeroed(leaves.len().div_ceil(2) * NODE_WORDS)?;
        l.launch(
            Kernel::MerkleLeaves,
            leaves.len(),
            &[&input],
            &mut a,
            leaves.len() as u32,
        )?;
        // The levels stay on the device, alternating between a and b.
        let mut n = leaves.len();
        let mut in_a = true;
        for next in layout::merkle_levels(leaves.len()) {
            if in_a {
                l.launch(Kernel::MerkleNodes, next, &[&a], &mut b, n as u32)?;
            } else {
                l.launch(Kernel::MerkleNodes, next, &[&b], &mut a, n as u32)?;
            }
            in_a = !in_a;
            n = next;
        }
        let root = l.download(if in_a { &a } else { &b }, NODE_WORDS)?;
        Ok(layout::digest_from_words(&root))
    }

    fn ed25519(&self, l: &L, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        let mut verdicts = Vec::with_capacity(items.len());
        let mut words = Vec::new();
        // The launch in flight: its input (kept alive until it finishes), its output and
        // its size.
        let mut pending: Option<(L::Buffer, L::Buffer, usize)> = None;
        for batch in items.chunks(self.chunk) {
            // Hash this chunk's challenges while the device verifies the previous one.
            layout::pack_ed25519(batch, &mut words);
            if let Some((_input, out, n)) = pending.take() {
                verdicts.extend(Self::verdicts(l, &out, n)?);
            }
            let input = l.upload(&words)?;
            let mut out = l.zeroed(batch.len())?;
            l.launch(
                Kernel::Ed25519Verify,
                batch.len(),
                &[&input],
                &mut out,
                batch.len() as u32,
            )?;
            pending = Some((input, out, batch.len()));
        }
        if let Some((_input, out, n)) = pending {
            verdicts.extend(Self::verdicts(l, &out, n)?);
        }
        debug_assert_eq!(words.len() % ED25519_ITEM_WORDS, 0);
        Ok(verdicts)
    }

    fn verdicts(l: &L, out: &L::Buffer, n: usize) -> Result<Vec<bool>, AccelError> {
        layout::verdicts_from_words(&l.download(out, n)?)
            .ok_or_else(|| device_error("the device wrote a verdict other than 0 or 1"))
    }
}

impl<L: Launcher> Accelerator for CudaBackend<L> {
    fn info(&self) -> BackendInfo {
        let mut info = self.info.clone();
        if self.faulted.load(Ordering::SeqCst) {
            info.available = false;
            info.unavailable_reason = Some("the device failed; restart the node".into());
        }
        info
    }

    fn is_available(&self) -> bool {
        self.launcher().is_ok()
    }

    fn sha256_batch(&self, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError> {
        let l = self.launcher()?;
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        self.run("sha256", || self.sha256(l, msgs))
    }

    fn merkle_root(&self, leaves: &[Digest]) -> Result<Digest, AccelError> {
        let l = self.launcher()?;
        if leaves.is_empty() {
            return Ok(layout::empty_merkle_root());
        }
        self.run("merkle", || self.merkle(l, leaves))
    }

    fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        let l = self.launcher()?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.run("ed25519", || self.ed25519(l, items))
    }
}

// ---------------------------------------------------------------------------------------
// The CUDA driver

/// The kernels on a CUDA device, through cudarc.
pub struct DriverLauncher {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    description: String,
    arch: String,
    cache_dir: Option<PathBuf>,
    functions: OnceLock<Result<Functions, String>>,
}

struct Functions(Vec<(Kernel, CudaFunction)>);

impl DriverLauncher {
    fn probe(config: &CudaConfig) -> Result<Self, String> {
        if !config.enabled {
            return Err("disabled in the configuration ([accel.cuda] enabled = false)".into());
        }
        // SAFETY: both functions only try to open the shared library by its usual names
        // and drop the handle; no symbol is called.
        #[allow(unsafe_code)]
        let (driver, nvrtc) = unsafe {
            (
                cudarc::driver::sys::is_culib_present(),
                cudarc::nvrtc::sys::is_culib_present(),
            )
        };
        if !driver {
            return Err(
                "no CUDA driver (libcuda.so) on this machine: install the NVIDIA driver".into(),
            );
        }
        if !nvrtc {
            return Err(
                "no NVRTC (libnvrtc.so) on this machine: install the CUDA runtime compiler \
                 (package cuda-nvrtc)"
                    .into(),
            );
        }
        let probe = std::panic::catch_unwind(|| -> Result<Self, String> {
            let count = CudaContext::device_count()
                .map_err(|e| format!("the CUDA driver does not start: {e}"))?;
            if count <= 0 {
                return Err("the CUDA driver sees no device".into());
            }
            if config.device >= count as usize {
                return Err(format!(
                    "device {} configured, but the driver sees {count} device(s) (0..{})",
                    config.device,
                    count - 1
                ));
            }
            let ctx = CudaContext::new(config.device)
                .map_err(|e| format!("cannot open device {}: {e}", config.device))?;
            let name = ctx.name().unwrap_or_else(|_| "unknown".into());
            let (major, minor) = ctx
                .compute_capability()
                .map_err(|e| format!("cannot read the compute capability: {e}"))?;
            let memory = ctx.total_mem().unwrap_or(0) >> 20;
            let stream = ctx.default_stream();
            Ok(Self {
                description: format!(
                    "{name} (CUDA device {}, sm_{major}{minor}, {memory} MiB)",
                    config.device
                ),
                arch: format!("compute_{major}{minor}"),
                cache_dir: (!config.cache_dir.trim().is_empty())
                    .then(|| PathBuf::from(config.cache_dir.trim())),
                functions: OnceLock::new(),
                ctx,
                stream,
            })
        });
        probe.unwrap_or_else(|_| Err("the CUDA library panicked while probing the device".into()))
    }

    fn functions(&self) -> Result<&Functions, AccelError> {
        self.functions
            .get_or_init(|| self.compile())
            .as_ref()
            .map_err(|e| device_error(e.clone()))
    }

    fn compile(&self) -> Result<Functions, String> {
        let source = format!(
            "{}\n{}",
            cpc_kernels::cuda::SHA256,
            cpc_kernels::cuda::ED25519
        );
        let cached = self
            .cache_dir
            .as_deref()
            .map(|d| ptx_cache_path(d, &source, &self.arch));
        let ptx = match cached
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            Some(src) => cudarc::nvrtc::Ptx::from_src(src),
            None => {
                let ptx = cudarc::nvrtc::compile_ptx_with_opts(
                    &source,
                    cudarc::nvrtc::CompileOptions {
                        options: vec![format!("--gpu-architecture={}", self.arch)],
                        name: Some("cpchain_kernels.cu".into()),
                        ..Default::default()
                    },
                )
                .map_err(|e| format!("NVRTC rejected the kernels: {e}"))?;
                if let Some(path) = &cached {
                    store_ptx(path, &ptx.to_src());
                }
                ptx
            }
        };
        let module = self
            .ctx
            .load_module(ptx)
            .map_err(|e| format!("the driver rejected the compiled kernels: {e}"))?;
        let functions = Kernel::ALL
            .iter()
            .map(|&k| {
                module
                    .load_function(k.name())
                    .map(|f| (k, f))
                    .map_err(|e| format!("kernel {} missing: {e}", k.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Functions(functions))
    }

    fn cuda<T>(r: Result<T, cudarc::driver::DriverError>) -> Result<T, AccelError> {
        r.map_err(|e| device_error(e.to_string()))
    }
}

/// Where the PTX of `source` for `arch` is cached under `dir`.
pub fn ptx_cache_path(dir: &Path, source: &str, arch: &str) -> PathBuf {
    let key = Sha256::new()
        .chain_update(source)
        .chain_update([0])
        .chain_update(arch)
        .finalize();
    dir.join(format!("cpchain-{}-{arch}.ptx", hex::encode(&key[..12])))
}

/// Writes a cache file atomically (a temporary file renamed into place); a failure only
/// costs a recompilation next time.
fn store_ptx(path: &Path, ptx: &str) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&tmp, ptx))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the compiled CUDA kernels");
    }
}

impl Launcher for DriverLauncher {
    type Buffer = CudaSlice<u32>;

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn upload(&self, words: &[u32]) -> Result<Self::Buffer, AccelError> {
        if words.is_empty() {
            return self.zeroed(1);
        }
        Self::cuda(self.stream.clone_htod(words))
    }

    fn zeroed(&self, words: usize) -> Result<Self::Buffer, AccelError> {
        Self::cuda(self.stream.alloc_zeros::<u32>(words.max(1)))
    }

    fn launch(
        &self,
        kernel: Kernel,
        threads: usize,
        inputs: &[&Self::Buffer],
        output: &mut Self::Buffer,
        count: u32,
    ) -> Result<(), AccelError> {
        let function = self
            .functions()?
            .0
            .iter()
            .find(|(k, _)| *k == kernel)
            .map(|(_, f)| f)
            .ok_or_else(|| device_error(format!("kernel {} not loaded", kernel.name())))?;
        let blocks = u32::try_from(threads.div_ceil(WORKGROUP_SIZE as usize).max(1))
            .map_err(|_| device_error("launch larger than the grid limit"))?;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (WORKGROUP_SIZE, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut args = self.stream.launch_builder(function);
        for input in inputs {
            args.arg(*input);
        }
        args.arg(output);
        args.arg(&count);
        // SAFETY: the kernels take (inputs…, output, count) as pushed above, and the
        // backend sizes every buffer for `count` and `threads` (see `Launcher`); the
        // kernels check their index against `count` before touching memory.
        #[allow(unsafe_code)]
        let launched = unsafe { args.launch(cfg) };
        Self::cuda(launched).map(|_| ())
    }

    fn download(&self, buffer: &Self::Buffer, words: usize) -> Result<Vec<u32>, AccelError> {
        let view = buffer
            .try_slice(0..words)
            .ok_or_else(|| device_error("download past the end of a buffer"))?;
        Self::cuda(self.stream.clone_dtoh(&view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_device_the_backend_is_unavailable_and_says_why() {
        let b = CudaBackend::new(&CudaConfig::default());
        let info = b.info();
        if info.available {
            // A machine with a GPU: nothing to check here; the differential tests run.
            return;
        }
        assert!(!b.is_available());
        let reason = info.unavailable_reason.expect("a reason");
        assert!(
            reason.contains("libcuda") || reason.contains("device") || reason.contains("NVRTC"),
            "{reason}"
        );
        match b.ed25519_verify_batch(&[]) {
            Err(AccelError::Unavailable { kind, .. }) => assert_eq!(kind, KIND),
            other => panic!("expected unavailable, got {other:?}"),
        }
    }

    #[test]
    fn disabled_in_config() {
        let b = CudaBackend::new(&CudaConfig {
            enabled: false,
            ..CudaConfig::default()
        });
        assert!(!b.info().available);
        assert!(b.info().unavailable_reason.unwrap().contains("disabled"));
    }

    #[test]
    fn ptx_cache_is_keyed_by_source_and_arch() {
        let dir = Path::new("/cache");
        let a = ptx_cache_path(dir, "src", "compute_80");
        assert_eq!(a, ptx_cache_path(dir, "src", "compute_80"));
        assert_ne!(a, ptx_cache_path(dir, "src2", "compute_80"));
        assert_ne!(a, ptx_cache_path(dir, "src", "compute_86"));
        assert!(a.starts_with(dir));
    }

    #[test]
    fn ptx_cache_round_trip() {
        let dir = std::env::temp_dir().join(format!("cpc-ptx-{}", std::process::id()));
        let path = ptx_cache_path(&dir, "src", "compute_80");
        store_ptx(&path, "// ptx");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "// ptx");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
