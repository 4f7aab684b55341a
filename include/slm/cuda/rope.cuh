#pragma once
// Rotary position embedding on the GPU, Hugging Face LLaMA convention ("rotate half") exactly as
// cpu/rope.hpp: element i of a head pairs with element i + head_dim/2, rotated by the angle
// pos · θ^(-2i/head_dim). Angles are computed in fp32 from the integer position (sincosf with
// full range reduction, not the fast intrinsics: positions reach thousands of radians). Applied
// in place to the q and k heads of the fused qkv rows; v is not touched.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/core/shapes.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

// The rotated pair (x1·c − x2·s, x2·c + x1·s) with the roundings spelled out, so that both
// kernels below give the same bits whatever the compiler would contract into FMAs.
__device__ __forceinline__ float rotate_first(float x1, float x2, float c, float s) {
    return __fmaf_rn(x1, c, -__fmul_rn(x2, s));
}
__device__ __forceinline__ float rotate_second(float x1, float x2, float c, float s) {
    return __fmaf_rn(x2, c, __fmul_rn(x1, s));
}

// cos and sin of pair i's angle at position pos: every kernel that rotates (these, and the
// flash backward's dQ conversion) computes it this one way.
__device__ __forceinline__ void rope_cos_sin(int64_t pos, int i, int head_dim, float theta,
                                             float* c, float* s) {
    const float inv_freq = powf(theta, -2.0f * static_cast<float>(i) / static_cast<float>(head_dim));
    sincosf(static_cast<float>(pos) * inv_freq, s, c);
}

// The same for the 8 pairs i0 .. i0 + 7 (a 16-byte group of each half of a head).
__device__ __forceinline__ void rope_cos_sin_8(int64_t pos, int i0, int head_dim, float theta,
                                               float (&c)[8], float (&s)[8]) {
#pragma unroll
    for (int e = 0; e < 8; ++e) rope_cos_sin(pos, i0 + e, head_dim, theta, &c[e], &s[e]);
}

// qkv: (B·T, qkv_stride), rotated in place. One thread per (row, i < head_dim/2): it computes the
// angle once and rotates that pair in every q and k head of the row. direction: +1 forward,
// -1 backward (the transpose rotation).
static __global__ void rope_kernel(bf16* __restrict__ qkv, int64_t rows, int64_t seq,
                                   int rotated_heads, int head_dim, int64_t stride, float theta,
                                   float direction) {
    const int half = head_dim / 2;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * half) return;
    const int64_t row = idx / half;
    const int i = static_cast<int>(idx % half);
    float sn, c;
    rope_cos_sin(row % seq, i, head_dim, theta, &c, &sn);
    sn *= direction;
    bf16* r = qkv + row * stride;
    for (int h = 0; h < rotated_heads; ++h) {
        bf16* x = r + static_cast<int64_t>(h) * head_dim;
        const float x1 = to_float(x[i]), x2 = to_float(x[i + half]);
        x[i] = from_float<bf16>(rotate_first(x1, x2, c, sn));
        x[i + half] = from_float<bf16>(rotate_second(x1, x2, c, sn));
    }
}

// The same rotation 8 pairs at a time: one thread per (row, 8 consecutive i), 16-byte loads and
// stores (the scalar kernel's 2-byte accesses kept it at about 70% of the memory bandwidth).
// Needs head_dim/2 % 8 == 0 and 16-byte aligned rows. The angles are computed exactly as above,
// so the results are the same bits.
static __global__ void rope_vector_kernel(bf16* __restrict__ qkv, int64_t rows, int64_t seq,
                                          int rotated_heads, int head_dim, int64_t stride,
                                          float theta, float direction) {
    const int half = head_dim / 2, groups = half / 8;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * groups) return;
    const int64_t row = idx / groups;
    const int i0 = static_cast<int>(idx % groups) * 8;
    float c[8], sn[8];
    rope_cos_sin_8(row % seq, i0, head_dim, theta, c, sn);
#pragma unroll
    for (int e = 0; e < 8; ++e) sn[e] *= direction;
    bf16* r = qkv + row * stride;
    for (int h = 0; h < rotated_heads; ++h) {
        bf16* x = r + static_cast<int64_t>(h) * head_dim;
        float x1[8], x2[8], y1[8], y2[8];
        load<8>(x + i0, x1);
        load<8>(x + i0 + half, x2);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            y1[e] = rotate_first(x1[e], x2[e], c[e], sn[e]);
            y2[e] = rotate_second(x1[e], x2[e], c[e], sn[e]);
        }
        store<8>(x + i0, y1);
        store<8>(x + i0 + half, y2);
    }
}

// Rotates s.heads + s.kv_heads heads of head_dim from qkv on, in rows of `stride` elements.
inline void rope_apply_heads(bf16* qkv, const AttentionShape& s, int64_t stride, double theta,
                             float direction, cudaStream_t stream) {
    const int64_t half = s.head_dim / 2;
    if (s.tokens() <= 0 || half <= 0) return;
    constexpr int threads = 256;
    if (half % 8 == 0 && stride % 8 == 0 && aligned_to(16, {qkv})) {
        const int64_t work = s.tokens() * (half / 8);
        rope_vector_kernel<<<blocks_for(work, threads, (int64_t{1} << 31) - 1), threads, 0,
                             stream>>>(qkv, s.tokens(), s.seq,
                                       static_cast<int>(s.heads + s.kv_heads),
                                       static_cast<int>(s.head_dim), stride,
                                       static_cast<float>(theta), direction);
        SLM_CUDA_CHECK_LAUNCH("rope_vector_kernel");
        return;
    }
    const int64_t work = s.tokens() * half;
    rope_kernel<<<blocks_for(work, threads, (int64_t{1} << 31) - 1), threads, 0, stream>>>(
        qkv, s.tokens(), s.seq, static_cast<int>(s.heads + s.kv_heads),
        static_cast<int>(s.head_dim), stride, static_cast<float>(theta), direction);
    SLM_CUDA_CHECK_LAUNCH("rope_kernel");
}

inline void rope_apply(bf16* qkv, const AttentionShape& s, double theta, float direction,
                       cudaStream_t stream) {
    rope_apply_heads(qkv, s, s.qkv_stride(), theta, direction, stream);
}

// qkv: (B·T, qkv_stride) with q, k unrotated → rotated, in place
inline void rope_forward(bf16* qkv, const AttentionShape& s, double theta, cudaStream_t stream) {
    rope_apply(qkv, s, theta, +1.0f, stream);
}

// d_qkv: gradient w.r.t. the rotated q, k → w.r.t. the unrotated ones, in place
inline void rope_backward(bf16* d_qkv, const AttentionShape& s, double theta, cudaStream_t stream) {
    rope_apply(d_qkv, s, theta, -1.0f, stream);
}

// The k part alone (for a caller that took dQ back through the rotation itself): the same
// kernels over the kv heads, as if they were a shape's only rotated heads.
inline void rope_backward_k(bf16* d_qkv, const AttentionShape& s, double theta, cudaStream_t stream) {
    AttentionShape k_only = s;
    k_only.heads = 0;  // rope_apply_heads rotates heads + kv_heads heads from the pointer on
    rope_apply_heads(d_qkv + s.k_offset(), k_only, s.qkv_stride(), theta, -1.0f, stream);
}

}  // namespace slm::cuda
