#pragma once
// Rotary position embedding on the CPU, in the Hugging Face LLaMA convention ("rotate half"):
// element i of a head pairs with element i + head_dim/2, rotated by angle pos · θ^(-2i/head_dim).
// Applied in place to the q and k parts of the fused qkv rows; v is left alone.
#include <cmath>
#include <cstdint>
#include <vector>

#include "slm/core/shapes.hpp"

namespace slm::cpu {

namespace detail {
// direction +1 rotates (forward), -1 rotates back (the backward is the transpose rotation).
// The (position, pair) angle table is built once per call: seq·head_dim/2 sin/cos instead of
// one per token, head and pair.
template <class T>
void rope_apply(T* qkv, const AttentionShape& s, double theta, int direction) {
    const int64_t half = s.head_dim / 2;
    const int64_t rotated_heads = s.heads + s.kv_heads;  // q heads then k heads, adjacent
    std::vector<T> cos_table(static_cast<size_t>(s.seq * half)), sin_table(cos_table.size());
    for (int64_t pos = 0; pos < s.seq; ++pos)
        for (int64_t i = 0; i < half; ++i) {
            const double inv_freq =
                std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(s.head_dim));
            const double angle = static_cast<double>(pos) * inv_freq;
            cos_table[static_cast<size_t>(pos * half + i)] = static_cast<T>(std::cos(angle));
            sin_table[static_cast<size_t>(pos * half + i)] =
                static_cast<T>(direction * std::sin(angle));
        }
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < s.tokens(); ++row) {
        const int64_t pos = row % s.seq;
        const T* c = cos_table.data() + pos * half;
        const T* sn = sin_table.data() + pos * half;
        T* r = qkv + row * s.qkv_stride();
        for (int64_t h = 0; h < rotated_heads; ++h) {
            T* x = r + h * s.head_dim;
            for (int64_t i = 0; i < half; ++i) {
                const T x1 = x[i], x2 = x[i + half];
                x[i] = x1 * c[i] - x2 * sn[i];
                x[i + half] = x2 * c[i] + x1 * sn[i];
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
