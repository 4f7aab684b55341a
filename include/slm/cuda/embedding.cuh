#pragma once
// Token embedding on the GPU: a row gather forward; a deterministic scatter-add backward.
//
// Backward without float atomics: positions are bucketed by token with a sort that is local to
// chunks of 1024 positions (a bitonic sort of (token, position) keys in shared memory), then one
// block per token — the block at that token's first run, in its earliest chunk — walks the
// token's runs chunk by chunk (binary search in each), adds its rows in ascending position order
// in fp32 registers and adds the sum to the table row once. The order of additions depends only
// on the tokens, so gradients are bit-identical from run to run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/report.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::cuda {

// tokens: (n), table: (vocab, d), out: (n, d). One block per row. An id outside [0, vocab)
// gives a zero row and is reported.
template <int N>
__global__ void embedding_forward_kernel(const int32_t* __restrict__ tokens,
                                         const bf16* __restrict__ table, bf16* __restrict__ out,
                                         int64_t d, int64_t vocab, unsigned long long* bad_token) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    const int64_t row = blockIdx.x;
    const int32_t t = tokens[row];
    const bool valid = t >= 0 && t < vocab;
    if (!valid && threadIdx.x == 0) report_bad_id(bad_token, row, t);
    const bf16* src = table + static_cast<int64_t>(valid ? t : 0) * d;
    bf16* dst = out + row * d;
    for (int64_t j = static_cast<int64_t>(threadIdx.x) * N; j < d; j += blockDim.x * N) {
        Pack<bf16, N> p;
        if (valid) {
            p = *reinterpret_cast<const Pack<bf16, N>*>(src + j);
        } else {
#pragma unroll
            for (int i = 0; i < N; ++i) p.v[i] = from_float<bf16>(0.0f);
        }
        *reinterpret_cast<Pack<bf16, N>*>(dst + j) = p;
    }
}

inline constexpr int embedding_chunk = 1024;    // positions sorted together (one block)
inline constexpr int32_t no_token = INT32_MAX;  // sorts after every id; marks skipped positions

// tokens: (n) → sorted_tokens, sorted_positions: (n), sorted by (token, position) within each
// chunk of 1024 positions. Negative ids become no_token (they were reported by the forward).
static __global__ void __launch_bounds__(embedding_chunk)
    embedding_sort_chunks_kernel(const int32_t* __restrict__ tokens, int64_t n,
                                 int32_t* __restrict__ sorted_tokens,
                                 int32_t* __restrict__ sorted_positions) {
    static_assert((embedding_chunk & (embedding_chunk - 1)) == 0, "bitonic sort: power of two");
    __shared__ unsigned long long keys[embedding_chunk];
    const unsigned i = threadIdx.x;
    const int64_t base = static_cast<int64_t>(blockIdx.x) * embedding_chunk;
    const int64_t pos = base + i;
    unsigned long long key = ~0ull;  // padding and skipped ids sort last
    if (pos < n && tokens[pos] >= 0) key = (static_cast<unsigned long long>(tokens[pos]) << 32) | i;
    keys[i] = key;
    __syncthreads();
    for (unsigned size = 2; size <= embedding_chunk; size <<= 1) {
        for (unsigned stride = size / 2; stride > 0; stride >>= 1) {
            const unsigned partner = i ^ stride;
            if (partner > i) {
                const unsigned long long a = keys[i], b = keys[partner];
                const bool ascending = (i & size) == 0;
                if ((a > b) == ascending) {
                    keys[i] = b;
                    keys[partner] = a;
                }
            }
            __syncthreads();
        }
    }
    if (pos < n) {
        const unsigned long long k = keys[i];
        sorted_tokens[pos] = k == ~0ull ? no_token : static_cast<int32_t>(k >> 32);
        sorted_positions[pos] = k == ~0ull ? -1 : static_cast<int32_t>(base + (k & 0xffffffffull));
    }
}

// First index in [lo, hi) of the sorted a whose value is ≥ v (or > v when `upper`).
__device__ __forceinline__ int64_t sorted_search(const int32_t* a, int64_t lo, int64_t hi,
                                                 int32_t v, bool upper) {
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v || (upper && a[mid] == v))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

