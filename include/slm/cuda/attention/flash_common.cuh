#pragma once
// What the Flash attention kernels on the GPU share: the problem description they take by value,
// the tile sizes per head_dim, the cp.async loaders of a (rows × head_dim) tile (padded for the
// mma.sync kernels, 128-byte swizzled for the warpgroup ones) and the grid order.
//
// Shared-memory tiles are row-major bf16 with 8 elements (16 bytes) of padding per row: a row of
// 64 or 128 elements would otherwise put the 8 rows one ldmatrix reads in the same banks; with
// the padding consecutive rows start 16 bytes apart in the bank space, and the 8 row reads of an
// 8×8 matrix land in 8 different 16-byte bank groups.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/core/shapes.hpp"
#include "slm/cuda/mma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::attention::cuda_flash {

using bf16 = __nv_bfloat16;

inline constexpr float log2e = 1.4426950408889634f;
inline constexpr float ln2 = 0.6931471805599453f;

// The attention problem as the kernels see it. Tensors (element strides):
//   qkv, d_qkv  (B·T, qkv_stride)  [q heads | k heads | v heads] per row
//   out, d_out  (B·T, heads·D)
//   lse, delta  (B, heads, T) fp32
//   dq_acc      (B·T, heads·D) fp32
struct Problem {
    int batch, seq, heads, kv_heads, group;
    int64_t qkv_stride, k_offset, v_offset, out_stride;
    float scale;       // 1/sqrt(D)
    float scale_log2;  // scale·log2(e): exp(scale·s − x) = exp2(s·scale_log2 − x·log2(e))
    // > 0: q and k were rotated by RoPE with this theta, and the atomic modes' dQ conversion
    // returns dQ w.r.t. the unrotated q (FlashCudaKernel::backward_through_rope).
    float rope_theta = 0;
};

inline Problem make_problem(const AttentionShape& s, float scale) {
    Problem p{};
    p.batch = static_cast<int>(s.batch);
    p.seq = static_cast<int>(s.seq);
    p.heads = static_cast<int>(s.heads);
    p.kv_heads = static_cast<int>(s.kv_heads);
    p.group = static_cast<int>(s.group());
    p.qkv_stride = s.qkv_stride();
    p.k_offset = s.k_offset();
    p.v_offset = s.v_offset();
    p.out_stride = s.out_stride();
    p.scale = scale;
    p.scale_log2 = scale * log2e;
    return p;
}

// Tile sizes per head_dim (powers of two, multiples of 16). Forward: ForwardM query rows per CTA
// (one warp per 16 rows), keys streamed ForwardN at a time, ForwardMinBlocks CTAs per SM asked of
// the register allocator. Backward: BackwardN keys per CTA (one warp per 16 keys), queries
// streamed BackwardM at a time. Deterministic dQ: DqM query rows per CTA, keys streamed DqN at a
// time. The backward warp holds dK and dV, 16 × D fp32 each, which at D = 128 leaves registers
// for 32-query steps only. ptxas -v (CUDA 13.0, sm_90a), registers per thread for D = 64 / 128:
// forward 128 (28 bytes spilled, for 2 CTAs per SM) / 229; backward 220 / 255 (8 bytes spilled
// in the atomic mode); deterministic dQ 174 / 244.
template <int D>
struct Tiles;
template <>
struct Tiles<64> {
    static constexpr int ForwardM = 128, ForwardN = 64, ForwardMinBlocks = 2;
    static constexpr int BackwardN = 128, BackwardM = 64;
    static constexpr int DqM = 128, DqN = 64;
};
template <>
struct Tiles<128> {
    static constexpr int ForwardM = 128, ForwardN = 64, ForwardMinBlocks = 1;
    static constexpr int BackwardN = 64, BackwardM = 32;
    static constexpr int DqM = 64, DqN = 32;
};
// The other head_dims' tiles for the mma.sync kernels (which run them off Hopper, in the
// atomic_mma_sync mode and in the deterministic backward) follow the nearest of the two above,
// within the backward's dQ split (BackwardM / 16 row blocks over BackwardN / 16 warps, each
// taking a multiple of 16 columns of D): 32 as 64; 48 and 80 with 64 × 64 backward tiles (one
// warp per row block, all D columns); 96 as 128.
template <>
struct Tiles<32> : Tiles<64> {};
template <>
struct Tiles<48> {
    static constexpr int ForwardM = 128, ForwardN = 64, ForwardMinBlocks = 2;
    static constexpr int BackwardN = 64, BackwardM = 64;
    static constexpr int DqM = 128, DqN = 64;
};
template <>
struct Tiles<80> {
    static constexpr int ForwardM = 128, ForwardN = 64, ForwardMinBlocks = 1;
    static constexpr int BackwardN = 64, BackwardM = 64;
    static constexpr int DqM = 64, DqN = 32;
};
template <>
struct Tiles<96> : Tiles<128> {};

