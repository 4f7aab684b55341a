#pragma once
// Turns for the deterministic backward on warpgroup MMAs (FlashBackward::deterministic on a
// Hopper). The warpgroup backward adds each key tile's share of dQ into an fp32 accumulator with
// atomics; the sum's last bits then depend on the order in which the CTAs of the key tiles reach
// a query tile. Here that order is fixed: one int counter per (sequence, query head, query tile
// of BlockM rows), starting at 0; the key tile whose turn is k adds into the tile only once the
// counter reads k, then sets it to k + 1. A CTA waits only on CTAs launched before it, resident
// or done, so every chain of waits ends at one whose turn has come: no deadlock (CTAs start in
// launch order; the host test plays both schemes on a few SM counts). Two schemes:
//
//   Turns::diagonal_down (what FlashBackward::deterministic runs; tested on an H100): each key
//     tile walks its query tiles from its diagonal down, as the default does, and the turns go
//     from the diagonal's key tile down, which needs the grid launched latest key tile first.
//     0.77–0.92 of the default's forward+backward (0.65–0.70 at head_dim 256), nearly all of it
//     the launch order: light tiles first leaves the heavy ones for last (with the waits
//     compiled out, SLM_FLASH_TURNS_NO_WAIT, only 1–3% faster).
//   Turns::tile_0_up (FlashBackward::deterministic_tile_0_up; a candidate, not yet run on a
//     GPU): the default's heavy-first grid, turns from key tile 0 up, and each key tile walks
//     its query tiles from the sequence's last one up to its diagonal (KeyTile's descending
//     walk), so the key tiles of a kv head reach each query tile at the same step and key tile
//     k trails k − 1 once by the part of a step between the wait and the hand-on. (Walking down
//     from the diagonal, key tile k would reach every query tile BlockN / BlockM steps before
//     k − 1 and wait that long at each.)
//
// Thread 0 waits (acquire) just before the barrier that precedes the dQ product, and hands the
// turn on (fence, release) after the barrier that follows the atomics: no barrier is added.
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"

namespace slm::attention::cuda_flash {

enum class Turns { none, diagonal_down, tile_0_up };

// Whether scheme T launches the latest key tiles first, and whether its key tiles walk their
// query tiles from the last one up (KeyTile's Descending).
template <Turns T>
inline constexpr bool launches_late_first = T == Turns::diagonal_down;
template <Turns T>
inline constexpr bool walks_up = T == Turns::tile_0_up;

// The turn of the key tile starting at key j0 at the query tile starting at row i0 (BlockN a
// multiple of BlockM, i0 of BlockM, j0 of BlockN, j0 <= i0): diagonal_down, 0 for the key tile
// that holds the tile's diagonal and one more for each below it; tile_0_up, the key tile's index.
template <Turns T>
__host__ __device__ constexpr int key_tile_turn(int i0, int j0, int block_n) {
    return T == Turns::diagonal_down ? i0 / block_n - j0 / block_n : j0 / block_n;
}

// Counters per (sequence, query head, query tile of block_m rows).
inline int64_t turn_count(const Problem& p, int block_m) {
    return static_cast<int64_t>(p.batch) * p.heads * ((p.seq + block_m - 1) / block_m);
}
__host__ __device__ inline int64_t turn_of(int b, int h, int i0, int block_m, const Problem& p) {
    const int q_tiles = (p.seq + block_m - 1) / block_m;
    return (static_cast<int64_t>(b) * p.heads + h) * q_tiles + i0 / block_m;
}

// Spins until *counter == turn; one thread per CTA, then a barrier. The loads acquire: what the
// previous holder added before it passed the turn is visible after it.
__device__ __forceinline__ void await_turn(const int* counter, int turn) {
#ifdef SLM_FLASH_TURNS_NO_WAIT  // experiment: the Ordered grid without the waits (not deterministic)
    return;
#endif
    int seen;
    while (true) {
        asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(seen) : "l"(counter) : "memory");
        if (seen == turn) return;
        __nanosleep(64);
    }
}

// Sets *counter to next; one thread per CTA, after a barrier that follows every thread's adds.
// The fence is cumulative over the adds the barrier ordered before it.
__device__ __forceinline__ void pass_turn(int* counter, int next) {
    asm volatile("fence.acq_rel.gpu;\n\tst.relaxed.gpu.global.s32 [%0], %1;" ::"l"(counter),
                 "r"(next)
                 : "memory");
}

}  // namespace slm::attention::cuda_flash
