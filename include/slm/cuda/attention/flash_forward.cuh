#pragma once
// Flash attention forward on the GPU (FlashAttention-2 scheme), causal, bf16 in and out, fp32
// softmax and accumulators. One CTA per (query tile of BlockM rows, head, sequence); warp w owns
// the 16 query rows 16w..16w+15 of the tile and keeps its Q fragments, its O accumulator
// (16 × D fp32) and the running max and sum of its rows in registers. K and V tiles of BlockN keys
// stream through shared memory, double-buffered with cp.async: tile j+1 is in flight while tile j
// is multiplied.
//   S = Q·Kᵀ (mma m16n8k16)  →  mask (only tiles the diagonal crosses)  →  online softmax in the
//   exp2 domain (scale·log2 e folded in)  →  O = O·α + P·V with P rounded to bf16 in registers.
// Key tiles wholly after a warp's rows are skipped by that warp; tiles after the CTA's last row
// are never loaded. Rows past the end of the sequence (the last tile's tail) read zero-filled Q,
// see zero-filled keys and values, are never stored, and cannot produce NaN: every row has key 0
// visible, so its running max is finite from the first tile on and its sum is ≥ 1.
// Saved for backward: lse = log Σ_j exp(scale·s_ij), natural log, fp32, (B, H, T).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/mma.cuh"

namespace slm::attention::cuda_flash {

// Dynamic shared memory of flash_forward_kernel: Q, then K and V double-buffered.
template <int D, int BlockM, int BlockN>
inline constexpr int forward_smem_bytes = (BlockM + 4 * BlockN) * padded<D> * 2;

// One key tile of the online softmax for the two rows (g and g+8) of a lane: sc holds the raw
// scores (−inf where masked) and leaves as unnormalised probabilities exp2(s·c − max·c); the
// running max m, the lane's partial row sums l and the accumulator o are rescaled by
// α = exp2((m_old − m_new)·c). The sums stay per lane until the end: α is the same for the 4
// lanes of a row, so the partial sums rescale consistently.
template <int NT, int DT>
__device__ __forceinline__ void online_softmax(float (&sc)[NT][4], float (&o)[DT][4], float (&m)[2],
                                               float (&l)[2], float scale_log2) {
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        mx[0] = fmaxf(mx[0], fmaxf(sc[nt][0], sc[nt][1]));
        mx[1] = fmaxf(mx[1], fmaxf(sc[nt][2], sc[nt][3]));
    }
    float shift[2], alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        mx[r] = quad_max(mx[r]);
        // A row with nothing visible yet keeps max −inf: shift by 0 so exp2(−inf − 0) = 0, not NaN.
        shift[r] = mx[r] == -INFINITY ? 0.0f : mx[r] * scale_log2;
        alpha[r] = fast_exp2(m[r] * scale_log2 - shift[r]);  // m = −inf (first tile): 0
        m[r] = mx[r];
        l[r] *= alpha[r];
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            sc[nt][c] = fast_exp2(fmaf(sc[nt][c], scale_log2, -shift[c / 2]));
            l[c / 2] += sc[nt][c];
        }
    }
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
        o[dt][0] *= alpha[0];
        o[dt][1] *= alpha[0];
        o[dt][2] *= alpha[1];
        o[dt][3] *= alpha[1];
    }
}

// The epilogue of a forward warp: its 16 query rows from warp_first, O / l as bf16 through
// `stage` (16 rows × padded<D> bf16 of shared memory that only this warp uses now) so the global
// stores are 16 bytes wide, and the rows' log-sum-exp; rows past the sequence are not stored.
// o(dt, c) is element c of the output accumulator's C fragment dt (columns 8dt..8dt+7); m and l
// are the rows' running max and this lane's partial sums (online_softmax).
template <int D, class Accumulator>
__device__ __forceinline__ void store_forward_rows(Accumulator o, const float (&m)[2],
                                                   float (&l)[2], bf16* stage, bf16* out,
                                                   float* lse, const Problem& p, int b, int h,
                                                   int warp_first, int lane) {
    constexpr int ld = padded<D>, chunks = D / 8;
    const int g = lane / 4, t = lane % 4;
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] = quad_sum(l[r]);
        inv[r] = 1.0f / l[r];
    }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
        const int col = dt * 8 + 2 * t;
        *reinterpret_cast<uint32_t*>(stage + g * ld + col) =
            cuda::mma::pack_bf16(o(dt, 0) * inv[0], o(dt, 1) * inv[0]);
        *reinterpret_cast<uint32_t*>(stage + (g + 8) * ld + col) =
            cuda::mma::pack_bf16(o(dt, 2) * inv[1], o(dt, 3) * inv[1]);
    }
    __syncwarp();
    bf16* o_g = out + (static_cast<int64_t>(b) * p.seq + warp_first) * p.out_stride + h * D;
#pragma unroll
    for (int k = 0; k < 16 * chunks / 32; ++k) {
        const int i = lane + 32 * k, r = i / chunks, c = (i % chunks) * 8;
        if (warp_first + r < p.seq)
            *reinterpret_cast<uint4*>(o_g + r * p.out_stride + c) =
                *reinterpret_cast<const uint4*>(stage + r * ld + c);
    }
    if (t == 0) {
        float* lse_row = lse + (static_cast<int64_t>(b) * p.heads + h) * p.seq;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int row = warp_first + g + 8 * r;
            if (row < p.seq) lse_row[row] = (m[r] * p.scale_log2 + log2f(l[r])) * ln2;
        }
    }
}

