#pragma once
// The modes of attention::Flash on the GPU, the head_dims it has kernels for, and which kernels
// each head_dim has: what flash.cuh dispatches on and the tests and benchmarks name.
//
// Backward has ten modes, chosen at compile time:
//   FlashBackward::atomic         (the default, what AttentionKernel<Flash, cuda::Backend> uses)
//       dQ is accumulated with fp32 atomics by the per-key-tile kernel; fastest, but the order
//       of the additions, hence the last bits of dQ, changes from run to run. On a GPU with
//       warpgroup MMAs (sm_90a code on a Hopper) the warpgroup kernel, elsewhere the mma.sync one.
//   FlashBackward::deterministic  the same bits on every run; what
//       AttentionKernel<FlashDeterministic, cuda::Backend> uses. On a Hopper the warpgroup
//       kernel with its atomics in a fixed order (the CTAs take turns per query tile from the
//       diagonal's key tile down, flash_turns.cuh); elsewhere as deterministic_mma_sync.
//   FlashBackward::deterministic_tile_0_up  the same with turns from key tile 0 up and the
//       default's grid (flash_turns.cuh): a candidate to replace deterministic, not yet run on a
//       GPU (the tests and the benchmark carry it; off a Hopper, as deterministic_mma_sync).
//   FlashBackward::deterministic_mma_sync  dK and dV by the mma.sync kernel, dQ by a second
//       kernel per query tile that loops over the key tiles in a fixed order (recomputing P).
//   FlashBackward::atomic_mma_sync  atomic with the mma.sync kernels everywhere.
//   FlashBackward::atomic_tma  atomic with the TMA backward (flash_backward_tma.cuh: a producer
//       warp loads, two consumer warpgroups compute) at head_dim up to 128 on a Hopper, as
//       atomic elsewhere. A candidate, measured beside atomic.
//   FlashBackward::atomic_tma_kv_registers  atomic_tma with each consumer warp's rows of K and V
//       held as MMA fragments in registers at tiles 64 wide (head_dim up to 64), so that Sᵀ and
//       dPᵀ read only Q and dO from shared memory (as atomic_tma elsewhere). A candidate.
//   FlashBackward::atomic_tma_bulk_dq  atomic_tma_kv_registers with each dQ block staged in
//       shared memory and added by the copy engine (one bulk reduction per row) instead of the
//       consumers' atomics. A candidate: over atomic_tma_kv_registers it measures the bulk
//       reductions alone.
//   FlashBackward::atomic_tma_overlapped_dq  atomic_tma with each step's dQ product left running
//       while the next step issues its first Sᵀ and dPᵀ, its atomics issued while those run
//       (instead of waiting for it where it is issued), at tiles 64 wide (head_dim up to 64;
//       at 128 the held block spills 2 KB: as atomic_tma there). A candidate, measured beside
//       atomic_tma.
//   FlashBackward::deterministic_tma  deterministic with the TMA backward taking the same turns
//       (head_dim up to 128 on a Hopper; as deterministic elsewhere). A candidate.
// The two *_mma_sync modes run the mma.sync kernels forward too (what the tests and the benchmark
// compare the warpgroup kernels with); the others run the warpgroup forward where they can.
//
// Forward has two kernels on a Hopper, chosen at compile time:
//   FlashForward::best  (the default) the faster of the two below as measured per tile width
//       (tools/device/candidates_check.sh, docs/performance_notes_december.md): the TMA kernel
//       at head_dim 80, 96 and 128 (tiles 128 wide), the warpgroup one elsewhere.
//   FlashForward::warpgroup  flash_forward_wgmma.cuh: every thread loads with cp.async and
//       computes, two block-wide barriers per key tile.
//   FlashForward::tma  flash_forward_tma.cuh wherever it exists (head_dim up to 128): a
//       producer warp loads with the bulk copy engine, two consumer warpgroups compute, no
//       block-wide barrier in the loop.
// Off a Hopper, and in the *_mma_sync modes, all three run the mma.sync forward.
#include <cstdint>
#include <string>
#include <utility>

#include "slm/core/error.hpp"
#include "slm/cuda/attention/flash_turns.cuh"

