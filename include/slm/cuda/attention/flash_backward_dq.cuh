#pragma once
// dQ of Flash attention without atomics: the deterministic backward mode. One CTA per (query
// tile of BlockM rows, head, sequence), laid out like the forward kernel: warp w owns query rows
// 16w..16w+15 and keeps their Q and dO fragments and the dQ accumulator (16 × D fp32) in
// registers; K and V tiles of BlockN keys stream through shared memory (cp.async, double
// buffered) in a fixed order, key tile 0 first, and for each the probabilities are recomputed:
//   S = Q·Kᵀ → P = exp2(S·scale·log2 e − lse·log2 e) → dP = dO·Vᵀ → dS = P∘(dP − delta)
//   → dQ += dS·K
// Every dQ element is summed by one thread in one order, so two runs give the same bits.
// Rows past the sequence read zero-filled Q and dO, with lse = delta = 0: their dS is exactly 0
// and they are never stored.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/mma.cuh"

namespace slm::attention::cuda_flash {

// Dynamic shared memory of flash_backward_dq_kernel: Q and dO, then K and V double-buffered.
template <int D, int BlockM, int BlockN>
inline constexpr int backward_dq_smem_bytes = (2 * BlockM + 4 * BlockN) * padded<D> * 2;

// qkv: (B·T, qkv_stride), d_out: (B·T, heads·D), lse, delta: (B, heads, T) → the q part of d_qkv.
// Grid: ceil(T / BlockM) · B · heads CTAs, latest query tiles first.
template <int D, int BlockM, int BlockN>
__global__ void __launch_bounds__(BlockM / 16 * 32)
    flash_backward_dq_kernel(const bf16* __restrict__ qkv,     // (B·T, qkv_stride)
                             const bf16* __restrict__ d_out,   // (B·T, heads·D)
                             const float* __restrict__ lse,    // (B, heads, T)
                             const float* __restrict__ delta,  // (B, heads, T)
                             bf16* __restrict__ d_qkv,         // (B·T, qkv_stride)
                             Problem p) {
    static_assert(D % 16 == 0 && D >= 16 && D <= 256, "head_dim: a multiple of 16, at most 256");
    static_assert(BlockM % 16 == 0 && BlockN % 16 == 0, "tiles are whole 16-wide mma steps");
    static_assert(BlockM <= 256, "one warp per 16 query rows, at most 16 warps");
    constexpr int threads = BlockM / 16 * 32, ld = padded<D>;
    constexpr int NT = BlockN / 8;   // 8-key n-tiles of S, dP
    constexpr int DT = D / 8;        // 8-column n-tiles of dQ
    constexpr int KD = D / 16;       // k-steps over head_dim (S, dP)
    constexpr int KN = BlockN / 16;  // k-steps over keys (dQ)
    using namespace cuda::mma;

    extern __shared__ __align__(16) unsigned char smem[];
    bf16* q_s = reinterpret_cast<bf16*>(smem);  // (BlockM, ld)
    bf16* do_s = q_s + BlockM * ld;             // (BlockM, ld)
    bf16* k_s = do_s + BlockM * ld;             // 2 × (BlockN, ld)
    bf16* v_s = k_s + 2 * BlockN * ld;          // 2 × (BlockN, ld)

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const QueryTile tile = query_tile<D, BlockM, BlockN>(qkv, p);
    const int h = tile.h, b = tile.b, i0 = tile.i0, n_tiles = tile.n_key_tiles;
    const bf16* do_g = d_out + (static_cast<int64_t>(b) * p.seq + i0) * p.out_stride + h * D;
    auto load_kv = [&](int j, int buf) { load_kv_tile<D, BlockN, threads>(k_s, v_s, tile, p, j, buf, tid); };
    load_tile<BlockM, D, threads>(q_s, tile.q, p.qkv_stride, p.seq - i0, tile.q, tid);
    load_tile<BlockM, D, threads>(do_s, do_g, p.out_stride, p.seq - i0, do_g, tid);
    load_kv(0, 0);
    cp_async_commit();

    const int warp_first = i0 + warp * 16, warp_last = warp_first + 15;
    const int row_lo = warp_first + g, row_hi = row_lo + 8;
    // Per-row statistics of this lane's two rows, in the exp2 domain for lse.
    float lse2[2], dl[2];
    {
        const int64_t stat = (static_cast<int64_t>(b) * p.heads + h) * p.seq;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int row = r == 0 ? row_lo : row_hi;
            lse2[r] = row < p.seq ? lse[stat + row] * log2e : 0.0f;
            dl[r] = row < p.seq ? delta[stat + row] : 0.0f;
        }
    }
    uint32_t q_frag[KD][4], do_frag[KD][4];
    float dq[DT][4] = {};

