//! The wgpu backend: the WGSL kernels of `cpc-kernels` on any GPU that wgpu drives
//! (Vulkan, Metal, DX12), and on Mesa's lavapipe, a software Vulkan driver, in CI.
//!
//! - **Adapter**: [`WgpuConfig::backends`] (else `WGPU_BACKEND`, else every API built in)
//!   limits the graphics APIs searched; [`WgpuConfig::adapter`] (else `WGPU_ADAPTER_NAME`)
//!   picks an adapter by a case-insensitive part of its name; otherwise a discrete GPU is
//!   preferred over an integrated, virtual, other and finally a software one.
//! - **Pipelines** are compiled once, at the first use of each kernel (or by
//!   [`WgpuBackend::warm_up`]), and kept.
//! - **Buffers** come from per-kernel pools and are reused across calls; they grow by powers
//!   of two and never shrink.
//! - **Splitting**: a call is cut into device chunks that fit the adapter's buffer and
//!   dispatch limits; long messages take one SHA-256 dispatch per 512 blocks (32 KiB).
//!   Chunks are **pipelined**: the host packs chunk n + 1 (for Ed25519 that includes the
//!   SHA-512 challenges) while the device runs chunk n, with two buffer sets in flight.
//! - **Faults**: every call runs inside wgpu error scopes; a validation or out-of-memory
//!   error, a map failure, a timeout or a lost device is an [`AccelError::Device`], which
//!   the dispatcher answers on the CPU. A lost device makes the backend unavailable.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::layout::{self, ED25519_ITEM_WORDS, FIELD_OPS_OUT_WORDS, NODE_WORDS};
use crate::backend::{Accelerator, BackendInfo, BackendKind, SigItem};
use crate::{AccelError, Digest};

const KIND: BackendKind = BackendKind::Wgpu;

/// Settings of the wgpu backend (`[accel.wgpu]` in the node's configuration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WgpuConfig {
    /// Whether to look for an adapter at all.
    pub enabled: bool,
    /// Graphics APIs to search, comma-separated (`vulkan`, `metal`, `dx12`). Empty: the
    /// `WGPU_BACKEND` environment variable, else every API built in.
    pub backends: String,
    /// The adapter to use: a case-insensitive part of its name as `cpchain accel list`
    /// shows it (for example `llvmpipe` or `rtx`). Empty: the `WGPU_ADAPTER_NAME`
    /// environment variable, else the most capable adapter.
    pub adapter: String,
    /// The largest batch the dispatcher hands over in one call.
    pub max_batch: usize,
    /// Ed25519 signatures per device submission; the host prepares the next submission
    /// while the device runs this one. Hashes and leaves use 16 times as many.
    pub chunk: usize,
    /// How long one submission may run before the device is considered hung, in
    /// milliseconds.
    pub timeout_ms: u64,
}

impl Default for WgpuConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backends: String::new(),
            adapter: String::new(),
            max_batch: 1 << 20,
            chunk: 8192,
            timeout_ms: 60_000,
        }
    }
}

/// The wgpu backend. Construct it with [`WgpuBackend::new`]; when no adapter is usable it
/// still constructs, reports itself unavailable and says why.
pub struct WgpuBackend {
    info: BackendInfo,
    gpu: Option<Gpu>,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBackend")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    lost: Arc<AtomicBool>,
    timeout: Duration,
    /// Ed25519 items per submission.
    chunk: usize,
    /// Largest storage binding, in words.
    max_words: usize,
    max_groups_x: u32,
    uniform_align: u64,
    sha: OnceLock<Result<ShaKernels, String>>,
    ed: OnceLock<Result<EdKernels, String>>,
    sha_pool: Mutex<Vec<ShaSlot>>,
    merkle_pool: Mutex<Vec<MerkleSlot>>,
    ed_pool: Mutex<Vec<EdSlot>>,
}

struct ShaKernels {
    layout: wgpu::BindGroupLayout,
    batch: wgpu::ComputePipeline,
    leaves: wgpu::ComputePipeline,
    nodes: wgpu::ComputePipeline,
    /// Bound as `spans` by the Merkle kernels, which do not read it.
    unused: wgpu::Buffer,
}

struct EdKernels {
    layout: wgpu::BindGroupLayout,
    decode: wgpu::ComputePipeline,
    table: wgpu::ComputePipeline,
    windows: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    /// 1..8 times B, computed on the device once.
    base_table: wgpu::Buffer,
    field_ops: OnceLock<Result<wgpu::ComputePipeline, String>>,
    module: wgpu::ShaderModule,
    pipeline_layout: wgpu::PipelineLayout,
}

