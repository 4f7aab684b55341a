#pragma once
// AdamW update and the gradient's sum of squares (for global-norm clipping) on the CPU.
#include <cmath>
#include <cstdint>

#include "slm/core/adamw_step.hpp"
#include "slm/cpu/reduce.hpp"

namespace slm::cpu {

// params, grads, m, v: (n) slices of the flat buffers, updated in place
template <class T>
void adamw_update(T* params, const T* grads, T* m, T* v, int64_t n, const optim::AdamWStep& s) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const double g = static_cast<double>(grads[i]) * s.grad_scale;
        const double mi = s.beta1 * static_cast<double>(m[i]) + (1 - s.beta1) * g;
        const double vi = s.beta2 * static_cast<double>(v[i]) + (1 - s.beta2) * g * g;
        m[i] = static_cast<T>(mi);
        v[i] = static_cast<T>(vi);
        const double update = (mi / s.bias_correction1) /
                              (std::sqrt(vi / s.bias_correction2) + s.eps);
        const double p = static_cast<double>(params[i]);
        params[i] = static_cast<T>(p - s.lr * (update + s.weight_decay * p));
    }
}

template <class T>
double sum_of_squares(const T* x, int64_t n) {
    return deterministic_sum(n, [x](int64_t i) {
        return static_cast<double>(x[i]) * static_cast<double>(x[i]);
    });
}

}  // namespace slm::cpu
