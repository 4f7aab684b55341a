#pragma once
// attention::Flash on the CPU: the tiled online-softmax forward and the recomputing backward
// (attention/flash.hpp says what they keep), on Eigen GEMMs over strided heads. Tile sizes are
// template parameters so tests can make sequences that are not tile multiples.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <Eigen/Dense>

#include "slm/attention/flash.hpp"
#include "slm/attention/policy.hpp"
#include "slm/cpu/attention/head_view.hpp"
#include "slm/cpu/backend.hpp"

namespace slm::attention {

// qkv: (B·T, qkv_stride), out: (B·T, H·D), lse: (B, H, T) written
template <class T, int BlockQ = 64, int BlockK = 64>
void flash_attention_forward(const AttentionShape& s, const T* qkv, T* out, T* lse) {
    using namespace cpu_views;
    static_assert(BlockQ > 0 && BlockK > 0, "tile sizes must be positive");
    const int64_t T_ = s.seq, D = s.head_dim, st = s.qkv_stride();
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
    const int64_t q_tiles = (T_ + BlockQ - 1) / BlockQ;
#pragma omp parallel for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < s.batch; ++b) {
        for (int64_t h = 0; h < s.heads; ++h) {
            for (int64_t qt = 0; qt < q_tiles; ++qt) {
                const int64_t i0 = qt * BlockQ, bq = std::min<int64_t>(BlockQ, T_ - i0);
                const T* base = qkv + b * T_ * st;
                auto q = head(base + h * D, T_, D, st).middleRows(i0, bq);
                auto k = head(base + s.k_offset() + (h / s.group()) * D, T_, D, st);
                auto v = head(base + s.v_offset() + (h / s.group()) * D, T_, D, st);
                Eigen::Matrix<T, Eigen::Dynamic, 1> m =
                    Eigen::Matrix<T, Eigen::Dynamic, 1>::Constant(bq, -std::numeric_limits<T>::infinity());
                Eigen::Matrix<T, Eigen::Dynamic, 1> l = Eigen::Matrix<T, Eigen::Dynamic, 1>::Zero(bq);
                Rows<T> acc = Rows<T>::Zero(bq, D);
                Rows<T> p(bq, BlockK);
                // Key tiles past the last query row of this tile are fully masked: not visited.
                for (int64_t j0 = 0; j0 < i0 + bq; j0 += BlockK) {
                    const int64_t bk = std::min<int64_t>(BlockK, T_ - j0);
                    auto sc = p.leftCols(bk);
                    sc.noalias() = scale * q * k.middleRows(j0, bk).transpose();
                    for (int64_t r = 0; r < bq; ++r) {
                        const int64_t visible = std::clamp<int64_t>(i0 + r - j0 + 1, 0, bk);
                        if (visible == 0) {  // whole row masked in this tile: nothing changes
                            sc.row(r).setZero();
                            continue;
                        }
                        const T m_new = std::max(m(r), sc.row(r).head(visible).maxCoeff());
                        const T alpha = std::exp(m(r) - m_new);  // exp(-inf) = 0 on first visit
                        sc.row(r).head(visible) = (sc.row(r).head(visible).array() - m_new).exp();
                        sc.row(r).tail(bk - visible).setZero();
                        l(r) = alpha * l(r) + sc.row(r).head(visible).sum();
                        acc.row(r) *= alpha;
                        m(r) = m_new;
                    }
                    acc.noalias() += sc * v.middleRows(j0, bk);
                }
                auto o = head(out + b * T_ * s.out_stride() + h * D, T_, D, s.out_stride());
                for (int64_t r = 0; r < bq; ++r) {
                    o.row(i0 + r) = acc.row(r) / l(r);
                    lse[(b * s.heads + h) * T_ + i0 + r] = m(r) + std::log(l(r));
                }
            }
        }
    }
}

