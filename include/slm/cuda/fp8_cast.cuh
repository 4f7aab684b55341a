#pragma once
// bf16 → FP8 with a per-tensor scale, on the GPU: a tensor's amax, the scale from it, and the
// cast with its counts of what the format could not hold. The CPU reference is
// precision/scaling.hpp (amax, scale_for, quantize_into), and tests/cuda/fp8_cast.cu holds the
// two to the same bits. The scale is computed on the device from the device amax, so a training
// step that scales its tensors this way (current scaling) never waits for the host.
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
// NaN wins, as precision::amax returns NaN for a tensor holding one.
static __global__ void amax_kernel(const bf16* __restrict__ x, int64_t n, unsigned* __restrict__ amax_bits) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    unsigned local = 0;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        local = max(local, __float_as_uint(fabsf(__bfloat162float(x[i]))));
    local = warp_max_bits(local);
    if (threadIdx.x % 32 == 0 && local != 0) atomicMax(amax_bits, local);
}

// precision::scale_for on one thread, step for step (double quotient, clamp, float, stepped down
// while amax·scale exceeds max finite), so both give the same bits.
static __global__ void scale_kernel(const float* __restrict__ amax, precision::Fp8Format format, int margin,
                             float* __restrict__ scale) {
    const float a = *amax;
    if (!isfinite(a) || !(a > 0.0f)) {
        *scale = 1.0f;
        return;
    }
    const float max_finite = precision::fp8_max_finite(format);
    double q = static_cast<double>(max_finite) / static_cast<double>(a) / ldexp(1.0, margin);
    q = fmin(fmax(q, static_cast<double>(FLT_MIN)), static_cast<double>(FLT_MAX));
    float s = static_cast<float>(q);
    while (s > FLT_MIN && __fmul_rn(a, s) > max_finite) s = nextafterf(s, 0.0f);
    *scale = s;
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

    __device__ __forceinline__ __nv_fp8_storage_t cast(bf16 value) {
        const float v = __bfloat162float(value);
        const float y = __fmul_rn(v, scale);  // one rounding, as the CPU's float product
        const __nv_fp8_storage_t code = __nv_cvt_float_to_fp8(y, __NV_SATFINITE, kind);
        if (isnan(v)) ++nan;
        else if (!(fabsf(y) <= max_finite)) ++overflow;
        else if (v != 0.0f && (code & 0x7F) == 0) ++underflow;
        return code;
    }
    __device__ __forceinline__ void flush(Fp8CastCounts* counts, bool lane0) {
        overflow = warp_sum(overflow);
        underflow = warp_sum(underflow);
        nan = warp_sum(nan);
        if (!lane0) return;
        if (overflow) atomicAdd(&counts->overflow, static_cast<unsigned long long>(overflow));
        if (underflow) atomicAdd(&counts->underflow, static_cast<unsigned long long>(underflow));
        if (nan) atomicAdd(&counts->nan, static_cast<unsigned long long>(nan));
    }
};

template <precision::Fp8Format Format>
__global__ void cast_kernel(const bf16* __restrict__ x, int64_t n, const float* __restrict__ scale,
                            __nv_fp8_storage_t* __restrict__ out, Fp8CastCounts* __restrict__ counts) {
    CastCounter<Format> counter{*scale};
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = counter.cast(x[i]);
    counter.flush(counts, threadIdx.x % 32 == 0);
}

// The cast of x (rows, cols) written transposed, out (cols, rows), through a 32 × 32 shared tile
// so that both the bf16 reads and the FP8 writes are row-contiguous; with `plain` not null, the
// same codes also in x's own layout (one read of x for both). Block (32, 8).
template <precision::Fp8Format Format>
__global__ void cast_transpose_kernel(const bf16* __restrict__ x, int64_t rows, int64_t cols,
                                      const float* __restrict__ scale, __nv_fp8_storage_t* __restrict__ out,
                                      __nv_fp8_storage_t* __restrict__ plain, Fp8CastCounts* __restrict__ counts) {
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
    counter.flush(counts, tx == 0);  // a warp is one row of the block (blockDim.x = 32)
}

}  // namespace fp8_detail

