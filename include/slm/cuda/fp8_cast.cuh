#pragma once
// bf16 → FP8 with a per-tensor scale, on the GPU: a tensor's amax, the scale from it, and the
// cast with its counts of what the format could not hold. The CPU reference is
// precision/scaling.hpp (amax, scale_for, quantize_into), and tests/cuda/fp8_cast.cu holds the
// two to the same bits. Scales are computed on the device, so a training step never waits for
// the host: from a tensor's own amax (current scaling, one more pass over it) or from a history
// of earlier amaxes (delayed scaling, precision/delayed_scaling.hpp), the cast then taking the
// tensor's amax itself for the history.
//
// The cast is cvt.rn.satfinite (cuda_fp8.h's __nv_cvt_float_to_fp8 with __NV_SATFINITE): round to
// nearest even, finite overflow and ±inf saturated to ±max finite, NaN kept — the rule
// precision/fp8.hpp implements — and every saturation, underflow to zero and NaN is counted.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/reduce.cuh"
#include "slm/cuda/vector.cuh"
#include "slm/precision/delayed_scaling.hpp"
#include "slm/precision/fp8.hpp"

namespace slm::cuda {

// What casts did, summed on the device: precision::CastStats without `count` (the caller knows n).
struct Fp8CastCounts {
    unsigned long long overflow = 0, underflow = 0, nan = 0;
};

namespace fp8_detail {

__device__ __forceinline__ unsigned warp_max_bits(unsigned v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v = max(v, __shfl_xor_sync(full_warp, v, offset));
    return v;
}

// amax over x: |x| as bits. Non-negative floats order as their bit patterns, so integer max and
// atomicMax order them; a NaN's bits (exponent all ones, mantissa non-zero) exceed inf's, so a
// NaN wins, as precision::amax returns NaN for a tensor holding one. N = 8 reads 16 bytes per
// load (x 16-byte aligned; the n % 8 tail one by one), N = 1 any x.
template <int N>
__global__ void amax_kernel(const bf16* __restrict__ x, int64_t n, unsigned* __restrict__ amax_bits) {
    static_assert(N == 1 || N == 8, "amax reads 1 or 8 bf16 at a time");
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    unsigned local = 0;
    const int64_t packs = n / N;
    for (int64_t i = first; i < packs; i += stride) {
        const Pack<bf16, N> v = reinterpret_cast<const Pack<bf16, N>*>(x)[i];
#pragma unroll
        for (int j = 0; j < N; ++j) local = max(local, __float_as_uint(fabsf(__bfloat162float(v.v[j]))));
    }
    for (int64_t i = packs * N + first; i < n; i += stride)
        local = max(local, __float_as_uint(fabsf(__bfloat162float(x[i]))));
    local = warp_max_bits(local);
    if (threadIdx.x % 32 == 0 && local != 0) atomicMax(amax_bits, local);
}

// precision::scale_for on one thread, step for step (double quotient, clamp, float, stepped down
// while amax·scale exceeds max finite), so both give the same bits.
__device__ inline float scale_from_amax(float a, precision::Fp8Format format, int margin) {
    if (!isfinite(a) || !(a > 0.0f)) return 1.0f;
    const float max_finite = precision::fp8_max_finite(format);
    double q = static_cast<double>(max_finite) / static_cast<double>(a) / ldexp(1.0, margin);
    q = fmin(fmax(q, static_cast<double>(FLT_MIN)), static_cast<double>(FLT_MAX));
    float s = static_cast<float>(q);
    while (s > FLT_MIN && __fmul_rn(a, s) > max_finite) s = nextafterf(s, 0.0f);
    return s;
}

static __global__ void scale_kernel(const float* __restrict__ amax, precision::Fp8Format format, int margin,
                                    float* __restrict__ scale) {
    *scale = scale_from_amax(*amax, format, margin);
}

// precision::AmaxHistory::next_scale's rule for call c >= 1 (delayed_scaling.hpp): the scale from
// the largest of history[0, window) (NaN if one is), with its margin, then history[slot] zeroed
// for the cast that follows to record its amax in.
static __global__ void delayed_scale_kernel(float* __restrict__ history, int window, int slot,
                                            precision::Fp8Format format, float* __restrict__ scale) {
    float a = 0.0f;
    for (int i = 0; i < window; ++i) {
        if (isnan(history[i])) {
            a = history[i];
            break;
        }
        a = fmaxf(a, history[i]);
    }
    *scale = scale_from_amax(a, format, precision::delayed_scaling_margin);
    history[slot] = 0.0f;
}

// One thread's casts of x · scale (precision::quantize_into's rule) and its counts of what the
// format could not hold, summed per warp into the device counters by flush(). Every lane of the
// warp calls flush.
template <precision::Fp8Format Format>
struct CastCounter {
    static constexpr __nv_fp8_interpretation_t kind = Format == precision::Fp8Format::e4m3 ? __NV_E4M3 : __NV_E5M2;
    static constexpr float max_finite = precision::fp8_max_finite(Format);
    float scale;
    unsigned overflow = 0, underflow = 0, nan = 0;
    unsigned max_bits = 0;  // |x| seen, as bits (amax_kernel's order): the amax delayed scaling records