// Row stride, in elements, of a shared tile with `cols` bf16 columns.
template <int Cols>
inline constexpr int padded = Cols + 8;

// Rows × D tile ← rows [0, Rows) of a strided global matrix (row r at src + r·ld), row r read
// only when r < valid_rows and zero-filled otherwise (the sequence's tail). `fallback` is any
// valid global address: a zero-filled copy still names one. 16 bytes per cp.async, consecutive
// threads on consecutive chunks of a row. The caller commits the group.
template <int Rows, int D, int Threads>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* src, int64_t ld, int valid_rows,
                                          const bf16* fallback, int tid) {
    static_assert(D % 8 == 0, "rows are moved in 16-byte chunks of 8 bf16");
    constexpr int chunks = D / 8, total = Rows * chunks, rounds = (total + Threads - 1) / Threads;
#pragma unroll
    for (int k = 0; k < rounds; ++k) {
        const int i = tid + k * Threads;
        // Head_dim 48 and 80 give totals the threads do not divide: the last round is partial.
        if (total % Threads != 0 && i >= total) break;
        const int r = i / chunks, c = (i % chunks) * 8;
        const bool valid = r < valid_rows;
        const bf16* from = valid ? src + r * ld + c : fallback;
        cuda::mma::cp_async_16(tile + r * padded<D> + c, from, valid);
    }
}

// load_tile for the warpgroup kernels: the same rows into a 128-byte-swizzled tile
// (cuda/wgmma.cuh) with no padding, rows past valid_rows zero-filled, 16 bytes per cp.async.
// Only the D / 8 chunks of each row are written: a tile laid out wider than D (warpgroup_width)
// keeps whatever its other columns hold. The caller commits the group.
template <int Rows, int D, int Threads>
__device__ __forceinline__ void load_swizzled(unsigned char* tile, const bf16* src, int64_t ld,
                                              int valid_rows, const bf16* fallback, int tid) {
    constexpr int chunks = D / 8, total = Rows * chunks, rounds = (total + Threads - 1) / Threads;
#pragma unroll
    for (int k = 0; k < rounds; ++k) {
        const int i = tid + k * Threads, r = i / chunks, c = i % chunks;
        // Head_dim 48 and 80 give totals the threads do not divide: the last round is partial.
        if (total % Threads != 0 && i >= total) break;
        const bool valid = r < valid_rows;
        cuda::mma::cp_async_16(tile + cuda::wgmma::swizzled_offset(Rows, r, c),
                               valid ? src + r * ld + c * 8 : fallback, valid);
    }
}

// The warpgroup kernels' tiles are 64, 128 or 256 columns wide (whole 128-byte swizzle blocks);
// a head_dim in between is laid out in the next width up. Q·Kᵀ and V·dOᵀ contract over the D
// columns only (D / 16 k-steps); the products whose N is the head_dim (P·V, dV, dK, dQ) run over
// the whole width, and their columns past D are computed from zeros and never stored: each
// output column depends only on the same column of its B operand.
template <int D>
inline constexpr int warpgroup_width = D <= 64 ? 64 : D <= 128 ? 128 : 256;

