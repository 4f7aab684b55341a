#pragma once
// Flash attention backward on the GPU (FlashAttention-2 scheme), causal. Three kernels:
//   1. flash_backward_delta_kernel  delta_i = Σ_d dO_id·O_id (fp32), the rowsum(P∘dP) of the
//      softmax backward, once per (row, head).
//   2. flash_backward_kernel  one CTA per (key tile of BlockN keys, kv head, sequence); warp w
//      owns keys 16w..16w+15 and keeps dK and dV (16 × D fp32 each) in registers while it walks
//      the query tiles of BlockM rows from the diagonal to the end, for every query head of its kv
//      group in turn (grouped-query attention sums dK and dV over the group without atomics).
//      Per step, in the transposed orientation (rows = this warp's keys, cols = queries):
//        Sᵀ = K·Qᵀ  →  Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e)  →  dV += Pᵀ·dO
//        dPᵀ = V·dOᵀ  →  dSᵀ = Pᵀ∘(dPᵀ − delta)  →  dK += dSᵀ·Q
//      With AccumulateDq the warps also put dSᵀ (bf16) in shared memory and compute
//      dQ_tile = dS·K, added with fp32 atomics into dq_acc (B·T, heads·D); dq_convert_kernel
//      then writes scale·dq_acc into the q part of d_qkv. Without it, flash_backward_dq_kernel
//      (flash_backward_dq.cuh) computes dQ without atomics: the deterministic mode.
// Q, dO, lse and delta of step s+1 are loaded with cp.async while step s computes. Query rows
// past the sequence are zero-filled (Q, dO, lse, delta) and masked out of P; keys past it are
// zero-filled and fall under the causal mask of every real query; neither is ever stored.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/mma.cuh"
#include "slm/cuda/rope.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::attention::cuda_flash {

// Dynamic shared memory of flash_backward_kernel: K, V, Q and dO double-buffered, dSᵀ (with
// AccumulateDq), lse and delta double-buffered.
template <int D, int BlockN, int BlockM, bool AccumulateDq>
inline constexpr int backward_smem_bytes = (2 * BlockN + 4 * BlockM) * padded<D> * 2 +
                                           (AccumulateDq ? BlockN * padded<BlockM> * 2 : 0) +
                                           4 * BlockM * 4;

// out, d_out: (B·T, heads·D) → delta: (B, heads, T). Groups of 8 lanes per (row, head), 16 bytes
// per lane per load; the loop runs the same number of times on every lane of a warp (shuffles).
template <int D>
__global__ void flash_backward_delta_kernel(const bf16* __restrict__ out,    // (B·T, heads·D)
                                            const bf16* __restrict__ d_out,  // (B·T, heads·D)
                                            float* __restrict__ delta,       // (B, heads, T)
                                            Problem p) {
    static_assert(D % 8 == 0, "rows are read 8 bf16 (16 bytes) at a time");
    constexpr int chunks = D / 8;
    const int64_t items = static_cast<int64_t>(p.batch) * p.seq * p.heads;
    const int lane = static_cast<int>(threadIdx.x % 32), sub = lane % 8;
    const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
    for (int64_t base = warp * 4; base < items; base += warps * 4) {
        const int64_t item = base + lane / 8;  // (row, head) = (item / heads, item % heads)
        const int64_t row = item / p.heads;
        const int h = static_cast<int>(item % p.heads);
        float sum = 0.0f;
        if (item < items) {
            const int64_t at = row * p.out_stride + h * D;
            for (int c = sub; c < chunks; c += 8) {
                float o[8], d[8];
                cuda::load<8>(out + at + c * 8, o);
                cuda::load<8>(d_out + at + c * 8, d);
#pragma unroll
                for (int i = 0; i < 8; ++i) sum = fmaf(o[i], d[i], sum);
            }
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 4);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        if (item < items && sub == 0) {
            const int64_t b = row / p.seq, pos = row % p.seq;
            delta[(b * p.heads + h) * p.seq + pos] = sum;
        }
    }
}

// dq_acc: (B·T, width) fp32 → d_qkv[:, 0:width] = scale·dq_acc in bf16 (width = heads·D, a
// multiple of 8; 8 elements per thread).
static __global__ void dq_convert_kernel(const float* __restrict__ dq_acc,  // (B·T, width)
                                         bf16* __restrict__ d_qkv,          // (B·T, qkv_stride)
                                         int64_t rows, int64_t width, int64_t stride,
                                         float scale) {
    const int64_t packs = rows * width / 8;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < packs;
         i += step) {
        const int64_t e = i * 8, r = e / width, c = e % width;
        float lo[4], hi[4], v[8];
        cuda::load<4>(dq_acc + e, lo);
        cuda::load<4>(dq_acc + e + 4, hi);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[k] = lo[k] * scale;
            v[k + 4] = hi[k] * scale;
        }
        cuda::store<8>(d_qkv + r * stride + c, v);
    }
}

