//! The CPChain accelerator layer.
//!
//! Every heavy cryptographic operation of the node — SHA-256 over batches of messages,
//! Merkle roots, Ed25519 batch verification — goes through one trait, [`Accelerator`].
//! Backends implement it for a device: [`cpu::CpuBackend`] is the reference and is always
//! present; GPU (wgpu, CUDA) and FPGA backends register with the same trait.
//!
//! Callers never talk to a backend directly. They hold a [`Dispatcher`], which
//!
//! - routes each operation to a backend by [`DispatchConfig`] (`auto | cpu | wgpu | cuda |
//!   fpga`, chosen per operation),
//! - splits batches larger than the backend's limit,
//! - falls back to the CPU when a backend is unavailable, fails, panics, or returns the
//!   wrong number of results, so the caller always gets its answer, and
//! - counts operations, items, errors, fallbacks and busy time per backend and operation.
//!
//! Homomorphic matching — encrypted ride-sharing matches and encrypted search under TFHE —
//! sits beside it behind [`FheMatcher`]: its types are in [`matching`], and the TFHE-rs
//! implementation in `fhe` (cargo feature `fhe`, with `fhe-gpu` and `fhe-hpu` forwarding to
//! TFHE-rs's CUDA and HPU backends). It is a feature because `tfhe` is the heaviest
//! dependency of the workspace and only the binary and the benches run it; every other
//! crate sees the trait and its byte-level types.
//!
//! # Consensus rules
//!
//! Every backend must return exactly what the CPU reference returns for every input:
//!
//! - SHA-256 is FIPS 180-4.
//! - Merkle roots follow the tree rule documented in [`merkle`].
//! - Ed25519 verdicts follow **ZIP-215**: the cofactored equation `[8][S]B = [8]R + [8][k]A`,
//!   `S` must be canonical (`S < L`), and any encoding of `A` and `R` that decodes to a
//!   curve point is accepted, including non-canonical `y` and small-order points. Under this
//!   rule a batch of valid signatures always passes the batch equation, and a batch with an
//!   invalid one fails it except with probability 2⁻¹²⁸, so per-item verdicts from a batch
//!   equal single verification and never depend on which signatures share the batch.

pub mod backend;
pub mod cpu;
pub mod dispatch;
pub mod error;
#[cfg(feature = "fhe")]
pub mod fhe;
pub mod fpga;
pub mod gpu;
pub mod matching;
pub mod merkle;
pub mod vectors;

pub use backend::{Accelerator, BackendInfo, BackendKind, FheMatcher, Op, SigItem};
pub use dispatch::{
    AutoPolicy, CounterSnapshot, DispatchConfig, Dispatcher, Route, ed25519_split, merkle_split,
    sha256_split,
};
pub use error::AccelError;

/// A SHA-256 digest.
pub type Digest = [u8; 32];
