#pragma once
// Warp-level tensor-core building blocks (sm_80+ instructions, used on Hopper too): bf16
// mma.sync m16n8k16 with fp32 accumulators, ldmatrix fragment loads from shared memory and
// cp.async copies from global to shared memory. Fragment layouts (PTX ISA, "Matrix Fragments for
// mma.m16n8k16"), with g = lane / 4 and t = lane % 4:
//   A (16 × 16, bf16)  reg0: (g, 2t..2t+1) reg1: (g+8, 2t..) reg2: (g, 2t+8..) reg3: (g+8, 2t+8..)
//   B (16 × 8, bf16)   reg0: (2t..2t+1, g)   reg1: (2t+8.., g)
//   C (16 × 8, fp32)   c0, c1: (g, 2t..2t+1) c2, c3: (g+8, 2t..2t+1)
// Within a register the element with the lower column (A) or row (B) index is the low half.
//
// The four loaders below cover every operand of the attention kernels. Shared tiles are
// row-major bf16 with a row stride of `ld` elements (a multiple of 8, so rows start 16-byte
// aligned). The names say how the tile is stored relative to the operand:
//   load_a          A[m][k] = tile[m0 + m][k0 + k]
//   load_a_trans    A[m][k] = tile[k0 + k][m0 + m]
//   load_b_nk       B[k][n] = tile[n0 + n][k0 + k]   two n-tiles: n0..n0+7 and n0+8..n0+15
//   load_b_kn       B[k][n] = tile[k0 + k][n0 + n]   two n-tiles: n0..n0+7 and n0+8..n0+15
// ldmatrix .x4: lanes 8i..8i+7 give the row addresses of 8×8 matrix i, and register i of every
// lane receives matrix i: (row g, cols 2t..2t+1), or with .trans (rows 2t..2t+1, col g).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace slm::cuda::mma {

// Shared-memory address of a generic pointer into shared memory.
__device__ __forceinline__ uint32_t shared_address(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Two floats as one register of two bf16 (round to nearest even); lo in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

// d += a · b  (16×16 bf16 · 16×8 bf16 → 16×8 fp32)
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
}

// A (16 × 16) from tile[m0 .. m0+15][k0 .. k0+15]. Matrices: 0 = rows 0-7 / cols 0-7,
// 1 = rows 8-15 / cols 0-7, 2 = rows 0-7 / cols 8-15, 3 = rows 8-15 / cols 8-15.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const __nv_bfloat16* tile, int ld,
                                       int m0, int k0, int lane) {
    const int row = m0 + lane % 16, col = k0 + (lane / 16) * 8;
    ldmatrix_x4(a, shared_address(tile + row * ld + col));
}

// A (16 × 16) with A[m][k] = tile[k0 + k][m0 + m]. Matrix i covers stored rows k0 + (i/2)·8 and
// stored cols m0 + (i%2)·8; .trans hands lane (g, t) the stored elements (2t..2t+1, g).
__device__ __forceinline__ void load_a_trans(uint32_t (&a)[4], const __nv_bfloat16* tile, int ld,
                                             int m0, int k0, int lane) {
    const int i = lane / 8;
    const int row = k0 + (i / 2) * 8 + lane % 8, col = m0 + (i % 2) * 8;
    ldmatrix_x4_trans(a, shared_address(tile + row * ld + col));
}

// B fragments of two n-tiles (b[0], b[1]: n0..n0+7; b[2], b[3]: n0+8..n0+15) for the k-step
// k0..k0+15, with B[k][n] = tile[n0 + n][k0 + k] (the tile holds Bᵀ row-major, e.g. K for Q·Kᵀ).
// Matrix i covers stored rows n0 + (i/2)·8 and stored cols k0 + (i%2)·8.
__device__ __forceinline__ void load_b_nk(uint32_t (&b)[4], const __nv_bfloat16* tile, int ld,
                                          int n0, int k0, int lane) {
    const int i = lane / 8;
    const int row = n0 + (i / 2) * 8 + lane % 8, col = k0 + (i % 2) * 8;
    ldmatrix_x4(b, shared_address(tile + row * ld + col));
}

// B fragments of two n-tiles as load_b_nk, with B[k][n] = tile[k0 + k][n0 + n] (the tile holds B
// row-major, e.g. V for P·V). Matrix i covers stored rows k0 + (i%2)·8 and stored cols
// n0 + (i/2)·8; .trans hands lane (g, t) the stored elements (2t..2t+1, g).
__device__ __forceinline__ void load_b_kn(uint32_t (&b)[4], const __nv_bfloat16* tile, int ld,
                                          int n0, int k0, int lane) {
    const int i = lane / 8;
    const int row = k0 + (i % 2) * 8 + lane % 8, col = n0 + (i / 2) * 8;
    ldmatrix_x4_trans(b, shared_address(tile + row * ld + col));
}

// The A fragment of k-step kk (columns 16·kk .. 16·kk+15) of a 16 × N accumulator held as N/8
// C fragments, rounded to bf16: how P = softmax(S) feeds P·V without leaving registers.
template <int NTiles>
__device__ __forceinline__ void accumulator_to_a(uint32_t (&a)[4], const float (&c)[NTiles][4],
                                                 int kk) {
    a[0] = pack_bf16(c[2 * kk][0], c[2 * kk][1]);
    a[1] = pack_bf16(c[2 * kk][2], c[2 * kk][3]);
    a[2] = pack_bf16(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = pack_bf16(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

// ---- cp.async: global → shared without passing through registers ---------------------------

// 16 bytes; when `valid` is false nothing is read and the 16 bytes are zero-filled (`src` must
// still be a valid address).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)),
                 "l"(src), "r"(src_bytes)
                 : "memory");
}

// 4 bytes, zero-filled when `valid` is false.
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, bool valid) {
    const int src_bytes = valid ? 4 : 0;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(shared_address(dst)),
                 "l"(src), "r"(src_bytes)
                 : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace slm::cuda::mma