// Zeroes columns D .. Width−1 of every row of a swizzled tile of `Rows` rows laid out `Width`
// wide (load_swizzled never writes them), so the wide products read zeros there. Once per
// buffer: no load touches them afterwards.
template <int Rows, int D, int Width, int Threads>
__device__ __forceinline__ void zero_pad_columns(unsigned char* tile, int tid) {
    constexpr int pad = (Width - D) / 8;
    if constexpr (pad > 0) {
        for (int i = tid; i < Rows * pad; i += Threads)
            *reinterpret_cast<uint4*>(tile + cuda::wgmma::swizzled_offset(Rows, i / pad,
                                                                           D / 8 + i % pad)) =
                make_uint4(0u, 0u, 0u, 0u);
    }
}

// n floats ← src[0, n), element i read only when i < valid and zero-filled otherwise. 4 bytes per
// copy: (B, H, T) rows start at any multiple of T, not of 16 bytes.
template <int N, int Threads>
__device__ __forceinline__ void load_row_stats(float* dst, const float* src, int valid,
                                               const float* fallback, int tid) {
    for (int i = tid; i < N; i += Threads)
        cuda::mma::cp_async_4(dst + i, i < valid ? src + i : fallback, i < valid);
}

// 2^x with one MUFU.EX2: exp2f compiles to ex2.approx.f32, which without -ftz also scales
// inputs below −126 around it (three more instructions per call); here results below 2^−126
// flush to zero, far under what a bf16 probability or an fp32 sum of them can show. The
// softmax of every Flash kernel runs on it.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// threadIdx.x read by an instruction the compiler must execute where it stands: values derived
// from it are computed again at each use instead of being hoisted out of a loop into registers
// that stay live across it (for kernels whose accumulators need every register).
__device__ __forceinline__ int fresh_thread_index() {
    int tid;
    asm volatile("mov.u32 %0, %%tid.x;" : "=r"(tid));
    return tid;
}

// Reduction over the 4 lanes of a quad (the lanes that share rows g and g+8 of a C fragment).
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Grid order. CTAs run roughly in launch order, so the CTAs in flight at once should share their
// streamed operands in L2: all tiles of one (sequence, head) unit read the same K and V (forward)
// or the same Q, dO and dQ accumulator (backward). Units are therefore taken in groups of about
// 256 CTAs (per_group units of `tiles` tiles; a few MB of operands, well inside the 50 MB L2),
// one group after the other; within a group, heavy causal tiles first: the CTA at local rank r
// handles tile `tiles − 1 − r / n` (forward: late query tiles have the most keys) or `r / n`
// (backward: early key tiles have the most queries) of the group's unit `r % n`. (Unit-minor
// order over the whole grid, the first version, kept 132 heads in flight: 31% L2 hits and
// DRAM-bound dQ atomics in the backward.)
struct WorkItem {
    int tile, unit;
};
// The work item of the CTA at launch rank `rank`; on the host too, for the tests that play the
// schedule (tests/cuda/attention/flash_turns.cu).
__host__ __device__ inline WorkItem work_item_at(int rank, int units, int tiles, bool late_first) {
    const int per_group = 256 / tiles > 1 ? 256 / tiles : 1;
    const int first = rank / (per_group * tiles) * per_group;          // the group's first unit
    const int n = per_group < units - first ? per_group : units - first;  // units in this group
    const int local = rank - first * tiles;
    const int order = local / n;
    return {late_first ? tiles - 1 - order : order, first + local % n};
}
__device__ __forceinline__ WorkItem work_item(int units, int tiles, bool late_first) {
    return work_item_at(static_cast<int>(blockIdx.x), units, tiles, late_first);
}

