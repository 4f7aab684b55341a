// Every attention kernel with warpgroup MMAs, instantiated through the host functions that launch
// them (every backward mode, both forward kernels, every head_dim), for
// tools/check_wgmma_schedule.sh: compiled with ptxas's report, never linked or run.
#include <utility>

#include "slm/cuda/attention/flash.cuh"

namespace slm::attention::cuda_flash {
namespace {

template <int D, FlashBackward... Modes>
void take_head_dim() {
    (void)&forward<D, FlashBackward::atomic, FlashForward::warpgroup>;
    (void)&forward<D, FlashBackward::atomic, FlashForward::tma>;
    ((void)&backward<D, Modes>, ...);
}

template <int... Ds>
void take_all(std::integer_sequence<int, Ds...>) {
    (take_head_dim<Ds, FlashBackward::atomic, FlashBackward::atomic_tma,
                   FlashBackward::atomic_tma_bulk_dq, FlashBackward::atomic_tma_kv_registers,
                   FlashBackward::atomic_tma_overlapped_dq, FlashBackward::deterministic,
                   FlashBackward::deterministic_tma, FlashBackward::deterministic_tile_0_up>(),
     ...);
}

}  // namespace

void every_warpgroup_kernel() { take_all(HeadDims{}); }

}  // namespace slm::attention::cuda_flash
