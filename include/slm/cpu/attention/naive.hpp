#pragma once
// attention::Naive on the CPU: the (B, H, T, T) probabilities written by the forward and read by
// the backward, on Eigen GEMMs over strided heads.
#include <cmath>
#include <cstdint>
#include <limits>

#include <Eigen/Dense>

#include "slm/attention/naive.hpp"
#include "slm/attention/policy.hpp"
#include "slm/cpu/attention/head_view.hpp"
#include "slm/cpu/backend.hpp"

namespace slm::attention {

// qkv: (B·T, qkv_stride), out: (B·T, H·D), probs: (B, H, T, T) written (zeros above the diagonal)
template <class T>
void naive_attention_forward(const AttentionShape& s, const T* qkv, T* out, T* probs) {
    using namespace cpu_views;
    const int64_t T_ = s.seq, D = s.head_dim, st = s.qkv_stride();
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.batch; ++b) {
        for (int64_t h = 0; h < s.heads; ++h) {
            const int64_t kvh = h / s.group();
            const T* base = qkv + b * T_ * st;
            auto q = head(base + h * D, T_, D, st);
            auto k = head(base + s.k_offset() + kvh * D, T_, D, st);
            auto v = head(base + s.v_offset() + kvh * D, T_, D, st);
            Eigen::Map<Rows<T>> p(probs + (b * s.heads + h) * T_ * T_, T_, T_);
            p.noalias() = scale * q * k.transpose();
            for (int64_t i = 0; i < T_; ++i) {
                auto row = p.row(i);
                const T m = row.head(i + 1).maxCoeff();
                row.head(i + 1) = (row.head(i + 1).array() - m).exp();
                row.head(i + 1) /= row.head(i + 1).sum();
                row.tail(T_ - i - 1).setZero();
            }
            head(out + b * T_ * s.out_stride() + h * D, T_, D, s.out_stride()).noalias() = p * v;
        }
    }
}

// d_out: (B·T, H·D) → d_qkv: (B·T, qkv_stride), fully written
template <class T>
void naive_attention_backward(const AttentionShape& s, const T* qkv, const T* d_out,
                              const T* probs, T* d_qkv) {
    using namespace cpu_views;
    const int64_t T_ = s.seq, D = s.head_dim, st = s.qkv_stride();
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
    // Threads own a (batch, kv head) pair: the query heads of a group add into the same dK/dV.
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.batch; ++b) {
        for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
            const T* base = qkv + b * T_ * st;
            T* dbase = d_qkv + b * T_ * st;
            auto k = head(base + s.k_offset() + kvh * D, T_, D, st);
            auto v = head(base + s.v_offset() + kvh * D, T_, D, st);
            auto dk = head(dbase + s.k_offset() + kvh * D, T_, D, st);
            auto dv = head(dbase + s.v_offset() + kvh * D, T_, D, st);
            dk.setZero();
            dv.setZero();
            Rows<T> dp(T_, T_);
            for (int64_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h) {
                auto q = head(base + h * D, T_, D, st);
                auto dq = head(dbase + h * D, T_, D, st);
                auto d_o = head(d_out + b * T_ * s.out_stride() + h * D, T_, D, s.out_stride());
                Eigen::Map<const Rows<T>> p(probs + (b * s.heads + h) * T_ * T_, T_, T_);
                dv.noalias() += p.transpose() * d_o;
                dp.noalias() = d_o * v.transpose();
                // softmax backward: dS = P ∘ (dP − rowsum(P ∘ dP))
                const auto row_dot = (p.array() * dp.array()).rowwise().sum().eval();
                dp = (p.array() * (dp.array().colwise() - row_dot)).matrix();
                dq.noalias() = scale * dp * k;
                dk.noalias() += scale * dp.transpose() * q;
            }
        }
    }
}

template <class T>
struct AttentionKernel<Naive, cpu::Backend<T>> {
    static AttentionFootprint footprint(const AttentionShape& s) {
        return {s.batch * s.heads * s.seq * s.seq * static_cast<int64_t>(sizeof(T)), 0};
    }
    static void forward(cpu::Backend<T>&, const AttentionShape& s, const T* qkv, T* out,
                        void* saved) {
        naive_attention_forward(s, qkv, out, static_cast<T*>(saved));
    }
    static void backward(cpu::Backend<T>&, const AttentionShape& s, const T* qkv, const T*,
                         const T* d_out, const void* saved, void*, T* d_qkv) {
        naive_attention_backward(s, qkv, d_out, static_cast<const T*>(saved), d_qkv);
    }
};

}  // namespace slm::attention
