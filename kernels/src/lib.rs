//! GPU kernel sources for the accelerator backends.
//!
//! Each kernel is written once in WGSL (run by the wgpu backend on Vulkan, Metal, DX12 or
//! Mesa's lavapipe) and once in CUDA C (compiled at run time by NVRTC for the CUDA
//! backend), and included here as source strings so the binary carries them. The kernels
//! arrive with the GPU backends; this crate fixes their home in the workspace.
