// precision/fp8_linear.hpp: the FP8 linear layer's forward, dgrad and wgrad against the same
// products in double, from the unquantized operands (the error FP8 costs: a few percent, bounded
// by the formats' precision) and from the dequantized codes (exact up to float rounding: the
// layouts and transposes are right); the casts' counts; and why the gradients are E5M2.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "slm/core/random.hpp"
#include "slm/precision/fp8_linear.hpp"

namespace {

using slm::precision::Fp8Format;

std::vector<float> normal(int64_t n, uint64_t seed, double scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(scale * slm::normal(seed, static_cast<uint64_t>(i)));
    return v;
}

// c (rows, cols) = sum over p of a(i, p) · b(j, p), in double; a, b given by accessors.
template <class A, class B>
std::vector<double> product(int64_t rows, int64_t cols, int64_t inner, A a, B b) {
    std::vector<double> c(static_cast<size_t>(rows * cols));
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
            double s = 0;
            for (int64_t p = 0; p < inner; ++p) s += a(i, p) * b(j, p);
            c[static_cast<size_t>(i * cols + j)] = s;
        }
    return c;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The tensor's values as its FP8 codes give them back (current scaling, as the layer casts).
std::vector<double> through_fp8(const std::vector<float>& t, Fp8Format f) {
    const auto q = slm::precision::quantize(t, slm::precision::scale_for(slm::precision::amax(t), f), f);
    return widen(slm::precision::dequantize(q));
}

}  // namespace

TEST_CASE("fp8 linear: forward, dgrad and wgrad against double, within FP8's precision and exact on the codes") {
    const int64_t m = 24, n = 32, k = 40;
    const auto x = normal(m * k, 1, 2.0), w = normal(n * k, 2, 0.02), dy = normal(m * n, 3, 1e-3);
    slm::precision::Fp8LinearFormats formats;
    slm::precision::Fp8LinearStats stats;
    const auto y = slm::precision::fp8_linear_forward(x, w, m, n, k, formats, stats);
    const auto g = slm::precision::fp8_linear_backward(x, w, dy, m, n, k, formats, stats);

    auto at = [](const auto& v, int64_t cols) { return [&v, cols](int64_t r, int64_t c) { return static_cast<double>(v[static_cast<size_t>(r * cols + c)]); }; };
    // Exact products of the unquantized operands.
    const auto y_true = product(m, n, k, at(x, k), at(w, k));
    const auto dx_true = product(m, k, n, at(dy, n), [&](int64_t j, int64_t p) { return static_cast<double>(w[static_cast<size_t>(p * k + j)]); });
    const auto dw_true = product(n, k, m, [&](int64_t i, int64_t p) { return static_cast<double>(dy[static_cast<size_t>(p * n + i)]); },
                                 [&](int64_t j, int64_t p) { return static_cast<double>(x[static_cast<size_t>(p * k + j)]); });
    const double e_y = slm::test::relative_error(widen(y), y_true);
    const double e_dx = slm::test::relative_error(widen(g.dx), dx_true);
    const double e_dw = slm::test::relative_error(widen(g.dw), dw_true);
    CAPTURE(e_y);
    CAPTURE(e_dx);
    CAPTURE(e_dw);
    // E4M3 rounds to 2^-4 relative at worst, E5M2 to 2^-3; over a dot product the errors average.
    CHECK(e_y < 0.06);
    CHECK(e_dx < 0.1);
    CHECK(e_dw < 0.1);
    CHECK(e_y > 1e-3);  // the operands really went through FP8

    // The same products from the dequantized operands: what the layer computes, up to float.
    const auto xq = through_fp8(x, Fp8Format::e4m3), wq = through_fp8(w, Fp8Format::e4m3);
    const auto gq = through_fp8(dy, Fp8Format::e5m2);
    auto atd = [](const std::vector<double>& v, int64_t cols) { return [&v, cols](int64_t r, int64_t c) { return v[static_cast<size_t>(r * cols + c)]; }; };
    CHECK(slm::test::relative_error(widen(y), product(m, n, k, atd(xq, k), atd(wq, k))) < 1e-6);
    CHECK(slm::test::relative_error(widen(g.dx), product(m, k, n, atd(gq, n), [&](int64_t j, int64_t p) { return wq[static_cast<size_t>(p * k + j)]; })) < 1e-6);
    CHECK(slm::test::relative_error(widen(g.dw), product(n, k, m, [&](int64_t i, int64_t p) { return gq[static_cast<size_t>(p * n + i)]; },
                                                         [&](int64_t j, int64_t p) { return xq[static_cast<size_t>(p * k + j)]; })) < 1e-6);

    // Every cast counted (x and W twice: forward and backward), nothing lost at these scales.
    CHECK(stats.x.count == 2 * m * k);
    CHECK(stats.w.count == 2 * n * k);
    CHECK(stats.dy.count == m * n);
    CHECK(stats.x.clean());
    CHECK(stats.w.clean());
}

TEST_CASE("fp8 linear: gradients spanning many binades keep more values in E5M2 than in E4M3") {
    // A gradient whose magnitudes spread over 2^-24 .. 2^0: E4M3 (18 binades) flushes the small
    // ones to zero at any scale that keeps the largest; E5M2 (32 binades) keeps them.
    std::vector<float> dy(4096);
    for (size_t i = 0; i < dy.size(); ++i)
        dy[i] = static_cast<float>(std::ldexp(1.0 + slm::uniform_open(5, i), -static_cast<int>(i % 25)));
    auto underflow = [&](Fp8Format f) {
        return slm::precision::quantize(dy, slm::precision::scale_for(slm::precision::amax(dy), f), f).stats.underflow;
    };
    CAPTURE(underflow(Fp8Format::e4m3));
    CAPTURE(underflow(Fp8Format::e5m2));
    CHECK(underflow(Fp8Format::e5m2) == 0);
    CHECK(underflow(Fp8Format::e4m3) > 500);
}