/// Uniform slots of a SHA-256 buffer set: dispatches per submission (each hashes
/// `SHA256_BLOCKS_PER_PASS` blocks of every message, so 64 cover 2 MiB messages in one
/// submission).
const SHA_PARAM_SLOTS: usize = 64;

/// Uniform slots of one Ed25519 submission: decode, table, the window passes, finish, and
/// the base table pass of the priming submission.
const ED_PASSES: usize = 4 + 64 / cpc_kernels::wgsl::ED25519_WINDOWS_PER_PASS as usize;

/// How long the first submission of each kernel may run. Software drivers (lavapipe)
/// compile a pipeline at its first dispatch, which takes minutes for the Ed25519 passes on
/// a busy machine without a shader cache; after that the configured timeout applies.
const FIRST_RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn device_error(message: impl Into<String>) -> AccelError {
    AccelError::Device {
        kind: KIND,
        message: message.into(),
    }
}

/// Rank of a device type: lower is preferred.
fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "software (CPU)",
        wgpu::DeviceType::Other => "GPU",
    };
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if driver.is_empty() {
        format!("{} ({}, {kind})", info.name, info.backend)
    } else {
        format!(
            "{} ({}, {kind}, {driver})",
            info.name,
            info.backend,
            driver = driver
        )
    }
}

impl WgpuBackend {
    /// Finds the adapter and opens the device. Never fails: without a usable adapter the
    /// backend reports itself unavailable, with the reason.
    pub fn new(config: &WgpuConfig) -> Self {
        // A driver that panics while being probed must not take the node down.
        let opened = std::panic::catch_unwind(|| Self::open(config)).unwrap_or_else(|_| {
            Err("the graphics driver panicked while opening the adapter".into())
        });
        match opened {
            Ok((gpu, device)) => {
                let info = BackendInfo {
                    name: "wgpu".to_owned(),
                    kind: KIND,
                    available: true,
                    device,
                    features: vec![
                        "sha256".to_owned(),
                        "merkle".to_owned(),
                        "ed25519-zip215".to_owned(),
                    ],
                    max_batch: Some(config.max_batch.max(1)),
                    parallelism: gpu.chunk,
                    unavailable_reason: None,
                };
                Self {
                    info,
                    gpu: Some(gpu),
                }
            }
            Err(reason) => Self::unopened(config, reason),
        }
    }

    /// A backend that does not look for an adapter and reports itself unavailable for
    /// `reason` — for a node whose configuration sends no work to wgpu, which then holds
    /// no device.
    pub fn unopened(config: &WgpuConfig, reason: impl Into<String>) -> Self {
        Self {
            info: BackendInfo {
                name: "wgpu".to_owned(),
                kind: KIND,
                available: false,
                device: "none".to_owned(),
                features: Vec::new(),
                max_batch: Some(config.max_batch.max(1)),
                parallelism: 0,
                unavailable_reason: Some(reason.into()),
            },
            gpu: None,
        }
    }

