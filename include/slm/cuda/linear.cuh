#pragma once
// Linear layer y = x · Wᵀ on the GPU: three cuBLASLt GEMMs, the same contract as cpu/linear.hpp.
// W is (out, in) as in PyTorch. The activation gradient is overwritten (bf16); the weight
// gradient is accumulated in fp32 (beta = 1), so micro-batches add up.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/gemm.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

// x: (n, in), w: (out, in) → y: (n, out)
inline void linear_forward(Gemm& gemm, const bf16* x, const bf16* w, bf16* y, int64_t n, int64_t in,
                           int64_t out, cudaStream_t stream) {
    gemm(stream, Trans::N, Trans::T, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

// dy: (n, out) → dx: (n, in) overwritten, dw: (out, in) accumulated in fp32; each skipped when
// null, and then what only it reads (w for dx, x for dw) may be null too.
inline void linear_backward(Gemm& gemm, const bf16* x, const bf16* w, const bf16* dy, bf16* dx,
                            float* dw, int64_t n, int64_t in, int64_t out, cudaStream_t stream) {
    if (dx) gemm(stream, Trans::N, Trans::N, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
    if (dw) gemm(stream, Trans::T, Trans::N, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
}

}  // namespace slm::cuda