// *amax ← max |x| over x (n bf16); NaN if x holds one. amax: one device float.
inline void fp8_amax(const bf16* x, int64_t n, float* amax, cudaStream_t stream) {
    SLM_CUDA_CHECK(cudaMemsetAsync(amax, 0, sizeof(float), stream));
    if (n <= 0) return;
    constexpr int threads = 256;
    fp8_detail::amax_kernel<<<blocks_for(n, threads, 1024), threads, 0, stream>>>(
        x, n, reinterpret_cast<unsigned*>(amax));
    SLM_CUDA_CHECK_LAUNCH("fp8 amax_kernel");
}

// *scale ← precision::scale_for(*amax, format, margin), on the device.
inline void fp8_scale(const float* amax, precision::Fp8Format format, int margin, float* scale,
                      cudaStream_t stream) {
    require(margin >= 0, "fp8_scale: margin must be >= 0 (it divides the scale by 2^margin)");
    fp8_detail::scale_kernel<<<1, 1, 0, stream>>>(amax, format, margin, scale);
    SLM_CUDA_CHECK_LAUNCH("fp8 scale_kernel");
}

// out[i] ← fp8(x[i] · *scale), saturating; what saturated, underflowed or was NaN added to
// *counts (device memory, the caller zeroes it when it starts counting).
inline void fp8_cast(const bf16* x, int64_t n, const float* scale, precision::Fp8Format format,
                     uint8_t* out, Fp8CastCounts* counts, cudaStream_t stream) {
    if (n <= 0) return;
    constexpr int threads = 256;
    const unsigned blocks = blocks_for(n, threads, 4096);
    auto* codes = reinterpret_cast<__nv_fp8_storage_t*>(out);
    if (format == precision::Fp8Format::e4m3)
        fp8_detail::cast_kernel<precision::Fp8Format::e4m3><<<blocks, threads, 0, stream>>>(x, n, scale, codes, counts);
    else
        fp8_detail::cast_kernel<precision::Fp8Format::e5m2><<<blocks, threads, 0, stream>>>(x, n, scale, codes, counts);
    SLM_CUDA_CHECK_LAUNCH("fp8 cast_kernel");
}

// fp8_cast of x (rows, cols), written transposed to out (cols, rows): the k-contiguous operand
// the TN FP8 GEMMs (fp8_gemm.cuh) take for dgrad (Wᵀ) and wgrad (dYᵀ, xᵀ). The same codes and
// counts as fp8_cast; only their places differ.
//
// plain (may be null): the same codes in x's own layout too, written in the same pass, so a
// tensor both GEMMs of a backward need (dY: dgrad takes it as is, wgrad transposed) is read once.
inline void fp8_cast_transpose(const bf16* x, int64_t rows, int64_t cols, const float* scale,
                               precision::Fp8Format format, uint8_t* out, Fp8CastCounts* counts,
                               cudaStream_t stream, uint8_t* plain = nullptr) {
    if (rows <= 0 || cols <= 0) return;
    require((rows + 31) / 32 <= 65535, "fp8_cast_transpose: " + std::to_string(rows) +
                                           " rows need more than 65535 row tiles of 32");
    const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>((rows + 31) / 32));
    const dim3 block(32, 8);
    auto* codes = reinterpret_cast<__nv_fp8_storage_t*>(out);
    auto* same = reinterpret_cast<__nv_fp8_storage_t*>(plain);
    if (format == precision::Fp8Format::e4m3)
        fp8_detail::cast_transpose_kernel<precision::Fp8Format::e4m3><<<grid, block, 0, stream>>>(x, rows, cols, scale, codes, same, counts);
    else
        fp8_detail::cast_transpose_kernel<precision::Fp8Format::e5m2><<<grid, block, 0, stream>>>(x, rows, cols, scale, codes, same, counts);
    SLM_CUDA_CHECK_LAUNCH("fp8 cast_transpose_kernel");
}

}  // namespace slm::cuda