// The query tile a forward or dQ CTA owns (heavy causal tiles first) and where its rows live:
// q at the tile's first row, k and v at position 0 of the sequence, read through kv head
// h / group. Keys after the tile's last row (or after the sequence) are never needed, so
// n_key_tiles stops there.
struct QueryTile {
    int h, b, i0, n_key_tiles;
    const bf16 *q, *k, *v;
};
template <int D, int BlockM, int BlockN>
__device__ __forceinline__ QueryTile query_tile(const bf16* qkv, const Problem& p) {
    const int q_tiles = (p.seq + BlockM - 1) / BlockM;
    const WorkItem item = work_item(p.batch * p.heads, q_tiles, /*late_first=*/true);
    QueryTile t;
    t.h = item.unit % p.heads;
    t.b = item.unit / p.heads;
    t.i0 = item.tile * BlockM;
    const int kvh = t.h / p.group;
    const bf16* seq_rows = qkv + static_cast<int64_t>(t.b) * p.seq * p.qkv_stride;
    t.q = seq_rows + static_cast<int64_t>(t.i0) * p.qkv_stride + t.h * D;
    t.k = seq_rows + p.k_offset + kvh * D;
    t.v = seq_rows + p.v_offset + kvh * D;
    t.n_key_tiles = (min(t.i0 + BlockM, p.seq) + BlockN - 1) / BlockN;
    return t;
}

// The key tile a backward CTA owns (heavy causal tiles first, as work_item orders them, or with
// late_first the latest key tiles first) and the steps it walks: (query head of its kv group,
// query tile of BlockM rows from the diagonal on). k and v are the tile's first key's rows of its
// kv head. Two walks:
//   Descending = false: head-major, each head's query tiles from the diagonal down;
//   Descending = true: query-tile-major, from the sequence's last query tile up to the diagonal,
//     every head of the group at each. All key tiles of one kv head then reach each (head, query
//     tile) at the same step, whatever their diagonal (flash_turns.cuh, Turns::tile_0_up).
template <int D, int BlockN, int BlockM, bool Descending = false>
struct KeyTile {
    int kvh, b, j0, it0, per_head, n_steps;
    const bf16 *seq_rows, *k, *v;  // seq_rows: the sequence's position 0 in qkv

    __host__ __device__ int head(int s, const Problem& p) const {
        return kvh * p.group + (Descending ? s % p.group : s / per_head);
    }
    __host__ __device__ int row(int s, const Problem& p) const {
        return (Descending ? it0 + per_head - 1 - s / p.group : it0 + s % per_head) * BlockM;
    }
};
// The schedule alone (no pointers) of the CTA at launch rank `rank`, on the host too.
template <int D, int BlockN, int BlockM, bool Descending = false>
__host__ __device__ inline KeyTile<D, BlockN, BlockM, Descending> key_tile_at(int rank,
                                                                              const Problem& p,
                                                                              bool late_first) {
    const int k_tiles = (p.seq + BlockN - 1) / BlockN;
    const WorkItem item = work_item_at(rank, p.batch * p.kv_heads, k_tiles, late_first);
    KeyTile<D, BlockN, BlockM, Descending> t{};
    t.kvh = item.unit % p.kv_heads;
    t.b = item.unit / p.kv_heads;
    t.j0 = item.tile * BlockN;
    t.it0 = t.j0 / BlockM;
    t.per_head = (p.seq + BlockM - 1) / BlockM - t.it0;
    t.n_steps = p.group * t.per_head;
    return t;
}
template <int D, int BlockN, int BlockM, bool Descending = false>
__device__ __forceinline__ KeyTile<D, BlockN, BlockM, Descending> key_tile(
    const bf16* qkv, const Problem& p, bool late_first = false) {
    auto t =
        key_tile_at<D, BlockN, BlockM, Descending>(static_cast<int>(blockIdx.x), p, late_first);
    t.seq_rows = qkv + static_cast<int64_t>(t.b) * p.seq * p.qkv_stride;
    const bf16* first = t.seq_rows + static_cast<int64_t>(t.j0) * p.qkv_stride + t.kvh * D;
    t.k = first + p.k_offset;
    t.v = first + p.v_offset;
    return t;
}