    fn open(config: &WgpuConfig) -> Result<(Gpu, String), String> {
        if !config.enabled {
            return Err("disabled in the configuration ([accel.wgpu] enabled = false)".into());
        }
        let backends = if config.backends.trim().is_empty() {
            wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())
        } else {
            wgpu::Backends::from_comma_list(&config.backends)
        };
        if backends.is_empty() {
            return Err(format!(
                "no graphics API named in {:?}: use vulkan, metal or dx12",
                config.backends
            ));
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            flags: wgpu::InstanceFlags::empty().with_env(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let mut adapters: Vec<wgpu::Adapter> =
            pollster::block_on(instance.enumerate_adapters(backends))
                .into_iter()
                .filter(|a| {
                    a.get_downlevel_capabilities()
                        .flags
                        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
                })
                .collect();
        if adapters.is_empty() {
            return Err(format!(
                "no adapter with compute shaders ({backends:?}); install a GPU driver, or \
                 mesa-vulkan-drivers for the lavapipe software adapter"
            ));
        }
        let wanted = if config.adapter.trim().is_empty() {
            std::env::var("WGPU_ADAPTER_NAME").unwrap_or_default()
        } else {
            config.adapter.clone()
        };
        let adapter = if wanted.trim().is_empty() {
            adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
            adapters.swap_remove(0)
        } else {
            let needle = wanted.trim().to_lowercase();
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            let pos = names
                .iter()
                .position(|n| n.to_lowercase().contains(&needle))
                .ok_or_else(|| {
                    format!(
                        "no adapter name contains {wanted:?}; adapters here: {}",
                        names.join(", ")
                    )
                })?;
            adapters.swap_remove(pos)
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("cpchain accelerator"),
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        }))
        .map_err(|e| format!("cannot open {}: {e}", info.name))?;
        let lost = Arc::new(AtomicBool::new(false));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                lost.store(true, Ordering::SeqCst);
                tracing::error!(?reason, %message, "wgpu device lost; the cpu takes over");
            });
        }
        // Errors outside an error scope would panic by default; every call has its own
        // scopes, so anything that reaches here is logged.
        device.on_uncaptured_error(Arc::new(|e| {
            tracing::error!(error = %e, "uncaptured wgpu error");
        }));
        let gpu = Gpu {
            device,
            queue,
            lost,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            chunk: config.chunk.clamp(64, 1 << 20),
            max_words: (limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size)
                / 4)
            .min(1 << 30) as usize,
            max_groups_x: limits.max_compute_workgroups_per_dimension.max(1),
            uniform_align: u64::from(limits.min_uniform_buffer_offset_alignment.max(16)),
            sha: OnceLock::new(),
            ed: OnceLock::new(),
            sha_pool: Mutex::new(Vec::new()),
            merkle_pool: Mutex::new(Vec::new()),
            ed_pool: Mutex::new(Vec::new()),
        };
        Ok((gpu, describe(&info)))
    }

    fn gpu(&self) -> Result<&Gpu, AccelError> {
        match &self.gpu {
            Some(g) if !g.lost.load(Ordering::SeqCst) => Ok(g),
            Some(_) => Err(AccelError::Unavailable {
                kind: KIND,
                reason: "the device was lost".into(),
            }),
            None => Err(AccelError::Unavailable {
                kind: KIND,
                reason: self
                    .info
                    .unavailable_reason
                    .clone()
                    .unwrap_or_else(|| "no adapter".into()),
            }),
        }
    }

    /// Compiles every pipeline now instead of at first use (compilation of the Ed25519
    /// kernel takes seconds on some drivers).
    pub fn warm_up(&self) -> Result<(), AccelError> {
        let gpu = self.gpu()?;
        gpu.sha_kernels()?;
        gpu.ed_kernels()?;
        Ok(())
    }

    /// Runs the `field_ops` test kernel over pairs of 256-bit little-endian inputs
    /// (16 words per pair) and returns its 57 words per pair. For tests of the field
    /// arithmetic; the node never calls it.
    #[doc(hidden)]
    pub fn field_ops(&self, pairs: &[u32]) -> Result<Vec<u32>, AccelError> {
        let gpu = self.gpu()?;
        gpu.field_ops(pairs)
    }
}

impl Accelerator for WgpuBackend {
    fn info(&self) -> BackendInfo {
        let mut info = self.info.clone();
        if let Some(g) = &self.gpu
            && g.lost.load(Ordering::SeqCst)
        {
            info.available = false;
            info.unavailable_reason = Some("the device was lost".into());
        }
        info
    }

    fn is_available(&self) -> bool {
        self.gpu().is_ok()
    }

    fn sha256_batch(&self, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        self.gpu()?.sha256(msgs)
    }

    fn merkle_root(&self, leaves: &[Digest]) -> Result<Digest, AccelError> {
        if leaves.is_empty() {
            return Ok(layout::empty_merkle_root());
        }
        self.gpu()?.merkle(leaves)
    }

    fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.gpu()?.ed25519(items)
    }
}

// ---------------------------------------------------------------------------------------
// Buffers

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(16),
        },
        count: None,
    }
}

/// Pool sizes are powers of two, at least 4 KiB, so buffers are reused across calls of
/// similar size.
fn pool_size(bytes: u64) -> u64 {
    bytes.max(4096).next_power_of_two()
}

fn bind(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

fn uniform_bind(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset: 0,
            size: wgpu::BufferSize::new(16),
        }),
    }
}

/// A buffer set of `sha256_batch`.
struct ShaSlot {
    data: wgpu::Buffer,
    spans: wgpu::Buffer,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    params: wgpu::Buffer,
    group: wgpu::BindGroup,
}

/// A buffer set of the Merkle kernels: two node buffers that the levels ping-pong between.
struct MerkleSlot {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    readback: wgpu::Buffer,
    params: wgpu::Buffer,
    a_to_b: wgpu::BindGroup,
    b_to_a: wgpu::BindGroup,
}

/// A buffer set of the Ed25519 passes (and of `field_ops`), for up to `capacity` items.
struct EdSlot {
    capacity: usize,
    items: wgpu::Buffer,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    params: wgpu::Buffer,
    group: wgpu::BindGroup,
}

