#pragma once
// Flash attention backward for Hopper with warp specialisation: the warpgroup backward
// (flash_backward_wgmma.cuh, whose per-part body and dQ block it runs as backward_part and
// add_dq_block, flash_backward_parts.cuh) with its loads moved to a producer warp and the bulk copy
// engine, as the forward in flash_forward_tma.cuh. The kernel it replaces has all 256 threads issue
// cp.async for the next step's Q, dO, lse and delta and meet at two block-wide barriers per step;
// here:
//
// CTA: three warpgroups. Warpgroup 0 is the producer (registers shrunk to 24): its first warp
// loads K and V once (TMA), then per step Q and dO (TMA) into a ring of Stages buffers and the
// rows' lse (times log2e) and delta (ordinary loads by its 32 lanes: (B, heads, T) rows start at
// any multiple of T, which the bulk copies' 16-byte alignment does not allow), stored in the
// order the consumers read them in 16-byte loads (stat_slot). Warpgroups 1 and 2 are the
// consumers, 64 keys each (registers grown to 240). Barriers: kv_full; per stage full (the
// producer warp's 32 arrivals, after its stores of lse and delta, plus Q's and dO's bytes) and
// empty (one arrival per consumer warp once dV and dK no longer read the stage). The consumers
// meet at one named barrier per step (256 threads), when dSᵀ is complete for the dQ products;
// dSᵀ is double-buffered, so that barrier also tells a consumer that the other has finished the
// previous step's dQ reads of the buffer it is about to overwrite.
//
// Tiles are 64-column boxes of 3-D (columns, T, B) views of qkv and d_out (tma::Bf16Boxes);
// rows past T come as zeros, and columns of a box past the head's D belong to the next head:
// Sᵀ and dPᵀ contract over D only, and dV's, dK's and dQ's columns past D are never stored.
// Tiles up to 128 wide. With Turns other than none (the deterministic modes) the CTAs that add
// into one (sequence, head, query tile) take turns as in the warpgroup kernel (flash_turns.cuh):
// the first consumer thread waits for the step's turn before the named barrier, and hands the
// previous step's turn on after the next step's barrier (every consumer's adds are done).
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/attention/flash_backward.cuh"
#include "slm/cuda/attention/flash_backward_parts.cuh"
#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/attention/flash_forward_tma.cuh"
#include "slm/cuda/attention/flash_turns.cuh"
#include "slm/cuda/tma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::attention::cuda_flash {

// Width 64: steps of 128 queries in two parts of 64 (as the warpgroup kernel); 128: 64 queries.
template <int W, bool BulkDq = false>
struct TmaBackwardTiles {
    static_assert(W == 64 || W == 128, "tiles 64 or 128 columns wide");
    static constexpr int BlockN = 128, BlockM = W == 64 ? 128 : 64, Stages = 2, threads = 384;
    static constexpr int producer_registers = 24, consumer_registers = 240;
    static constexpr int kv_bytes = BlockN * W * 2, q_bytes = BlockM * W * 2;
    static constexpr int ds_bytes = BlockN * BlockM * 2;
    static constexpr int dq_offset = 2 * kv_bytes + 2 * Stages * q_bytes + 2 * ds_bytes;
    // K, V; Q and dO per stage; dSᵀ twice (each on a 1024-byte boundary); with BulkDq, each
    // consumer's dQ stage; lse and delta per stage; the barriers (kv_full, then full and empty
    // per stage); 1024 bytes to align.
    static constexpr int stats_offset = dq_offset + (BulkDq ? 2 * dq_stage_bytes : 0);
    static constexpr int barrier_offset = stats_offset + 2 * Stages * BlockM * 4;
    static constexpr int smem_bytes = barrier_offset + 8 * (1 + 2 * Stages) + 1024;
    static_assert(smem_bytes <= 227 * 1024, "fits the SM's shared memory");
};

