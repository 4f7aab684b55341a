#pragma once
// Hopper warpgroup tensor-core instructions (wgmma.mma_async, sm_90a only): four warps (a
// warpgroup, 128 threads) issue one 64 × N × 16 bf16 MMA with fp32 accumulators, B (and A, or A
// from registers) read by the tensor cores straight from shared memory through a 64-bit matrix
// descriptor: no ldmatrix, so the shared-memory bandwidth that bounds mma.sync kernels (mma.cuh)
// is spent once per warpgroup instead of once per warp.
//
// Register fragments (PTX ISA, "Register Fragments and Shared Memory Matrix Layouts"): warp w of
// the warpgroup owns rows 16w..16w+15 of the 64 rows, and within them the layouts are those of
// mma.m16n8k16: the accumulator of N columns is N/8 C fragments, d[4j..4j+3] for columns
// 8j..8j+7 (mma.cuh: d[4j], d[4j+1] at (g, 8j+2t..); d[4j+2], d[4j+3] at (g+8, 8j+2t..)), and an
// A operand from registers is one A fragment per warp.
//
// Shared tiles are 128-byte swizzled: a tile of R rows × C bf16 (C a multiple of 64) is stored as
// C/64 column blocks of R rows × 128 bytes; the 16-byte chunk c of row r sits at chunk c ^ (r % 8)
// of its row; every block starts on a 1024-byte boundary (the swizzle pattern's period).
// One such tile serves both majors:
//   K-major operand (rows = M or N, the 64 columns of a block = K): SBO = 1024 (8 rows), the
//     k-step kk starts 32·(kk % 4) bytes into block kk / 4.
//   MN-major operand (rows = K, columns = M or N): LBO = R·128 (from one 64-column block to the
//     next), SBO = 1024 (8 rows of K); the k-step kk starts 16·kk rows down.
// The tensor cores read shared memory through the async proxy: data written there by ordinary
// stores or cp.async must be published with fence_proxy_async() (then a barrier) first.
#include <cuda_runtime.h>

#include <cstdint>

#include "slm/cuda/mma.cuh"

namespace slm::cuda::wgmma {

// Byte offset of 16-byte chunk `chunk` (0 .. C/8−1) of row r in a swizzled tile of `rows` rows.
__device__ __forceinline__ uint32_t swizzled_offset(int rows, int r, int chunk) {
    return static_cast<uint32_t>((chunk / 8) * rows * 128 + r * 128 + (((chunk % 8) ^ (r % 8)) * 16));
}

// `p` (dynamic shared memory) rounded up to the next 1024-byte boundary, where swizzled tiles
// must start; a kernel asks for 1024 bytes more than its tiles need.
__device__ __forceinline__ unsigned char* swizzle_aligned(unsigned char* p) {
    return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(p) + 1023) &
                                            ~uintptr_t{1023});
}

// The descriptor of a 128-byte-swizzled operand starting at `start` (shared memory).
__device__ __forceinline__ uint64_t descriptor(const void* start, uint32_t leading_bytes,
                                               uint32_t stride_bytes) {
    const uint32_t address = mma::shared_address(start);
    return static_cast<uint64_t>((address & 0x3FFFF) >> 4) |
           static_cast<uint64_t>((leading_bytes & 0x3FFFF) >> 4) << 16 |
           static_cast<uint64_t>((stride_bytes & 0x3FFFF) >> 4) << 32 |
           static_cast<uint64_t>(1) << 62;  // 128-byte swizzle
}

// The descriptor of the same operand `bytes` further on (a multiple of 16, within the same shared
// tile): the start address is the low field, and shared addresses stay far below its 14 bits.
// Advancing one descriptor by constants keeps one 64-bit register per tile live across the
// k-steps, not one per k-step.
__device__ __forceinline__ uint64_t advance(uint64_t desc, uint32_t bytes) {
    return desc + (bytes >> 4);
}

