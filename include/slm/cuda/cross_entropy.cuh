#pragma once
// LM head + softmax cross-entropy on the GPU, fused and chunked over rows like
// cpu/cross_entropy.hpp, so fp32 logits for the whole batch never exist. Per chunk of rows:
//   1. logits (rows × vocab, bf16, in the caller's scratch) = x · Wᵀ          (GEMM)
//   2. one block per row: max, log-sum-exp and the loss in fp32; with a gradient, the row is
//      overwritten in place by dlogits = (softmax − onehot) · grad_scale / counted. Rows up to
//      32768 logits are read once and held in registers; longer ones are read three times.
//   3. dx = dlogits · W (bf16, overwritten) and dW += dlogitsᵀ · x (fp32, accumulated)  (GEMMs)
// Valid targets are counted on the device before the first chunk, so no host round trip is
// needed for the gradient's scale. Per-row losses are summed in double in a fixed order (the
// result is deterministic); out-of-range targets are reported through the DeviceReport.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "slm/core/error.hpp"
#include "slm/core/shapes.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/gemm.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/reduce.cuh"
#include "slm/cuda/report.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

inline constexpr int ce_reduce_threads = 1024;

// targets: (n) → report->counted = targets that are not ignore_index; ids outside [0, vocab)
// are reported (and not counted). One block.
static __global__ void __launch_bounds__(ce_reduce_threads)
    ce_count_targets_kernel(const int32_t* __restrict__ targets, int64_t n, int64_t vocab,
                            DeviceReport* report) {
    __shared__ int shared[32];
    int count = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const int32_t t = targets[i];
        if (t == ignore_index) continue;
        if (t < 0 || t >= vocab)
            report_bad_id(&report->bad_target, i, t);
        else
            ++count;
    }
    count = block_sum(count, shared);
    if (threadIdx.x == 0) report->counted = count;
}

// logits: (rows, vocab) for targets: (rows) → row_loss: (rows) = lse − z[target] (0 if ignored).
// with_grad: logits overwritten by dlogits (zero rows for ignored targets). One block per row.
template <int N>
__global__ void ce_rows_kernel(bf16* __restrict__ logits, const int32_t* __restrict__ targets,
                               int64_t vocab, const DeviceReport* __restrict__ report,
                               float grad_scale, float* __restrict__ row_loss, bool with_grad) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    __shared__ float shared[32];
    bf16* z = logits + static_cast<int64_t>(blockIdx.x) * vocab;
    const int64_t step = static_cast<int64_t>(blockDim.x) * N;
    const int64_t first = static_cast<int64_t>(threadIdx.x) * N;
    const int32_t t = targets[blockIdx.x];
    const bool valid = t != ignore_index && t >= 0 && t < vocab;
    const float z_t = valid ? to_float(z[t]) : 0.0f;  // read before the row is overwritten

    float m = -INFINITY;
    for (int64_t j = first; j < vocab; j += step) {
        float v[N];
        load<N>(z + j, v);
#pragma unroll
        for (int e = 0; e < N; ++e) m = fmaxf(m, v[e]);
    }
    m = block_max(m, shared);
    float sum = 0;
    for (int64_t j = first; j < vocab; j += step) {
        float v[N];
        load<N>(z + j, v);
#pragma unroll
        for (int e = 0; e < N; ++e) sum += expf(v[e] - m);
    }
    sum = block_sum(sum, shared);  // synchronises: every thread has read z_t by now
    const float lse = m + logf(sum);
    if (threadIdx.x == 0) row_loss[blockIdx.x] = valid ? lse - z_t : 0.0f;
    if (!with_grad) return;

    const int counted = report->counted;
    const float scale = valid && counted > 0 ? grad_scale / static_cast<float>(counted) : 0.0f;
    for (int64_t j = first; j < vocab; j += step) {
        float v[N];
        load<N>(z + j, v);
#pragma unroll
        for (int e = 0; e < N; ++e) v[e] = (expf(v[e] - lse) - (j + e == t ? 1.0f : 0.0f)) * scale;
        store<N>(z + j, v);
    }
}

