#pragma once
// One backward step's pieces on warpgroup MMAs, as functions for the TMA backward
// (flash_backward_tma.cuh): the per-part body (Sᵀ, dPᵀ, Pᵀ, dSᵀ, dV and dK) and a dQ block, added
// with atomics or with the copy engine's bulk reductions. They began as the warpgroup kernel's
// loop body (flash_backward_wgmma.cuh, which keeps its own copy: it still runs head_dim 256 and
// is the default until these have run on a GPU) and differ from it in four ways, each to spend
// less of the shared-memory bandwidth or to overlap more: the statistics come in the order each
// lane reads them (stat_slot), Sᵀ and dPᵀ are two MMA groups so that the exponentials run
// while dPᵀ does, at width 64 K and V may be held in registers (KeyFragments), and each part
// waits for its own dV and dK, its A fragments held live until then so that ptxas need not
// serialize the MMAs (wgmma::hold_fragments; tools/check_wgmma_schedule.sh checks it).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/attention/flash_backward.cuh"
#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/mma.cuh"
#include "slm/cuda/tma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::attention::cuda_flash {

// Where backward_part reads the statistics of a step's query column `col`: the 16 columns one
// lane needs in a part of 64 (8j + 2t and + 1 for j < 8, with t = lane % 4) lie side by side,
// so it reads them as four 16-byte loads (one shared-memory wavefront each for the warp, its
// eight lanes of one t reading the same address) instead of sixteen 4-byte ones.
__device__ __forceinline__ int stat_slot(int col) {
    const int within = col % 64, j = within / 8, t = within % 8 / 2;
    return col - within + 16 * t + 2 * j + within % 2;
}

__device__ __forceinline__ float4 load_shared_float4(uint32_t address) {
    float4 v;
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "r"(address));
    return v;
}

// K and V of this warp's 16 key rows as the A fragments of the Sᵀ and dPᵀ products, KD k-steps
// of 16 columns each, loaded once per CTA (load_key_fragments): those two products then read
// only Q and dO from shared memory, half of what they read with K and V there too (at width 64
// the MMAs of 64 × 64 × 16 read as many bytes as shared memory gives in the time they take).
template <int KD>
struct KeyFragments {
    uint32_t k[KD][4], v[KD][4];
};

// k_s, v_s: swizzled (rows, ≤ 64 columns) tiles; first_row: this warp's first key row.
template <int KD>
__device__ __forceinline__ void load_key_fragments(KeyFragments<KD>& f, const unsigned char* k_s,
                                                   const unsigned char* v_s, int rows,
                                                   int first_row, int lane) {
    static_assert(KD <= 4, "tiles 64 columns wide");
    const int row = first_row + lane % 16;  // ldmatrix: lanes 0-15 rows, 16-31 the next 8 columns
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
        const uint32_t at = cuda::wgmma::swizzled_offset(rows, row, 2 * kk + lane / 16);
        cuda::mma::ldmatrix_x4(f.k[kk], cuda::mma::shared_address(k_s + at));
        cuda::mma::ldmatrix_x4(f.v[kk], cuda::mma::shared_address(v_s + at));
    }
}

// Part `part` (64 queries from column 64·part of the step's tiles) of one backward step for this
// warpgroup's keys: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, Pᵀ and dSᵀ, dV += Pᵀ·dO and dK += dSᵀ·Q over all
// W columns, and dSᵀ of this lane's rows into ds_s (stored while dV and dK run, which are
// waited for before this returns). k_s, v_s: the CTA's K and V (BlockN rows); q_t, do_t: the step's
// Q and dO (BlockM rows); lse_t, delta_t: their rows' statistics in shared memory, laid out by
// stat_slot (lse_t already times log2e); i0: the step's first query;
// group_row: this warpgroup's first key row in the tiles; key_first: this warp's first key;
// row_lo: this lane's first key's row in the tiles; kv: this warp's K and V rows when KvInRegisters (else unused); issued(): called once
// Sᵀ and dPᵀ are issued (two MMA groups just committed), before any wait, where the caller can
// finish an MMA group it left running (flash_backward_tma.cuh's OverlapDq). Where all of this
// warpgroup's keys follow all of the part's queries the part is skipped, unless AlwaysCompute
// (then computed, all masked: a wait in a branch ptxas takes for divergent serializes MMAs
// left running across it, C7518).
template <int D, int W, int BlockN, int BlockM, bool KvInRegisters, bool AlwaysCompute,
          class Issued>
