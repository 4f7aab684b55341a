#pragma once
// Hopper's bulk tensor copies (TMA, sm_90a) and the shared-memory barriers that count their bytes.
//
// A tensor map (CUtensorMap, 128 bytes, encoded on the host and passed to the kernel as a
// __grid_constant__ parameter) describes a global tensor of up to five dimensions and a box; one
// thread asks the copy engine for a box at given coordinates and the engine writes it to shared
// memory, zero-filling what lies outside the tensor, and with CU_TENSOR_MAP_SWIZZLE_128B in
// exactly the layout cuda/wgmma.cuh's descriptors read (rows of 128 bytes, chunk c of row r at
// c ^ (r % 8)), so the consumers issue no load instructions and hold no load addresses.
//
// An mbarrier (8 bytes of shared memory) completes a phase when its expected arrivals have
// arrived and the transaction bytes announced with arrive_expect_tx have landed; waiters poll
// the phase's parity. Pipelines here use a ring of stages, each with a "full" barrier (the
// producer's one arrival plus the copy's bytes) and an "empty" one (one arrival per consumer
// warp once it no longer reads the stage).
//
// The host side encodes maps through the driver's cuTensorMapEncodeTiled, reached through the
// runtime (cudaGetDriverEntryPointByVersion), so nothing links against libcuda.
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/mma.cuh"
#include "slm/cuda/wgmma.cuh"

namespace slm::cuda::tma {

inline constexpr bool available = wgmma::available;

// --- device side -------------------------------------------------------------------------------

// Makes barrier initialisation visible to the copy engine (before the block barrier that
// publishes it to the other threads).
__device__ __forceinline__ void fence_barrier_init() {
    if constexpr (available) asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

__device__ __forceinline__ void barrier_init(uint64_t* bar, int arrivals) {
    if constexpr (available)
        asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(mma::shared_address(bar)),
                     "r"(arrivals)
                     : "memory");
}

// One arrival, announcing `bytes` more to land before the phase completes.
__device__ __forceinline__ void arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
    if constexpr (available)
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(
                         mma::shared_address(bar)),
                     "r"(bytes)
                     : "memory");
}

// `bytes` more to land before the phase completes, without an arrival (a thread that arrives
// later, after stores of its own that the waiters must see).
__device__ __forceinline__ void expect_tx(uint64_t* bar, uint32_t bytes) {
    if constexpr (available)
        asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(
                         mma::shared_address(bar)),
                     "r"(bytes)
                     : "memory");
}

// One arrival (release: this thread's earlier shared-memory stores are visible to the threads
// that see the phase complete).
__device__ __forceinline__ void arrive(uint64_t* bar) {
    if constexpr (available)
        asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(mma::shared_address(bar))
                     : "memory");
}

// Waits until the phase of parity `parity` has completed (acquire: the copies' bytes are visible).
__device__ __forceinline__ void wait(uint64_t* bar, uint32_t parity) {
    if constexpr (available)
        asm volatile(
            "{\n.reg .pred done;\n"
            "wait_%=:\n"
            "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
            "@!done bra wait_%=;\n}\n" ::"r"(mma::shared_address(bar)),
            "r"(parity)
            : "memory");
}

// Box at coordinates (c0 innermost, c1, c2) of the 3-D map → shared memory at dst (1024-byte
// aligned with 128-byte swizzle), its bytes counted on `bar`.
__device__ __forceinline__ void load_3d(void* dst, const CUtensorMap* map, uint64_t* bar, int c0,
                                        int c1, int c2) {
    if constexpr (available)
        asm volatile(
            "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
            " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(mma::shared_address(dst)),
            "l"(reinterpret_cast<uint64_t>(map)), "r"(mma::shared_address(bar)), "r"(c0), "r"(c1),
            "r"(c2)
            : "memory");
}

// Fetches the map's 128 bytes ahead of the first copy that uses it.
__device__ __forceinline__ void prefetch(const CUtensorMap* map) {
    if constexpr (available)
        asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map))
                     : "memory");
}

