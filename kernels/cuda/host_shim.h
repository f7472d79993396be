// Compiles the CUDA kernels of this directory as host C++, so tests can run the code that
// NVRTC compiles for a GPU on machines without one. A launch becomes a loop over blocks
// and threads that sets the index variables below before each call of the kernel (see
// host_harness.cpp). The kernels use no shared memory, barriers or warp intrinsics, so
// running the threads one after another is a faithful execution.
#pragma once

struct dim3 {
    unsigned x, y, z;
};

static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