__device__ __forceinline__ void backward_part(float (&dk)[W / 2], float (&dv)[W / 2],
                                              const KeyFragments<D / 16>& kv,
                                              const unsigned char* k_s, const unsigned char* v_s,
                                              const unsigned char* q_t, const unsigned char* do_t,
                                              const float* lse_t, const float* delta_t,
                                              unsigned char* ds_s, int part, int i0,
                                              int group_row, int key_first, int row_lo,
                                              int lane, const Problem& p, Issued issued) {
    constexpr int KD = D / 16;
    namespace wg = cuda::wgmma;
    using cuda::mma::pack_bf16;
    const int g = lane / 4, t = lane % 4;
    const int key_lo = key_first + g, key_hi = key_lo + 8;  // the two keys (rows) of this lane
    const int group_first = key_first - (row_lo - g - group_row);  // this warpgroup's first key
    const int c0 = 64 * part, i1 = i0 + c0;  // the part's first column and query
    uint32_t pa[4][4], sa[4][4];
    if (AlwaysCompute || group_first <= i1 + 63) {  // else this warpgroup's keys follow them all
        float st[32], dpt[32];
        const uint64_t k_a = wg::k_major(k_s, group_row), q_b = wg::k_major(q_t, c0);
        const uint64_t v_a = wg::k_major(v_s, group_row), do_b = wg::k_major(do_t, c0);
        wg::fence();
        // Sᵀ and dPᵀ as two groups: Pᵀ (the exponentials) is computed while dPᵀ still runs.
        if constexpr (KvInRegisters) {
#pragma unroll
            for (int kk = 0; kk < KD; ++kk)
                wg::mma_rs<0>(st, kv.k[kk], wg::advance(q_b, wg::k_major_step(BlockM, kk)),
                              kk > 0);
            wg::commit();
#pragma unroll
            for (int kk = 0; kk < KD; ++kk)
                wg::mma_rs<0>(dpt, kv.v[kk], wg::advance(do_b, wg::k_major_step(BlockM, kk)),
                              kk > 0);
        } else {
#pragma unroll
            for (int kk = 0; kk < KD; ++kk)
                wg::mma_ss<0, 0>(st, wg::advance(k_a, wg::k_major_step(BlockN, kk)),
                                 wg::advance(q_b, wg::k_major_step(BlockM, kk)), kk > 0);
            wg::commit();
#pragma unroll
            for (int kk = 0; kk < KD; ++kk)
                wg::mma_ss<0, 0>(dpt, wg::advance(v_a, wg::k_major_step(BlockN, kk)),
                                 wg::advance(do_b, wg::k_major_step(BlockM, kk)), kk > 0);
        }
        wg::commit();
        issued();
        const bool masked = key_first + 15 > i1 || i1 + 64 > p.seq;
        // This lane's 16 columns of the part (8j + 2t and + 1), contiguous (stat_slot).
        const uint32_t lse_at = cuda::mma::shared_address(lse_t + c0 + 16 * t);
        const uint32_t delta_at = cuda::mma::shared_address(delta_t + c0 + 16 * t);
        // The statistics of 8-query blocks 2q and 2q + 1, read before the waits where the
        // registers allow (at width 128 that spills: read as they are used).
        constexpr bool early = W == 64;
        float4 stats[4];
        if constexpr (early)
#pragma unroll
            for (int q = 0; q < 4; ++q) stats[q] = load_shared_float4(lse_at + 16 * q);
        wg::wait<1>();  // Sᵀ
        wg::fence_operands(st);
#pragma unroll
        for (int j = 0; j < 8; j += 2) {  // Pᵀ in place of Sᵀ; 8-query blocks j and j + 1
            const float4 lse4 = early ? stats[j / 2] : load_shared_float4(lse_at + 8 * j);
            const float lse[4] = {lse4.x, lse4.y, lse4.z, lse4.w};
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int c = i % 4, col = c0 + (j + i / 4) * 8 + 2 * t + (c & 1);  // query i0 + col
                float& v = st[4 * j + i];
                v = fast_exp2(fmaf(v, p.scale_log2, -lse[2 * (i / 4) + (c & 1)]));
                if (masked && ((c < 2 ? key_lo : key_hi) > i0 + col || i0 + col >= p.seq))
                    v = 0.0f;
            }
        }
        if constexpr (early)
#pragma unroll
            for (int q = 0; q < 4; ++q) stats[q] = load_shared_float4(delta_at + 16 * q);
        wg::wait<0>();  // dPᵀ
        wg::fence_operands(dpt);
        // dSᵀ, and both packed to bf16 one 8-query block at a time.
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
            const float4 delta4 = early ? stats[j / 2] : load_shared_float4(delta_at + 8 * j);
            const float delta[4] = {delta4.x, delta4.y, delta4.z, delta4.w};
#pragma unroll
            for (int h = 0; h < 2; ++h) {  // block j + h
                const float* pv = st + 4 * (j + h);
                float ds4[4];
#pragma unroll
                for (int c = 0; c < 4; ++c)
                    ds4[c] = pv[c] * (dpt[4 * (j + h) + c] - delta[2 * h + (c & 1)]);
                const int kq = j / 2;
                pa[kq][2 * h] = pack_bf16(pv[0], pv[1]);
                pa[kq][2 * h + 1] = pack_bf16(pv[2], pv[3]);
                sa[kq][2 * h] = pack_bf16(ds4[0], ds4[1]);
                sa[kq][2 * h + 1] = pack_bf16(ds4[2], ds4[3]);
            }
        }
        const uint64_t do_mn = wg::mn_major(do_t, BlockM, 0);
        const uint64_t q_mn = wg::mn_major(q_t, BlockM, 0);
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
            for (int e = 0; e < 4; ++e) pa[kq][e] = sa[kq][e] = 0u;
    }
    // dSᵀ (this lane's rows row_lo and row_lo + 8) into the swizzled (BlockN, BlockM)
    // tile.
