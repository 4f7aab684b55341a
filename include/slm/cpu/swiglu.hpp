#pragma once
// SwiGLU on the CPU: out = silu(gate) · up, reading the fused (gate | up) projection rows.
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace slm::cpu {

template <class T>
T sigmoid(T x) {
    return T(1) / (T(1) + std::exp(-x));
}

// One output; the forward and the recomputing backward both call it, so they give the same bits.
template <class T>
T swiglu_value(T g, T u) {
    return g * sigmoid(g) * u;
}

// gate_up: (n, 2·f) with gate in [0, f) and up in [f, 2f); out: (n, f)
template <class T>
void swiglu_forward(const T* gate_up, T* out, int64_t n, int64_t f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const T* g = gate_up + i * 2 * f;
        const T* u = g + f;
        for (int64_t j = 0; j < f; ++j) out[i * f + j] = swiglu_value(g[j], u[j]);
    }
}

// dout: (n, f) → d_gate_up: (n, 2·f) overwritten. Recompute: dout is read, then overwritten with
// the forward's out, computed as swiglu_forward does (the same bits), for a caller that did not
// keep it.
template <class T, bool Recompute = false>
void swiglu_backward(const T* gate_up, std::conditional_t<Recompute, T, const T>* dout,
                     T* d_gate_up, int64_t n, int64_t f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const T* g = gate_up + i * 2 * f;
        const T* u = g + f;
        T* dg = d_gate_up + i * 2 * f;
        T* du = dg + f;
        for (int64_t j = 0; j < f; ++j) {
            const T s = sigmoid(g[j]);
            const T silu = g[j] * s;
            const T dy = dout[i * f + j];
            du[j] = dy * silu;
            dg[j] = dy * u[j] * s * (T(1) + g[j] * (T(1) - s));
            if constexpr (Recompute) dout[i * f + j] = swiglu_value(g[j], u[j]);
        }
    }
}

// gate_up: (n, 2·f); d_out_then_out: (n, f), dL/d(out) in, the forward's out back
template <class T>
void swiglu_backward_recompute(const T* gate_up, T* d_out_then_out, T* d_gate_up, int64_t n,
                               int64_t f) {
    swiglu_backward<T, true>(gate_up, d_out_then_out, d_gate_up, n, f);
}

}  // namespace slm::cpu
