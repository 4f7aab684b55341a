#pragma once
// RMSNorm on the CPU: y = x / rms(x) · w with rms(x) = sqrt(mean(x²) + eps). Forward is fused
// with the residual add that precedes every norm in a pre-norm block, as on the GPU.
#include <cmath>
#include <cstdint>

namespace slm::cpu {

// resid_out = resid_in + delta (delta may be null: resid_out = resid_in, may alias),
// normed = rmsnorm(resid_out) · w, rstd saved for backward.
// resid_in, delta, resid_out, normed: (n, d); w: (d); rstd: (n)
template <class T>
void add_rmsnorm_forward(const T* resid_in, const T* delta, T* resid_out, const T* w, T* normed,
                         T* rstd, int64_t n, int64_t d, double eps) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const T* a = resid_in + i * d;
        T* r = resid_out + i * d;
        double sum_sq = 0;
        for (int64_t j = 0; j < d; ++j) {
            r[j] = delta ? a[j] + delta[i * d + j] : a[j];
            sum_sq += static_cast<double>(r[j]) * static_cast<double>(r[j]);
        }
        const T s = static_cast<T>(1.0 / std::sqrt(sum_sq / static_cast<double>(d) + eps));
        rstd[i] = s;
        for (int64_t j = 0; j < d; ++j) normed[i * d + j] = r[j] * s * w[j];
    }
}

// dnormed → d_resid (accumulated: the residual stream's gradient flows past the norm too),
// dw (accumulated). x is the norm's input (the resid_out of the forward).
template <class T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* dnormed, T* d_resid, T* dw,
                      int64_t n, int64_t d) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const T* xi = x + i * d;
        const T* dy = dnormed + i * d;
        const T s = rstd[i];
        T dot = 0;  // Σ_j w_j dy_j x_j
        for (int64_t j = 0; j < d; ++j) dot += w[j] * dy[j] * xi[j];
        const T c = dot * s * s * s / static_cast<T>(d);
        for (int64_t j = 0; j < d; ++j) d_resid[i * d + j] += w[j] * dy[j] * s - xi[j] * c;
    }
    // Column sums are reduced serially per column block so the result does not depend on the
    // thread count (deterministic gradients on CPU).
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < d; ++j) {
        T acc = 0;
        for (int64_t i = 0; i < n; ++i) acc += dnormed[i * d + j] * x[i * d + j] * rstd[i];
        dw[j] += acc;
    }
}

}  // namespace slm::cpu