// qkv_map, d_out_map: qkv and d_out as (columns, T, B) boxes of 64 × 64; lse, delta: (B, heads,
// T) → the k and v parts of d_qkv for every position, and scale⁻¹·dQ added into dq_acc
// (B·T, heads·D), with atomics or (BulkDq) with the copy engine's bulk reductions from shared
// memory; with KvInRegisters (width 64) each consumer warp holds its 16 rows of K and V as
// MMA fragments; with OverlapDq a step's dQ product is not waited for where it is issued: the
// next step issues its first Sᵀ and dPᵀ behind it and adds the finished block while those run.
// Grid: ceil(T / 128) · B · kv_heads CTAs, earliest key tiles first, or as the scheme T says.
// turns (T != none only): turn_count(p, BlockM) zeroed ints.
template <int D, Turns T, bool BulkDq, bool KvInRegisters, bool OverlapDq>
__global__ void __launch_bounds__(384, 1)
    flash_backward_tma_kernel(const __grid_constant__ CUtensorMap qkv_map,
                              const __grid_constant__ CUtensorMap d_out_map, const bf16* qkv,
                              const float* __restrict__ lse, const float* __restrict__ delta,
                              float* __restrict__ dq_acc, bf16* __restrict__ d_qkv,
                              int* __restrict__ turns, Problem p) {
    constexpr int W = warpgroup_width<D>;
    using Tiles = TmaBackwardTiles<W, BulkDq>;
    // The turns order atomics that have completed; bulk reductions would need waits of their own.
    static_assert(!(BulkDq && T != Turns::none), "bulk dQ reductions only without turns");
    static_assert(!KvInRegisters || W == 64, "K and V fragments fit the registers at width 64");
    static_assert(!(OverlapDq && (BulkDq || T != Turns::none)), "overlapped dQ: atomics, no turns");
    static_assert(!OverlapDq || W == 64, "the held dQ block fits the registers at width 64");
    constexpr int BlockN = Tiles::BlockN, BlockM = Tiles::BlockM, Stages = Tiles::Stages;
    constexpr bool Ordered = T != Turns::none;
    namespace wg = cuda::wgmma;
    namespace tma = cuda::tma;

    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = wg::swizzle_aligned(smem_raw);
    unsigned char* k_s = smem;
    unsigned char* v_s = k_s + Tiles::kv_bytes;
    unsigned char* q_s = v_s + Tiles::kv_bytes;              // Stages buffers
    unsigned char* do_s = q_s + Stages * Tiles::q_bytes;     // Stages buffers
    unsigned char* ds_s = do_s + Stages * Tiles::q_bytes;    // 2 buffers
    float* dq_s = reinterpret_cast<float*>(smem + Tiles::dq_offset);  // BulkDq: 2 stages
    float* lse_s = reinterpret_cast<float*>(smem + Tiles::stats_offset);  // Stages × BlockM
    float* delta_s = lse_s + Stages * BlockM;                              // Stages × BlockM
    uint64_t* kv_full = reinterpret_cast<uint64_t*>(smem + Tiles::barrier_offset);
    uint64_t* full = kv_full + 1;     // Stages
    uint64_t* empty = full + Stages;  // Stages

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int group = warp / 4;  // 0: producer, 1 and 2: consumers
    const auto tile = key_tile<D, BlockN, BlockM, walks_up<T>>(qkv, p, launches_late_first<T>);
    const int kvh = tile.kvh, b = tile.b, j0 = tile.j0, n_steps = tile.n_steps;

    if (tid == 0) {
        tma::prefetch(&qkv_map);
        tma::prefetch(&d_out_map);
        tma::barrier_init(kv_full, 1);
        for (int s = 0; s < Stages; ++s) {
            tma::barrier_init(full + s, 32);  // the producer warp's lanes
            tma::barrier_init(empty + s, 8);  // the consumers' 8 warps
        }
        tma::fence_barrier_init();
    }
    __syncthreads();

    if (group == 0) {
        tma::shrink_registers<Tiles::producer_registers>();
        if (warp != 0) return;
        if (lane == 0) {
            tma::arrive_expect_tx(kv_full, 2 * Tiles::kv_bytes);
            load_tile_boxes<BlockN, W>(k_s, &qkv_map, kv_full,
                                            static_cast<int>(p.k_offset) + kvh * D, j0, b);
            load_tile_boxes<BlockN, W>(v_s, &qkv_map, kv_full,
                                            static_cast<int>(p.v_offset) + kvh * D, j0, b);
        }
        const int lane_slot = stat_slot(lane);  // stat_slot(32k + lane) − stat_slot(32k)
        for (int s = 0; s < n_steps; ++s) {
            const int st = s % Stages;
            if (s >= Stages) tma::wait(empty + st, (s / Stages - 1) & 1);
            const int h = tile.head(s, p), i0 = tile.row(s, p);
            if (lane == 0) {
                tma::expect_tx(full + st, 2 * Tiles::q_bytes);
                load_tile_boxes<BlockM, W>(q_s + st * Tiles::q_bytes, &qkv_map, full + st,
                                                h * D, i0, b);
                load_tile_boxes<BlockM, W>(do_s + st * Tiles::q_bytes, &d_out_map,
                                                full + st, h * D, i0, b);
            }
            const int64_t stat = (static_cast<int64_t>(b) * p.heads + h) * p.seq + i0;
#pragma unroll
            for (int k = 0; k < BlockM / 32; ++k) {  // row 32k + lane, where backward_part reads it
                const int r = 32 * k + lane, slot = lane_slot + stat_slot(32 * k);
                const bool valid = i0 + r < p.seq;
                lse_s[st * BlockM + slot] = valid ? lse[stat + r] * log2e : 0.0f;
                delta_s[st * BlockM + slot] = valid ? delta[stat + r] : 0.0f;
            }
            tma::arrive(full + st);  // after this lane's stores (release)
        }
        return;
    }

    tma::grow_registers<Tiles::consumer_registers>();
    const int c = group - 1, wl = warp % 4;  // consumer warpgroup, warp within it
    const int group_row = 64 * c;              // this warpgroup's first key row
    const int key_first = j0 + group_row + 16 * wl;  // this warp's first key
    const int row_lo = group_row + 16 * wl + lane / 4;  // this lane's first key's row
    // dQ: this warpgroup's block of 64 queries (width 64: two blocks per step) or its 64-column
    // block of the tiles (width 128: one of two).
    const int dq_rows = W == 64 ? c : 0, dq_cols = W == 64 ? 0 : c;
    float dk[W / 2], dv[W / 2];  // columns past D: never stored
#pragma unroll
    for (int i = 0; i < W / 2; ++i) dk[i] = dv[i] = 0.0f;
    const bool turn_taker = Ordered && c == 0 && wl == 0 && lane == 0;
    auto hand_on = [&](int step) {  // step's turn at its query tile, to the next key tile
        const int i_step = tile.row(step, p);
        pass_turn(turns + turn_of(b, tile.head(step, p), i_step, BlockM, p),
                  key_tile_turn<T>(i_step, j0, BlockN) + 1);
    };
    tma::wait(kv_full, 0);
    KeyFragments<D / 16> kv;  // this warp's K and V rows (KvInRegisters; else never read)
    if constexpr (KvInRegisters) load_key_fragments(kv, k_s, v_s, BlockN, group_row + 16 * wl, lane);

    auto ds_of = [&](int s) { return ds_s + (s & 1) * Tiles::ds_bytes; };  // dSᵀ, double-buffered
    auto q_first_of = [&](int s) { return tile.row(s, p) + 64 * dq_rows; };
    // Step s up to the named barrier: its parts (hook: backward_part's issued, for the first
    // part), the release of its stage, and its dSᵀ published for the dQ products.
    auto parts = [&](int s, auto first_issued) {
        const int st = s % Stages;
        const int i0 = tile.row(s, p);
        tma::wait(full + st, (s / Stages) & 1);
        auto part_at = [&](int part, auto issued) {
            backward_part<D, W, BlockN, BlockM, KvInRegisters, OverlapDq>(
                dk, dv, kv, k_s, v_s, q_s + st * Tiles::q_bytes, do_s + st * Tiles::q_bytes,
                lse_s + st * BlockM, delta_s + st * BlockM, ds_of(s), part, i0, group_row,
                key_first, row_lo, lane, p, issued);
        };
        if constexpr (OverlapDq) {  // unrolled: the hook's wait is in no loop of its own
            part_at(0, first_issued);
#pragma unroll
            for (int part = 1; part < BlockM / 64; ++part) part_at(part, [] {});
        } else {
#pragma unroll 1
            for (int part = 0; part < BlockM / 64; ++part) part_at(part, first_issued);
        }
        wg::fence_operands(dk);  // backward_part waited for dV, dK and its reads of the stage
        wg::fence_operands(dv);
        __syncwarp();
        if (lane == 0) tma::arrive(empty + st);
        wg::fence_proxy_async();  // this thread's dSᵀ stores, for the dQ products' reads
    };
    // The named barrier after step s (both consumers' dSᵀ complete), with the turns around it.
    auto meet = [&](int s) {
        if constexpr (Ordered) {
            if (turn_taker) {
                const int h = tile.head(s, p), i0 = tile.row(s, p);
                await_turn(turns + turn_of(b, h, i0, BlockM, p), key_tile_turn<T>(i0, j0, BlockN));
            }
        }
        asm volatile("bar.sync 1, 256;\n" ::: "memory");
        if constexpr (Ordered) {  // every consumer's adds of the previous step are done
            if (turn_taker && s > 0) hand_on(s - 1);
        }
    };

    if constexpr (OverlapDq) {
        // Step s's dQ block is issued after its barrier and finished (waited for, then added)
        // in step s + 1's first part once that has issued Sᵀ and dPᵀ behind it; the last one
        // after the loop. The loop is turned so that no loop edge lies between a block's issue
        // and its wait, and every wait is outside any branch ptxas takes for divergent (the
        // parts are always computed; a block past the sequence is computed and not added):
        // otherwise ptxas cannot count the groups in flight and serializes the MMAs (C7514,
        // C7518). Its dSᵀ buffer is not written meanwhile: step s + 1 writes the other one, and
        // step s + 2 passes step s + 1's barrier only once this warpgroup has finished it.
        float dq[32];
        auto add_held = [&](int s) {
            wg::fence_operands(dq);
            const int q_first = q_first_of(s);
            if (q_first < p.seq)
                add_dq_atomics<D>(dq, dq_cols, q_first, b, tile.head(s, p), dq_acc, wl, lane, p);
        };
        parts(0, [] {});
        for (int s = 0; s + 1 < n_steps; ++s) {  // n_steps ≥ 1: the diagonal's step
            meet(s);
            dq_block_issue<BlockN>(dq, ds_of(s), k_s, dq_rows, dq_cols);
            parts(s + 1, [&] {
                wg::wait<2>();  // step s's block; step s + 1's Sᵀ and dPᵀ still run
                add_held(s);
            });
        }
        meet(n_steps - 1);
        dq_block_issue<BlockN>(dq, ds_of(n_steps - 1), k_s, dq_rows, dq_cols);
        wg::wait<0>();
        add_held(n_steps - 1);
    } else {
        for (int s = 0; s < n_steps; ++s) {
            parts(s, [] {});
            meet(s);
            const int q_first = q_first_of(s), h = tile.head(s, p);
            if (j0 <= q_first + 63 && q_first < p.seq) {  // else dS is zero, or padding rows
                if constexpr (BulkDq)
                    reduce_dq_block<D, BlockN>(ds_of(s), k_s, dq_rows, dq_cols, q_first, b, h,
                                               dq_acc, dq_s + c * (dq_stage_bytes / 4), wl, lane,
                                               p);
                else
                    add_dq_block<D, BlockN>(ds_of(s), k_s, dq_rows, dq_cols, q_first, b, h,
                                            dq_acc, wl, lane, p);
            }
        }
    }
    if constexpr (BulkDq) tma::wait_bulk<0>();  // the reductions have read and written
    if constexpr (Ordered) {  // the last step's turn
        asm volatile("bar.sync 1, 256;\n" ::: "memory");
        if (turn_taker) hand_on(n_steps - 1);
    }
    store_key_rows<D>([&](int dt, int e) { return dk[4 * dt + e]; },
                      [&](int dt, int e) { return dv[4 * dt + e]; }, b, kvh, key_first + lane / 4,
                      d_qkv, p, lane % 4);
}

}  // namespace slm::attention::cuda_flash
