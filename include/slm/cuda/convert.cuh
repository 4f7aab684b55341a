#pragma once
// fp32 master weights → the bf16 working copy the GEMMs read (round to nearest even).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/check.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

// master: (n) fp32 → working: (n) bf16
template <int N>
__global__ void convert_kernel(const float* __restrict__ master, bf16* __restrict__ working,
                               int64_t n) {
    static_assert(N == 1 || N == 4, "4 floats are one 16-byte load");
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t packs = n / N;
    for (int64_t i = first; i < packs; i += stride) {
        float v[N];
        load<N>(master + i * N, v);
        store<N>(working + i * N, v);
    }
    for (int64_t i = packs * N + first; i < n; i += stride)  // the tail of fewer than N
        working[i] = __float2bfloat16_rn(master[i]);
}

inline void convert(const float* master, bf16* working, int64_t n, cudaStream_t stream) {
    if (n <= 0) return;
    constexpr int threads = 256;
    if (aligned_to(16, {master}) && aligned_to(8, {working})) {
        convert_kernel<4>
            <<<blocks_for(n / 4 + 1, threads), threads, 0, stream>>>(master, working, n);
    } else {
        convert_kernel<1><<<blocks_for(n, threads), threads, 0, stream>>>(master, working, n);
    }
    SLM_CUDA_CHECK_LAUNCH("convert_kernel");
}

}  // namespace slm::cuda