namespace slm::attention {

enum class FlashForward { best, warpgroup, tma };

enum class FlashBackward {
    atomic,
    atomic_tma,
    atomic_tma_bulk_dq,
    atomic_tma_kv_registers,
    atomic_tma_overlapped_dq,
    deterministic_tma,
    atomic_mma_sync,
    deterministic,
    deterministic_mma_sync,
    deterministic_tile_0_up
};

// Whether a mode runs the mma.sync kernels even where warpgroup MMAs are available.
constexpr bool mma_sync_only(FlashBackward m) {
    return m == FlashBackward::atomic_mma_sync || m == FlashBackward::deterministic_mma_sync;
}
// Whether a mode gives the same bits on every run.
constexpr bool is_deterministic(FlashBackward m) {
    return m == FlashBackward::deterministic || m == FlashBackward::deterministic_mma_sync ||
           m == FlashBackward::deterministic_tile_0_up || m == FlashBackward::deterministic_tma;
}
// The turns a mode's warpgroup or TMA backward takes (flash_turns.cuh): none in the atomic modes,
// and in deterministic_mma_sync, which runs neither kernel.
constexpr cuda_flash::Turns turns_scheme(FlashBackward m) {
    if (m == FlashBackward::deterministic_tile_0_up) return cuda_flash::Turns::tile_0_up;
    if (m == FlashBackward::deterministic || m == FlashBackward::deterministic_tma)
        return cuda_flash::Turns::diagonal_down;
    return cuda_flash::Turns::none;
}

namespace cuda_flash {

// The head_dims with kernels: the one list the check, its message and the dispatch read.
using HeadDims = std::integer_sequence<int, 32, 48, 64, 80, 96, 128, 256>;

template <int... Ds>
bool supported_in(std::integer_sequence<int, Ds...>, int64_t d) {
    return ((d == Ds) || ...);
}
inline bool supported_head_dim(int64_t d) { return supported_in(HeadDims{}, d); }

// "32, 48, ... and 128"
template <int... Ds>
std::string listed(std::integer_sequence<int, Ds...>) {
    const int dims[] = {Ds...};
    std::string text;
    for (size_t i = 0; i < sizeof...(Ds); ++i)
        text += (i == 0 ? "" : i + 1 == sizeof...(Ds) ? " and " : ", ") + std::to_string(dims[i]);
    return text;
}

// f(std::integral_constant<int, D>{}) for the supported head_dim d (checked before).
template <class F, int... Ds>
void dispatch_in(std::integer_sequence<int, Ds...>, int64_t d, F f) {
    (void)((d == Ds ? (f(std::integral_constant<int, Ds>{}), true) : false) || ...);
}
template <class F>
void with_head_dim(int64_t d, F f) {
    dispatch_in(HeadDims{}, d, f);
}

// Whether head_dim D has warpgroup kernels (flash_forward_wgmma.cuh, flash_backward_wgmma.cuh):
// every supported one, in tiles 64, 128 or 256 columns wide (warpgroup_width).
template <int D>
inline constexpr bool has_warpgroup_kernels = D % 16 == 0 && D <= 256;
// Whether head_dim D has mma.sync kernels (flash_forward.cuh, flash_backward.cuh,
// flash_backward_dq.cuh; Tiles<D>): up to 128. Their fp32 accumulators live per warp, and at 256
// dK and dV alone would take 256 registers a thread.
template <int D>
inline constexpr bool has_mma_sync_kernels = D <= 128;
// Whether head_dim D has the TMA forward (flash_forward_tma.cuh): tiles up to 128 wide.
template <int D>
inline constexpr bool has_tma_forward = has_warpgroup_kernels<D> && D <= 128;
// Whether backward mode M runs the TMA backward (flash_backward_tma.cuh) at head_dim D (on a
// Hopper): tiles up to 128 wide, as the TMA forward.
template <int D, FlashBackward M>
inline constexpr bool runs_tma_backward =
    has_tma_forward<D> &&
    (M == FlashBackward::atomic_tma || M == FlashBackward::atomic_tma_bulk_dq ||
     M == FlashBackward::atomic_tma_kv_registers || M == FlashBackward::atomic_tma_overlapped_dq ||
     M == FlashBackward::deterministic_tma);
// Whether mode M's TMA backward adds dQ with the copy engine's bulk reductions.
constexpr bool bulk_dq(FlashBackward m) { return m == FlashBackward::atomic_tma_bulk_dq; }
// Whether mode M's TMA backward at head_dim D holds K and V in registers.
template <int D>
constexpr bool kv_in_registers(FlashBackward m) {
    return (m == FlashBackward::atomic_tma_kv_registers || m == FlashBackward::atomic_tma_bulk_dq) &&
           D <= 64;  // tiles 64 wide
}
// Whether mode M's TMA backward at head_dim D leaves each dQ product running into the next step.
template <int D>
constexpr bool overlapped_dq(FlashBackward m) {
    return m == FlashBackward::atomic_tma_overlapped_dq && D <= 64;  // tiles 64 wide
}
// Whether forward choice F runs the TMA kernel at head_dim D (on a Hopper).
template <int D, FlashForward F>
inline constexpr bool runs_tma_forward =
    has_tma_forward<D> && (F == FlashForward::tma || (F == FlashForward::best && D > 64));

// Thrown where head_dim D needs the warpgroup kernels and cannot have them: a GPU other than a
// Hopper, code not compiled for sm_90a, or a *_mma_sync mode.
template <int D>
[[noreturn]] void no_kernel_for(const char* pass) {
    fail("Flash attention " + std::string(pass) + " on the GPU: head_dim " + std::to_string(D) +
         " runs only on the warpgroup kernels, which need a Hopper GPU (sm_90a code) and a mode "
         "other than *_mma_sync; use --attention naive, or head_dim 128 or less");
}

}  // namespace cuda_flash
}  // namespace slm::attention