// dq_acc: (B·T, heads·D) fp32 → d_qkv[:, 0:heads·D] = the inverse RoPE rotation of scale·dq_acc
// in bf16: dQ w.r.t. the unrotated q (Problem::rope_theta), rounded once. One thread per (row, 8
// pairs (i, i + D/2)): the angles once, then every head of the row, 16-byte accesses.
template <int D>
__global__ void dq_convert_rope_kernel(const float* __restrict__ dq_acc,  // (B·T, heads·D)
                                       bf16* __restrict__ d_qkv,          // (B·T, qkv_stride)
                                       int64_t rows, int heads, int seq, int64_t stride,
                                       float scale, float theta) {
    static_assert(D % 16 == 0, "pairs in groups of 8");
    constexpr int half = D / 2, groups = half / 8;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * groups) return;
    const int64_t row = idx / groups;
    const int i0 = static_cast<int>(idx % groups) * 8;
    float c[8], s[8];
    cuda::rope_cos_sin_8(row % seq, i0, D, theta, c, s);
    auto load8 = [](const float* at, float (&v)[8]) {
        float lo[4], hi[4];
        cuda::load<4>(at, lo);
        cuda::load<4>(at + 4, hi);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[k] = lo[k];
            v[k + 4] = hi[k];
        }
    };
    const float* src = dq_acc + row * heads * D;
    bf16* dst = d_qkv + row * stride;
    for (int h = 0; h < heads; ++h) {
        float x1[8], x2[8], y1[8], y2[8];
        load8(src + h * D + i0, x1);
        load8(src + h * D + half + i0, x2);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            y1[e] = cuda::rotate_first(x1[e] * scale, x2[e] * scale, c[e], -s[e]);
            y2[e] = cuda::rotate_second(x1[e] * scale, x2[e] * scale, c[e], -s[e]);
        }
        cuda::store<8>(dst + h * D + i0, y1);
        cuda::store<8>(dst + h * D + half + i0, y2);
    }
}

// Two adjacent floats (8-byte aligned) added atomically; one vector atomic on sm_90.
__device__ __forceinline__ void atomic_add2(float* at, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2*>(at), make_float2(a, b));
#else
    atomicAdd(at, a);
    atomicAdd(at + 1, b);
#endif
}

