#pragma once
// Turns for the deterministic backward on warpgroup MMAs (FlashBackward::deterministic on a
// Hopper). The warpgroup backward adds each key tile's share of dQ into an fp32 accumulator with
// atomics; the sum's last bits then depend on the order in which the CTAs of the key tiles reach
// a query tile. Here that order is fixed: one int counter per (sequence, query head, query tile
// of BlockM rows), starting at 0, and key tile k adds into the tile only once the counter reads
// k, then sets it to k + 1: from key tile 0 up.
//
// Key tile k waits only on key tile k − 1 of its kv head, launched before it (the grid puts the
// earliest key tiles first, as the default's does): resident or done, so the chain of waits ends
// at key tile 0, which never waits (no deadlock; the host test plays the schedule on a few SM
// counts). The CTAs walk their query tiles from the sequence's last one up to their diagonal
// (KeyTile's descending walk), so the key tiles of one kv head reach each query tile at the same
// step and key tile k trails k − 1 by a fraction of a step; walking down from the diagonal, key
// tile k would reach every query tile BlockN / BlockM steps before k − 1 and wait that long.
// (A first version walked down from the diagonal with turns from the diagonal's key tile down and
// the grid launched latest key tile first: 0.77–0.92 of the default's forward+backward on an H100,
// nearly all of it the launch order; without the waits it was only 1–3% faster.)
//
// Thread 0 waits (acquire) just before the barrier that precedes the dQ product, and hands the
// turn on (fence, release) after the barrier that follows the atomics: no barrier is added.
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/attention/flash_common.cuh"

namespace slm::attention::cuda_flash {

// The turn of the key tile starting at key j0 at every query tile it reaches: its index.
__host__ __device__ constexpr int key_tile_turn(int j0, int block_n) { return j0 / block_n; }

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