#pragma unroll
    for (int kq = 0; kq < 4; ++kq) {
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
    // dV and dK have read pa and sa (and the stage's Q and dO); the fragments' registers stay
    // theirs until then (hold_fragments), so the MMAs are not serialized.
    wg::wait<0>();
    wg::hold_fragments(pa);
    wg::hold_fragments(sa);
}

// dq (this thread's part of a 64 × 64 fp32 block, rows 16·warp_in_group + lane / 4 and + 8,
// columns 8j + 2·(lane % 4) and + 1) = dS·K over the CTA's BlockN keys for 64 queries (from
// 64·dq_rows of ds_s: dSᵀ, (BlockN, BlockM) swizzled) and 64 columns (from 64·block of k_s: K):
// issued and committed as one MMA group, not waited for.
template <int BlockN>
__device__ __forceinline__ void dq_block_issue(float (&dq)[32], const unsigned char* ds_s,
                                               const unsigned char* k_s, int dq_rows, int block) {
    constexpr int KN = BlockN / 16;
    namespace wg = cuda::wgmma;
    const uint64_t ds_a = wg::mn_major(ds_s, BlockN, dq_rows);
    const uint64_t k_b = wg::mn_major(k_s, BlockN, block);
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < KN; ++kk)
        wg::mma_ss<1, 1>(dq, wg::advance(ds_a, wg::mn_major_step(kk)),
                         wg::advance(k_b, wg::mn_major_step(kk)), kk > 0);
    wg::commit();
}

