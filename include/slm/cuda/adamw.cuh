#pragma once
// AdamW on the GPU: one fused pass over the flat fp32 buffers updates m, v and the master
// weights and writes the bf16 working copy the GEMMs read, with the formula of cpu/adamw.hpp
// (in fp32). And the gradient's sum of squares for global-norm clipping: a two-stage reduction
// in double over a fixed grid, so the result does not depend on the GPU or on timing.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "slm/core/adamw_step.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/reduce.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

// The step's scalars, prepared once on the host.
struct AdamWScalars {
    float lr, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, grad_scale;
    float inv_bias_correction1, inv_bias_correction2;

    static AdamWScalars from(const optim::AdamWStep& s) {
        return {static_cast<float>(s.lr),
                static_cast<float>(s.beta1),
                static_cast<float>(s.beta2),
                static_cast<float>(1.0 - s.beta1),
                static_cast<float>(1.0 - s.beta2),
                static_cast<float>(s.eps),
                static_cast<float>(s.weight_decay),
                static_cast<float>(s.grad_scale),
                static_cast<float>(1.0 / s.bias_correction1),
                static_cast<float>(1.0 / s.bias_correction2)};
    }
};

template <int N>
__device__ __forceinline__ void adamw_pack(float* params, const float* grads, float* m, float* v,
                                           bf16* working, const AdamWScalars& s) {
    float p[N], g[N], mi[N], vi[N];
    load<N>(params, p);
    load<N>(grads, g);
    load<N>(m, mi);
    load<N>(v, vi);
#pragma unroll
    for (int e = 0; e < N; ++e) {
        const float gi = g[e] * s.grad_scale;
        mi[e] = s.beta1 * mi[e] + s.one_minus_beta1 * gi;
        vi[e] = s.beta2 * vi[e] + s.one_minus_beta2 * gi * gi;
        const float update =
            (mi[e] * s.inv_bias_correction1) / (sqrtf(vi[e] * s.inv_bias_correction2) + s.eps);
        p[e] = p[e] - s.lr * (update + s.weight_decay * p[e]);
    }
    store<N>(params, p);
    store<N>(m, mi);
    store<N>(v, vi);
    if (working) store<N>(working, p);
}

// params, grads, m, v: (n) fp32, updated in place; working: (n) bf16 copy of the new params, or
// null. Packs of N, then the tail of fewer than N one by one.
template <int N>
__global__ void adamw_kernel(float* __restrict__ params, const float* __restrict__ grads,
                             float* __restrict__ m, float* __restrict__ v,
                             bf16* __restrict__ working, int64_t n, AdamWScalars s) {
    static_assert(N == 1 || N == 4, "4 floats are one 16-byte load");
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t packs = n / N;
    for (int64_t i = first; i < packs; i += stride) {
        const int64_t at = i * N;
        adamw_pack<N>(params + at, grads + at, m + at, v + at, working ? working + at : nullptr, s);
    }
    for (int64_t i = packs * N + first; i < n; i += stride)
        adamw_pack<1>(params + i, grads + i, m + i, v + i, working ? working + i : nullptr, s);
}

inline void adamw_update(float* params, const float* grads, float* m, float* v, bf16* working,
                         int64_t n, const optim::AdamWStep& step, cudaStream_t stream) {
    if (n <= 0) return;
    constexpr int threads = 256;
    const AdamWScalars s = AdamWScalars::from(step);
    if (aligned_to(16, {params, grads, m, v}) && aligned_to(8, {working}))
        adamw_kernel<4><<<blocks_for(n / 4 + 1, threads), threads, 0, stream>>>(params, grads, m, v,
                                                                                working, n, s);
    else
        adamw_kernel<1>
            <<<blocks_for(n, threads), threads, 0, stream>>>(params, grads, m, v, working, n, s);
    SLM_CUDA_CHECK_LAUNCH("adamw_kernel");
}

inline constexpr int sum_squares_blocks = 1024;  // fixed: the summation order must not vary
inline constexpr int sum_squares_threads = 256;

// x: (n) → partial: (sum_squares_blocks), each the double sum of x² over a fixed grid stride.
template <int N>
__global__ void __launch_bounds__(sum_squares_threads)
    sum_of_squares_partial_kernel(const float* __restrict__ x, int64_t n,
                                  double* __restrict__ partial) {
    static_assert(N == 1 || N == 4, "4 floats are one 16-byte load");
    __shared__ double shared[32];
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t packs = n / N;
    double acc = 0;
    for (int64_t i = first; i < packs; i += stride) {
        float v[N];
        load<N>(x + i * N, v);
#pragma unroll
        for (int e = 0; e < N; ++e) acc += static_cast<double>(v[e]) * v[e];
    }
    for (int64_t i = packs * N + first; i < n; i += stride) acc += static_cast<double>(x[i]) * x[i];
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// partial: (count) → *out = Σ partial, one block of sum_squares_blocks threads.
static __global__ void __launch_bounds__(sum_squares_blocks)
    sum_partials_kernel(const double* __restrict__ partial, int count, double* __restrict__ out) {
    __shared__ double shared[32];
    double acc = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) *out = acc;
}

// Queues the reduction; the result lands in device memory at *result (one double).
inline void sum_of_squares(const float* x, int64_t n, double* result, Workspace& workspace,
                           cudaStream_t stream) {
    auto* partial = reinterpret_cast<double*>(
        workspace.get(sum_squares_blocks * static_cast<int64_t>(sizeof(double)), stream));
    if (aligned_to(16, {x}))
        sum_of_squares_partial_kernel<4>
            <<<sum_squares_blocks, sum_squares_threads, 0, stream>>>(x, n, partial);
    else
        sum_of_squares_partial_kernel<1>
            <<<sum_squares_blocks, sum_squares_threads, 0, stream>>>(x, n, partial);
    SLM_CUDA_CHECK_LAUNCH("sum_of_squares_partial_kernel");
    sum_partials_kernel<<<1, sum_squares_blocks, 0, stream>>>(partial, sum_squares_blocks, result);
    SLM_CUDA_CHECK_LAUNCH("sum_partials_kernel");
}

}  // namespace slm::cuda