// Adds `bytes` (a multiple of 16) of fp32 from shared memory at src to global memory at dst (both
// 16-byte aligned) on the copy engine, element by element as atomic adds are; the issuing
// thread's bulk group tracks it (commit_bulk_group, then wait_bulk_read before src is written
// again and wait_bulk before the kernel ends). Generic-proxy stores to src must be fenced with
// wgmma::fence_proxy_async first.
__device__ __forceinline__ void reduce_add(float* dst, const float* src, uint32_t bytes) {
    if constexpr (available)
        asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n"
                     ::"l"(reinterpret_cast<uint64_t>(dst)), "r"(mma::shared_address(src)),
                     "r"(bytes)
                     : "memory");
}
__device__ __forceinline__ void commit_bulk_group() {
    if constexpr (available) asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
// Until at most Pending of this thread's bulk groups still read their shared memory.
template <int Pending>
__device__ __forceinline__ void wait_bulk_read() {
    if constexpr (available)
        asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(Pending) : "memory");
}
// Until at most Pending of this thread's bulk groups are still in flight (writes included).
template <int Pending>
__device__ __forceinline__ void wait_bulk() {
    if constexpr (available)
        asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(Pending) : "memory");
}

// Moves registers between the warpgroups of a CTA: a producer warpgroup gives up what it does
// not need, consumers take it (every warp of the warpgroup executes it; counts multiple of 8).
template <int Registers>
__device__ __forceinline__ void shrink_registers() {
    if constexpr (available)
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Registers));
}
template <int Registers>
__device__ __forceinline__ void grow_registers() {
    if constexpr (available)
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Registers));
}

// --- host side ---------------------------------------------------------------------------------

// Every map here cuts its tensor in boxes of 64 columns (128 bytes: the swizzle's row) × box_rows
// rows × 1; kernels place their copies by the same two numbers.
inline constexpr int box_cols = 64, box_rows = 64;

// A bf16 tensor of `batch` entries of `rows` rows, rows `row_stride` elements apart and entries
// rows · row_stride apart, seen as 3-D (columns, rows, batch) in 128-byte-swizzled boxes. Rows
// past `rows` and columns past `cols` read as zeros.
struct Bf16Boxes {
    const void* base;
    int64_t cols, rows, batch;
    int64_t row_stride;  // in elements
};

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                 const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                 const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

inline EncodeTiled encode_tiled() {
    static EncodeTiled fn = [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult found{};
        SLM_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                        cudaEnableDefault, &found));
        require(found == cudaDriverEntryPointSuccess && f != nullptr,
                "the CUDA driver has no cuTensorMapEncodeTiled (TMA needs a driver for CUDA 12 "
                "or later); use a mode other than the TMA kernels");
        return reinterpret_cast<EncodeTiled>(f);
    }();
    return fn;
}

inline CUtensorMap encode(const Bf16Boxes& m) {
    require(reinterpret_cast<uintptr_t>(m.base) % 16 == 0 && m.row_stride % 8 == 0,
            "tma::encode: the base address and the row stride must be multiples of 16 bytes");
    CUtensorMap map{};
    const cuuint64_t dims[3] = {static_cast<cuuint64_t>(m.cols), static_cast<cuuint64_t>(m.rows),
                                static_cast<cuuint64_t>(m.batch)};
    const cuuint64_t strides[2] = {static_cast<cuuint64_t>(m.row_stride) * 2,
                                   static_cast<cuuint64_t>(m.rows * m.row_stride) * 2};
    const cuuint32_t box[3] = {box_cols, box_rows, 1};
    const cuuint32_t unit[3] = {1, 1, 1};
    const CUresult r = encode_tiled()(
        &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(m.base), dims, strides, box,
        unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    require(r == CUDA_SUCCESS, "tma::encode: cuTensorMapEncodeTiled failed (CUresult " +
                                   std::to_string(static_cast<int>(r)) + ") for a " +
                                   std::to_string(m.cols) + " × " + std::to_string(m.rows) +
                                   " × " + std::to_string(m.batch) + " bf16 tensor");
    return map;
}

}  // namespace slm::cuda::tma
