#pragma once
// Flash attention backward for Hopper (sm_90a): the FlashAttention-2 scheme of
// flash_backward.cuh (one CTA per key tile, dK and dV in registers over the query tiles, dQ by
// fp32 atomics) on warpgroup MMAs (cuda/wgmma.cuh). The mma.sync kernel re-reads every Q and dO
// fragment from shared memory once per warp, and that shared-memory traffic, not the tensor
// cores, bounds it; here the tensor cores read each operand once per warpgroup.
//
// CTA: two warpgroups, 128 keys (warpgroup w: keys 64w..64w+63), BlockM queries per step, taken
// 64 at a time. Per 64 queries, in the transposed orientation (rows = keys, columns = queries),
// every product a wgmma:
//   Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ            (A = K or V, B = Q or dO: both K-major tiles)
//   Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e), dSᵀ = Pᵀ∘(dPᵀ − delta)       (registers)
//   dV += Pᵀ·dO, dK += dSᵀ·Q           (A = Pᵀ, dSᵀ from registers, B MN-major)
//   dSᵀ → shared memory; dQ_tile = dS·K (A = dSᵀ MN-major, B = K MN-major), added with fp32
//   atomics into dq_acc once per step. Tiles 128 wide: warpgroup w takes columns 64w.. of them;
//   64 wide: queries 64w.. of the step's 128. (Two parts per barrier pair at width 64 halve the
//   barriers per query; an earlier version ran 64 queries per step and let the warpgroups take
//   the dQ tile in turns.)
// Tiles 256 wide (split_columns): dK and dV of 64 keys × 256 columns would take 256 registers a
// thread, so the CTA takes 64 keys, both warpgroups compute the same Sᵀ and dPᵀ (contracted over
// all 256 columns), and warpgroup w keeps dK and dV for columns 128w..128w+127 and computes dQ's
// two 64-column blocks there; warpgroup 0 alone stores dSᵀ. (7 products' time for 5 products'
// work: the redundant Sᵀ and dPᵀ are the price of keeping the accumulators in registers.)
// Q, dO, lse and delta of step s+1 are loaded with cp.async while step s computes. Masking and
// padding as in flash_backward.cuh; delta and the final dQ conversion are its kernels.
// With Turns other than none (the deterministic modes) the CTAs that add into one (sequence,
// head, query tile) take turns (flash_turns.cuh), so the fp32 sums come out the same on every run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/attention/flash_backward.cuh"
#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/attention/flash_turns.cuh"
#include "slm/cuda/mma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::attention::cuda_flash {

// Tiles of width W = warpgroup_width<D> (flash_common.cuh): 64 for head_dim up to 64, else 128.
template <int W>
struct WarpgroupBackwardTiles {
    static_assert(W == 64 || W == 128 || W == 256, "tiles 64, 128 or 256 columns wide");
    static constexpr bool split_columns = W == 256;
    // Keys per CTA: two warpgroups of 64, or split_columns 64 for both.
    static constexpr int BlockN = split_columns ? 64 : 128;
    static constexpr int Cols = split_columns ? W / 2 : W;  // columns of dK and dV per warpgroup
    // Queries per step: 128 at width 64, in two parts of 64 (Sᵀ and dPᵀ of one part at a
    // time: 64 of each would leave no registers for dK and dV); 64 at 128 and 256.
    static constexpr int BlockM = W == 64 ? 128 : 64;
    static constexpr int threads = 256;
    // Shared memory, each tile on a 1024-byte boundary: K, V; Q and dO double-buffered; dSᵀ;
    // lse and delta double-buffered; 1024 bytes to align the start.
    static constexpr int kv_bytes = BlockN * W * 2;
    static constexpr int q_bytes = BlockM * W * 2;
    static constexpr int ds_bytes = BlockN * BlockM * 2;
    static constexpr int smem_bytes = 2 * kv_bytes + 4 * q_bytes + ds_bytes + 4 * BlockM * 4 + 1024;
};

