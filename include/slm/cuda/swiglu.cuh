#pragma once
// SwiGLU on the GPU: out = silu(gate) · up over the fused (gate | up) projection rows, fp32 math.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "slm/cuda/check.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// One output; the forward and the recomputing backward both call it, so they give the same bits.
__device__ __forceinline__ float swiglu_value(float g, float u) { return g * sigmoid(g) * u; }

// dL/d(gate) and dL/d(up) of one output whose gradient is dy.
__device__ __forceinline__ void swiglu_gradient(float g, float u, float dy, float& dg, float& du) {
    const float s = sigmoid(g);
    du = dy * g * s;
    dg = dy * u * s * (1.0f + g * (1.0f - s));
}

// The N consecutive outputs (row, j .. j + N) of an (n, f) output this thread owns; false for a
// thread past the end.
template <int N>
__device__ __forceinline__ bool thread_outputs(int64_t n, int64_t f, int64_t& row, int64_t& j) {
    const int64_t per_row = f / N;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n * per_row) return false;
    row = idx / per_row;
    j = idx % per_row * N;
    return true;
}

// gate_up: (n, 2f) with gate in [0, f) and up in [f, 2f) → out: (n, f).
// One thread per N consecutive outputs of a row; f % N == 0.
template <int N>
__global__ void swiglu_forward_kernel(const bf16* __restrict__ gate_up, bf16* __restrict__ out,
                                      int64_t n, int64_t f) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    int64_t row, j;
    if (!thread_outputs<N>(n, f, row, j)) return;
    const bf16* g_ptr = gate_up + row * 2 * f + j;
    float g[N], u[N], y[N];
    load<N>(g_ptr, g);
    load<N>(g_ptr + f, u);
#pragma unroll
    for (int e = 0; e < N; ++e) y[e] = swiglu_value(g[e], u[e]);
    store<N>(out + row * f + j, y);
}

// dout: (n, f) → d_gate_up: (n, 2f) overwritten. Recompute: dout is not restrict and holds the
// forward's out on return (each thread reads its elements before it writes them), for a forward
// that did not keep out.
template <bool Recompute>
using SwigluDout = std::conditional_t<Recompute, bf16*, const bf16* __restrict__>;

template <int N, bool Recompute>
__global__ void swiglu_backward_kernel(const bf16* __restrict__ gate_up, SwigluDout<Recompute> dout,
                                       bf16* __restrict__ d_gate_up, int64_t n, int64_t f) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    int64_t row, j;
    if (!thread_outputs<N>(n, f, row, j)) return;
    const int64_t in = row * 2 * f + j;
    float g[N], u[N], dy[N], dg[N], du[N], y[N];
    load<N>(gate_up + in, g);
    load<N>(gate_up + in + f, u);
    load<N>(dout + row * f + j, dy);
#pragma unroll
    for (int e = 0; e < N; ++e) {
        swiglu_gradient(g[e], u[e], dy[e], dg[e], du[e]);
        if constexpr (Recompute) y[e] = swiglu_value(g[e], u[e]);
    }
    store<N>(d_gate_up + in, dg);
    store<N>(d_gate_up + in + f, du);
    if constexpr (Recompute) store<N>(dout + row * f + j, y);
}

inline void swiglu_forward(const bf16* gate_up, bf16* out, int64_t n, int64_t f,
                           cudaStream_t stream) {
    if (n <= 0 || f <= 0) return;
    constexpr int threads = 256;
    if (f % 8 == 0 && aligned_to(16, {gate_up, out}))
        swiglu_forward_kernel<8>
            <<<blocks_for(n * f / 8, threads, INT32_MAX), threads, 0, stream>>>(gate_up, out, n, f);
    else
        swiglu_forward_kernel<1>
            <<<blocks_for(n * f, threads, INT32_MAX), threads, 0, stream>>>(gate_up, out, n, f);
    SLM_CUDA_CHECK_LAUNCH("swiglu_forward_kernel");
}

template <bool Recompute>
void launch_swiglu_backward(const bf16* gate_up, SwigluDout<Recompute> dout, bf16* d_gate_up,
                            int64_t n, int64_t f, cudaStream_t stream) {
    if (n <= 0 || f <= 0) return;
    constexpr int threads = 256;
    if (f % 8 == 0 && aligned_to(16, {gate_up, dout, d_gate_up}))
        swiglu_backward_kernel<8, Recompute>
            <<<blocks_for(n * f / 8, threads, INT32_MAX), threads, 0, stream>>>(gate_up, dout,
                                                                                d_gate_up, n, f);
    else
        swiglu_backward_kernel<1, Recompute>
            <<<blocks_for(n * f, threads, INT32_MAX), threads, 0, stream>>>(gate_up, dout,
                                                                            d_gate_up, n, f);
    SLM_CUDA_CHECK_LAUNCH("swiglu_backward_kernel");
}

inline void swiglu_backward(const bf16* gate_up, const bf16* dout, bf16* d_gate_up, int64_t n,
                            int64_t f, cudaStream_t stream) {
    launch_swiglu_backward<false>(gate_up, dout, d_gate_up, n, f, stream);
}

// d_out_then_out: (n, f), dout in, the forward's out back.
inline void swiglu_backward_recompute(const bf16* gate_up, bf16* d_out_then_out, bf16* d_gate_up,
                                      int64_t n, int64_t f, cudaStream_t stream) {
    launch_swiglu_backward<true>(gate_up, d_out_then_out, d_gate_up, n, f, stream);
}

}  // namespace slm::cuda