    __device__ __forceinline__ __nv_fp8_storage_t cast(bf16 value) {
        const float v = __bfloat162float(value);
        max_bits = max(max_bits, __float_as_uint(fabsf(v)));
        const float y = __fmul_rn(v, scale);  // one rounding, as the CPU's float product
        const __nv_fp8_storage_t code = __nv_cvt_float_to_fp8(y, __NV_SATFINITE, kind);
        if (isnan(v)) ++nan;
        else if (!(fabsf(y) <= max_finite)) ++overflow;
        else if (v != 0.0f && (code & 0x7F) == 0) ++underflow;
        return code;
    }
    // amax_bits (may be null): where this cast's amax is max-ed in, as amax_kernel does. Every
    // thread of the block calls flush. The amax goes through the block first and then to memory
    // only where it is larger than what is there: tens of thousands of blocks max-ing into one
    // address one warp at a time made a cast 0.1 ms slower (H100, 65536 x 2304).
    __device__ __forceinline__ void flush(Fp8CastCounts* counts, bool lane0, unsigned* amax_bits) {
        overflow = warp_sum(overflow);
        underflow = warp_sum(underflow);
        nan = warp_sum(nan);
        if (amax_bits) {  // the same for the whole block
            __shared__ unsigned block_bits;
            const bool first = threadIdx.x == 0 && threadIdx.y == 0;
            if (first) block_bits = 0;
            __syncthreads();
            max_bits = warp_max_bits(max_bits);
            if (lane0 && max_bits != 0) atomicMax(&block_bits, max_bits);
            __syncthreads();
            if (first && block_bits > *reinterpret_cast<volatile unsigned*>(amax_bits)) atomicMax(amax_bits, block_bits);
        }
        if (!lane0) return;
        if (overflow) atomicAdd(&counts->overflow, static_cast<unsigned long long>(overflow));
        if (underflow) atomicAdd(&counts->underflow, static_cast<unsigned long long>(underflow));
        if (nan) atomicAdd(&counts->nan, static_cast<unsigned long long>(nan));
    }
};

// N = 8: 16-byte reads and 8-byte writes (x 16-byte, out 8-byte aligned; the n % 8 tail one by
// one); N = 1 any pointers.
template <precision::Fp8Format Format, int N>
__global__ void cast_kernel(const bf16* __restrict__ x, int64_t n, const float* __restrict__ scale,
                            __nv_fp8_storage_t* __restrict__ out, Fp8CastCounts* __restrict__ counts,
                            unsigned* __restrict__ amax_bits) {
    static_assert(N == 1 || N == 8, "the cast moves 1 or 8 values at a time");
    CastCounter<Format> counter{*scale};
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t packs = n / N;
    for (int64_t i = first; i < packs; i += stride) {
        const Pack<bf16, N> v = reinterpret_cast<const Pack<bf16, N>*>(x)[i];
        Pack<__nv_fp8_storage_t, N> q;
#pragma unroll
        for (int j = 0; j < N; ++j) q.v[j] = counter.cast(v.v[j]);
        reinterpret_cast<Pack<__nv_fp8_storage_t, N>*>(out)[i] = q;
    }
    for (int64_t i = packs * N + first; i < n; i += stride) out[i] = counter.cast(x[i]);
    counter.flush(counts, threadIdx.x % 32 == 0, amax_bits);
}

// The cast of x (rows, cols) written transposed, out (cols, rows), through a 32 × 32 shared tile
// so that both the bf16 reads and the FP8 writes are row-contiguous; with `plain` not null, the
// same codes also in x's own layout (one read of x for both). Block (32, 8).
template <precision::Fp8Format Format>
__global__ void cast_transpose_kernel(const bf16* __restrict__ x, int64_t rows, int64_t cols,
                                      const float* __restrict__ scale, __nv_fp8_storage_t* __restrict__ out,
                                      __nv_fp8_storage_t* __restrict__ plain, Fp8CastCounts* __restrict__ counts,
                                      unsigned* __restrict__ amax_bits) {
    __shared__ __nv_fp8_storage_t tile[32][33];  // 33: a column read strides 33 bytes, across banks
    CastCounter<Format> counter{*scale};
    const int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32, c0 = static_cast<int64_t>(blockIdx.x) * 32;
    const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int64_t r = r0 + ty + 8 * i, c = c0 + tx;
        if (r < rows && c < cols) {
            const __nv_fp8_storage_t code = counter.cast(x[r * cols + c]);
            tile[ty + 8 * i][tx] = code;
            if (plain) plain[r * cols + c] = code;
        }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int64_t c = c0 + ty + 8 * i, r = r0 + tx;  // out row c, column r
        if (r < rows && c < cols) out[c * rows + r] = tile[tx][ty + 8 * i];
    }
    counter.flush(counts, tx == 0, amax_bits);  // a warp is one row of the block (blockDim.x = 32)
}

// cast_transpose_kernel over 64 × 64 tiles with wide accesses, for the shapes the FP8 GEMMs
// take: cols % 8 == 0, rows % 16 == 0, x and out 16-byte aligned, plain 8-byte aligned. Each
// thread reads two runs of 8 bf16 along a row (16 bytes each) and writes one run of 16 codes
// along an output row (16 bytes); four threads cover an output row's 64 bytes. Block 256.
template <precision::Fp8Format Format>
__global__ void __launch_bounds__(256)
    cast_transpose_wide_kernel(const bf16* __restrict__ x, int64_t rows, int64_t cols, const float* __restrict__ scale,
                               __nv_fp8_storage_t* __restrict__ out, __nv_fp8_storage_t* __restrict__ plain,
                               Fp8CastCounts* __restrict__ counts, unsigned* __restrict__ amax_bits) {
    constexpr int tile = 64, pitch = tile + 8;  // + 8: every tile row stays 8-byte aligned for the packs
    __shared__ __align__(16) __nv_fp8_storage_t codes[tile][pitch];
    CastCounter<Format> counter{*scale};
    const int64_t r0 = static_cast<int64_t>(blockIdx.y) * tile, c0 = static_cast<int64_t>(blockIdx.x) * tile;
    const int t = static_cast<int>(threadIdx.x);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        const int idx = t + 256 * k, row = idx / 8, col = (idx % 8) * 8;
        const int64_t r = r0 + row, c = c0 + col;
        if (r < rows && c < cols) {  // cols % 8 == 0: a run of 8 is wholly inside or outside
            const Pack<bf16, 8> v = *reinterpret_cast<const Pack<bf16, 8>*>(x + r * cols + c);
            Pack<__nv_fp8_storage_t, 8> q;
#pragma unroll
            for (int j = 0; j < 8; ++j) q.v[j] = counter.cast(v.v[j]);
            *reinterpret_cast<Pack<__nv_fp8_storage_t, 8>*>(&codes[row][col]) = q;
            if (plain) *reinterpret_cast<Pack<__nv_fp8_storage_t, 8>*>(plain + r * cols + c) = q;
        }
    }
    __syncthreads();
    const int oc = t / 4, part = t % 4;  // output row c0 + oc, its x rows r0 + 16·part …
    const int64_t c = c0 + oc, r = r0 + 16 * part;
    if (c < cols && r < rows) {  // rows % 16 == 0: a run of 16 is wholly inside or outside
        unsigned word[4] = {0, 0, 0, 0};
#pragma unroll
        for (int j = 0; j < 16; ++j)
            word[j / 4] |= static_cast<unsigned>(codes[16 * part + j][oc]) << (8 * (j % 4));
        *reinterpret_cast<uint4*>(out + c * rows + r) = make_uint4(word[0], word[1], word[2], word[3]);
    }
    counter.flush(counts, t % 32 == 0, amax_bits);
}

}  // namespace fp8_detail