// qkv: (B·T, qkv_stride), d_out: (B·T, heads·D), lse, delta: (B, heads, T) → the k and v parts
// of d_qkv for every position, and scale⁻¹·dQ added into dq_acc (B·T, heads·D).
// Grid: ceil(T / BlockN) · B · kv_heads CTAs, earliest key tiles (the most queries) first, or
// as the scheme T says. turns (T != none only): turn_count(p, BlockM) zeroed ints.
template <int D, Turns T>
__global__ void __launch_bounds__(256, 1)
    flash_backward_warpgroup_kernel(const bf16* __restrict__ qkv, const bf16* __restrict__ d_out,
                                    const float* __restrict__ lse,
                                    const float* __restrict__ delta, float* __restrict__ dq_acc,
                                    bf16* __restrict__ d_qkv, int* __restrict__ turns, Problem p) {
    constexpr int W = warpgroup_width<D>;
    using Tiles = WarpgroupBackwardTiles<W>;
    constexpr int BlockN = Tiles::BlockN, BlockM = Tiles::BlockM, threads = Tiles::threads;
    constexpr bool split = Tiles::split_columns;
    constexpr int Cols = Tiles::Cols;
    constexpr bool Ordered = T != Turns::none;
    constexpr int KD = D / 16, KN = BlockN / 16;
    using namespace cuda::mma;
    namespace wg = cuda::wgmma;

    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = wg::swizzle_aligned(smem_raw);
    unsigned char* k_s = smem;
    unsigned char* v_s = k_s + Tiles::kv_bytes;
    unsigned char* q_s = v_s + Tiles::kv_bytes;   // 2 buffers
    unsigned char* do_s = q_s + 2 * Tiles::q_bytes;  // 2 buffers
    unsigned char* ds_s = do_s + 2 * Tiles::q_bytes;  // (BlockN keys, BlockM queries)
    float* lse_s = reinterpret_cast<float*>(ds_s + Tiles::ds_bytes);  // 2 × BlockM
    float* delta_s = lse_s + 2 * BlockM;                              // 2 × BlockM

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int group = warp / 4, wl = warp % 4;  // warpgroup, warp within it
    const int g = lane / 4, t = lane % 4;
    const auto tile = key_tile<D, BlockN, BlockM, walks_up<T>>(qkv, p, launches_late_first<T>);
    const int kvh = tile.kvh, b = tile.b, j0 = tile.j0, n_steps = tile.n_steps;
    // The next step's loads take the thread index afresh (fresh_thread_index): from `tid` the
    // compiler would keep every load's per-thread offsets in registers across the loop, and at
    // width 128 that spilled the accumulators' neighbours to local memory (88 bytes, 3.5 M
    // requests in one launch at seq 2048).
    auto load_step = [&](int s, int buf) {
        const int me = fresh_thread_index();
        load_key_tile_step<D, BlockN, BlockM, threads>(
            tile, s, buf, d_out, lse, delta, lse_s, delta_s, p, me,
            [&](int bb, const bf16* q_g, const bf16* do_g, int valid) {
                load_swizzled<BlockM, D, threads>(q_s + bb * Tiles::q_bytes, q_g, p.qkv_stride,
                                                  valid, q_g, me);
                load_swizzled<BlockM, D, threads>(do_s + bb * Tiles::q_bytes, do_g, p.out_stride,
                                                  valid, do_g, me);
            });
    };
    load_swizzled<BlockN, D, threads>(k_s, tile.k, p.qkv_stride, p.seq - j0, tile.k, tid);
    load_swizzled<BlockN, D, threads>(v_s, tile.v, p.qkv_stride, p.seq - j0, tile.v, tid);
    load_step(0, 0);
    cp_async_commit();
    zero_pad_columns<BlockN, D, W, threads>(k_s, tid);
    zero_pad_columns<BlockN, D, W, threads>(v_s, tid);
    for (int buf = 0; buf < 4; ++buf)  // Q and dO, both buffers: published by the loop's barrier
        zero_pad_columns<BlockM, D, W, threads>(q_s + buf * Tiles::q_bytes, tid);

    const int group_row = split ? 0 : 64 * group;           // this warpgroup's first key row
    const int group_first = j0 + group_row;                 // and that key
    const int key_first = group_first + 16 * wl;            // this warp's first key
    const int key_lo = key_first + g, key_hi = key_lo + 8;  // the two keys (rows) of this lane
    const int row_lo = group_row + 16 * wl + g;             // key_lo's row in the tiles
    // dQ: this warpgroup's block of 64 queries (width 64: two blocks per step) and its 64-column
    // blocks of the tiles (width 128: one of two; 256: two of four, from dq_cols).
    const int dq_rows = W == 64 ? group : 0, dq_cols = W == 64 ? 0 : split ? 2 * group : group;
    const int col0 = split ? Cols * group : 0;  // this warpgroup's first column of dK and dV
    float dk[Cols / 2], dv[Cols / 2];  // columns past D: products of zeros, never stored
#pragma unroll
    for (int i = 0; i < Cols / 2; ++i) dk[i] = dv[i] = 0.0f;

    for (int s = 0; s < n_steps; ++s) {
        const int buf = s & 1;
        load_next_and_wait(s, n_steps, load_step);
        wg::fence_proxy_async();
        __syncthreads();
        if constexpr (Ordered) {  // the previous step's dQ adds are done: its tile's next turn
            if (s > 0 && tid == 0) {
                const int i_prev = tile.row(s - 1, p);
                pass_turn(turns + turn_of(b, tile.head(s - 1, p), i_prev, BlockM, p),
                          key_tile_turn<T>(i_prev, j0, BlockN) + 1);
            }
        }
        const int h = tile.head(s, p), i0 = tile.row(s, p);
        const unsigned char* q_t = q_s + buf * Tiles::q_bytes;
        const unsigned char* do_t = do_s + buf * Tiles::q_bytes;
        const float* lse_t = lse_s + buf * BlockM;
        const float* delta_t = delta_s + buf * BlockM;
        // Per 64-query part of the step: Pᵀ and dSᵀ as bf16 A fragments, one per 16 queries.
#pragma unroll 1
        for (int part = 0; part < BlockM / 64; ++part) {
            const int c0 = 64 * part, i1 = i0 + c0;  // the part's first column and query
            uint32_t pa[4][4], sa[4][4];
            if (group_first <= i1 + 63) {  // else all keys of this warpgroup follow all queries
                float st[32], dpt[32];
                const uint64_t k_a = wg::k_major(k_s, group_row), q_b = wg::k_major(q_t, c0);
                const uint64_t v_a = wg::k_major(v_s, group_row), do_b = wg::k_major(do_t, c0);
                if (part > 0) wg::wait<0>();  // the previous part's dV and dK use pa and sa
                wg::fence();
#pragma unroll
                for (int kk = 0; kk < KD; ++kk)
                    wg::mma_ss<0, 0>(st, wg::advance(k_a, wg::k_major_step(BlockN, kk)),
                                     wg::advance(q_b, wg::k_major_step(BlockM, kk)), kk > 0);
#pragma unroll
                for (int kk = 0; kk < KD; ++kk)
                    wg::mma_ss<0, 0>(dpt, wg::advance(v_a, wg::k_major_step(BlockN, kk)),
                                     wg::advance(do_b, wg::k_major_step(BlockM, kk)), kk > 0);
                wg::commit();
                wg::wait<0>();
                wg::fence_operands(st);
                wg::fence_operands(dpt);
                const bool masked = key_first + 15 > i1 || i1 + 64 > p.seq;
                // Each 8-query block is packed to bf16 as soon as it is done, so its fp32
                // registers die before the next block's.
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    float pv[4], ds4[4];
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const int col = c0 + j * 8 + 2 * t + (c & 1);  // query i0 + col
                        pv[c] = fast_exp2(fmaf(st[4 * j + c], p.scale_log2, -lse_t[col] * log2e));
                        if (masked &&
                            ((c < 2 ? key_lo : key_hi) > i0 + col || i0 + col >= p.seq))
                            pv[c] = 0.0f;
                        ds4[c] = pv[c] * (dpt[4 * j + c] - delta_t[col]);
                    }
                    const int kq = j / 2, e = j % 2;
                    pa[kq][2 * e] = pack_bf16(pv[0], pv[1]);
                    pa[kq][2 * e + 1] = pack_bf16(pv[2], pv[3]);
                    sa[kq][2 * e] = pack_bf16(ds4[0], ds4[1]);
                    sa[kq][2 * e + 1] = pack_bf16(ds4[2], ds4[3]);
                }
                const uint64_t do_mn = wg::mn_major(do_t, BlockM, col0 / 64);
                const uint64_t q_mn = wg::mn_major(q_t, BlockM, col0 / 64);
                wg::fence();
#pragma unroll
                for (int kq = 0; kq < 4; ++kq)  // dV += Pᵀ·dO
                    wg::mma_rs<1>(dv, pa[kq],
                                  wg::advance(do_mn, wg::mn_major_step(4 * part + kq)), 1);
#pragma unroll
                for (int kq = 0; kq < 4; ++kq)  // dK += dSᵀ·Q (scaled once, at the end)
                    wg::mma_rs<1>(dk, sa[kq],
                                  wg::advance(q_mn, wg::mn_major_step(4 * part + kq)), 1);
                wg::commit();
            } else {  // this warpgroup's rows of dSᵀ are zero
#pragma unroll
                for (int kq = 0; kq < 4; ++kq)
#pragma unroll
                    for (int e = 0; e < 4; ++e) sa[kq][e] = 0u;
            }
            // dSᵀ (this lane's rows row_lo and row_lo + 8) into the swizzled (BlockN, BlockM)
            // tile; split, both warpgroups hold the same rows.
#pragma unroll
            for (int kq = 0; kq < 4; ++kq) {
                if (split && group != 0) break;
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int col = c0 + 16 * kq + 8 * e + 2 * t, chunk = col / 8;
                    const int within = (col % 8) * 2;
                    *reinterpret_cast<uint32_t*>(ds_s + wg::swizzled_offset(BlockN, row_lo, chunk) +
                                                 within) = sa[kq][2 * e];
                    *reinterpret_cast<uint32_t*>(
                        ds_s + wg::swizzled_offset(BlockN, row_lo + 8, chunk) + within) =
                        sa[kq][2 * e + 1];
                }
            }
        }
        wg::wait<0>();  // dV and dK read Q and dO of buffer `buf`: done before the barrier
        wg::fence_operands(dk);
        wg::fence_operands(dv);
        wg::fence_proxy_async();
        if constexpr (Ordered) {
            if (tid == 0)
                await_turn(turns + turn_of(b, h, i0, BlockM, p), key_tile_turn<T>(i0, j0, BlockN));
        }
        __syncthreads();  // dSᵀ complete; Q and dO of buffer `buf` no longer read

        // dQ blocks (64 queries from 64·dq_rows, 64 columns from 64·block) = dS·K over the keys.
        const int q_first = i0 + 64 * dq_rows;
        if (j0 <= q_first + 63 && q_first < p.seq) {  // else dS is zero, or rows are padding
#pragma unroll 1
            for (int block = dq_cols; block < dq_cols + (split ? 2 : 1); ++block) {
                float dq[32];
                const uint64_t ds_a = wg::mn_major(ds_s, BlockN, dq_rows);
                const uint64_t k_b = wg::mn_major(k_s, BlockN, block);
                wg::fence();
#pragma unroll
                for (int kk = 0; kk < KN; ++kk)
                    wg::mma_ss<1, 1>(dq, wg::advance(ds_a, wg::mn_major_step(kk)),
                                     wg::advance(k_b, wg::mn_major_step(kk)), kk > 0);
                wg::commit();
                wg::wait<0>();
                wg::fence_operands(dq);
                const int q_lo = q_first + 16 * wl + g, q_hi = q_lo + 8;
                float* acc = dq_acc + static_cast<int64_t>(b) * p.seq * p.out_stride + h * D +
                             64 * block + 2 * t;
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    if (64 * block + 8 * j >= D) break;  // the tiles' columns past D
                    if (q_lo < p.seq)
                        atomic_add2(acc + static_cast<int64_t>(q_lo) * p.out_stride + j * 8,
                                    dq[4 * j], dq[4 * j + 1]);
                    if (q_hi < p.seq)
                        atomic_add2(acc + static_cast<int64_t>(q_hi) * p.out_stride + j * 8,
                                    dq[4 * j + 2], dq[4 * j + 3]);
                }
            }
        }
    }

    if constexpr (Ordered) {  // the last step's turn
        __syncthreads();
        if (tid == 0) {
            const int i_last = tile.row(n_steps - 1, p);
            pass_turn(turns + turn_of(b, tile.head(n_steps - 1, p), i_last, BlockM, p),
                      key_tile_turn<T>(i_last, j0, BlockN) + 1);
        }
    }
    store_key_rows<D, split ? Cols : D>([&](int dt, int c) { return dk[4 * dt + c]; },
                                        [&](int dt, int c) { return dv[4 * dt + c]; }, b, kvh,
                                        key_lo, d_qkv, p, t, col0);
}

}  // namespace slm::attention::cuda_flash
