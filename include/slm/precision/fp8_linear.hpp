#pragma once
// The three GEMMs of a linear layer y = x · Wᵀ in FP8, on the CPU: the reference for the GPU's
// FP8 linear layers, and the place where the numerics are decided.
//
//   forward  y  (m, n) = x (m, k) · W (n, k)ᵀ        x: E4M3, W: E4M3
//   dgrad    dx (m, k) = dy (m, n) · W (n, k)         dy: E5M2, W: E4M3   (GEMM over n)
//   wgrad    dW (n, k) = dy (m, n)ᵀ · x (m, k)        dy: E5M2, x: E4M3   (GEMM over m)
//
// Why E5M2 for the gradients: a gradient tensor spans far more binades than an activation or a
// weight (its scale also moves by orders of magnitude over training), and E5M2 covers 2^-16 ..
// 57344 (32 binades) against E4M3's 2^-9 .. 448 (18); E4M3's extra mantissa bit goes where
// precision matters more than range, the forward operands. (The "hybrid" format of Micikevicius
// et al. 2022, FP8 Formats for Deep Learning, and Transformer Engine's default.)
//
// Scaling: current (per tensor, from its own amax, precision::scale_for); each cast counts what
// the format could not hold. The GPU runs every GEMM in the TN form (both operands contiguous
// along the summed dimension, fp8_gemm.cuh), so dgrad reads Wᵀ (k, n) and wgrad dyᵀ (n, m) and
// xᵀ (k, m): transposed FP8 copies, which the CPU makes here the same way (cast, then transpose:
// the codes are the same either way round, since a cast is elementwise with one scale).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/precision/scaling.hpp"

namespace slm::precision {

struct Fp8LinearFormats {
    Fp8Format activations = Fp8Format::e4m3;
    Fp8Format weights = Fp8Format::e4m3;
    Fp8Format gradients = Fp8Format::e5m2;
    int margin = 0;  // scale_for's headroom, in powers of two
};

// What the casts of one layer's step lost, per operand.
struct Fp8LinearStats {
    CastStats x, w, dy;
};

namespace fp8_linear_detail {

// A (rows, cols) row-major tensor cast with a scale from its own amax.
inline Quantized cast(std::span<const float> t, Fp8Format format, int margin, CastStats& stats) {
    Quantized q = quantize(t, scale_for(amax(t), format, margin), format);
    stats += q.stats;
    return q;
}

// The same codes and scale, transposed: (rows, cols) → (cols, rows).
inline Quantized transposed(const Quantized& q, int64_t rows, int64_t cols) {
    Quantized t = q;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) t.codes[static_cast<size_t>(c * rows + r)] = q.codes[static_cast<size_t>(r * cols + c)];
    return t;
}

inline void check(std::span<const float> t, int64_t rows, int64_t cols, const char* what) {
    require(rows >= 0 && cols >= 0 && static_cast<int64_t>(t.size()) == rows * cols,
            std::string("fp8 linear: ") + what + " is not (" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
}

}  // namespace fp8_linear_detail

// y (m, n) = x (m, k) · W (n, k)ᵀ
inline std::vector<float> fp8_linear_forward(std::span<const float> x, std::span<const float> w, int64_t m,
                                             int64_t n, int64_t k, const Fp8LinearFormats& f, Fp8LinearStats& stats) {
    using namespace fp8_linear_detail;
    check(x, m, k, "x");
    check(w, n, k, "W");
    return emulated_gemm(cast(x, f.activations, f.margin, stats.x), cast(w, f.weights, f.margin, stats.w), m, n, k);
}

struct Fp8LinearGrads {
    std::vector<float> dx;  // (m, k)
    std::vector<float> dw;  // (n, k)
};

// dx = dy · W and dW = dyᵀ · x, dy cast once and used by both.
inline Fp8LinearGrads fp8_linear_backward(std::span<const float> x, std::span<const float> w,
                                          std::span<const float> dy, int64_t m, int64_t n, int64_t k,
                                          const Fp8LinearFormats& f, Fp8LinearStats& stats) {
    using namespace fp8_linear_detail;
    check(x, m, k, "x");
    check(w, n, k, "W");
    check(dy, m, n, "dy");
    const Quantized g = cast(dy, f.gradients, f.margin, stats.dy);
    const Quantized wq = cast(w, f.weights, f.margin, stats.w);
    const Quantized xq = cast(x, f.activations, f.margin, stats.x);
    // dgrad: a = dy (m, n), b = Wᵀ (k, n); wgrad: a = dyᵀ (n, m), b = xᵀ (k, m).
    return {emulated_gemm(g, transposed(wq, n, k), m, k, n),
            emulated_gemm(transposed(g, m, n), transposed(xq, m, k), n, k, m)};
}

}  // namespace slm::precision
