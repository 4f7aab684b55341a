#pragma once
// attention::Naive on the GPU: the (T × T) probabilities of every head are materialised in bf16
// and SAVED for backward (B·H·T·T·2 bytes per layer): the memory cost FlashAttention removes,
// kept on purpose so the study can measure it. Every product is a strided-batched cuBLASLt GEMM
// over heads read in place from the fused qkv rows:
//   forward   S = scale·Q·Kᵀ → P = causal_softmax(S) (fp32 math, bf16 out) → O = P·V
//   backward  dV = Pᵀ·dO, dP = dO·Vᵀ (scratch) → dS = P∘(dP − rowsum(P∘dP)) in place
//             → dQ = scale·dS·K, dK = scale·dSᵀ·Q
// Grouped-query attention reads each kv head in place for all query heads of its group (no copy
// of K or V). With groups (heads > kv_heads) the group's dK and dV contributions are summed in
// fp32 accumulators in the scratch (beta = 0 for the first head of a group, 1 after), then
// rounded once into d_qkv; without groups they are written straight into d_qkv.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "slm/attention/naive.hpp"
#include "slm/attention/policy.hpp"
#include "slm/core/shapes.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/check.cuh"
#include "slm/cuda/gemm.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/reduce.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::attention {

namespace cuda_naive {

using slm::cuda::bf16;

inline constexpr int rows_per_block = 8;  // one warp per row of T

// p: (B·H·T, T) scores in, probabilities out; row r is query position r % T, keys > r % T
// masked (written as 0). One warp per row.
static __global__ void causal_softmax_kernel(bf16* __restrict__ p, int64_t rows, int64_t seq) {
    const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;  // uniform per warp
    bf16* r = p + row * seq;
    const int64_t len = row % seq + 1;
    float m = -INFINITY;
    for (int64_t j = lane; j < len; j += 32) m = fmaxf(m, cuda::to_float(r[j]));
    m = cuda::warp_max(m);
    float sum = 0;
    for (int64_t j = lane; j < len; j += 32) sum += expf(cuda::to_float(r[j]) - m);
    const float inv = 1.0f / cuda::warp_sum(sum);
    for (int64_t j = lane; j < seq; j += 32)
        r[j] = cuda::from_float<bf16>(j < len ? expf(cuda::to_float(r[j]) - m) * inv : 0.0f);
}

// p: (B·H·T, T) probabilities; ds: (B·H·T, T) holds dP in, dS = P∘(dP − Σ_j P∘dP) out.
// One warp per row.
static __global__ void causal_softmax_backward_kernel(const bf16* __restrict__ p,
                                                      bf16* __restrict__ ds, int64_t rows,
                                                      int64_t seq) {
    const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const bf16* pr = p + row * seq;
    bf16* dr = ds + row * seq;
    const int64_t len = row % seq + 1;
    float dot = 0;
    for (int64_t j = lane; j < len; j += 32) dot += cuda::to_float(pr[j]) * cuda::to_float(dr[j]);
    dot = cuda::warp_sum(dot);
    for (int64_t j = lane; j < seq; j += 32) {
        const float v = j < len ? cuda::to_float(pr[j]) * (cuda::to_float(dr[j]) - dot) : 0.0f;
        dr[j] = cuda::from_float<bf16>(v);
    }
}

// acc: (B·T, width) fp32 [dK heads | dV heads] → d_qkv[:, k_offset + c] bf16 for c < width
static __global__ void store_kv_grad_kernel(const float* __restrict__ acc, bf16* __restrict__ d_qkv,
                                            int64_t rows, int64_t width, int64_t stride,
                                            int64_t k_offset) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * width) return;
    const int64_t row = idx / width, c = idx % width;
    d_qkv[row * stride + k_offset + c] = cuda::from_float<bf16>(acc[idx]);
}

// Where head (b, h) of a tensor starts, in elements: b·per_seq + h·per_head + (h/G)·per_kv_head.
struct HeadOperand {
    int64_t per_seq = 0, per_head = 0, per_kv_head = 0;
};

// One strided-batched GEMM launch: `count` heads starting at (b, h).
struct Launch {
    int64_t b, h, count;
};

// All (b, h) pairs as strided batches with one uniform stride per operand: batched over the
// sequences with a loop over heads (H launches), or batched over the kv heads with a loop over
// (sequence, head within group) (B·G launches) — whichever launches fewer.
class HeadPlan {
public:
    explicit HeadPlan(const AttentionShape& s)
        : s_(s), over_sequences_(s.heads <= s.batch * s.group()) {}

