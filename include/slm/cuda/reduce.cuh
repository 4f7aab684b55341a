#pragma once
// Warp and block reductions for the kernels. The order of the additions depends only on the block
// size and the data layout, never on timing, so every reduction in slm is deterministic: the same
// inputs give the same bits on every run.
#include <cuda_runtime.h>

#include <cmath>

namespace slm::cuda {

inline constexpr unsigned full_warp = 0xffffffffu;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(full_warp, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
        v = fmaxf(v, __shfl_xor_sync(full_warp, v, offset));
    return v;
}

// Sum over the whole block, returned to every thread. blockDim.x must be a multiple of 32 (at
// most 1024) and every thread must call it. `shared` holds 32 values; it may be reused right
// after the call returns.
template <class T>
__device__ T block_sum(T v, T* shared) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    T total = lane < warps ? shared[lane] : T(0);
    total = warp_sum(total);
    __syncthreads();
    return total;
}

__device__ inline float block_max(float v, float* shared) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_max(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float m = lane < warps ? shared[lane] : -INFINITY;
    m = warp_max(m);
    __syncthreads();
    return m;
}

}  // namespace slm::cuda
