#pragma once
// Flash attention forward for Hopper with warp specialisation: the warpgroup forward
// (flash_forward_wgmma.cuh, whose per-tile body forward_key_tile it runs unchanged) with its
// loads moved to the bulk copy engine. The kernel it replaces has every thread issue cp.async
// for the next K and V tile and meet the others at two block-wide barriers per tile; here one
// producer thread asks the copy engine (TMA, cuda/tma.cuh) for Q once and for K and V into a
// ring of Stages buffers, and each consumer warpgroup waits only for the bytes it needs and
// hands each buffer back on its own, so the two consumer warpgroups drift apart and one's
// softmax runs while the other's MMAs do.
//
// CTA: three warpgroups. Warpgroup 0 is the producer (registers shrunk to 24; one thread
// issues every copy); warpgroups 1 and 2 are consumers, 64 query rows each, registers grown to
// 240. Barriers: q_full (the producer's arrival plus Q's bytes), and per stage full (the
// producer's arrival plus K's and V's bytes) and empty (one arrival per consumer warp after its
// last read of the stage). A consumer warpgroup waits on a stage's full barrier even for a key
// tile it skips (every key after its rows), so that its arrivals on empty stay in phase.
//
// Tiles are 64-column boxes of the (columns, T, B) view of qkv (tma::Bf16Boxes), 64 rows each;
// rows past T come as zeros (keys there are masked by causality, query rows there are never
// stored). Columns of a box past the head's D belong to the next head (or read as zeros past the
// row): Q·Kᵀ contracts over D only and P·V's columns past D are never stored, so those columns
// change nothing that is kept.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/attention/flash_forward.cuh"
#include "slm/cuda/attention/flash_forward_wgmma.cuh"
#include "slm/cuda/tma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::attention::cuda_flash {

// Tiles of width W = warpgroup_width<D>, up to 128 (at 256 Q, two stages of K and V and the
// epilogue's staging do not fit in shared memory together). Width 128: 128 keys a tile, one CTA
// per SM, consumers with 240 registers. Width 64: 64 keys, two CTAs per SM (one's prologue and
// epilogue hide behind the other's loop: with one CTA of 128-key tiles it lost 15–30% to the
// warpgroup kernel at seq 512–1024), so 80 registers a thread at launch: 24 for the producer
// leave the consumers (384 · 80 − 128 · 24) / 256 = 108, rounded down to a multiple of 8.
template <int W>
struct TmaForwardTiles {
    static_assert(W == 64 || W == 128, "tiles 64 or 128 columns wide");
    static constexpr int BlockM = 128, BlockN = W == 64 ? 64 : 128, Stages = 2, threads = 384;
    static constexpr int min_blocks = W == 64 ? 2 : 1;
    static constexpr int q_bytes = BlockM * W * 2, kv_bytes = BlockN * W * 2;
    static constexpr int producer_registers = 24, consumer_registers = W == 64 ? 104 : 240;
    // The epilogue stages each consumer warp's 16 rows of O (padded<W> bf16) in its own area.
    static constexpr int staging_bytes = 8 * 16 * padded<W> * 2;
    // Q, K and V per stage, each on a 1024-byte boundary; the staging area; the barriers
    // (q_full, then full and empty per stage); 1024 bytes to align the start.
    static constexpr int barrier_offset = q_bytes + 2 * Stages * kv_bytes + staging_bytes;
    static constexpr int smem_bytes = barrier_offset + 8 * (1 + 2 * Stages) + 1024;
    static_assert(smem_bytes * min_blocks <= 227 * 1024, "fits the SM's shared memory");
};

// Box-row blocks × 64-column blocks (tma::box_cols) of a (rows, W) tile at `tile`, from (column
// col, row row, batch entry b) of `map`, counted on `bar`. Box (cb, rb) lands where the swizzled
// layout puts rows 64rb.. of column block cb.
template <int Rows, int W>
__device__ __forceinline__ void load_tile_boxes(unsigned char* tile, const CUtensorMap* map,
                                                uint64_t* bar, int col, int row, int b) {
    constexpr int BoxRows = cuda::tma::box_rows;
    static_assert(cuda::tma::box_cols == 64, "a box is one 64-column block of the swizzled tile");
#pragma unroll
    for (int cb = 0; cb < W / 64; ++cb)
#pragma unroll
        for (int rb = 0; rb < Rows / BoxRows; ++rb)
            cuda::tma::load_3d(tile + cb * Rows * 128 + rb * BoxRows * 128, map, bar, col + 64 * cb,
                               row + BoxRows * rb, b);
}