// What ce_rows_kernel does, with the row read from memory once instead of three times: each
// thread keeps its Loads 16-byte packs of the row in registers (as bf16) for the max, the sum and
// the gradient. For rows up to ce_row_register_capacity logits (vocab multiple of 8, logits
// 16-byte aligned); blockDim.x · 8 · Loads ≥ vocab.
inline constexpr int ce_row_register_threads = 1024;
inline constexpr int64_t ce_row_register_capacity = int64_t{ce_row_register_threads} * 8 * 4;

template <int Loads>
__global__ void __launch_bounds__(ce_row_register_threads)
    ce_rows_in_registers_kernel(bf16* __restrict__ logits, const int32_t* __restrict__ targets,
                                int64_t vocab, const DeviceReport* __restrict__ report,
                                float grad_scale, float* __restrict__ row_loss, bool with_grad) {
    // 8 packs would take over 100 registers: the row is split over more threads instead.
    static_assert(Loads == 1 || Loads == 2 || Loads == 4, "1, 2 or 4 packs");
    __shared__ float shared[32];
    bf16* z = logits + static_cast<int64_t>(blockIdx.x) * vocab;
    const int64_t step = static_cast<int64_t>(blockDim.x) * 8;
    const int64_t first = static_cast<int64_t>(threadIdx.x) * 8;
    const int32_t t = targets[blockIdx.x];
    const bool valid = t != ignore_index && t >= 0 && t < vocab;

    Pack<bf16, 8> row[Loads];
#pragma unroll
    for (int l = 0; l < Loads; ++l) {
        const int64_t j = first + l * step;
        if (j < vocab) row[l] = *reinterpret_cast<const Pack<bf16, 8>*>(z + j);
    }
    // Read before the row is overwritten (every store follows the block reductions' barriers).
    // Not from the registers: indexing them by t would move the row to local memory.
    const float z_t = valid ? to_float(z[t]) : 0.0f;
    float m = -INFINITY;
#pragma unroll
    for (int l = 0; l < Loads; ++l)
        if (first + l * step < vocab)
#pragma unroll
            for (int e = 0; e < 8; ++e) m = fmaxf(m, to_float(row[l].v[e]));
    m = block_max(m, shared);
    float sum = 0;
#pragma unroll
    for (int l = 0; l < Loads; ++l)
        if (first + l * step < vocab)
#pragma unroll
            for (int e = 0; e < 8; ++e) sum += expf(to_float(row[l].v[e]) - m);
    sum = block_sum(sum, shared);
    const float lse = m + logf(sum);
    if (threadIdx.x == 0) row_loss[blockIdx.x] = valid ? lse - z_t : 0.0f;
    if (!with_grad) return;

    const int counted = report->counted;
    const float scale = valid && counted > 0 ? grad_scale / static_cast<float>(counted) : 0.0f;
#pragma unroll
    for (int l = 0; l < Loads; ++l) {
        const int64_t j = first + l * step;
        if (j >= vocab) continue;
        float v[8];
#pragma unroll
        for (int e = 0; e < 8; ++e)
            v[e] = (expf(to_float(row[l].v[e]) - lse) - (j + e == t ? 1.0f : 0.0f)) * scale;
        store<8>(z + j, v);
    }
}

// row_loss: (n) → report->loss_sum, in double, in a fixed order. One block.
static __global__ void __launch_bounds__(ce_reduce_threads)
    ce_sum_kernel(const float* __restrict__ row_loss, int64_t n, DeviceReport* report) {
    __shared__ double shared[32];
    double acc = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += row_loss[i];
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) report->loss_sum = acc;
}

template <int Loads>
void launch_rows_in_registers_with(unsigned rows, bf16* logits, const int32_t* targets,
                                   int64_t vocab, const DeviceReport* report, float grad_scale,
                                   float* row_loss, bool with_grad, cudaStream_t stream) {
    const int64_t packs = (vocab + 8 * Loads - 1) / (8 * Loads);
    const int threads = static_cast<int>(std::max<int64_t>((packs + 31) / 32 * 32, 32));
    ce_rows_in_registers_kernel<Loads><<<rows, threads, 0, stream>>>(
        logits, targets, vocab, report, grad_scale, row_loss, with_grad);
    SLM_CUDA_CHECK_LAUNCH("ce_rows_in_registers_kernel");
}