/// A submitted chunk: its buffers, and what to read back.
struct InFlight<S> {
    slot: S,
    submission: wgpu::SubmissionIndex,
    words: usize,
}

impl Gpu {
    fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    fn storage(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.buffer(
            label,
            size,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        )
    }

    fn readback(&self, size: u64) -> wgpu::Buffer {
        self.buffer(
            "readback",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )
    }

    fn uniforms(&self, slots: u64) -> wgpu::Buffer {
        self.buffer(
            "params",
            slots * self.uniform_align,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )
    }

    fn module(&self, label: &str, source: &'static str) -> Result<wgpu::ShaderModule, String> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(source)),
            });
        match pollster::block_on(scope.pop()) {
            None => Ok(module),
            Some(e) => Err(format!("shader {label} rejected: {e}")),
        }
    }

    fn pipeline(
        &self,
        layout: &wgpu::PipelineLayout,
        module: &wgpu::ShaderModule,
        entry: &str,
    ) -> Result<wgpu::ComputePipeline, String> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(layout),
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        match pollster::block_on(scope.pop()) {
            None => Ok(pipeline),
            Some(e) => Err(format!("pipeline {entry} rejected: {e}")),
        }
    }

    fn sha_kernels(&self) -> Result<&ShaKernels, AccelError> {
        self.sha
            .get_or_init(|| {
                let module = self.module("sha256", cpc_kernels::wgsl::SHA256)?;
                let layout =
                    self.device
                        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                            label: Some("sha256"),
                            entries: &[
                                storage_entry(0, true),
                                storage_entry(1, true),
                                storage_entry(2, false),
                                uniform_entry(3),
                            ],
                        });
                let pl = self
                    .device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some("sha256"),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
                let k = ShaKernels {
                    batch: self.pipeline(&pl, &module, "sha256_batch")?,
                    leaves: self.pipeline(&pl, &module, "merkle_leaves")?,
                    nodes: self.pipeline(&pl, &module, "merkle_nodes")?,
                    unused: self.storage("unused", 16),
                    layout,
                };
                self.prime_sha(&k).map_err(|e| e.to_string())?;
                Ok(k)
            })
            .as_ref()
            .map_err(|e| device_error(e.clone()))
    }

    fn ed_kernels(&self) -> Result<&EdKernels, AccelError> {
        self.ed
            .get_or_init(|| {
                let module = self.module("ed25519", cpc_kernels::wgsl::ED25519)?;
                let layout =
                    self.device
                        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                            label: Some("ed25519"),
                            entries: &[
                                storage_entry(0, true),
                                storage_entry(1, false),
                                uniform_entry(2),
                                storage_entry(3, false),
                                storage_entry(4, false),
                                storage_entry(5, false),
                            ],
                        });
                let pipeline_layout =
                    self.device
                        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                            label: Some("ed25519"),
                            bind_group_layouts: &[Some(&layout)],
                            immediate_size: 0,
                        });
                let base_table = self.storage(
                    "ed25519 base table",
                    (cpc_kernels::wgsl::ED25519_BASE_TABLE_WORDS * 4) as u64,
                );
                let k = EdKernels {
                    decode: self.pipeline(&pipeline_layout, &module, "ed_decode")?,
                    table: self.pipeline(&pipeline_layout, &module, "ed_table")?,
                    windows: self.pipeline(&pipeline_layout, &module, "ed_windows")?,
                    finish: self.pipeline(&pipeline_layout, &module, "ed_finish")?,
                    base_table,
                    field_ops: OnceLock::new(),
                    module,
                    pipeline_layout,
                    layout,
                };
                self.prime_ed(&k).map_err(|e| e.to_string())?;
                Ok(k)
            })
            .as_ref()
            .map_err(|e| device_error(e.clone()))
    }

    /// Runs the three SHA-256 kernels once over one empty message, so that a software
    /// driver compiles them now, under [`FIRST_RUN_TIMEOUT`].
    fn prime_sha(&self, k: &ShaKernels) -> Result<(), AccelError> {
        self.scoped(|| {
            let slot = self.sha_slot(k, 1, 1);
            self.queue
                .write_buffer(&slot.spans, 0, bytemuck::cast_slice(&[0u32, 0]));
            let (_, _, row) = layout::grid(1, self.max_groups_x);
            self.queue
                .write_buffer(&slot.params, 0, bytemuck::cast_slice(&[1u32, row, 0, 0]));
            let mut enc = self.device.create_command_encoder(&Default::default());
            for pipeline in [&k.batch, &k.leaves, &k.nodes] {
                self.dispatch(&mut enc, pipeline, &slot.group, 0, 1);
            }
            enc.copy_buffer_to_buffer(&slot.out, 0, &slot.readback, 0, (NODE_WORDS * 4) as u64);
            let submission = self.submit(enc);
            self.read_within(
                &slot.readback,
                submission,
                NODE_WORDS,
                self.first_run_timeout(),
            )?;
            self.sha_pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(slot);
            Ok(())
        })
    }

    /// Fills the table of B every verification reads (`ed_base_table`), and runs every
    /// verification pass once over one all-zero item, so that a software driver compiles
    /// them now, under [`FIRST_RUN_TIMEOUT`].
    fn prime_ed(&self, k: &EdKernels) -> Result<(), AccelError> {
        let base = self
            .pipeline(&k.pipeline_layout, &k.module, "ed_base_table")
            .map_err(device_error)?;
        // `ed_base_table` reads no parameters and runs as one invocation.
        let mut passes = vec![(&base, [1, 1, 0, 0])];
        passes.extend(ed_passes(k, 1, self.max_groups_x));
        self.scoped(|| {
            let f = self.submit_ed(k, &passes, &[0; ED25519_ITEM_WORDS], 1, 1);
            self.finish_ed_within(f, self.first_run_timeout())
                .map(|_| ())
        })
    }

    fn first_run_timeout(&self) -> Duration {
        FIRST_RUN_TIMEOUT.max(self.timeout)
    }

    /// Runs `f` inside validation and out-of-memory error scopes; an error caught there
    /// wins over `f`'s own result, which may be garbage after one.
    fn scoped<T>(&self, f: impl FnOnce() -> Result<T, AccelError>) -> Result<T, AccelError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        match (v, o) {
            (Some(e), _) | (None, Some(e)) => Err(device_error(e.to_string())),
            (None, None) => result,
        }
    }

    fn submit(&self, encoder: wgpu::CommandEncoder) -> wgpu::SubmissionIndex {
        self.queue.submit(Some(encoder.finish()))
    }

    /// Waits for a submission and reads `words` words from the start of `readback`.
    fn read(
        &self,
        readback: &wgpu::Buffer,
        submission: wgpu::SubmissionIndex,
        words: usize,
    ) -> Result<Vec<u32>, AccelError> {
        self.read_within(readback, submission, words, self.timeout)
    }

    /// [`Self::read`], failing after `timeout` instead of the configured timeout.
    fn read_within(
        &self,
        readback: &wgpu::Buffer,
        submission: wgpu::SubmissionIndex,
        words: usize,
        timeout: Duration,
    ) -> Result<Vec<u32>, AccelError> {
        let bytes = (words * 4) as u64;
        let (tx, rx) = mpsc::channel();
        readback
            .slice(0..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: Some(timeout),
            })
            .map_err(|e| device_error(format!("waiting for the device: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(device_error(format!("cannot map the results: {e}"))),
            Err(_) => return Err(device_error("the results were never mapped")),
        }
        let out = {
            let view = readback
                .get_mapped_range(0..bytes)
                .map_err(|e| device_error(format!("cannot read the results: {e}")))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        readback.unmap();
        Ok(out)
    }

    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
        offset: u32,
        n: usize,
    ) {
        let (x, y, _) = layout::grid(n, self.max_groups_x);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[offset]);
        pass.dispatch_workgroups(x, y, 1);
    }

    // --- SHA-256 -------------------------------------------------------------------------

    fn sha_slot(&self, k: &ShaKernels, data_words: usize, count: usize) -> ShaSlot {
        let data_bytes = (data_words * 4) as u64;
        let out_bytes = (count * NODE_WORDS * 4) as u64;
        let mut pool = self.sha_pool.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = pool
            .iter()
            .position(|s| s.data.size() >= data_bytes && s.out.size() >= out_bytes)
        {
            return pool.swap_remove(i);
        }
        drop(pool);
        let data = self.storage("sha256 data", pool_size(data_bytes));
        let spans = self.storage("sha256 spans", pool_size(out_bytes / 4));
        let out = self.storage("sha256 digests", pool_size(out_bytes));
        let readback = self.readback(out.size());
        let params = self.uniforms(SHA_PARAM_SLOTS as u64);
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sha256"),
            layout: &k.layout,
            entries: &[
                bind(0, &data),
                bind(1, &spans),
                bind(2, &out),
                uniform_bind(3, &params),
            ],
        });
        ShaSlot {
            data,
            spans,
            out,
            readback,
            params,
            group,
        }
    }

    fn sha256(&self, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError> {
        let k = self.sha_kernels()?;
        let max_count = (self.chunk * 16).min(self.max_words / NODE_WORDS);
        let runs = layout::split_messages(msgs, max_count, self.max_words).map_err(|i| {
            device_error(format!(
                "message {i} ({} bytes) exceeds the device's largest buffer ({} bytes)",
                msgs[i].len(),
                self.max_words * 4
            ))
        })?;
        self.scoped(|| {
            let mut out = Vec::with_capacity(msgs.len());
            let mut pending: Option<InFlight<ShaSlot>> = None;
            for run in runs {
                let batch = &msgs[run];
                let packed = layout::pack_messages(batch);
                let slot = self.sha_slot(k, packed.data.len(), batch.len());
                self.queue
                    .write_buffer(&slot.data, 0, bytemuck::cast_slice(&packed.data));
                self.queue
                    .write_buffer(&slot.spans, 0, bytemuck::cast_slice(&packed.spans));
                // Each dispatch hashes a bounded number of blocks of every message (see the
                // shader); a run takes as many as its longest message needs, in
                // submissions of at most SHA_PARAM_SLOTS dispatches. The queue runs the
                // parameter writes and submissions in order.
                let blocks = batch.iter().map(|m| layout::sha256_blocks(m.len())).max();
                let per_pass = cpc_kernels::wgsl::SHA256_BLOCKS_PER_PASS as usize;
                let passes = blocks.unwrap_or(1).div_ceil(per_pass).max(1);
                let (_, _, row) = layout::grid(batch.len(), self.max_groups_x);
                let align = self.uniform_align as usize / 4;
                let words = batch.len() * NODE_WORDS;
                let mut first_pass = 0;
                let submission = loop {
                    let group = (passes - first_pass).min(SHA_PARAM_SLOTS);
                    let mut params = vec![0u32; group * align];
                    for i in 0..group {
                        let first_block = ((first_pass + i) * per_pass) as u32;
                        params[i * align..i * align + 4].copy_from_slice(&[
                            batch.len() as u32,
                            row,
                            first_block,
                            0,
                        ]);
                    }
                    self.queue
                        .write_buffer(&slot.params, 0, bytemuck::cast_slice(&params));
                    let mut enc = self.device.create_command_encoder(&Default::default());
                    for i in 0..group {
                        let offset = (i * align * 4) as u32;
                        self.dispatch(&mut enc, &k.batch, &slot.group, offset, batch.len());
                    }
                    first_pass += group;
                    if first_pass == passes {
                        enc.copy_buffer_to_buffer(
                            &slot.out,
                            0,
                            &slot.readback,
                            0,
                            (words * 4) as u64,
                        );
                        break self.submit(enc);
                    }
                    self.submit(enc);
                };
                let next = InFlight {
                    slot,
                    submission,
                    words,
                };
                if let Some(prev) = pending.replace(next) {
                    out.extend(self.finish_sha(prev)?);
                }
            }
            if let Some(prev) = pending {
                out.extend(self.finish_sha(prev)?);
            }
            Ok(out)
        })
    }

    fn finish_sha(&self, f: InFlight<ShaSlot>) -> Result<Vec<Digest>, AccelError> {
        let words = self.read(&f.slot.readback, f.submission, f.words)?;
        self.sha_pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(f.slot);
        Ok(layout::digests_from_words(&words))
    }

    // --- Merkle --------------------------------------------------------------------------

    fn merkle_slot(&self, k: &ShaKernels, leaves: usize, levels: usize) -> MerkleSlot {
        let bytes = (leaves * NODE_WORDS * 4) as u64;
        let param_slots = (levels + 1) as u64;
        let mut pool = self.merkle_pool.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = pool.iter().position(|s| {
            s.a.size() >= bytes && s.params.size() >= param_slots * self.uniform_align
        }) {
            return pool.swap_remove(i);
        }
        drop(pool);
        let a = self.storage("merkle a", pool_size(bytes));
        let b = self.storage("merkle b", pool_size(bytes));
        let readback = self.readback(4096);
        // One parameter slot per level; 64 covers any tree that fits in memory.
        let params = self.uniforms(param_slots.max(64));
        let group = |src: &wgpu::Buffer, dst: &wgpu::Buffer| {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("merkle"),
                layout: &k.layout,
                entries: &[
                    bind(0, src),
                    bind(1, &k.unused),
                    bind(2, dst),
                    uniform_bind(3, &params),
                ],
            })
        };
        let a_to_b = group(&a, &b);
        let b_to_a = group(&b, &a);
        MerkleSlot {
            a,
            b,
            readback,
            params,
            a_to_b,
            b_to_a,
        }
    }

    fn merkle(&self, leaves: &[Digest]) -> Result<Digest, AccelError> {
        let k = self.sha_kernels()?;
        if leaves.len() > self.max_words / NODE_WORDS {
            return Err(AccelError::BatchTooLarge {
                kind: KIND,
                len: leaves.len(),
                max: self.max_words / NODE_WORDS,
            });
        }
        let levels = layout::merkle_levels(leaves.len());
        self.scoped(|| {
            let slot = self.merkle_slot(k, leaves.len(), levels.len());
            self.queue.write_buffer(
                &slot.a,
                0,
                bytemuck::cast_slice(&layout::node_words(leaves)),
            );
            // All levels go in one submission; each level is its own pass, so the next
            // one sees the previous one's writes.
            let align = self.uniform_align as usize;
            let mut params = vec![0u32; (levels.len() + 1) * align / 4];
            // Slot 0: the leaf pass, one invocation per leaf. Slot i + 1: level i, which
            // reads n nodes with ⌈n/2⌉ invocations; the kernel is told n.
            let (_, _, row) = layout::grid(leaves.len(), self.max_groups_x);
            params[..4].copy_from_slice(&layout::params(leaves.len(), row));
            let mut n = leaves.len();
            for (i, &next) in levels.iter().enumerate() {
                let (_, _, row) = layout::grid(next, self.max_groups_x);
                let at = (i + 1) * align / 4;
                params[at..at + 4].copy_from_slice(&layout::params(n, row));
                n = next;
            }
            self.queue
                .write_buffer(&slot.params, 0, bytemuck::cast_slice(&params));
            let mut enc = self.device.create_command_encoder(&Default::default());
            self.dispatch(&mut enc, &k.leaves, &slot.a_to_b, 0, leaves.len());
            // Level-0 nodes are in b.
            let mut in_b = true;
            for (i, &next) in levels.iter().enumerate() {
                let group = if in_b { &slot.b_to_a } else { &slot.a_to_b };
                let offset = ((i + 1) * align) as u32;
                self.dispatch(&mut enc, &k.nodes, group, offset, next);
                in_b = !in_b;
            }
            let root = if in_b { &slot.b } else { &slot.a };
            enc.copy_buffer_to_buffer(root, 0, &slot.readback, 0, (NODE_WORDS * 4) as u64);
            let submission = self.submit(enc);
            let words = self.read(&slot.readback, submission, NODE_WORDS)?;
            self.merkle_pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(slot);
            Ok(layout::digest_from_words(&words))
        })
    }

    // --- Ed25519 -------------------------------------------------------------------------

    /// A buffer set for `n` items (verification) or `n` pairs (`field_ops`).
    fn ed_slot(&self, k: &EdKernels, n: usize) -> EdSlot {
        let mut pool = self.ed_pool.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = pool.iter().position(|s| s.capacity >= n) {
            return pool.swap_remove(i);
        }
        drop(pool);
        let capacity = n.max(64).next_power_of_two();
        let words = |per: usize| (capacity * per * 4) as u64;
        let items = self.storage("ed25519 items", words(ED25519_ITEM_WORDS));
        let out = self.storage("ed25519 verdicts", words(FIELD_OPS_OUT_WORDS));
        let state = self.storage(
            "ed25519 state",
            words(cpc_kernels::wgsl::ED25519_STATE_WORDS),
        );
        let tables = self.storage(
            "ed25519 tables",
            words(cpc_kernels::wgsl::ED25519_TABLE_WORDS),
        );
        let readback = self.readback(out.size());
        let params = self.uniforms(ED_PASSES as u64);
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("ed25519"),
            layout: &k.layout,
            entries: &[
                bind(0, &items),
                bind(1, &out),
                uniform_bind(2, &params),
                bind(3, &state),
                bind(4, &tables),
                bind(5, &k.base_table),
            ],
        });
        EdSlot {
            capacity,
            items,
            out,
            readback,
            params,
            group,
        }
    }

    /// Uploads `words` and records `passes` (pipeline, parameters) over `n` invocations
    /// each, then submits; the caller reads `out_words` words with [`Self::finish_ed`].
    fn submit_ed(
        &self,
        k: &EdKernels,
        passes: &[(&wgpu::ComputePipeline, [u32; 4])],
        words: &[u32],
        n: usize,
        out_words: usize,
    ) -> InFlight<EdSlot> {
        let slot = self.ed_slot(k, n);
        self.queue
            .write_buffer(&slot.items, 0, bytemuck::cast_slice(words));
        let align = self.uniform_align as usize / 4;
        let mut params = vec![0u32; passes.len() * align];
        for (i, (_, p)) in passes.iter().enumerate() {
            params[i * align..i * align + 4].copy_from_slice(p);
        }
        self.queue
            .write_buffer(&slot.params, 0, bytemuck::cast_slice(&params));
        let mut enc = self.device.create_command_encoder(&Default::default());
        for (i, (pipeline, _)) in passes.iter().enumerate() {
            let offset = (i * align * 4) as u32;
            self.dispatch(&mut enc, pipeline, &slot.group, offset, n);
        }
        enc.copy_buffer_to_buffer(&slot.out, 0, &slot.readback, 0, (out_words * 4) as u64);
        let submission = self.submit(enc);
        InFlight {
            slot,
            submission,
            words: out_words,
        }
    }

    fn finish_ed(&self, f: InFlight<EdSlot>) -> Result<Vec<u32>, AccelError> {
        self.finish_ed_within(f, self.timeout)
    }

    fn finish_ed_within(
        &self,
        f: InFlight<EdSlot>,
        timeout: Duration,
    ) -> Result<Vec<u32>, AccelError> {
        let words = self.read_within(&f.slot.readback, f.submission, f.words, timeout)?;
        self.ed_pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(f.slot);
        Ok(words)
    }

    fn ed25519(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        let k = self.ed_kernels()?;
        let per_item = ED25519_ITEM_WORDS
            + cpc_kernels::wgsl::ED25519_STATE_WORDS
            + cpc_kernels::wgsl::ED25519_TABLE_WORDS;
        let chunk = self.chunk.min(self.max_words / per_item).max(1);
        self.scoped(|| {
            let mut verdicts = Vec::with_capacity(items.len());
            let mut words = Vec::new();
            let mut pending: Option<InFlight<EdSlot>> = None;
            for batch in items.chunks(chunk) {
                // The SHA-512 challenges of this chunk are computed while the device still
                // verifies the previous one.
                layout::pack_ed25519(batch, &mut words);
                let n = batch.len();
                let passes = ed_passes(k, n, self.max_groups_x);
                let next = self.submit_ed(k, &passes, &words, n, n);
                if let Some(prev) = pending.replace(next) {
                    verdicts.extend(self.ed_verdicts(prev)?);
                }
            }
            if let Some(prev) = pending {
                verdicts.extend(self.ed_verdicts(prev)?);
            }
            Ok(verdicts)
        })
    }

    fn ed_verdicts(&self, f: InFlight<EdSlot>) -> Result<Vec<bool>, AccelError> {
        let words = self.finish_ed(f)?;
        layout::verdicts_from_words(&words)
            .ok_or_else(|| device_error("the device wrote a verdict other than 0 or 1"))
    }

    fn field_ops(&self, pairs: &[u32]) -> Result<Vec<u32>, AccelError> {
        let k = self.ed_kernels()?;
        let pipeline = k
            .field_ops
            .get_or_init(|| self.pipeline(&k.pipeline_layout, &k.module, "field_ops"))
            .as_ref()
            .map_err(|e| device_error(e.clone()))?;
        let n = pairs.len() / 16;
        if n == 0 {
            return Ok(Vec::new());
        }
        // Items are 32 words and pairs 16, so the items buffer of n/2 items holds n pairs.
        let (_, _, row) = layout::grid(n, self.max_groups_x);
        self.scoped(|| {
            let f = self.submit_ed(
                k,
                &[(pipeline, [n as u32, row, 0, 0])],
                &pairs[..n * 16],
                n,
                n * FIELD_OPS_OUT_WORDS,
            );
            // A test-only kernel, compiled at this first dispatch.
            self.finish_ed_within(f, self.first_run_timeout())
        })
    }
}

/// The verification passes over `n` items, with their parameters: decode, table, the
/// window passes (each names its first window), finish.
fn ed_passes(
    k: &EdKernels,
    n: usize,
    max_groups_x: u32,
) -> Vec<(&wgpu::ComputePipeline, [u32; 4])> {
    let (_, _, row) = layout::grid(n, max_groups_x);
    let p = |first: u32| [n as u32, row, first, 0];
    let per_pass = cpc_kernels::wgsl::ED25519_WINDOWS_PER_PASS;
    let mut passes = vec![(&k.decode, p(0)), (&k.table, p(0))];
    passes.extend((0..64 / per_pass).map(|i| (&k.windows, p(i * per_pass))));
    passes.push((&k.finish, p(0)));
    passes
}