// Step s of a key tile: the rows of Q and dO it reads (query head h, rows from i0), and into the
// double buffers at `buf` its rows' lse and delta. `load` moves a (BlockM × D) tile (the padded
// load_tile or load_swizzled, with the caller's shared buffers bound). The caller commits.
template <int D, int BlockN, int BlockM, int Threads, bool Descending, class LoadRows>
__device__ __forceinline__ void load_key_tile_step(const KeyTile<D, BlockN, BlockM, Descending>& tile,
                                                   int s,
                                                   int buf, const bf16* d_out, const float* lse,
                                                   const float* delta, float* lse_s,
                                                   float* delta_s, const Problem& p, int tid,
                                                   LoadRows load) {
    const int h = tile.head(s, p), i0 = tile.row(s, p);
    const bf16* q_g = tile.seq_rows + static_cast<int64_t>(i0) * p.qkv_stride + h * D;
    const bf16* do_g = d_out + (static_cast<int64_t>(tile.b) * p.seq + i0) * p.out_stride + h * D;
    load(buf, q_g, do_g, p.seq - i0);
    const int64_t stat = (static_cast<int64_t>(tile.b) * p.heads + h) * p.seq + i0;
    load_row_stats<BlockM, Threads>(lse_s + buf * BlockM, lse + stat, p.seq - i0, lse + stat, tid);
    load_row_stats<BlockM, Threads>(delta_s + buf * BlockM, delta + stat, p.seq - i0,
                                    delta + stat, tid);
}

// One step of a double-buffered cp.async pipeline over `count` items: with a next item, queue
// its loads into the other buffer (load(next, buffer); the barrier that ended the previous item
// released that buffer) and wait for all but them; on the last item, wait for everything. The
// caller synchronises the block before reading buffer i & 1.
template <class Load>
__device__ __forceinline__ void load_next_and_wait(int i, int count, Load load) {
    if (i + 1 < count) {
        load(i + 1, (i + 1) & 1);
        cuda::mma::cp_async_commit();
        cuda::mma::cp_async_wait<1>();
    } else {
        cuda::mma::cp_async_wait<0>();
    }
}

// dK = scale·Σ dSᵀ·Q and dV of this lane's two keys (key_lo and key_lo + 8) of kv head kvh,
// Cols columns from col0: columns col0 + 8dt + 2t and col0 + 8dt + 2t + 1 of each C fragment
// dt; keys past the sequence are padding and not stored. dk(dt, c), dv(dt, c): element c of the
// accumulators' C fragment dt.
template <int D, int Cols = D, class DkAt, class DvAt>
__device__ __forceinline__ void store_key_rows(DkAt dk, DvAt dv, int b, int kvh, int key_lo,
                                               bf16* d_qkv, const Problem& p, int t,
                                               int col0 = 0) {
    bf16* rows = d_qkv + static_cast<int64_t>(b) * p.seq * p.qkv_stride + kvh * D + col0;
    bf16* dk_g = rows + p.k_offset;
    bf16* dv_g = rows + p.v_offset;
#pragma unroll
    for (int dt = 0; dt < Cols / 8; ++dt) {
        const int col = dt * 8 + 2 * t;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int key = key_lo + 8 * r;
            if (key >= p.seq) continue;
            const int64_t at = static_cast<int64_t>(key) * p.qkv_stride + col;
            *reinterpret_cast<uint32_t*>(dk_g + at) =
                cuda::mma::pack_bf16(dk(dt, 2 * r) * p.scale, dk(dt, 2 * r + 1) * p.scale);
            *reinterpret_cast<uint32_t*>(dv_g + at) =
                cuda::mma::pack_bf16(dv(dt, 2 * r), dv(dt, 2 * r + 1));
        }
    }
}

// Key/value tile j of a QueryTile into buffer `buf` of the double-buffered k_s and v_s, each
// 2 × (BlockN, padded<D>). The caller commits the group.
template <int D, int BlockN, int Threads>
__device__ __forceinline__ void load_kv_tile(bf16* k_s, bf16* v_s, const QueryTile& t,
                                             const Problem& p, int j, int buf, int tid) {
    const int64_t offset = static_cast<int64_t>(j) * BlockN * p.qkv_stride;
    const int valid = p.seq - j * BlockN;
    load_tile<BlockN, D, Threads>(k_s + buf * BlockN * padded<D>, t.k + offset, p.qkv_stride,
                                  valid, t.k, tid);
    load_tile<BlockN, D, Threads>(v_s + buf * BlockN * padded<D>, t.v + offset, p.qkv_stride,
                                  valid, t.v, tid);
}

}  // namespace slm::attention::cuda_flash