// d_out: (B·T, H·D) → d_qkv: (B·T, qkv_stride), fully written
template <class T, int BlockQ = 64, int BlockK = 64>
void flash_attention_backward(const AttentionShape& s, const T* qkv, const T* out,
                              const T* d_out, const T* lse, T* d_qkv) {
    using namespace cpu_views;
    const int64_t T_ = s.seq, D = s.head_dim, st = s.qkv_stride();
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
    // Threads own a (batch, kv head) pair: the query heads of a group add into the same dK/dV.
#pragma omp parallel for collapse(2) schedule(dynamic)
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
            Rows<T> p(BlockQ, BlockK), dp(BlockQ, BlockK);
            for (int64_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h) {
                auto q = head(base + h * D, T_, D, st);
                auto dq = head(dbase + h * D, T_, D, st);
                auto o = head(out + b * T_ * s.out_stride() + h * D, T_, D, s.out_stride());
                auto d_o = head(d_out + b * T_ * s.out_stride() + h * D, T_, D, s.out_stride());
                const T* row_lse = lse + (b * s.heads + h) * T_;
                // delta_i = dO_i · O_i equals rowsum(P ∘ dP) of the softmax backward.
                const Eigen::Matrix<T, Eigen::Dynamic, 1> delta =
                    (o.array() * d_o.array()).rowwise().sum();
                dq.setZero();
                for (int64_t j0 = 0; j0 < T_; j0 += BlockK) {
                    const int64_t bk = std::min<int64_t>(BlockK, T_ - j0);
                    auto kj = k.middleRows(j0, bk);
                    auto vj = v.middleRows(j0, bk);
                    // Query tiles whose last row is before j0 see none of these keys.
                    for (int64_t i0 = j0 / BlockQ * BlockQ; i0 < T_; i0 += BlockQ) {
                        const int64_t bq = std::min<int64_t>(BlockQ, T_ - i0);
                        auto qi = q.middleRows(i0, bq);
                        auto pt = p.topLeftCorner(bq, bk);
                        auto dpt = dp.topLeftCorner(bq, bk);
                        pt.noalias() = scale * qi * kj.transpose();
                        for (int64_t r = 0; r < bq; ++r) {
                            const int64_t visible = std::clamp<int64_t>(i0 + r - j0 + 1, 0, bk);
                            pt.row(r).head(visible) =
                                (pt.row(r).head(visible).array() - row_lse[i0 + r]).exp();
                            pt.row(r).tail(bk - visible).setZero();
                        }
                        auto d_oi = d_o.middleRows(i0, bq);
                        dv.middleRows(j0, bk).noalias() += pt.transpose() * d_oi;
                        dpt.noalias() = d_oi * vj.transpose();
                        dpt = (pt.array() * (dpt.array().colwise() - delta.segment(i0, bq).array()))
                                  .matrix();
                        dq.middleRows(i0, bq).noalias() += scale * dpt * kj;
                        dk.middleRows(j0, bk).noalias() += scale * dpt.transpose() * qi;
                    }
                }
            }
        }
    }
}

template <class T>
struct AttentionKernel<Flash, cpu::Backend<T>> {
    static AttentionFootprint footprint(const AttentionShape& s) {
        return {s.batch * s.heads * s.seq * static_cast<int64_t>(sizeof(T)), 0};
    }
    static void forward(cpu::Backend<T>&, const AttentionShape& s, const T* qkv, T* out,
                        void* saved) {
        flash_attention_forward(s, qkv, out, static_cast<T*>(saved));
    }
    static void backward(cpu::Backend<T>&, const AttentionShape& s, const T* qkv, const T* out,
                         const T* d_out, const void* saved, void*, T* d_qkv) {
        flash_attention_backward(s, qkv, out, d_out, static_cast<const T*>(saved), d_qkv);
    }
};

template <class T>
struct AttentionKernel<FlashDeterministic, cpu::Backend<T>> : AttentionKernel<Flash, cpu::Backend<T>> {};

}  // namespace slm::attention
