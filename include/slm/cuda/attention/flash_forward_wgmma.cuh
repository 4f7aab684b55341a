#pragma once
// Flash attention forward for Hopper (sm_90a): the scheme of flash_forward.cuh (one CTA per query
// tile, online softmax in the exp2 domain, K and V streamed through double-buffered shared
// memory, lse saved) on warpgroup MMAs (cuda/wgmma.cuh), which read K and V from shared memory
// once per warpgroup instead of once per warp.
//
// CTA: two warpgroups, 128 query rows (warpgroup w: rows 64w..64w+63, warp w·4+i: rows 16i.. of
// those), keys BlockN at a time. Per key tile and warpgroup:
//   S = Q·Kᵀ (A = Q, B = K: K-major tiles)  →  mask where the diagonal crosses  →  online softmax
//   →  O = O·α + P·V (A = P from registers as bf16, B = V MN-major).
// Key tiles wholly after a warpgroup's rows are skipped by it. Padding rows and keys as in
// flash_forward.cuh (zero-filled, never stored, never NaN).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/attention/flash_forward.cuh"
#include "slm/cuda/mma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::attention::cuda_flash {

// Tiles of width W = warpgroup_width<D> (flash_common.cuh): 64, 128 or 256.
template <int W>
struct WarpgroupForwardTiles {
    static_assert(W == 64 || W == 128 || W == 256, "tiles 64, 128 or 256 columns wide");
    // Width 64: 64 keys per tile, so that registers (≤ 128) and shared memory (49 KB) allow
    // two CTAs per SM, whose softmax and MMAs interleave; 128: 128 keys, one CTA per SM; 256:
    // 64 keys (O alone takes 128 registers a thread, and K and V 193 KB of shared memory).
    static constexpr int BlockM = 128, BlockN = W == 128 ? 128 : 64, threads = 256;
    static constexpr int min_blocks = W == 64 ? 2 : 1;
    static constexpr int q_bytes = BlockM * W * 2, kv_bytes = BlockN * W * 2;
    // Q, then K and V double-buffered, each on a 1024-byte boundary; 1024 bytes to align.
    static constexpr int smem_bytes = q_bytes + 4 * kv_bytes + 1024;
    // The epilogue stages O through the K and V buffers: 16 rows of padded<W> bf16 per warp.
    static_assert(8 * 16 * padded<W> * 2 <= 4 * kv_bytes, "the staging area fits the K, V buffers");
};

// qkv: (B·T, qkv_stride) with q, k rotated → out: (B·T, heads·D) bf16, lse: (B, heads, T) fp32.
// Grid: ceil(T / 128) · B · heads CTAs (work_item's order).
// One key tile of the forward for this warpgroup's 64 query rows (warp_first: this warp's first
// row; lane: this thread's lane): S = Q·Kᵀ (q_a: the rows' K-major descriptor in a BlockM-row tile;
// k_s, v_s: the key tile's swizzled K and V, BlockN rows), the diagonal's mask, the online softmax
// of rows g and g+8 (see online_softmax in flash_forward.cuh) and O = O·α + P·V. Shared by the
// kernel below and the TMA one (flash_forward_tma.cuh).
template <int D, int BlockM, int BlockN>
__device__ __forceinline__ void forward_key_tile(float (&o)[warpgroup_width<D> / 2], float (&m)[2],
                                                 float (&l)[2], uint64_t q_a,
                                                 const unsigned char* k_s,
                                                 const unsigned char* v_s, int j0, int warp_first,
                                                 int lane, float scale_log2) {
    constexpr int W = warpgroup_width<D>, KD = D / 16, KN = BlockN / 16;
    namespace wg = cuda::wgmma;
    using cuda::mma::pack_bf16;
    const int t = lane % 4;
    const int row_lo = warp_first + lane / 4, row_hi = row_lo + 8;  // this lane's two rows
    float sc[BlockN / 2];
    const uint64_t k_b = wg::k_major(k_s, 0);
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < KD; ++kk)
        wg::mma_ss<0, 0>(sc, wg::advance(q_a, wg::k_major_step(BlockM, kk)),
                         wg::advance(k_b, wg::k_major_step(BlockN, kk)), kk > 0);
    wg::commit();
    wg::wait<0>();
    wg::fence_operands(sc);
    if (j0 + BlockN - 1 > warp_first) {  // the diagonal crosses this tile for this warp
#pragma unroll
        for (int nt = 0; nt < BlockN / 8; ++nt) {
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int key = j0 + nt * 8 + 2 * t + (c & 1);
                if (key > (c < 2 ? row_lo : row_hi)) sc[4 * nt + c] = -INFINITY;
            }
        }
    }
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < BlockN / 8; ++nt) {
        mx[0] = fmaxf(mx[0], fmaxf(sc[4 * nt], sc[4 * nt + 1]));
        mx[1] = fmaxf(mx[1], fmaxf(sc[4 * nt + 2], sc[4 * nt + 3]));
    }
    float shift[2], alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        mx[r] = quad_max(mx[r]);
        shift[r] = mx[r] == -INFINITY ? 0.0f : mx[r] * scale_log2;
        alpha[r] = fast_exp2(m[r] * scale_log2 - shift[r]);
        m[r] = mx[r];
        l[r] *= alpha[r];
    }
    uint32_t pa[KN][4];