// *amax ← max |x| over x (n bf16); NaN if x holds one. amax: one device float.
inline void fp8_amax(const bf16* x, int64_t n, float* amax, cudaStream_t stream) {
    SLM_CUDA_CHECK(cudaMemsetAsync(amax, 0, sizeof(float), stream));
    if (n <= 0) return;
    constexpr int threads = 256;
    auto* bits = reinterpret_cast<unsigned*>(amax);
    if (aligned_to(16, {x}))
        fp8_detail::amax_kernel<8><<<blocks_for(n / 8 + 1, threads, 1024), threads, 0, stream>>>(x, n, bits);
    else
        fp8_detail::amax_kernel<1><<<blocks_for(n, threads, 1024), threads, 0, stream>>>(x, n, bits);
    SLM_CUDA_CHECK_LAUNCH("fp8 amax_kernel");
}

// *scale ← precision::scale_for(*amax, format, margin), on the device.
inline void fp8_scale(const float* amax, precision::Fp8Format format, int margin, float* scale,
                      cudaStream_t stream) {
    require(margin >= 0, "fp8_scale: margin must be >= 0 (it divides the scale by 2^margin)");
    fp8_detail::scale_kernel<<<1, 1, 0, stream>>>(amax, format, margin, scale);
    SLM_CUDA_CHECK_LAUNCH("fp8 scale_kernel");
}