// K-major operand of 64 rows from row `row` of a swizzled tile of `rows` rows; k-step kk is
// advance(that, k_major_step(rows, kk)).
__device__ __forceinline__ uint64_t k_major(const unsigned char* tile, int row) {
    return descriptor(tile + row * 128, 16, 1024);
}
__device__ __forceinline__ constexpr uint32_t k_major_step(int rows, int kk) {
    return static_cast<uint32_t>((kk / 4) * rows * 128 + (kk % 4) * 32);
}

// MN-major operand from 64-column block `block` of a swizzled tile of `rows` rows (rows = K);
// k-step kk (rows 16kk .. 16kk+15) is advance(that, mn_major_step(kk)).
__device__ __forceinline__ uint64_t mn_major(const unsigned char* tile, int rows, int block) {
    return descriptor(tile + block * rows * 128, static_cast<uint32_t>(rows * 128), 1024);
}
__device__ __forceinline__ constexpr uint32_t mn_major_step(int kk) {
    return static_cast<uint32_t>(kk * 16 * 128);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
inline constexpr bool available = true;
#else
inline constexpr bool available = false;
#endif

// Orders this thread's earlier register writes before the next wgmma reads its accumulators or
// A fragments.
__device__ __forceinline__ void fence() {
    if constexpr (available) asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
    if constexpr (available) asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most `Pending` committed groups are still running.
template <int Pending>
__device__ __forceinline__ void wait() {
    if constexpr (available)
        asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}
// Publishes this thread's generic-proxy shared-memory writes to the tensor cores' async proxy.
__device__ __forceinline__ void fence_proxy_async() {
    if constexpr (available) asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving reads or writes of accumulators across a wait (the registers
// change behind its back while the MMA runs).
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Keeps A fragments in their registers up to here. The compiler takes a wgmma's register operands
// as read when it issues, so it may give their registers to other values before the wait that
// ends the tensor cores' reads; ptxas then serializes the MMAs (C7513). Called right after that
// wait, this makes the fragments live until then.
template <int N>
__device__ __forceinline__ void hold_fragments(const uint32_t (&a)[N][4]) {
#pragma unroll
    for (int i = 0; i < N; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" ::"r"(a[i][e]) : "memory");
}

// Each mma below: d = A·B (accumulate = 0) or d += A·B; TransA/TransB = 0 for a K-major operand,
// 1 for an MN-major one.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// m64n64k16, A and B from shared memory.
template <int TransA, int TransB>
__device__ __forceinline__ void mma_ss(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\n"
        "setp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
        "}, %32, %33, p, 1, 1, %35, %36;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(a), "l"(b), "r"(accumulate), "n"(TransA), "n"(TransB));
}

// m64n128k16, A and B from shared memory.
template <int TransA, int TransB>
__device__ __forceinline__ void mma_ss(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\n"
        "setp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p, 1, 1, %67, %68;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(a), "l"(b), "r"(accumulate), "n"(TransA), "n"(TransB));
}

// m64n64k16, A from registers (the m16n8k16 A fragment of this warp's 16 rows), B
// from shared memory.
template <int TransB>
__device__ __forceinline__ void mma_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b,
                                       int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\n"
        "setp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
        "}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TransB));
}

// m64n128k16, A from registers (the m16n8k16 A fragment of this warp's 16 rows), B
// from shared memory.
template <int TransB>
__device__ __forceinline__ void mma_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b,
                                       int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\n"
        "setp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TransB));
}

// m64n256k16, A from registers (the m16n8k16 A fragment of this warp's 16 rows), B
// from shared memory (the forward's P·V at head_dim 256).
template <int TransB>
__device__ __forceinline__ void mma_rs(float (&d)[128], const uint32_t (&a)[4], uint64_t b,
                                       int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\n"
        "setp.ne.b32 p, %133, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "}, {%128, %129, %130, %131}, %132, p, 1, 1, %134;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TransB));
}
#else
// Compiled for a GPU without wgmma: never called (the host picks another kernel there).
template <int TransA, int TransB, int N>
__device__ __forceinline__ void mma_ss(float (&)[N], uint64_t, uint64_t, int) {
    __trap();
}
template <int TransB, int N>
__device__ __forceinline__ void mma_rs(float (&)[N], const uint32_t (&)[4], uint64_t, int) {
    __trap();
}
#endif

}  // namespace slm::cuda::wgmma
