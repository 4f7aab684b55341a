#pragma once
// RMSNorm on the GPU, forward fused with the residual add before it: y = x / rms(x) · w with
// rms(x) = sqrt(mean(x²) + eps). Statistics are fp32. The statistics are taken over the residual
// as stored (rounded to bf16), which is the x backward reads, so the two passes agree exactly.
// The weight gradient is reduced without atomics: fixed chunks of rows give partial column sums,
// added in chunk order (computed in the same pass as the rows' gradient where the width allows).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/reduce.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

// resid_in, delta, resid_out, normed: (n, d); w: (d); rstd: (n). One block per row.
// resid_out = resid_in + delta (delta may be null; resid_out may alias resid_in),
// normed = resid_out · rstd · w. R: the residual stream's element type (bf16 or float).
template <int N, class R>
__global__ void add_rmsnorm_forward_kernel(const R* resid_in, const bf16* delta, R* resid_out,
                                           const bf16* __restrict__ w, bf16* __restrict__ normed,
                                           float* __restrict__ rstd, int64_t d, float eps) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    __shared__ float shared[32];
    const int64_t offset = static_cast<int64_t>(blockIdx.x) * d;
    const int64_t step = static_cast<int64_t>(blockDim.x) * N;
    float sum_sq = 0;
    for (int64_t j = static_cast<int64_t>(threadIdx.x) * N; j < d; j += step) {
        float x[N];
        load<N>(resid_in + offset + j, x);
        if (delta) {
            float y[N];
            load<N>(delta + offset + j, y);
#pragma unroll
            for (int e = 0; e < N; ++e) x[e] += y[e];
        }
#pragma unroll
        for (int e = 0; e < N; ++e) {
            x[e] = rounded_as<R>(x[e]);
            sum_sq += x[e] * x[e];
        }
        store<N>(resid_out + offset + j, x);
    }
    const float s = 1.0f / sqrtf(block_sum(sum_sq, shared) / static_cast<float>(d) + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = s;
    for (int64_t j = static_cast<int64_t>(threadIdx.x) * N; j < d; j += step) {
        float x[N], g[N];
        load<N>(resid_out + offset + j, x);  // this thread's own writes above
        load<N>(w + j, g);
#pragma unroll
        for (int e = 0; e < N; ++e) x[e] = x[e] * s * g[e];
        store<N>(normed + offset + j, x);
    }
}

// x, dnormed, d_resid: (n, d); w: (d); rstd: (n). One block per row.
// d_resid += w·dy·s − x·c with c = s³/d · Σ_j w_j·dy_j·x_j (accumulated: the residual stream's
// gradient also flows past the norm).
template <int N, class R>
__global__ void rmsnorm_backward_rows_kernel(const R* __restrict__ x, const bf16* __restrict__ w,
                                             const float* __restrict__ rstd,
                                             const bf16* __restrict__ dnormed,
                                             bf16* __restrict__ d_resid, int64_t d) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    __shared__ float shared[32];
    const int64_t offset = static_cast<int64_t>(blockIdx.x) * d;
    const int64_t step = static_cast<int64_t>(blockDim.x) * N;
    float dot = 0;
    for (int64_t j = static_cast<int64_t>(threadIdx.x) * N; j < d; j += step) {
        float xv[N], g[N], dy[N];
        load<N>(x + offset + j, xv);
        load<N>(w + j, g);
        load<N>(dnormed + offset + j, dy);
#pragma unroll
        for (int e = 0; e < N; ++e) dot += g[e] * dy[e] * xv[e];
    }
    dot = block_sum(dot, shared);
    const float s = rstd[blockIdx.x];
    const float c = dot * s * s * s / static_cast<float>(d);
    for (int64_t j = static_cast<int64_t>(threadIdx.x) * N; j < d; j += step) {
        float xv[N], g[N], dy[N], dr[N];
        load<N>(x + offset + j, xv);
        load<N>(w + j, g);
        load<N>(dnormed + offset + j, dy);
        load<N>(d_resid + offset + j, dr);
#pragma unroll
        for (int e = 0; e < N; ++e) dr[e] += g[e] * dy[e] * s - xv[e] * c;
        store<N>(d_resid + offset + j, dr);
    }
}

inline constexpr int rmsnorm_dw_rows = 64;  // rows per partial sum: fixed, so results are too