// qkv: (B·T, qkv_stride), d_out: (B·T, heads·D), lse, delta: (B, heads, T) → the k and v parts
// of d_qkv for every position, and (AccumulateDq) scale⁻¹·dQ added into dq_acc (B·T, heads·D).
// Grid: ceil(T / BlockN) · B · kv_heads CTAs, earliest key tiles (the most queries) first.
template <int D, int BlockN, int BlockM, bool AccumulateDq>
__global__ void __launch_bounds__(BlockN / 16 * 32)
    flash_backward_kernel(const bf16* __restrict__ qkv,     // (B·T, qkv_stride)
                          const bf16* __restrict__ d_out,   // (B·T, heads·D)
                          const float* __restrict__ lse,    // (B, heads, T)
                          const float* __restrict__ delta,  // (B, heads, T)
                          float* __restrict__ dq_acc,       // (B·T, heads·D), AccumulateDq
                          bf16* __restrict__ d_qkv,         // (B·T, qkv_stride)
                          Problem p) {
    static_assert(D % 16 == 0 && D >= 16 && D <= 256, "head_dim: a multiple of 16, at most 256");
    static_assert(BlockN % 16 == 0 && BlockM % 16 == 0, "tiles are whole 16-wide mma steps");
    static_assert(BlockN <= 256, "one warp per 16 keys, at most 16 warps");
    constexpr int warps = BlockN / 16, threads = warps * 32, ld = padded<D>, lds = padded<BlockM>;
    constexpr int NQ = BlockM / 8;   // 8-query n-tiles of Sᵀ, dPᵀ
    constexpr int DT = D / 8;        // 8-column n-tiles of dK, dV
    constexpr int KD = D / 16;       // k-steps over head_dim (Sᵀ, dPᵀ)
    constexpr int KQ = BlockM / 16;  // k-steps over queries (dV, dK)
    using namespace cuda::mma;

    extern __shared__ __align__(16) unsigned char smem[];
    bf16* k_s = reinterpret_cast<bf16*>(smem);  // (BlockN, ld)
    bf16* v_s = k_s + BlockN * ld;              // (BlockN, ld)
    bf16* q_s = v_s + BlockN * ld;              // 2 × (BlockM, ld)
    bf16* do_s = q_s + 2 * BlockM * ld;         // 2 × (BlockM, ld)
    bf16* ds_s = do_s + 2 * BlockM * ld;        // (BlockN, lds) dSᵀ, AccumulateDq only
    bf16* ds_end = ds_s + (AccumulateDq ? BlockN * lds : 0);
    float* lse_s = reinterpret_cast<float*>(ds_end);  // 2 × BlockM
    float* delta_s = lse_s + 2 * BlockM;              // 2 × BlockM

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const auto tile = key_tile<D, BlockN, BlockM>(qkv, p);
    const int kvh = tile.kvh, b = tile.b, j0 = tile.j0, n_steps = tile.n_steps;
    auto load_step = [&](int s, int buf) {
        load_key_tile_step<D, BlockN, BlockM, threads>(
            tile, s, buf, d_out, lse, delta, lse_s, delta_s, p, tid,
            [&](int bb, const bf16* q_g, const bf16* do_g, int valid) {
                load_tile<BlockM, D, threads>(q_s + bb * BlockM * ld, q_g, p.qkv_stride, valid,
                                              q_g, tid);
                load_tile<BlockM, D, threads>(do_s + bb * BlockM * ld, do_g, p.out_stride, valid,
                                              do_g, tid);
            });
    };
    load_tile<BlockN, D, threads>(k_s, tile.k, p.qkv_stride, p.seq - j0, tile.k, tid);
    load_tile<BlockN, D, threads>(v_s, tile.v, p.qkv_stride, p.seq - j0, tile.v, tid);
    load_step(0, 0);
    cp_async_commit();

    const int key_first = j0 + warp * 16;                // this warp's first key
    const int key_lo = key_first + g, key_hi = key_lo + 8;  // the two keys (rows) of this lane
    float dk[DT][4] = {}, dv[DT][4] = {};

    for (int s = 0; s < n_steps; ++s) {
        const int buf = s & 1;
        load_next_and_wait(s, n_steps, load_step);
        __syncthreads();
        const int h = tile.head(s, p), i0 = tile.row(s, p);
        const bf16* q_t = q_s + buf * BlockM * ld;
        const bf16* do_t = do_s + buf * BlockM * ld;
        const float* lse_t = lse_s + buf * BlockM;
        const float* delta_t = delta_s + buf * BlockM;
        if (key_first <= i0 + BlockM - 1) {  // else all keys of this warp follow all queries
            float st[NQ][4] = {};            // Sᵀ, then Pᵀ
            // Not unrolled (nor dPᵀ's): unrolled, ptxas hoists the K and V fragments of every
            // k-step at once and spills at D = 128. No register array is indexed by kk here.
#pragma unroll 1
            for (int kk = 0; kk < KD; ++kk) {
                uint32_t ka[4];
                load_a(ka, k_s, ld, warp * 16, kk * 16, lane);
#pragma unroll
                for (int np = 0; np < NQ / 2; ++np) {
                    uint32_t qb[4];
                    load_b_nk(qb, q_t, ld, np * 16, kk * 16, lane);
                    mma_16816(st[2 * np], ka, qb[0], qb[1]);
                    mma_16816(st[2 * np + 1], ka, qb[2], qb[3]);
                }
            }
            const bool masked = key_first + 15 > i0 || i0 + BlockM > p.seq;
#pragma unroll
            for (int nt = 0; nt < NQ; ++nt) {
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int col = nt * 8 + 2 * t + (c & 1);  // query i0 + col
                    float pv = fast_exp2(fmaf(st[nt][c], p.scale_log2, -lse_t[col] * log2e));
                    if (masked && ((c < 2 ? key_lo : key_hi) > i0 + col || i0 + col >= p.seq))
                        pv = 0.0f;
                    st[nt][c] = pv;
                }
            }
#pragma unroll
            for (int kk = 0; kk < KQ; ++kk) {  // dV += Pᵀ·dO
                uint32_t pa[4];
                accumulator_to_a(pa, st, kk);
#pragma unroll
                for (int dp = 0; dp < DT / 2; ++dp) {
                    uint32_t ob[4];
                    load_b_kn(ob, do_t, ld, dp * 16, kk * 16, lane);
                    mma_16816(dv[2 * dp], pa, ob[0], ob[1]);
                    mma_16816(dv[2 * dp + 1], pa, ob[2], ob[3]);
                }
            }
            float dst[NQ][4] = {};  // dPᵀ = V·dOᵀ, then dSᵀ
#pragma unroll 1
            for (int kk = 0; kk < KD; ++kk) {
                uint32_t va[4];
                load_a(va, v_s, ld, warp * 16, kk * 16, lane);
#pragma unroll
                for (int np = 0; np < NQ / 2; ++np) {
                    uint32_t ob[4];
                    load_b_nk(ob, do_t, ld, np * 16, kk * 16, lane);
                    mma_16816(dst[2 * np], va, ob[0], ob[1]);
                    mma_16816(dst[2 * np + 1], va, ob[2], ob[3]);
                }
            }
#pragma unroll
            for (int nt = 0; nt < NQ; ++nt) {
#pragma unroll
                for (int c = 0; c < 4; ++c)
                    dst[nt][c] = st[nt][c] * (dst[nt][c] - delta_t[nt * 8 + 2 * t + (c & 1)]);
            }
#pragma unroll
            for (int kk = 0; kk < KQ; ++kk) {  // dK += dSᵀ·Q (scaled once, at the end)
                uint32_t sa[4];
                accumulator_to_a(sa, dst, kk);
#pragma unroll
                for (int dp = 0; dp < DT / 2; ++dp) {
                    uint32_t qb[4];
                    load_b_kn(qb, q_t, ld, dp * 16, kk * 16, lane);
                    mma_16816(dk[2 * dp], sa, qb[0], qb[1]);
                    mma_16816(dk[2 * dp + 1], sa, qb[2], qb[3]);
                }
            }
            if constexpr (AccumulateDq) {
#pragma unroll
                for (int nt = 0; nt < NQ; ++nt) {
                    bf16* at = ds_s + (warp * 16 + g) * lds + nt * 8 + 2 * t;
                    *reinterpret_cast<uint32_t*>(at) = pack_bf16(dst[nt][0], dst[nt][1]);
                    *reinterpret_cast<uint32_t*>(at + 8 * lds) = pack_bf16(dst[nt][2], dst[nt][3]);
                }
            }
        } else if constexpr (AccumulateDq) {  // this warp's rows of dSᵀ are zero
            constexpr int chunks = BlockM / 8;
#pragma unroll
            for (int k = 0; k < 16 * chunks / 32; ++k) {
                const int i = lane + 32 * k, r = i / chunks, c = (i % chunks) * 8;
                *reinterpret_cast<uint4*>(ds_s + (warp * 16 + r) * lds + c) =
                    make_uint4(0, 0, 0, 0);
            }
        }
        __syncthreads();  // dSᵀ complete; Q and dO of buffer `buf` no longer read
        if constexpr (AccumulateDq) {
            // dQ_tile (BlockM × D) = dS·K: warp → (16-query row block rb, D/CS columns from cs).
            constexpr int RB = BlockM / 16, CS = warps / RB, DW = D / CS, KN = BlockN / 16;
            static_assert(warps % RB == 0 && D % CS == 0 && DW % 16 == 0,
                          "the dQ tile splits evenly into 16 × 16k blocks over the warps");
            const int rb = warp % RB, cs = warp / RB;
            const int q_first = i0 + rb * 16;
            if (j0 <= q_first + 15) {  // else every key of the tile follows these 16 queries
                float dq[DW / 8][4] = {};
#pragma unroll
                for (int kk = 0; kk < KN; ++kk) {
                    if (j0 + kk * 16 > q_first + 15) break;  // key blocks past the queries: dS = 0
                    uint32_t sa[4];
                    load_a_trans(sa, ds_s, lds, rb * 16, kk * 16, lane);
#pragma unroll
                    for (int dp = 0; dp < DW / 16; ++dp) {
                        uint32_t kb[4];
                        load_b_kn(kb, k_s, ld, cs * DW + dp * 16, kk * 16, lane);
                        mma_16816(dq[2 * dp], sa, kb[0], kb[1]);
                        mma_16816(dq[2 * dp + 1], sa, kb[2], kb[3]);
                    }
                }
                const int q_lo = q_first + g, q_hi = q_lo + 8;
                float* acc = dq_acc + static_cast<int64_t>(b) * p.seq * p.out_stride + h * D +
                             cs * DW + 2 * t;
#pragma unroll
                for (int nt = 0; nt < DW / 8; ++nt) {
                    if (q_lo < p.seq)
                        atomic_add2(acc + static_cast<int64_t>(q_lo) * p.out_stride + nt * 8,
                                    dq[nt][0], dq[nt][1]);
                    if (q_hi < p.seq)
                        atomic_add2(acc + static_cast<int64_t>(q_hi) * p.out_stride + nt * 8,
                                    dq[nt][2], dq[nt][3]);
                }
            }
        }
    }

    store_key_rows<D>([&](int dt, int c) { return dk[dt][c]; },
                      [&](int dt, int c) { return dv[dt][c]; }, b, kvh, key_lo, d_qkv, p, t);
}

}  // namespace slm::attention::cuda_flash