    template <class F>
    void for_each(F&& f) const {
        if (over_sequences_) {
            for (int64_t h = 0; h < s_.heads; ++h) f(Launch{0, h, s_.batch});
        } else {
            for (int64_t b = 0; b < s_.batch; ++b)
                for (int64_t h = 0; h < s_.group(); ++h) f(Launch{b, h, s_.kv_heads});
        }
    }
    int64_t offset(const HeadOperand& o, const Launch& l) const {
        return l.b * o.per_seq + l.h * o.per_head + (l.h / s_.group()) * o.per_kv_head;
    }
    cuda::GemmBatch batch(const Launch& l, const HeadOperand& a, const HeadOperand& b,
                          const HeadOperand& c) const {
        return {l.count, stride(a), stride(b), stride(c)};
    }
    // The first query head of its group: its dK/dV product overwrites, the others add.
    bool first_in_group(const Launch& l) const { return l.h % s_.group() == 0; }

private:
    int64_t stride(const HeadOperand& o) const {
        return over_sequences_ ? o.per_seq : s_.group() * o.per_head + o.per_kv_head;
    }
    AttentionShape s_;
    bool over_sequences_;
};

}  // namespace cuda_naive

template <>
struct AttentionKernel<Naive, cuda::Backend> {
    using bf16 = cuda::bf16;

    static int64_t probabilities_bytes(const AttentionShape& s) {
        return s.batch * s.heads * s.seq * s.seq * static_cast<int64_t>(sizeof(bf16));
    }
    static int64_t kv_accumulator_bytes(const AttentionShape& s) {
        return s.group() > 1 ? s.tokens() * 2 * s.kv_heads * s.head_dim * int64_t{4} : 0;
    }
    static AttentionFootprint footprint(const AttentionShape& s) {
        const int64_t acc = kv_accumulator_bytes(s);
        return {
            probabilities_bytes(s),
            (acc > 0 ? cuda::aligned_bytes(probabilities_bytes(s)) : probabilities_bytes(s)) + acc};
    }

    // qkv: (B·T, qkv_stride) with q, k rotated → out: (B·T, H·D); saved: P (B, H, T, T) bf16
    static void forward(cuda::Backend& be, const AttentionShape& s, const bf16* qkv, bf16* out,
                        void* saved) {
        check(s);
        using namespace cuda_naive;
        const int64_t T = s.seq, D = s.head_dim, st = s.qkv_stride();
        const Operands o(s);
        const HeadPlan plan(s);
        auto* p = static_cast<bf16*>(saved);
        const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
        cudaStream_t stream = be.stream();
        plan.for_each([&](const Launch& l) {
            be.gemm()(stream, cuda::Trans::N, cuda::Trans::T, T, T, D, scale,
                      qkv + plan.offset(o.q, l), st, qkv + s.k_offset() + plan.offset(o.kv, l), st,
                      0.0f, p + plan.offset(o.p, l), T, plan.batch(l, o.q, o.kv, o.p));
        });
        softmax_rows(s, p, nullptr, stream);
        plan.for_each([&](const Launch& l) {
            be.gemm()(stream, cuda::Trans::N, cuda::Trans::N, T, D, T, 1.0f,
                      p + plan.offset(o.p, l), T, qkv + s.v_offset() + plan.offset(o.kv, l), st,
                      0.0f, out + plan.offset(o.out, l), s.out_stride(),
                      plan.batch(l, o.p, o.kv, o.out));
        });
    }