    for (int j = 0; j < n_tiles; ++j) {
        const int buf = j & 1;
        load_next_and_wait(j, n_tiles, load_kv);
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int kk = 0; kk < KD; ++kk) {
                load_a(q_frag[kk], q_s, ld, warp * 16, kk * 16, lane);
                load_a(do_frag[kk], do_s, ld, warp * 16, kk * 16, lane);
            }
        }
        const int j0 = j * BlockN;
        if (j0 <= warp_last) {  // else every key of the tile comes after every row of this warp
            const bf16* k_t = k_s + buf * BlockN * ld;
            const bf16* v_t = v_s + buf * BlockN * ld;
            float sc[NT][4] = {}, ds[NT][4] = {};  // S then P; dP then dS
#pragma unroll
            for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
                for (int np = 0; np < NT / 2; ++np) {
                    uint32_t kb[4], vb[4];
                    load_b_nk(kb, k_t, ld, np * 16, kk * 16, lane);
                    mma_16816(sc[2 * np], q_frag[kk], kb[0], kb[1]);
                    mma_16816(sc[2 * np + 1], q_frag[kk], kb[2], kb[3]);
                    load_b_nk(vb, v_t, ld, np * 16, kk * 16, lane);
                    mma_16816(ds[2 * np], do_frag[kk], vb[0], vb[1]);
                    mma_16816(ds[2 * np + 1], do_frag[kk], vb[2], vb[3]);
                }
            }
            const bool masked = j0 + BlockN - 1 > warp_first;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    float pv = fast_exp2(fmaf(sc[nt][c], p.scale_log2, -lse2[c / 2]));
                    if (masked && j0 + nt * 8 + 2 * t + (c & 1) > (c < 2 ? row_lo : row_hi))
                        pv = 0.0f;
                    ds[nt][c] = pv * (ds[nt][c] - dl[c / 2]);
                }
            }
#pragma unroll
            for (int kk = 0; kk < KN; ++kk) {  // dQ += dS·K (scaled once, at the end)
                uint32_t sa[4];
                accumulator_to_a(sa, ds, kk);
#pragma unroll
                for (int dp = 0; dp < DT / 2; ++dp) {
                    uint32_t kb[4];
                    load_b_kn(kb, k_t, ld, dp * 16, kk * 16, lane);
                    mma_16816(dq[2 * dp], sa, kb[0], kb[1]);
                    mma_16816(dq[2 * dp + 1], sa, kb[2], kb[3]);
                }
            }
        }
        __syncthreads();  // buffer `buf` is free for tile j+2
    }

    // Epilogue: scale·dQ through this warp's own rows of q_s, then 16-byte stores.
    bf16* stage = q_s + warp * 16 * ld;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
        const int col = dt * 8 + 2 * t;
        *reinterpret_cast<uint32_t*>(stage + g * ld + col) =
            pack_bf16(dq[dt][0] * p.scale, dq[dt][1] * p.scale);
        *reinterpret_cast<uint32_t*>(stage + (g + 8) * ld + col) =
            pack_bf16(dq[dt][2] * p.scale, dq[dt][3] * p.scale);
    }
    __syncwarp();
    constexpr int chunks = D / 8;
    bf16* dq_g = d_qkv + (static_cast<int64_t>(b) * p.seq + warp_first) * p.qkv_stride + h * D;
#pragma unroll
    for (int k = 0; k < 16 * chunks / 32; ++k) {
        const int i = lane + 32 * k, r = i / chunks, c = (i % chunks) * 8;
        if (warp_first + r < p.seq)
            *reinterpret_cast<uint4*>(dq_g + r * p.qkv_stride + c) =
                *reinterpret_cast<const uint4*>(stage + r * ld + c);
    }
}

}  // namespace slm::attention::cuda_flash