// qkv_map: qkv as (qkv_stride, T, B) boxes of 64 × 64 (tma::Bf16Boxes) → out: (B·T, heads·D)
// bf16, lse: (B, heads, T) fp32. Grid: ceil(T / 128) · B · heads CTAs (work_item's order).
template <int D>
__global__ void __launch_bounds__(384, TmaForwardTiles<warpgroup_width<D>>::min_blocks)
    flash_forward_tma_kernel(const __grid_constant__ CUtensorMap qkv_map, const bf16* qkv,
                             bf16* __restrict__ out, float* __restrict__ lse, Problem p) {
    constexpr int W = warpgroup_width<D>;
    using Tiles = TmaForwardTiles<W>;
    constexpr int BlockM = Tiles::BlockM, BlockN = Tiles::BlockN, Stages = Tiles::Stages;
    namespace wg = cuda::wgmma;
    namespace tma = cuda::tma;

    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = wg::swizzle_aligned(smem_raw);
    unsigned char* q_s = smem;
    unsigned char* k_s = q_s + Tiles::q_bytes;            // Stages buffers
    unsigned char* v_s = k_s + Stages * Tiles::kv_bytes;  // Stages buffers
    bf16* staging = reinterpret_cast<bf16*>(v_s + Stages * Tiles::kv_bytes);
    uint64_t* q_full = reinterpret_cast<uint64_t*>(smem + Tiles::barrier_offset);
    uint64_t* full = q_full + 1;       // Stages
    uint64_t* empty = full + Stages;  // Stages

    const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
    const int group = warp / 4;  // 0: producer, 1 and 2: consumers
    // query_tile's pointers are not used: the copies address qkv through the map.
    const QueryTile tile = query_tile<D, BlockM, BlockN>(qkv, p);
    const int h = tile.h, b = tile.b, i0 = tile.i0, n_tiles = tile.n_key_tiles;

    if (tid == 0) {
        tma::prefetch(&qkv_map);
        tma::barrier_init(q_full, 1);
        for (int s = 0; s < Stages; ++s) {
            tma::barrier_init(full + s, 1);
            tma::barrier_init(empty + s, 8);  // the consumers' 8 warps
        }
        tma::fence_barrier_init();
    }
    __syncthreads();

    if (group == 0) {
        tma::shrink_registers<Tiles::producer_registers>();
        if (tid != 0) return;
        const int kvh = h / p.group;
        const int k_col = static_cast<int>(p.k_offset) + kvh * D;
        const int v_col = static_cast<int>(p.v_offset) + kvh * D;
        tma::arrive_expect_tx(q_full, Tiles::q_bytes);
        load_tile_boxes<BlockM, W>(q_s, &qkv_map, q_full, h * D, i0, b);
        for (int j = 0; j < n_tiles; ++j) {
            const int s = j % Stages;
            if (j >= Stages) tma::wait(empty + s, (j / Stages - 1) & 1);
            tma::arrive_expect_tx(full + s, 2 * Tiles::kv_bytes);
            load_tile_boxes<BlockN, W>(k_s + s * Tiles::kv_bytes, &qkv_map, full + s, k_col,
                                            j * BlockN, b);
            load_tile_boxes<BlockN, W>(v_s + s * Tiles::kv_bytes, &qkv_map, full + s, v_col,
                                            j * BlockN, b);
        }
        return;
    }

    tma::grow_registers<Tiles::consumer_registers>();
    const int c = group - 1, cwarp = warp - 4;  // consumer warpgroup, and warp among the 8
    const int group_last = i0 + 64 * c + 63;
    const int warp_first = i0 + cwarp * 16;
    float o[W / 2];  // columns past D: never stored
#pragma unroll
    for (int i = 0; i < W / 2; ++i) o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const uint64_t q_a = wg::k_major(q_s, 64 * c);
    tma::wait(q_full, 0);

    for (int j = 0; j < n_tiles; ++j) {
        const int s = j % Stages;
        tma::wait(full + s, (j / Stages) & 1);
        const int j0 = j * BlockN;
        if (j0 <= group_last)  // else every key of the tile follows every row of this warpgroup
            forward_key_tile<D, BlockM, BlockN>(o, m, l, q_a, k_s + s * Tiles::kv_bytes,
                                                v_s + s * Tiles::kv_bytes, j0, warp_first, lane,
                                                p.scale_log2);
        __syncwarp();
        if (lane == 0) tma::arrive(empty + s);  // this warp's MMAs on the stage are done
    }

    store_forward_rows<D>([&](int dt, int e) { return o[4 * dt + e]; }, m, l,
                          staging + cwarp * 16 * padded<W>, out, lse, p, b, h, warp_first, lane);
}

// A (B·T, row_stride) tensor of the problem (qkv, or d_out for the backward) as the maps the TMA
// kernels read: (row_stride, T, B) bf16 in tma::box_cols × tma::box_rows boxes.
inline CUtensorMap sequence_boxes(const bf16* rows, int64_t row_stride, const Problem& p) {
    return cuda::tma::encode({rows, row_stride, p.seq, p.batch, row_stride});
}

}  // namespace slm::attention::cuda_flash