    // d_out: (B·T, H·D) → d_qkv: (B·T, qkv_stride), every element written.
    // scratch: dP/dS (B, H, T, T) bf16, then (with groups) the fp32 dK|dV accumulators.
    static void backward(cuda::Backend& be, const AttentionShape& s, const bf16* qkv,
                         const bf16* /*out*/, const bf16* d_out, const void* saved, void* scratch,
                         bf16* d_qkv) {
        check(s);
        using namespace cuda_naive;
        const int64_t T = s.seq, D = s.head_dim, st = s.qkv_stride();
        const Operands o(s);
        const HeadPlan plan(s);
        const auto* p = static_cast<const bf16*>(saved);
        auto* ds = static_cast<bf16*>(scratch);
        const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
        cudaStream_t stream = be.stream();
        const bool grouped = s.group() > 1;
        float* acc = grouped ? reinterpret_cast<float*>(static_cast<std::byte*>(scratch) +
                                                        cuda::aligned_bytes(probabilities_bytes(s)))
                             : nullptr;
        // dK and dV land in the fp32 accumulators (grouped) or straight in d_qkv.
        auto kv_grad_gemm = [&](const Launch& l, const bf16* a, const HeadOperand& oa,
                                const bf16* b, int64_t ldb, const HeadOperand& ob, bool value,
                                float alpha) {
            // (T × D) = alpha · aᵀ (a: T × T) · b (T × D, row stride ldb)
            const float beta = plan.first_in_group(l) ? 0.0f : 1.0f;
            if (grouped) {
                float* c = acc + (value ? s.kv_heads * D : 0) + plan.offset(o.acc, l);
                be.gemm()(stream, cuda::Trans::T, cuda::Trans::N, T, D, T, alpha, a, T, b, ldb,
                          beta, c, 2 * s.kv_heads * D, plan.batch(l, oa, ob, o.acc));
            } else {
                bf16* c = d_qkv + (value ? s.v_offset() : s.k_offset()) + plan.offset(o.kv, l);
                be.gemm()(stream, cuda::Trans::T, cuda::Trans::N, T, D, T, alpha, a, T, b, ldb,
                          beta, c, st, plan.batch(l, oa, ob, o.kv));
            }
        };
        plan.for_each([&](const Launch& l) {
            const bf16* p_l = p + plan.offset(o.p, l);
            const bf16* d_out_l = d_out + plan.offset(o.out, l);
            kv_grad_gemm(l, p_l, o.p, d_out_l, s.out_stride(), o.out, true, 1.0f);  // dV += Pᵀ·dO
            be.gemm()(stream, cuda::Trans::N, cuda::Trans::T, T, T, D, 1.0f, d_out_l,
                      s.out_stride(), qkv + s.v_offset() + plan.offset(o.kv, l), st, 0.0f,
                      ds + plan.offset(o.p, l), T, plan.batch(l, o.out, o.kv, o.p));  // dP
        });
        softmax_rows(s, ds, p, stream);
        plan.for_each([&](const Launch& l) {
            const bf16* ds_l = ds + plan.offset(o.p, l);
            be.gemm()(stream, cuda::Trans::N, cuda::Trans::N, T, D, T, scale, ds_l, T,
                      qkv + s.k_offset() + plan.offset(o.kv, l), st, 0.0f,
                      d_qkv + plan.offset(o.q, l), st, plan.batch(l, o.p, o.kv, o.q));     // dQ
            kv_grad_gemm(l, ds_l, o.p, qkv + plan.offset(o.q, l), st, o.q, false, scale);  // dK
        });
        if (grouped) {
            const int64_t width = 2 * s.kv_heads * D, total = s.tokens() * width;
            constexpr int threads = 256;
            store_kv_grad_kernel<<<cuda::blocks_for(total, threads, INT32_MAX), threads, 0,
                                   stream>>>(acc, d_qkv, s.tokens(), width, st, s.k_offset());
            SLM_CUDA_CHECK_LAUNCH("store_kv_grad_kernel");
        }
    }

private:
    // Per-head layouts of the tensors the GEMMs read and write, in elements.
    struct Operands {
        cuda_naive::HeadOperand q, kv, p, out, acc;
        explicit Operands(const AttentionShape& s)
            : q{s.seq * s.qkv_stride(), s.head_dim, 0},
              kv{s.seq * s.qkv_stride(), 0, s.head_dim},
              p{s.heads * s.seq * s.seq, s.seq * s.seq, 0},
              out{s.seq * s.out_stride(), s.head_dim, 0},
              acc{s.seq * 2 * s.kv_heads * s.head_dim, 0, s.head_dim} {}
    };

    static void check(const AttentionShape& s) {
        require(s.batch > 0 && s.seq > 0 && s.heads > 0 && s.kv_heads > 0 && s.head_dim > 0 &&
                    s.heads % s.kv_heads == 0,
                "attention shape: batch, seq, heads, kv_heads and head_dim must be positive "
                "and kv_heads must divide heads");
    }

    // p == nullptr: scores → probabilities in place in `rows` (forward).
    // p given: dP → dS in place in `rows` (backward).
    static void softmax_rows(const AttentionShape& s, bf16* rows, const bf16* p,
                             cudaStream_t stream) {
        const int64_t n = s.batch * s.heads * s.seq;
        constexpr int threads = 32 * cuda_naive::rows_per_block;
        const unsigned blocks = cuda::blocks_for(n, cuda_naive::rows_per_block, INT32_MAX);
        if (p) {
            cuda_naive::causal_softmax_backward_kernel<<<blocks, threads, 0, stream>>>(p, rows, n,
                                                                                       s.seq);
            SLM_CUDA_CHECK_LAUNCH("causal_softmax_backward_kernel");
        } else {
            cuda_naive::causal_softmax_kernel<<<blocks, threads, 0, stream>>>(rows, n, s.seq);
            SLM_CUDA_CHECK_LAUNCH("causal_softmax_kernel");
        }
    }
};

}  // namespace slm::attention