// The same, waited for.
template <int BlockN>
__device__ __forceinline__ void dq_block_product(float (&dq)[32], const unsigned char* ds_s,
                                                 const unsigned char* k_s, int dq_rows,
                                                 int block) {
    dq_block_issue<BlockN>(dq, ds_s, k_s, dq_rows, block);
    cuda::wgmma::wait<0>();
    cuda::wgmma::fence_operands(dq);
}

// A finished dQ block (64 queries from q_first, 64 columns from 64·block of the tiles) added
// with fp32 atomics into dq_acc for query head h of sequence b.
template <int D>
__device__ __forceinline__ void add_dq_atomics(const float (&dq)[32], int block, int q_first,
                                               int b, int h, float* dq_acc, int warp_in_group,
                                               int lane, const Problem& p) {
    const int g = lane / 4, t = lane % 4, wl = warp_in_group;
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

// dq_block_product, then add_dq_atomics.
template <int D, int BlockN>
__device__ __forceinline__ void add_dq_block(const unsigned char* ds_s, const unsigned char* k_s,
                                             int dq_rows, int block, int q_first, int b, int h,
                                             float* dq_acc, int warp_in_group, int lane,
                                             const Problem& p) {
    float dq[32];
    dq_block_product<BlockN>(dq, ds_s, k_s, dq_rows, block);
    add_dq_atomics<D>(dq, block, q_first, b, h, dq_acc, warp_in_group, lane, p);
}

// A dQ block staged in shared memory for the copy engine's reductions: 64 rows of 64 fp32,
// rows dq_stage_stride floats apart (72: a warp's 8-byte fragment stores then hit each bank
// twice, the least 256 bytes allow, and every row starts on 16 bytes as the copies need).
inline constexpr int dq_stage_stride = 72;
inline constexpr int dq_stage_bytes = 64 * dq_stage_stride * 4;

// The dQ block of add_dq_block, added instead by the copy engine: each warp stores its 16 rows
// into `stage` (this warpgroup's own) and its first 16 lanes each add one row's D columns of the
// block into dq_acc with one bulk reduction, so the consumer threads issue one instruction per
// row instead of 16 atomics each. The copies read `stage` after this returns: the next call
// waits for those reads before it writes again, and the kernel waits for the writes before it
// ends (tma::wait_bulk).
template <int D, int BlockN>
__device__ __forceinline__ void reduce_dq_block(const unsigned char* ds_s,
                                                const unsigned char* k_s, int dq_rows, int block,
                                                int q_first, int b, int h, float* dq_acc,
                                                float* stage, int warp_in_group, int lane,
                                                const Problem& p) {
    namespace tma = cuda::tma;
    const int g = lane / 4, t = lane % 4, wl = warp_in_group;
    float dq[32];
    dq_block_product<BlockN>(dq, ds_s, k_s, dq_rows, block);
    if (lane < 16) tma::wait_bulk_read<0>();  // the previous block's rows have been read
    __syncwarp();
    float* lo = stage + (16 * wl + g) * dq_stage_stride + 2 * t;
    float* hi = lo + 8 * dq_stage_stride;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        *reinterpret_cast<float2*>(lo + 8 * j) = make_float2(dq[4 * j], dq[4 * j + 1]);
        *reinterpret_cast<float2*>(hi + 8 * j) = make_float2(dq[4 * j + 2], dq[4 * j + 3]);
    }
    cuda::wgmma::fence_proxy_async();  // these stores, for the copy engine's reads
    __syncwarp();
    const int row = 16 * wl + lane, q = q_first + row;
    const int cols = min(64, D - 64 * block);  // the block's columns within D
    if (lane < 16 && q < p.seq) {
        tma::reduce_add(dq_acc + (static_cast<int64_t>(b) * p.seq + q) * p.out_stride + h * D +
                            64 * block,
                        stage + row * dq_stage_stride, static_cast<uint32_t>(cols) * 4);
        tma::commit_bulk_group();
    }
}

}  // namespace slm::attention::cuda_flash