// One block per (sorted slot, column tile); only the slot that starts a token's first run works.
// sorted_tokens, sorted_positions: (n); dout: (n, d) → d_table: (vocab, d) accumulated
template <int N>
__global__ void embedding_accumulate_kernel(const int32_t* __restrict__ sorted_tokens,
                                            const int32_t* __restrict__ sorted_positions,
                                            const bf16* __restrict__ dout,
                                            float* __restrict__ d_table, int64_t n, int64_t d) {
    static_assert(N == 1 || N == 8, "8 bf16 are one 16-byte load");
    const int64_t s = blockIdx.x;
    const int32_t v = sorted_tokens[s];
    if (v == no_token) return;
    const int64_t chunk = s / embedding_chunk;
    const int64_t chunks = (n + embedding_chunk - 1) / embedding_chunk;
    if (s % embedding_chunk != 0 && sorted_tokens[s - 1] == v) return;  // inside a run
    for (int64_t c = 0; c < chunk; ++c) {  // an earlier chunk holds v: its block owns the token
        const int64_t lo = c * embedding_chunk, hi = lo + embedding_chunk;
        const int64_t at = sorted_search(sorted_tokens, lo, hi, v, false);
        if (at < hi && sorted_tokens[at] == v) return;
    }
    const int64_t j = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * N;
    if (j >= d) return;
    float acc[N] = {};
    for (int64_t c = chunk; c < chunks; ++c) {
        const int64_t lo = c * embedding_chunk;
        const int64_t hi = lo + embedding_chunk < n ? lo + embedding_chunk : n;
        const int64_t first = c == chunk ? s : sorted_search(sorted_tokens, lo, hi, v, false);
        const int64_t last = sorted_search(sorted_tokens, first, hi, v, true);
        for (int64_t k = first; k < last; ++k) {
            float x[N];
            load<N>(dout + static_cast<int64_t>(sorted_positions[k]) * d + j, x);
#pragma unroll
            for (int e = 0; e < N; ++e) acc[e] += x[e];
        }
    }
    float* row = d_table + static_cast<int64_t>(v) * d + j;
    float current[N];
    load<N>(row, current);
#pragma unroll
    for (int e = 0; e < N; ++e) current[e] += acc[e];
    store<N>(row, current);
}

// Host wrappers. `bad_token` is the backend's report slot.
inline void embedding_forward(const int32_t* tokens, const bf16* table, bf16* out, int64_t n,
                              int64_t d, int64_t vocab, unsigned long long* bad_token,
                              cudaStream_t stream) {
    if (n <= 0 || d <= 0) return;
    const bool vec = d % 8 == 0 && aligned_to(16, {table, out});
    const int threads =
        static_cast<int>(std::min<int64_t>(128, (d / (vec ? 8 : 1) + 31) / 32 * 32));
    if (vec)
        embedding_forward_kernel<8><<<static_cast<unsigned>(n), threads, 0, stream>>>(
            tokens, table, out, d, vocab, bad_token);
    else
        embedding_forward_kernel<1><<<static_cast<unsigned>(n), threads, 0, stream>>>(
            tokens, table, out, d, vocab, bad_token);
    SLM_CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

// tokens: ids already validated by embedding_forward (negative ids are skipped; an id ≥ vocab
// would write outside d_table — the forward reports it before any backward runs).
inline void embedding_backward(const int32_t* tokens, const bf16* dout, float* d_table, int64_t n,
                               int64_t d, Workspace& workspace, cudaStream_t stream) {
    if (n <= 0 || d <= 0) return;
    require(n < INT32_MAX, "embedding_backward: " + std::to_string(n) +
                               " positions exceed the int32 position index");
    const int64_t array_bytes = aligned_bytes(n * static_cast<int64_t>(sizeof(int32_t)));
    std::byte* scratch = workspace.get(2 * array_bytes, stream);
    auto* sorted_tokens = reinterpret_cast<int32_t*>(scratch);
    auto* sorted_positions = reinterpret_cast<int32_t*>(scratch + array_bytes);
    const auto chunks = static_cast<unsigned>((n + embedding_chunk - 1) / embedding_chunk);
    embedding_sort_chunks_kernel<<<chunks, embedding_chunk, 0, stream>>>(tokens, n, sorted_tokens,
                                                                         sorted_positions);
    SLM_CUDA_CHECK_LAUNCH("embedding_sort_chunks_kernel");

    const bool vec = d % 8 == 0 && aligned_to(16, {dout}) && aligned_to(32, {d_table});
    const int width = vec ? 8 : 1;
    const int threads = static_cast<int>(std::min<int64_t>(128, (d / width + 31) / 32 * 32));
    const dim3 grid(
        static_cast<unsigned>(n),
        static_cast<unsigned>((d + int64_t{threads} * width - 1) / (int64_t{threads} * width)));
    if (vec)
        embedding_accumulate_kernel<8>
            <<<grid, threads, 0, stream>>>(sorted_tokens, sorted_positions, dout, d_table, n, d);
    else
        embedding_accumulate_kernel<1>
            <<<grid, threads, 0, stream>>>(sorted_tokens, sorted_positions, dout, d_table, n, d);
    SLM_CUDA_CHECK_LAUNCH("embedding_accumulate_kernel");
}

}  // namespace slm::cuda