// qkv: (B·T, qkv_stride) with q, k rotated → out: (B·T, heads·D) bf16, lse: (B, heads, T) fp32.
// Grid: ceil(T / BlockM) · B · heads CTAs, latest query tiles first. Block: BlockM / 16 warps.
template <int D, int BlockM, int BlockN, int MinBlocks>
__global__ void __launch_bounds__(BlockM / 16 * 32, MinBlocks)
    flash_forward_kernel(const bf16* __restrict__ qkv,  // (B·T, qkv_stride)
                         bf16* __restrict__ out,        // (B·T, heads·D)
                         float* __restrict__ lse,       // (B, heads, T)
                         Problem p) {
    static_assert(D % 16 == 0 && D >= 16 && D <= 256, "head_dim: a multiple of 16, at most 256");
    static_assert(BlockM % 16 == 0 && BlockN % 16 == 0, "tiles are whole 16-wide mma steps");
    static_assert(BlockM <= 256, "one warp per 16 query rows, at most 16 warps");
    constexpr int threads = BlockM / 16 * 32, ld = padded<D>;
    constexpr int NT = BlockN / 8;   // 8-key n-tiles of S
    constexpr int DT = D / 8;        // 8-column n-tiles of O
    constexpr int KD = D / 16;       // 16-wide k-steps over head_dim (Q·Kᵀ)
    constexpr int KN = BlockN / 16;  // 16-wide k-steps over keys (P·V)
    using namespace cuda::mma;

    extern __shared__ __align__(16) unsigned char smem[];
    bf16* q_s = reinterpret_cast<bf16*>(smem);  // (BlockM, ld)
    bf16* k_s = q_s + BlockM * ld;              // 2 × (BlockN, ld)
    bf16* v_s = k_s + 2 * BlockN * ld;          // 2 × (BlockN, ld)

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const QueryTile tile = query_tile<D, BlockM, BlockN>(qkv, p);
    const int h = tile.h, b = tile.b, i0 = tile.i0, n_tiles = tile.n_key_tiles;
    auto load_kv = [&](int j, int buf) { load_kv_tile<D, BlockN, threads>(k_s, v_s, tile, p, j, buf, tid); };
    load_tile<BlockM, D, threads>(q_s, tile.q, p.qkv_stride, p.seq - i0, tile.q, tid);
    load_kv(0, 0);
    cp_async_commit();

    const int warp_first = i0 + warp * 16, warp_last = warp_first + 15;
    const int row_lo = warp_first + g, row_hi = row_lo + 8;  // the two query rows of this lane
    uint32_t q_frag[KD][4];
    float o[DT][4] = {};
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    for (int j = 0; j < n_tiles; ++j) {
        const int buf = j & 1;
        load_next_and_wait(j, n_tiles, load_kv);
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int kk = 0; kk < KD; ++kk) load_a(q_frag[kk], q_s, ld, warp * 16, kk * 16, lane);
        }
        const int j0 = j * BlockN;
        if (j0 <= warp_last) {  // else every key of the tile comes after every row of this warp
            const bf16* k_t = k_s + buf * BlockN * ld;
            const bf16* v_t = v_s + buf * BlockN * ld;
            float sc[NT][4] = {};
#pragma unroll
            for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
                for (int np = 0; np < NT / 2; ++np) {
                    uint32_t kb[4];
                    load_b_nk(kb, k_t, ld, np * 16, kk * 16, lane);
                    mma_16816(sc[2 * np], q_frag[kk], kb[0], kb[1]);
                    mma_16816(sc[2 * np + 1], q_frag[kk], kb[2], kb[3]);
                }
            }
            if (j0 + BlockN - 1 > warp_first) {  // the diagonal crosses this tile for this warp
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const int key = j0 + nt * 8 + 2 * t + (c & 1);
                        if (key > (c < 2 ? row_lo : row_hi)) sc[nt][c] = -INFINITY;
                    }
                }
            }
            online_softmax(sc, o, m, l, p.scale_log2);
#pragma unroll
            for (int kk = 0; kk < KN; ++kk) {
                uint32_t pa[4];
                accumulator_to_a(pa, sc, kk);
#pragma unroll
                for (int dp = 0; dp < DT / 2; ++dp) {
                    uint32_t vb[4];
                    load_b_kn(vb, v_t, ld, dp * 16, kk * 16, lane);
                    mma_16816(o[2 * dp], pa, vb[0], vb[1]);
                    mma_16816(o[2 * dp + 1], pa, vb[2], vb[3]);
                }
            }
        }
        __syncthreads();  // buffer `buf` is free for tile j+2
    }

    // Epilogue through this warp's own rows of q_s (only this warp read them).
    store_forward_rows<D>([&](int dt, int c) { return o[dt][c]; }, m, l, q_s + warp * 16 * ld,
                          out, lse, p, b, h, warp_first, lane);
}

}  // namespace slm::attention::cuda_flash