// The rows kernel and the weight gradient's partial sums in one pass: block c walks rows
// [64c, 64c + 64) one after the other, each thread always on the same V vectors of 8 columns, so
// it can sum dy·x·s over the chunk's rows in registers while it updates d_resid (the separate
// partial kernel re-read x and dy: a fifth of the norm's traffic). Bit-identical to
// rmsnorm_backward_rows_kernel<8> then rmsnorm_dw_partial_kernel<8>: the same expressions in the
// same order. partial: (chunks, d).
template <int V, class R>
__global__ void rmsnorm_backward_chunk_kernel(const R* __restrict__ x,
                                              const bf16* __restrict__ w,
                                              const float* __restrict__ rstd,
                                              const bf16* __restrict__ dnormed,
                                              bf16* __restrict__ d_resid,
                                              float* __restrict__ partial, int64_t n, int64_t d) {
    __shared__ float shared[32];
    const int64_t begin = static_cast<int64_t>(blockIdx.x) * rmsnorm_dw_rows;
    const int64_t end = begin + rmsnorm_dw_rows < n ? begin + rmsnorm_dw_rows : n;
    const int64_t step = static_cast<int64_t>(blockDim.x) * 8;
    const int64_t first = static_cast<int64_t>(threadIdx.x) * 8;
    float acc[V][8] = {};
    for (int64_t i = begin; i < end; ++i) {
        const int64_t offset = i * d;
        float dot = 0;
#pragma unroll
        for (int v = 0; v < V; ++v) {
            const int64_t j = first + v * step;
            if (j >= d) break;
            float xv[8], g[8], dy[8];
            load<8>(x + offset + j, xv);
            load<8>(w + j, g);
            load<8>(dnormed + offset + j, dy);
#pragma unroll
            for (int e = 0; e < 8; ++e) dot += g[e] * dy[e] * xv[e];
        }
        dot = block_sum(dot, shared);
        const float s = rstd[i];
        const float c = dot * s * s * s / static_cast<float>(d);
#pragma unroll
        for (int v = 0; v < V; ++v) {
            const int64_t j = first + v * step;
            if (j >= d) break;
            float xv[8], g[8], dy[8], dr[8];
            load<8>(x + offset + j, xv);
            load<8>(w + j, g);
            load<8>(dnormed + offset + j, dy);
            load<8>(d_resid + offset + j, dr);
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                dr[e] += g[e] * dy[e] * s - xv[e] * c;
                acc[v][e] += dy[e] * xv[e] * s;
            }
            store<8>(d_resid + offset + j, dr);
        }
    }
#pragma unroll
    for (int v = 0; v < V; ++v) {
        const int64_t j = first + v * step;
        if (j < d) store<8>(partial + blockIdx.x * d + j, acc[v]);
    }
}

// x, dnormed: (n, d); rstd: (n) → partial: (chunks, d), chunk c summing rows [64c, 64c + 64).
// grid: (column tiles, chunks)
template <int N, class R>
__global__ void rmsnorm_dw_partial_kernel(const R* __restrict__ x,
                                          const float* __restrict__ rstd,
                                          const bf16* __restrict__ dnormed,
                                          float* __restrict__ partial, int64_t n, int64_t d) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    const int64_t j = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * N;
    if (j >= d) return;
    const int64_t begin = static_cast<int64_t>(blockIdx.y) * rmsnorm_dw_rows;
    const int64_t end = begin + rmsnorm_dw_rows < n ? begin + rmsnorm_dw_rows : n;
    float acc[N] = {};
    for (int64_t i = begin; i < end; ++i) {
        float xv[N], dy[N];
        load<N>(x + i * d + j, xv);
        load<N>(dnormed + i * d + j, dy);
        const float s = rstd[i];
#pragma unroll
        for (int e = 0; e < N; ++e) acc[e] += dy[e] * xv[e] * s;
    }
    store<N>(partial + blockIdx.y * d + j, acc);
}

// dw: (d) += Σ_c partial[c] in chunk order
static __global__ void rmsnorm_dw_finish_kernel(const float* __restrict__ partial,
                                                float* __restrict__ dw, int64_t chunks, int64_t d) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float acc = 0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[c * d + j];
    dw[j] += acc;
}

namespace detail {
// Threads for a block that walks one row of d elements N at a time: a multiple of 32, ≤ 256.
inline int row_threads(int64_t d, int n_per_thread) {
    const int64_t t = (d / n_per_thread + 31) / 32 * 32;
    return static_cast<int>(std::clamp<int64_t>(t, 32, 256));
}
}  // namespace detail

