//! GPU backends: the kernels of `cpc-kernels` on wgpu ([`wgpu::WgpuBackend`]) and on CUDA
//! ([`cuda::CudaBackend`]).
//!
//! Both backends share the buffer layouts in [`layout`] and the division of work: the host
//! packs inputs, computes the Ed25519 challenges `k = SHA-512(R ‖ A ‖ M) mod L`, and
//! splits batches to the device's limits; the device hashes, builds Merkle levels and runs
//! the whole ZIP-215 check (scalar range, point decoding, double-scalar multiplication,
//! cofactored comparison) with one thread per item.

pub mod cuda;
pub mod layout;
pub mod wgpu;
