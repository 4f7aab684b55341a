#pragma once
// Rotary position embedding on the CPU, in the Hugging Face LLaMA convention ("rotate half"):
// element i of a head pairs with element i + head_dim/2, rotated by angle pos · θ^(-2i/head_dim).
// Applied in place to the q and k parts of the fused qkv rows; v is left alone.
#include <cmath>
#include <cstdint>

#include "slm/core/shapes.hpp"

namespace slm::cpu {

namespace detail {
// direction +1 rotates (forward), -1 rotates back (the backward is the transpose rotation).
template <class T>
void rope_apply(T* qkv, const AttentionShape& s, double theta, int direction) {
    const int64_t half = s.head_dim / 2;
    const int64_t rotated_heads = s.heads + s.kv_heads;  // q heads then k heads, adjacent
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < s.tokens(); ++row) {
        const int64_t pos = row % s.seq;
        T* r = qkv + row * s.qkv_stride();
        for (int64_t i = 0; i < half; ++i) {
            const double inv_freq =
                std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(s.head_dim));
            const double angle = static_cast<double>(pos) * inv_freq;
            const T c = static_cast<T>(std::cos(angle));
            const T sn = static_cast<T>(direction * std::sin(angle));
            for (int64_t h = 0; h < rotated_heads; ++h) {
                T* x = r + h * s.head_dim;
                const T x1 = x[i], x2 = x[i + half];
                x[i] = x1 * c - x2 * sn;
                x[i + half] = x2 * c + x1 * sn;
            }
        }
    }
}
}  // namespace detail

// qkv: (batch·seq, qkv_stride), rotated in place
template <class T>
void rope_forward(T* qkv, const AttentionShape& s, double theta) {
    detail::rope_apply(qkv, s, theta, +1);
}

// d_qkv: gradient w.r.t. the rotated q, k → gradient w.r.t. the unrotated ones, in place
template <class T>
void rope_backward(T* d_qkv, const AttentionShape& s, double theta) {
    detail::rope_apply(d_qkv, s, theta, -1);
}

}  // namespace slm::cpu