// *scale ← the delayed scale (precision::AmaxHistory's rule for a call after the first) from
// history[0, window), on the device; history[slot] ← 0, for the cast that follows to max its own
// amax into (fp8_cast's `amax`). history: amax_history_length device floats.
inline void fp8_delayed_scale(float* history, int window, int slot, precision::Fp8Format format, float* scale,
                              cudaStream_t stream) {
    require(window >= 1 && window <= precision::amax_history_length && slot >= 0 &&
                slot < precision::amax_history_length,
            "fp8_delayed_scale: window " + std::to_string(window) + " or slot " + std::to_string(slot) +
                " is outside the history of " + std::to_string(precision::amax_history_length));
    fp8_detail::delayed_scale_kernel<<<1, 1, 0, stream>>>(history, window, slot, format, scale);
    SLM_CUDA_CHECK_LAUNCH("fp8 delayed_scale_kernel");
}

// out[i] ← fp8(x[i] · *scale), saturating; what saturated, underflowed or was NaN added to
// *counts (device memory, the caller zeroes it when it starts counting). amax (may be null): x's
// amax max-ed into it in the same pass, as fp8_amax computes it (the caller zeroes it first).
inline void fp8_cast(const bf16* x, int64_t n, const float* scale, precision::Fp8Format format,
                     uint8_t* out, Fp8CastCounts* counts, cudaStream_t stream, float* amax = nullptr) {
    if (n <= 0) return;
    constexpr int threads = 256;
    auto* codes = reinterpret_cast<__nv_fp8_storage_t*>(out);
    auto* bits = reinterpret_cast<unsigned*>(amax);
    using F = precision::Fp8Format;
    if (aligned_to(16, {x}) && aligned_to(8, {out})) {
        const unsigned blocks = blocks_for(n / 8 + 1, threads, 4096);
        if (format == F::e4m3)
            fp8_detail::cast_kernel<F::e4m3, 8><<<blocks, threads, 0, stream>>>(x, n, scale, codes, counts, bits);
        else
            fp8_detail::cast_kernel<F::e5m2, 8><<<blocks, threads, 0, stream>>>(x, n, scale, codes, counts, bits);
    } else {
        const unsigned blocks = blocks_for(n, threads, 4096);
        if (format == F::e4m3)
            fp8_detail::cast_kernel<F::e4m3, 1><<<blocks, threads, 0, stream>>>(x, n, scale, codes, counts, bits);
        else
            fp8_detail::cast_kernel<F::e5m2, 1><<<blocks, threads, 0, stream>>>(x, n, scale, codes, counts, bits);
    }
    SLM_CUDA_CHECK_LAUNCH("fp8 cast_kernel");
}