// The smallest Loads whose block (at most ce_row_register_threads) covers the row.
inline void launch_rows_in_registers(unsigned rows, bf16* logits, const int32_t* targets,
                                     int64_t vocab, const DeviceReport* report, float grad_scale,
                                     float* row_loss, bool with_grad, cudaStream_t stream) {
    require(vocab <= ce_row_register_capacity, "launch_rows_in_registers: vocab " +
                                                   std::to_string(vocab) + " is over " +
                                                   std::to_string(ce_row_register_capacity));
    const int64_t per_load = int64_t{ce_row_register_threads} * 8;
    const auto launch = vocab <= per_load       ? launch_rows_in_registers_with<1>
                        : vocab <= 2 * per_load ? launch_rows_in_registers_with<2>
                                                : launch_rows_in_registers_with<4>;
    launch(rows, logits, targets, vocab, report, grad_scale, row_loss, with_grad, stream);
}

// x: (n, d) final normed hidden states, w: (vocab, d), targets: (n) on the device;
// scratch: chunk · vocab bf16 of logits. With dx non-null, writes dx: (n, d) and accumulates
// dw: (vocab, d) for grad_scale · mean loss. Leaves the loss sum and the count in *report.
// rows_in_three_passes forces the three-pass row kernel (for tests and the benchmark).
inline void lm_head_cross_entropy(Gemm& gemm, const bf16* x, const bf16* w, const int32_t* targets,
                                  int64_t n, int64_t d, int64_t vocab, void* scratch, int64_t chunk,
                                  double grad_scale, bf16* dx, float* dw, DeviceReport* report,
                                  Workspace& workspace, cudaStream_t stream,
                                  bool rows_in_three_passes = false) {
    require(chunk > 0 && scratch != nullptr,
            "lm_head_cross_entropy needs a logits scratch of chunk > 0 rows, got chunk " +
                std::to_string(chunk));
    require(n < INT32_MAX, "lm_head_cross_entropy: too many rows for the int32 count");
    auto* row_loss = reinterpret_cast<float*>(
        workspace.get(std::max<int64_t>(n, 1) * static_cast<int64_t>(sizeof(float)), stream));
    ce_count_targets_kernel<<<1, ce_reduce_threads, 0, stream>>>(targets, n, vocab, report);
    SLM_CUDA_CHECK_LAUNCH("ce_count_targets_kernel");

    auto* logits = static_cast<bf16*>(scratch);
    const bool vec = vocab % 8 == 0 && aligned_to(16, {logits});
    const bool in_registers = vec && vocab <= ce_row_register_capacity && !rows_in_three_passes;
    const int threads =
        static_cast<int>(std::clamp<int64_t>((vocab / (vec ? 8 : 1) + 31) / 32 * 32, 32, 512));
    for (int64_t begin = 0; begin < n; begin += chunk) {
        const int64_t rows = std::min(chunk, n - begin);
        const bf16* xc = x + begin * d;
        gemm(stream, Trans::N, Trans::T, rows, vocab, d, 1.0f, xc, d, w, d, 0.0f, logits, vocab);
        if (in_registers)
            launch_rows_in_registers(static_cast<unsigned>(rows), logits, targets + begin, vocab,
                                     report, static_cast<float>(grad_scale), row_loss + begin,
                                     dx != nullptr, stream);
        else if (vec)
            ce_rows_kernel<8><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
                logits, targets + begin, vocab, report, static_cast<float>(grad_scale),
                row_loss + begin, dx != nullptr);
        else
            ce_rows_kernel<1><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
                logits, targets + begin, vocab, report, static_cast<float>(grad_scale),
                row_loss + begin, dx != nullptr);
        SLM_CUDA_CHECK_LAUNCH("ce_rows_kernel");
        if (dx) {
            gemm(stream, Trans::N, Trans::N, rows, d, vocab, 1.0f, logits, vocab, w, d, 0.0f,
                 dx + begin * d, d);
            gemm(stream, Trans::T, Trans::N, vocab, d, rows, 1.0f, logits, vocab, xc, d, 1.0f, dw,
                 d);
        }
    }
    ce_sum_kernel<<<1, ce_reduce_threads, 0, stream>>>(row_loss, n, report);
    SLM_CUDA_CHECK_LAUNCH("ce_sum_kernel");
}

}  // namespace slm::cuda
