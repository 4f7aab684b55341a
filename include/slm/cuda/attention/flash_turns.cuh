#pragma once
// Turns for the deterministic backward on warpgroup MMAs (FlashBackward::deterministic on a
// Hopper). The warpgroup backward adds each key tile's share of dQ into an fp32 accumulator with
// atomics; the sum's last bits then depend on the order in which the CTAs of the key tiles reach
// a query tile. Here that order is fixed: one int counter per (sequence, query head, query tile
// of BlockM rows), starting at 0, and the key tile whose turn is k adds into the tile only once
// the counter reads k, then sets it to k + 1.
//
// Why from the diagonal down: a key tile's CTA starts at its diagonal and walks down the
// queries, so at any query tile the CTAs arrive highest key tile first; the ascending order would
// make every key tile wait at its first step for tile 0 to walk down to it. Descending turns need
// the grid launched latest key tile first (key_tile_at(..., late_first = true)): a CTA then waits
// only on one launched before it, resident or done, and the chain of waits ends at a CTA whose
// turn has come (no deadlock; the host test plays the schedule on a few SM counts).
//
// Thread 0 waits (acquire) just before the barrier that precedes the dQ product, and hands the
// turn on (fence, release) after the barrier that follows the atomics: no barrier is added.
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"

namespace slm::attention::cuda_flash {

// The turn of the key tile starting at key j0 at the query tile starting at row i0 (BlockN a
// multiple of BlockM, i0 a multiple of BlockM, j0 of BlockN, j0 <= i0): 0 for the key tile that
// holds the tile's diagonal, one more for each key tile below it.
__host__ __device__ constexpr int key_tile_turn(int i0, int j0, int block_n) {
    return i0 / block_n - j0 / block_n;
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
