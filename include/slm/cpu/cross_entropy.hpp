#pragma once
// LM head + softmax cross-entropy on the CPU, fused and chunked over tokens so the full
// (tokens × vocab) logits never exist at once. The gradient is produced in the same pass, so the
// head's GEMM is not run twice.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/shapes.hpp"
#include "slm/cpu/linear.hpp"

namespace slm::cpu {

// x: (n, d) final normed hidden states, w: (vocab, d), targets: (n) with ignore_index allowed,
// logits: (chunk, vocab) scratch. With dx non-null, also writes dx: (n, d) and accumulates
// dw: (vocab, d) for grad_scale · mean loss.
template <class T>
LossResult lm_head_cross_entropy(const T* x, const T* w, const int32_t* targets, int64_t n,
                                 int64_t d, int64_t vocab, T* logits, int64_t chunk,
                                 double grad_scale, T* dx, T* dw) {
    int64_t counted = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t t = targets[i];
        require(t == ignore_index || (t >= 0 && t < vocab),
                "target id " + std::to_string(t) + " at position " + std::to_string(i) +
                    " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
        counted += t != ignore_index;
    }
    LossResult result{0.0, counted};
    if (dx) std::fill(dx, dx + n * d, T(0));
    if (counted == 0) return result;
    const double inv_count = 1.0 / static_cast<double>(counted);
    double loss_sum = 0;
    std::vector<double> row_loss(static_cast<size_t>(std::min(chunk, n)));
    for (int64_t begin = 0; begin < n; begin += chunk) {
        const int64_t rows = std::min(chunk, n - begin);
        linear_forward(x + begin * d, w, logits, rows, d, vocab);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            T* z = logits + r * vocab;
            const int32_t t = targets[begin + r];
            const T m = *std::max_element(z, z + vocab);
            double sum = 0;
            // exp in T (float vectorises; double keeps the fp64 gradient checks exact), summed
            // in double.
            for (int64_t v = 0; v < vocab; ++v) sum += static_cast<double>(std::exp(z[v] - m));
            const double lse = static_cast<double>(m) + std::log(sum);
            row_loss[static_cast<size_t>(r)] =
                t == ignore_index ? 0.0 : lse - static_cast<double>(z[t]);
            if (!dx) continue;
            // dlogits = (softmax - onehot) · grad_scale / counted; zero for ignored rows
            const T scale = t == ignore_index ? T(0) : static_cast<T>(grad_scale * inv_count);
            for (int64_t v = 0; v < vocab; ++v)
                z[v] = std::exp(z[v] - static_cast<T>(lse)) * scale;
            if (t != ignore_index) z[t] -= scale;
        }
        for (int64_t r = 0; r < rows; ++r) loss_sum += row_loss[static_cast<size_t>(r)];  // in order
        if (dx) linear_backward(x + begin * d, w, logits, dx + begin * d, dw, rows, d, vocab);
    }
    result.mean = loss_sum * inv_count;
    return result;
}

}  // namespace slm::cpu