// fp8_cast of x (rows, cols), written transposed to out (cols, rows): the k-contiguous operand
// the TN FP8 GEMMs (fp8_gemm.cuh) take for dgrad (Wᵀ) and wgrad (dYᵀ, xᵀ). The same codes and
// counts as fp8_cast; only their places differ.
//
// plain (may be null): the same codes in x's own layout too, written in the same pass, so a
// tensor both GEMMs of a backward need (dY: dgrad takes it as is, wgrad transposed) is read once.
// amax (may be null): as fp8_cast's.
inline void fp8_cast_transpose(const bf16* x, int64_t rows, int64_t cols, const float* scale,
                               precision::Fp8Format format, uint8_t* out, Fp8CastCounts* counts,
                               cudaStream_t stream, uint8_t* plain = nullptr, float* amax = nullptr) {
    if (rows <= 0 || cols <= 0) return;
    require((rows + 31) / 32 <= 65535, "fp8_cast_transpose: " + std::to_string(rows) +
                                           " rows need more than 65535 row tiles of 32");
    auto* codes = reinterpret_cast<__nv_fp8_storage_t*>(out);
    auto* same = reinterpret_cast<__nv_fp8_storage_t*>(plain);
    auto* bits = reinterpret_cast<unsigned*>(amax);
    using F = precision::Fp8Format;
    if (cols % 8 == 0 && rows % 16 == 0 && aligned_to(16, {x, out}) && aligned_to(8, {plain})) {
        const dim3 grid(static_cast<unsigned>((cols + 63) / 64), static_cast<unsigned>((rows + 63) / 64));
        if (format == F::e4m3)
            fp8_detail::cast_transpose_wide_kernel<F::e4m3><<<grid, 256, 0, stream>>>(x, rows, cols, scale, codes, same, counts, bits);
        else
            fp8_detail::cast_transpose_wide_kernel<F::e5m2><<<grid, 256, 0, stream>>>(x, rows, cols, scale, codes, same, counts, bits);
        SLM_CUDA_CHECK_LAUNCH("fp8 cast_transpose_wide_kernel");
        return;
    }
    const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>((rows + 31) / 32));
    const dim3 block(32, 8);
    if (format == precision::Fp8Format::e4m3)
        fp8_detail::cast_transpose_kernel<precision::Fp8Format::e4m3><<<grid, block, 0, stream>>>(x, rows, cols, scale, codes, same, counts, bits);
    else
        fp8_detail::cast_transpose_kernel<precision::Fp8Format::e5m2><<<grid, block, 0, stream>>>(x, rows, cols, scale, codes, same, counts, bits);
    SLM_CUDA_CHECK_LAUNCH("fp8 cast_transpose_kernel");
}

}  // namespace slm::cuda