#pragma unroll
    for (int nt = 0; nt < BlockN / 8; ++nt) {
        float pv[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            pv[c] = fast_exp2(fmaf(sc[4 * nt + c], scale_log2, -shift[c / 2]));
            l[c / 2] += pv[c];
        }
        pa[nt / 2][2 * (nt % 2)] = pack_bf16(pv[0], pv[1]);
        pa[nt / 2][2 * (nt % 2) + 1] = pack_bf16(pv[2], pv[3]);
    }
#pragma unroll
    for (int dt = 0; dt < W / 8; ++dt) {
        o[4 * dt] *= alpha[0];
        o[4 * dt + 1] *= alpha[0];
        o[4 * dt + 2] *= alpha[1];
        o[4 * dt + 3] *= alpha[1];
    }
    const uint64_t v_b = wg::mn_major(v_s, BlockN, 0);
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < KN; ++kk)
        wg::mma_rs<1>(o, pa[kk], wg::advance(v_b, wg::mn_major_step(kk)), 1);
    wg::commit();
    wg::wait<0>();
    wg::fence_operands(o);
}

template <int D>
__global__ void __launch_bounds__(256, WarpgroupForwardTiles<warpgroup_width<D>>::min_blocks)
    flash_forward_warpgroup_kernel(const bf16* __restrict__ qkv, bf16* __restrict__ out,
                                   float* __restrict__ lse, Problem p) {
    constexpr int W = warpgroup_width<D>;
    using Tiles = WarpgroupForwardTiles<W>;
    constexpr int BlockM = Tiles::BlockM, BlockN = Tiles::BlockN, threads = Tiles::threads;
    using namespace cuda::mma;
    namespace wg = cuda::wgmma;

    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = wg::swizzle_aligned(smem_raw);
    unsigned char* q_s = smem;
    unsigned char* k_s = q_s + Tiles::q_bytes;      // 2 buffers
    unsigned char* v_s = k_s + 2 * Tiles::kv_bytes;  // 2 buffers

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int group = warp / 4;
    const QueryTile tile = query_tile<D, BlockM, BlockN>(qkv, p);
    const int h = tile.h, b = tile.b, i0 = tile.i0, n_tiles = tile.n_key_tiles;
    auto load_kv = [&](int j, int buf) {
        const int64_t offset = static_cast<int64_t>(j) * BlockN * p.qkv_stride;
        const int valid = p.seq - j * BlockN;
        load_swizzled<BlockN, D, threads>(k_s + buf * Tiles::kv_bytes, tile.k + offset,
                                          p.qkv_stride, valid, tile.k, tid);
        load_swizzled<BlockN, D, threads>(v_s + buf * Tiles::kv_bytes, tile.v + offset,
                                          p.qkv_stride, valid, tile.v, tid);
    };
    load_swizzled<BlockM, D, threads>(q_s, tile.q, p.qkv_stride, p.seq - i0, tile.q, tid);
    load_kv(0, 0);
    cp_async_commit();
    zero_pad_columns<BlockM, D, W, threads>(q_s, tid);
    for (int buf = 0; buf < 4; ++buf)  // K and V, both buffers: published by the loop's barrier
        zero_pad_columns<BlockN, D, W, threads>(k_s + buf * Tiles::kv_bytes, tid);

    const int group_last = i0 + 64 * group + 63;
    const int warp_first = i0 + warp * 16;
    float o[W / 2];  // columns past D: zeros times P, never stored
#pragma unroll
    for (int i = 0; i < W / 2; ++i) o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const uint64_t q_a = wg::k_major(q_s, 64 * group);

    for (int j = 0; j < n_tiles; ++j) {
        const int buf = j & 1;
        load_next_and_wait(j, n_tiles, load_kv);
        wg::fence_proxy_async();
        __syncthreads();
        const int j0 = j * BlockN;
        if (j0 <= group_last)  // else every key of the tile follows every row of this warpgroup
            forward_key_tile<D, BlockM, BlockN>(o, m, l, q_a, k_s + buf * Tiles::kv_bytes,
                                                v_s + buf * Tiles::kv_bytes, j0, warp_first, lane,
                                                p.scale_log2);
        __syncthreads();  // buffer `buf` is free for tile j+2
    }

    // Epilogue through this warp's own staging rows in the K and V buffers (free now).
    store_forward_rows<D>([&](int dt, int c) { return o[4 * dt + c]; }, m, l,
                          reinterpret_cast<bf16*>(k_s) + warp * 16 * padded<D>, out, lse, p, b, h,
                          warp_first, lane);
}

}  // namespace slm::attention::cuda_flash