template <class R>
void add_rmsnorm_forward(const R* resid_in, const bf16* delta, R* resid_out, const bf16* w,
                         bf16* normed, float* rstd, int64_t n, int64_t d, double eps,
                         cudaStream_t stream) {
    if (n <= 0 || d <= 0) return;
    const bool vec = d % 8 == 0 && aligned_to(16, {delta, w, normed}) &&
                     aligned_to(8 * sizeof(R), {resid_in, resid_out});
    const int n_per = vec ? 8 : 1;
    const int threads = detail::row_threads(d, n_per);
    const auto e = static_cast<float>(eps);
    if (vec)
        add_rmsnorm_forward_kernel<8, R><<<static_cast<unsigned>(n), threads, 0, stream>>>(
            resid_in, delta, resid_out, w, normed, rstd, d, e);
    else
        add_rmsnorm_forward_kernel<1, R><<<static_cast<unsigned>(n), threads, 0, stream>>>(
            resid_in, delta, resid_out, w, normed, rstd, d, e);
    SLM_CUDA_CHECK_LAUNCH("add_rmsnorm_forward_kernel");
}

// x: the residual stream the norm read, bf16 or fp32 (R).
template <class R>
void rmsnorm_backward(const R* x, const bf16* w, const float* rstd, const bf16* dnormed,
                      bf16* d_resid, float* dw, int64_t n, int64_t d, Workspace& workspace,
                      cudaStream_t stream) {
    if (n <= 0 || d <= 0) return;
    const bool vec = d % 8 == 0 && aligned_to(16, {w, dnormed, d_resid}) &&
                     aligned_to(8 * sizeof(R), {x});
    const int n_per = vec ? 8 : 1;
    const int threads = detail::row_threads(d, n_per);
    const int64_t chunks = (n + rmsnorm_dw_rows - 1) / rmsnorm_dw_rows;
    const int64_t vectors = (d + threads * int64_t{8} - 1) / (threads * int64_t{8});
    if (vec && vectors <= 4) {  // every width of the presets (d ≤ 8192)
        auto* partial = reinterpret_cast<float*>(
            workspace.get(chunks * d * static_cast<int64_t>(sizeof(float)), stream));
        const auto blocks = static_cast<unsigned>(chunks);
        if (vectors == 1)
            rmsnorm_backward_chunk_kernel<1, R><<<blocks, threads, 0, stream>>>(
                x, w, rstd, dnormed, d_resid, partial, n, d);
        else if (vectors == 2)
            rmsnorm_backward_chunk_kernel<2, R><<<blocks, threads, 0, stream>>>(
                x, w, rstd, dnormed, d_resid, partial, n, d);
        else
            rmsnorm_backward_chunk_kernel<4, R><<<blocks, threads, 0, stream>>>(
                x, w, rstd, dnormed, d_resid, partial, n, d);
        SLM_CUDA_CHECK_LAUNCH("rmsnorm_backward_chunk_kernel");
        rmsnorm_dw_finish_kernel<<<blocks_for(d, 256), 256, 0, stream>>>(partial, dw, chunks, d);
        SLM_CUDA_CHECK_LAUNCH("rmsnorm_dw_finish_kernel");
        return;
    }
    if (vec)
        rmsnorm_backward_rows_kernel<8, R>
            <<<static_cast<unsigned>(n), threads, 0, stream>>>(x, w, rstd, dnormed, d_resid, d);
    else
        rmsnorm_backward_rows_kernel<1, R>
            <<<static_cast<unsigned>(n), threads, 0, stream>>>(x, w, rstd, dnormed, d_resid, d);
    SLM_CUDA_CHECK_LAUNCH("rmsnorm_backward_rows_kernel");

    require(chunks <= 65535, "rmsnorm_backward: " + std::to_string(n) +
                                 " rows exceed the grid (at most 65535 · 64)");
    auto* partial = reinterpret_cast<float*>(
        workspace.get(chunks * d * static_cast<int64_t>(sizeof(float)), stream));
    constexpr int col_threads = 128;
    const dim3 grid(static_cast<unsigned>((d / n_per + col_threads - 1) / col_threads),
                    static_cast<unsigned>(chunks));
    if (vec)  // partial rows are 32-byte aligned: the workspace is, and d % 8 == 0
        rmsnorm_dw_partial_kernel<8, R>
            <<<grid, col_threads, 0, stream>>>(x, rstd, dnormed, partial, n, d);
    else
        rmsnorm_dw_partial_kernel<1, R>
            <<<grid, col_threads, 0, stream>>>(x, rstd, dnormed, partial, n, d);
    SLM_CUDA_CHECK_LAUNCH("rmsnorm_dw_partial_kernel");
    rmsnorm_dw_finish_kernel<<<blocks_for(d, 256), 256, 0, stream>>>(partial, dw, chunks, d);
    SLM_CUDA_CHECK_LAUNCH("rmsnorm_dw_finish_kernel");
}

}  // namespace slm::cuda
