//! GPU kernel sources for the accelerator backends.
//!
//! Each kernel is written once in WGSL (run by the wgpu backend on Vulkan, Metal, DX12 or
//! Mesa's lavapipe) and once in CUDA C (compiled at run time by NVRTC for the CUDA
//! backend). The sources are included here as strings, so the binary carries them and no
//! toolchain is needed at build time.
//!
//! Both languages share one buffer layout per kernel, so the host code that packs inputs
//! and unpacks results (`cpc_accel::gpu::layout`) serves both backends:
//!
//! | kernel | inputs | output |
//! |---|---|---|
//! | `sha256_batch` | message words (each message starts on a word boundary, bytes little-endian within a word); `(first word, byte length)` per message | 8 big-endian state words per digest |
//! | `merkle_leaves` | 8 words per leaf | 8 words per level-0 node `SHA-256(0x00 ‖ leaf)` |
//! | `merkle_nodes` | `n` nodes | `⌈n/2⌉` nodes `SHA-256(0x01 ‖ l ‖ r)`, an odd last node copied |
//! | `ed25519_verify` | 32 little-endian words per item: `A`, `R`, `S`, `k = SHA-512(R ‖ A ‖ M) mod L` | one word per item: 1 valid, 0 invalid |
//!
//! In WGSL, `sha256_batch` hashes at most [`wgsl::SHA256_BLOCKS_PER_PASS`] blocks of each
//! message per dispatch, from the block its parameters name, and keeps the running state
//! in the digest buffer; the host dispatches until the longest message is done (lavapipe
//! cuts an invocation off after 65535 loop iterations, and desktop drivers reset a GPU
//! whose dispatch runs for seconds). The CUDA kernel hashes whole messages.
//!
//! In WGSL the Ed25519 verification is split into passes (`ed_decode`, `ed_table`, eight
//! `ed_windows`, `ed_finish`) over the same input and output, with per-item state in two
//! more buffers of [`wgsl::ED25519_STATE_WORDS`] and [`wgsl::ED25519_TABLE_WORDS`] words;
//! see the file's header for why.
//!
//! The challenge hash `k` runs on the host: it is about 1 % of a verification's cost, it is
//! the only part that reads the variable-length message (the device then gets 128 fixed
//! bytes per signature), and SHA-512's 64-bit words would have to be emulated in WGSL. The
//! host hashes the next chunk while the device verifies the current one.
//!
//! The CUDA sources also compile as C++ on the host through [`cuda::HOST_SHIM`], which
//! turns `__global__`/`__device__` into plain functions and the thread and block indices
//! into variables a loop sets; the differential tests run the CUDA kernels that way on
//! machines without a GPU.

/// WGSL sources (wgpu backend).
pub mod wgsl {
    /// `sha256_batch`, `merkle_leaves`, `merkle_nodes`.
    pub const SHA256: &str = include_str!("../wgsl/sha256.wgsl");
    /// 64-byte blocks of each message one `sha256_batch` dispatch hashes
    /// (`BLOCKS_PER_PASS` in the shader); longer messages take several dispatches.
    pub const SHA256_BLOCKS_PER_PASS: u32 = 512;
    /// `ed_base_table`, `ed_decode`, `ed_table`, `ed_windows`, `ed_finish`, and
    /// `field_ops` (field arithmetic check used by tests).
    pub const ED25519: &str = include_str!("../wgsl/ed25519.wgsl");
    /// Per-item state words of the Ed25519 passes (`STATE_WORDS` in the shader).
    pub const ED25519_STATE_WORDS: usize = 192;
    /// Per-item table words of the Ed25519 passes (`TABLE_WORDS` in the shader).
    pub const ED25519_TABLE_WORDS: usize = 640;
    /// Words of the table of B (`ed_base_table`).
    pub const ED25519_BASE_TABLE_WORDS: usize = 640;
    /// Windows per `ed_windows` pass; 64 / this many passes run.
    pub const ED25519_WINDOWS_PER_PASS: u32 = 8;
}

/// CUDA C sources (CUDA backend, compiled by NVRTC).
pub mod cuda {
    /// `sha256_batch`, `merkle_leaves`, `merkle_nodes`.
    pub const SHA256: &str = include_str!("../cuda/sha256.cu");
    /// `ed25519_verify`, and `field_ops` (field arithmetic check used by tests).
    pub const ED25519: &str = include_str!("../cuda/ed25519.cu");
    /// Makes the `.cu` sources compile as host C++: CUDA qualifiers become plain C++ and
    /// `threadIdx`, `blockIdx`, `blockDim`, `gridDim` become variables set by the caller.
    pub const HOST_SHIM: &str = include_str!("../cuda/host_shim.h");
    /// A host program that runs the kernels over every block and thread of a launch, fed
    /// through standard input and output (see the file for the protocol).
    pub const HOST_HARNESS: &str = include_str!("../cuda/host_harness.cpp");
}

/// Invocations per workgroup (WGSL) and threads per block (CUDA) of every kernel.
pub const WORKGROUP_SIZE: u32 = 64;

/// Words per Ed25519 item: `A`, `R`, `S` and `k`, 8 words each.
pub const ED25519_ITEM_WORDS: usize = 32;

/// Words per item written by `field_ops`: six field results, a decoded `x` and a flag.
pub const FIELD_OPS_OUT_WORDS: usize = 57;

#[cfg(test)]
mod tests {
    /// The value of `const NAME: u32 = Nu;` in a shader.
    fn shader_const(source: &str, name: &str) -> u32 {
        let decl = format!("const {name}: u32 = ");
        let at = source
            .find(&decl)
            .unwrap_or_else(|| panic!("{name} not declared"));
        let rest = &source[at + decl.len()..];
        let end = rest.find('u').expect("a u32 literal");
        rest[..end].parse().expect("a decimal literal")
    }

    #[test]
    fn host_constants_match_the_shaders() {
        use super::wgsl::*;
        let ed = |name| shader_const(ED25519, name) as usize;
        assert_eq!(ed("STATE_WORDS"), ED25519_STATE_WORDS);
        assert_eq!(ed("TABLE_WORDS"), ED25519_TABLE_WORDS);
        assert_eq!(
            shader_const(ED25519, "WINDOWS_PER_PASS"),
            ED25519_WINDOWS_PER_PASS
        );
        assert_eq!(64 % ED25519_WINDOWS_PER_PASS, 0);
        assert_eq!(
            shader_const(SHA256, "BLOCKS_PER_PASS"),
            SHA256_BLOCKS_PER_PASS
        );
    }
}
