#pragma once
// Vectorised element access for the kernels: N consecutive elements moved as one aligned load or
// store (16 bytes for 8 bf16 or 4 float), converted to and from fp32 registers. Kernels take the
// width as a template parameter; their host wrappers pick the widest width the pointers and row
// lengths allow and keep N = 1 as the path for awkward sizes.
//
// Conventions of the kernel headers: a kernel that is not a template is `static` (a header-only
// library defines it in every translation unit that includes it; `static` keeps those copies
// apart, as a template kernel may already be defined more than once); each kernel opens with a
// shape comment of its tensors and static_asserts on its template parameters.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

namespace slm::cuda {

using bf16 = __nv_bfloat16;

template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
    static_assert(N == 1 || N == 2 || N == 4 || N == 8, "a pack holds 1, 2, 4 or 8 elements");
    T v[N];
};

__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) {
    return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ float from_float<float>(float x) {
    return x;
}

// The value x takes once stored as T (what a later load of it returns).
template <class T>
__device__ __forceinline__ float rounded_as(float x) {
    return to_float(from_float<T>(x));
}

// p must be aligned to N elements.
template <int N, class T>
__device__ __forceinline__ void load(const T* p, float (&out)[N]) {
    const Pack<T, N> pack = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = to_float(pack.v[i]);
}

template <int N, class T>
__device__ __forceinline__ void store(T* p, const float (&in)[N]) {
    Pack<T, N> pack;
#pragma unroll
    for (int i = 0; i < N; ++i) pack.v[i] = from_float<T>(in[i]);
    *reinterpret_cast<Pack<T, N>*>(p) = pack;
}

// Host side: whether every pointer is aligned to `bytes` (null pointers do not count against).
inline bool aligned_to(int64_t bytes, std::initializer_list<const void*> pointers) {
    for (const void* p : pointers)
        if (reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) != 0) return false;
    return true;
}

// Blocks for `work` items at `threads` per block, capped for grid-stride loops.
inline unsigned blocks_for(int64_t work, int threads, int64_t cap = int64_t{1} << 16) {
    const int64_t b = (work + threads - 1) / threads;
    return static_cast<unsigned>(b < 1 ? 1 : (b > cap ? cap : b));
}

}  // namespace slm::cuda
