// include/slm/precision/fp8.hpp and scaling.hpp: the CPU reference of FP8 that the GPU's casts and
// FP8 GEMMs are tested against. Every code of both formats decodes to the value its bits say and
// encodes back; hand-computed limits and ties; saturation; every rounding is the nearest table
// value (ties to the even code) by brute force; scales, the cast's counters and the emulated GEMM.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/random.hpp"
#include "slm/precision/fp8.hpp"
#include "slm/precision/scaling.hpp"

namespace {

using slm::precision::Fp8Format;
namespace fp8 = slm::precision;

constexpr float infinity = std::numeric_limits<float>::infinity();
constexpr float quiet_nan = std::numeric_limits<float>::quiet_NaN();
constexpr Fp8Format formats[] = {Fp8Format::e4m3, Fp8Format::e5m2};

// The value of a finite, non-NaN code, from the OCP definition written out in doubles.
double expected_value(uint8_t code, int mantissa_bits, int bias) {
    const int magnitude = code & 0x7F;
    const int e = magnitude >> mantissa_bits;
    const int f = magnitude & ((1 << mantissa_bits) - 1);
    const double fraction = f / std::pow(2.0, mantissa_bits);
    const double value = e == 0 ? fraction * std::pow(2.0, 1 - bias)
                                : (1.0 + fraction) * std::pow(2.0, e - bias);
    return (code & 0x80) ? -value : value;
}

// The nearest non-negative finite value to a >= 0 by searching the whole table; ties go to the
// even code; beyond the largest finite value, the largest (saturation).
uint8_t nearest_code(float a, Fp8Format format) {
    const auto t = fp8::fp8_traits(format);
    if (a >= t.max_finite) return t.max_code;
    uint8_t best = 0;
    double best_distance = infinity;
    for (int code = 0; code <= t.max_code; ++code) {
        const float v = fp8::from_fp8(static_cast<uint8_t>(code), format);
        const double d = std::fabs(static_cast<double>(v) - a);
        if (d < best_distance || (d == best_distance && code % 2 == 0)) {
            best = static_cast<uint8_t>(code);
            best_distance = d;
        }
    }
    return best;
}

uint64_t random_bits(uint64_t seed, uint64_t i) {
    return slm::splitmix64(seed ^ slm::splitmix64(i));
}

}  // namespace

TEST_CASE("fp8: all 256 codes of E4M3 and E5M2 decode to their OCP value and re-encode to themselves") {
    struct Shape {
        Fp8Format format;
        int exponent_bits, mantissa_bits, bias, nans, infs;
    };
    for (const Shape s : {Shape{Fp8Format::e4m3, 4, 3, 7, 2, 0},
                          Shape{Fp8Format::e5m2, 5, 2, 15, 6, 2}}) {
        CAPTURE(std::string(fp8::fp8_name(s.format)));
        int nans = 0, infs = 0, zeros = 0, subnormals = 0, normals = 0;
        for (int c = 0; c < 256; ++c) {
            const auto code = static_cast<uint8_t>(c);
            CAPTURE(c);
            const float v = fp8::from_fp8(code, s.format);
            const int magnitude = c & 0x7F;
            const int exponent_field = magnitude >> s.mantissa_bits;
            const bool all_ones = exponent_field == (1 << s.exponent_bits) - 1;
            const int fraction = magnitude & ((1 << s.mantissa_bits) - 1);
            const bool is_nan = s.format == Fp8Format::e4m3 ? magnitude == 0x7F
                                                             : all_ones && fraction != 0;
            const bool is_inf = s.format == Fp8Format::e5m2 && all_ones && !is_nan;
            CHECK(fp8::fp8_is_nan(code, s.format) == is_nan);
            if (is_nan) {
                ++nans;
                CHECK(std::isnan(v));
                CHECK(fp8::fp8_is_nan(fp8::to_fp8(v, s.format), s.format));
                continue;
            }
            CHECK(std::signbit(v) == ((c & 0x80) != 0));
            if (is_inf) {
                // Saturating: inf encodes to the largest finite value, not back to inf.
                ++infs;
                CHECK(std::isinf(v));
                const int max_code = fp8::fp8_traits(s.format).max_code;
                CHECK(fp8::to_fp8(v, s.format) == ((c & 0x80) | max_code));
                continue;
            }
            if (magnitude == 0) ++zeros;
            else if (exponent_field == 0) ++subnormals;
            else ++normals;
            CHECK(static_cast<double>(v) == expected_value(code, s.mantissa_bits, s.bias));
            CHECK(fp8::to_fp8(v, s.format) == code);  // -0 included: signbit kept
        }
        CHECK(nans == s.nans);
        CHECK(infs == s.infs);
        CHECK(zeros == 2);
        CHECK(subnormals == 2 * ((1 << s.mantissa_bits) - 1));
        CHECK(nans + infs + zeros + subnormals + normals == 256);
        // Positive finite codes are increasing in value: the order the rounding relies on.
        for (int c = 0; c < fp8::fp8_traits(s.format).max_code; ++c)
            CHECK(fp8::from_fp8(static_cast<uint8_t>(c), s.format) <
                  fp8::from_fp8(static_cast<uint8_t>(c + 1), s.format));
    }
}

TEST_CASE("fp8: hand-computed limits, normals and subnormals") {
    // E4M3: S.EEEE.MMM, bias 7.
    CHECK(fp8::from_e4m3(0x7E) == 448.0f);  // 0.1111.110 = 1.75 * 2^8
    CHECK(fp8::to_e4m3(448.0f) == 0x7E);
    CHECK(fp8::from_e4m3(0xFE) == -448.0f);
    CHECK(fp8::from_e4m3(0x01) == 0x1p-9f);  // smallest subnormal
    CHECK(fp8::to_e4m3(0x1p-9f) == 0x01);
    CHECK(fp8::from_e4m3(0x07) == 7 * 0x1p-9f);  // largest subnormal
    CHECK(fp8::from_e4m3(0x08) == 0x1p-6f);      // smallest normal
    CHECK(fp8::to_e4m3(1.0f) == 0x38);
    CHECK(fp8::to_e4m3(-2.0f) == 0xC0);
    CHECK(fp8::to_e4m3(3 * 0x1p-9f) == 0x03);
    CHECK(fp8::round_e4m3(0.1f) == 0.1015625f);  // 0.1 / 2^-7 = 12.8 -> 13 * 2^-7
    CHECK(fp8::to_e4m3(0.1f) == 0x1D);
    CHECK(fp8::round_e4m3(3.14159f) == 3.25f);   // 12.57 quarters -> 13
    CHECK(fp8::round_e4m3(-300.0f) == -288.0f);  // binade 256, step 32: 9.375 -> 9
    // E5M2: S.EEEEE.MM, bias 15.
    CHECK(fp8::from_e5m2(0x7B) == 57344.0f);  // 0.11110.11 = 1.75 * 2^15
    CHECK(fp8::to_e5m2(57344.0f) == 0x7B);
    CHECK(fp8::from_e5m2(0x01) == 0x1p-16f);  // smallest subnormal
    CHECK(fp8::to_e5m2(0x1p-16f) == 0x01);
    CHECK(fp8::from_e5m2(0x03) == 3 * 0x1p-16f);
    CHECK(fp8::from_e5m2(0x04) == 0x1p-14f);  // smallest normal
    CHECK(fp8::from_e5m2(0x7C) == infinity);
    CHECK(fp8::from_e5m2(0xFC) == -infinity);
    CHECK(fp8::to_e5m2(1.0f) == 0x3C);
    CHECK(fp8::round_e5m2(0.1f) == 0.09375f);  // 0.1 / 2^-6 = 6.4 -> 6 * 2^-6
    CHECK(fp8::to_e5m2(0.1f) == 0x2E);
    CHECK(fp8::round_e5m2(1000.0f) == 1024.0f);  // binade 512, step 128: 7.8 -> 8
    // Zeros keep their sign; far below the smallest subnormal is zero.
    CHECK(fp8::to_e4m3(0.0f) == 0x00);
    CHECK(fp8::to_e4m3(-0.0f) == 0x80);
    CHECK(fp8::to_e5m2(-1e-30f) == 0x80);
    CHECK(fp8::to_e4m3(std::numeric_limits<float>::denorm_min()) == 0x00);
}

TEST_CASE("fp8: exact halfway points round to the even code, just above goes up") {
    // E4M3 between 1 and 2 the step is 1/8.
    CHECK(fp8::round_e4m3(1.0625f) == 1.0f);   // 8.5 eighths -> 8
    CHECK(fp8::round_e4m3(1.1875f) == 1.25f);  // 9.5 -> 10
    CHECK(fp8::round_e4m3(std::nextafter(1.0625f, 2.0f)) == 1.125f);
    CHECK(fp8::round_e4m3(std::nextafter(1.1875f, 0.0f)) == 1.125f);
    CHECK(fp8::round_e4m3(-1.0625f) == -1.0f);
    CHECK(fp8::round_e4m3(1.9375f) == 2.0f);  // 15.5 -> 16: the carry into the next binade
    // E4M3 subnormals, step 2^-9.
    CHECK(fp8::round_e4m3(2.5f * 0x1p-9f) == 2 * 0x1p-9f);
    CHECK(fp8::round_e4m3(3.5f * 0x1p-9f) == 4 * 0x1p-9f);
    CHECK(fp8::round_e4m3(0x1p-10f) == 0.0f);  // half the smallest subnormal: to 0 (even)
    CHECK(fp8::round_e4m3(std::nextafter(0x1p-10f, 1.0f)) == 0x1p-9f);
    CHECK(fp8::round_e4m3(7.5f * 0x1p-9f) == 0x1p-6f);  // 7.5 steps -> 8: smallest normal
    CHECK(fp8::to_e4m3(7.5f * 0x1p-9f) == 0x08);
    // Top of E4M3: 464 is halfway to a 480 that the format does not have; it stays 448.
    CHECK(fp8::round_e4m3(416.0f) == 416.0f);
    CHECK(fp8::round_e4m3(432.0f) == 448.0f);  // halfway 416 (odd code 0x7D) / 448 (0x7E)
    CHECK(fp8::round_e4m3(464.0f) == 448.0f);
    // E5M2 between 1 and 2 the step is 1/4.
    CHECK(fp8::round_e5m2(1.125f) == 1.0f);
    CHECK(fp8::round_e5m2(1.375f) == 1.5f);
    CHECK(fp8::round_e5m2(std::nextafter(1.125f, 2.0f)) == 1.25f);
    // E5M2 subnormals, step 2^-16.
    CHECK(fp8::round_e5m2(1.5f * 0x1p-16f) == 2 * 0x1p-16f);
    CHECK(fp8::round_e5m2(2.5f * 0x1p-16f) == 2 * 0x1p-16f);
    CHECK(fp8::round_e5m2(0x1p-17f) == 0.0f);
    CHECK(std::signbit(fp8::round_e5m2(-0x1p-17f)));
}

TEST_CASE("fp8: beyond the largest finite value saturates to +-max (inf too) and NaN stays NaN") {
    CHECK(fp8::round_e4m3(500.0f) == 448.0f);
    CHECK(fp8::round_e4m3(-500.0f) == -448.0f);
    CHECK(fp8::round_e4m3(std::nextafter(448.0f, infinity)) == 448.0f);
    CHECK(fp8::round_e4m3(std::numeric_limits<float>::max()) == 448.0f);
    CHECK(fp8::to_e4m3(infinity) == 0x7E);
    CHECK(fp8::to_e4m3(-infinity) == 0xFE);
    CHECK(fp8::round_e5m2(1e6f) == 57344.0f);
    CHECK(fp8::round_e5m2(-1e6f) == -57344.0f);
    CHECK(fp8::round_e5m2(61440.0f) == 57344.0f);  // halfway to the (inf) code above
    // E5M2 has an inf code, but the saturating cast never writes it: inf becomes max finite.
    CHECK(fp8::to_e5m2(infinity) == 0x7B);
    CHECK(fp8::to_e5m2(-infinity) == 0xFB);
    for (const Fp8Format f : formats) {
        CHECK(std::isnan(fp8::round_fp8(quiet_nan, f)));
        CHECK(std::isnan(fp8::round_fp8(-quiet_nan, f)));
        CHECK(fp8::fp8_is_nan(fp8::to_fp8(quiet_nan, f), f));
    }
}

TEST_CASE("fp8: 10^5 random floats over many binades round to the nearest table value, ties to even") {
    for (const Fp8Format f : formats) {
        CAPTURE(std::string(fp8::fp8_name(f)));
        const auto t = fp8::fp8_traits(f);
        // Exponents from 5 binades below the smallest subnormal to 3 above the largest finite.
        const int lo = static_cast<int>(std::log2(t.min_subnormal)) - 5;
        const int hi = static_cast<int>(std::log2(t.max_finite)) + 3;
        int failures = 0;
        for (uint64_t i = 0; i < 100000; ++i) {
            const uint64_t bits = random_bits(17 + static_cast<uint64_t>(f), i);
            float a;
            if (i % 10 == 0) {
                // Every tenth: exactly halfway between two adjacent codes, which random floats
                // almost never hit.
                const int c = static_cast<int>(bits % t.max_code);
                a = 0.5f * (fp8::from_fp8(static_cast<uint8_t>(c), f) +
                            fp8::from_fp8(static_cast<uint8_t>(c + 1), f));
            } else {
                const auto binades = static_cast<uint64_t>(hi - lo + 1);
                const int e = lo + static_cast<int>((bits >> 24) % binades);
                a = std::ldexp(1.0f + static_cast<float>(bits & 0x7FFFFF) * 0x1p-23f, e);
            }
            const bool negative = (bits >> 63) != 0;
            const float x = negative ? -a : a;
            const auto expected = static_cast<uint8_t>((negative ? 0x80 : 0) | nearest_code(a, f));
            if (fp8::to_fp8(x, f) != expected && ++failures <= 5) {
                CAPTURE(x);
                CHECK(int(fp8::to_fp8(x, f)) == int(expected));
            }
        }
        CHECK(failures == 0);
    }
}

TEST_CASE("fp8 scaling: amax, and scale_for puts amax at max finite or leaves scale 1") {
    const std::vector<float> x = {1.0f, -3.5f, 2.0f, 0.0f};
    CHECK(fp8::amax(x) == 3.5f);
    CHECK(fp8::amax(std::vector<float>{}) == 0.0f);
    CHECK(std::isnan(fp8::amax(std::vector<float>{1.0f, quiet_nan, 5.0f})));
    CHECK(fp8::amax(std::vector<float>{1.0f, -infinity}) == infinity);

    CHECK(fp8::scale_for(3.5f, Fp8Format::e4m3) == 128.0f);
    CHECK(fp8::scale_for(3.5f, Fp8Format::e4m3, 1) == 64.0f);
    CHECK(fp8::scale_for(57344.0f, Fp8Format::e5m2) == 1.0f);
    CHECK(fp8::scale_for(0.0f, Fp8Format::e4m3) == 1.0f);
    CHECK(fp8::scale_for(infinity, Fp8Format::e4m3) == 1.0f);
    CHECK(fp8::scale_for(quiet_nan, Fp8Format::e5m2) == 1.0f);
    CHECK(fp8::scale_for(1e-40f, Fp8Format::e4m3) == std::numeric_limits<float>::max());
    CHECK_THROWS_AS(fp8::scale_for(1.0f, Fp8Format::e4m3, -1), slm::Error);
    // For any amax, amax * scale lands on max finite within float rounding, never above it.
    for (const Fp8Format f : formats) {
        const float max = fp8::fp8_max_finite(f);
        for (uint64_t i = 0; i < 10000; ++i) {
            const uint64_t bits = random_bits(5, i);
            const float amax = std::ldexp(1.0f + static_cast<float>(bits & 0x7FFFFF) * 0x1p-23f,
                                          static_cast<int>((bits >> 32) % 60) - 30);
            const float scale = fp8::scale_for(amax, f);
            CAPTURE(amax);
            REQUIRE(amax * scale <= max);
            REQUIRE(amax * scale >= max * (1.0f - 0x1p-21f));
        }
    }
}

TEST_CASE("fp8 scaling: quantize/dequantize round trip is within half an ulp of the format") {
    for (const Fp8Format f : formats) {
        CAPTURE(std::string(fp8::fp8_name(f)));
        const auto t = fp8::fp8_traits(f);
        // Normal values over ten decades, wider than either format, so the small ones fall into
        // subnormals and below.
        std::vector<float> x(4096);
        for (size_t i = 0; i < x.size(); ++i)
            x[i] = static_cast<float>(slm::normal(3, i) *
                                      std::pow(10.0, 10.0 * slm::uniform_open(4, i) - 5.0));
        const float scale = fp8::scale_for(fp8::amax(x), f);
        const fp8::Quantized q = fp8::quantize(x, scale, f);
        const std::vector<float> back = fp8::dequantize(q);
        REQUIRE(back.size() == x.size());
        CHECK(q.stats.count == static_cast<int64_t>(x.size()));
        CHECK(q.stats.overflow == 0);
        CHECK(q.stats.nan == 0);
        // Half an ulp: 2^-(mantissa_bits+1) of |x| in a normal binade, half the smallest
        // subnormal (over the scale) below; a little slack for the float products x * scale and
        // code / scale.
        const float half_ulp = std::ldexp(1.0f, -(t.mantissa_bits + 1));
        int64_t underflows = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            CAPTURE(x[i]);
            const double bound =
                std::max(half_ulp * std::fabs(x[i]), 0.5f * t.min_subnormal / scale);
            CHECK(std::fabs(static_cast<double>(back[i]) - x[i]) <= bound * (1.0 + 1e-6));
            if (x[i] != 0.0f && std::fabs(x[i] * scale) <= 0.5f * t.min_subnormal) ++underflows;
        }
        CHECK(q.stats.underflow == underflows);
        CHECK(underflows > 0);  // the data reach below the format: the counter is exercised
        // amax itself maps onto the largest finite code and back within rounding.
        CHECK(fp8::round_fp8(fp8::amax(x) * scale, f) == t.max_finite);
    }
}

TEST_CASE("fp8 scaling: the cast counts each overflow, underflow and NaN of a crafted input") {
    // E4M3 at scale 1: overflow is |x * scale| > 448, underflow a non-zero that became +-0.
    const std::vector<float> x = {0.0f,     1.0f,         448.0f,  std::nextafter(448.0f, infinity),
                                  500.0f,   -1000.0f,     infinity, 0x1p-11f,
                                  0x1p-10f, 3 * 0x1p-11f, -1e-30f, quiet_nan};
    fp8::CastStats stats;
    std::vector<uint8_t> codes(x.size());
    fp8::quantize_into(x, 1.0f, Fp8Format::e4m3, codes, stats);
    CHECK(stats.count == 12);
    CHECK(stats.overflow == 4);   // nextafter(448), 500, -1000, inf: all saturated to +-448
    CHECK(stats.underflow == 3);  // 2^-11, 2^-10 (a tie, to even 0), -1e-30; 3 * 2^-11 -> 2^-9
    CHECK(stats.nan == 1);
    CHECK_FALSE(stats.clean());
    CHECK(codes[3] == 0x7E);
    CHECK(codes[5] == 0xFE);
    CHECK(codes[6] == 0x7E);
    CHECK(codes[9] == 0x01);
    CHECK(codes[10] == 0x80);
    // The scale moves the thresholds: at scale 2, 300 overflows and 2^-10 no longer underflows.
    fp8::quantize_into(std::vector<float>{300.0f, 0x1p-10f}, 2.0f, Fp8Format::e4m3,
                       std::span<uint8_t>(codes).first(2), stats);
    CHECK(stats.count == 14);  // counts add up across calls
    CHECK(stats.overflow == 5);
    CHECK(stats.underflow == 3);
    // E5M2 at scale 1: 1e6 overflows, 2^-18 underflows, 60000 overflows (saturated, not inf).
    const fp8::Quantized q = fp8::quantize(std::vector<float>{1e6f, 0x1p-18f, 60000.0f, 1.0f},
                                           1.0f, Fp8Format::e5m2);
    CHECK(q.stats.overflow == 2);
    CHECK(q.stats.underflow == 1);
    CHECK(q.codes[2] == 0x7B);
    fp8::CastStats clean;
    fp8::quantize_into(std::vector<float>{0.0f, 1.0f, -2.0f}, 1.0f, Fp8Format::e5m2,
                       std::span<uint8_t>(codes).first(3), clean);
    CHECK(clean.clean());
    CHECK_THROWS_AS(fp8::quantize(x, 0.0f, Fp8Format::e4m3), slm::Error);
}

TEST_CASE("fp8 emulated gemm: c = dequant(a) · dequant(b)ᵀ, a (m, k) and b (n, k) row-major") {
    // By hand: a = [1 2], b = [[3 4], [0.5 -1]] (two output rows of a Linear's weight).
    {
        const auto a = fp8::quantize(std::vector<float>{1, 2}, 1.0f, Fp8Format::e4m3);
        const auto b = fp8::quantize(std::vector<float>{3, 4, 0.5f, -1}, 1.0f, Fp8Format::e4m3);
        const std::vector<float> c = fp8::emulated_gemm(a, b, 1, 2, 2);
        REQUIRE(c.size() == 2);
        CHECK(c[0] == 11.0f);
        CHECK(c[1] == -1.5f);
        CHECK_THROWS_AS(fp8::emulated_gemm(a, b, 1, 2, 3), slm::Error);
    }
    // Random, with scales that are not powers of two: E4M3 x E4M3 (forward) and E5M2 x E4M3 (a
    // gradient times a weight), against the double product of the dequantized inputs.
    const int64_t m = 5, n = 7, k = 67;
    for (const Fp8Format fa : formats) {
        CAPTURE(std::string(fp8::fp8_name(fa)));
        std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
        for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(3.0 * slm::normal(11, i));
        for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(0.02 * slm::normal(12, i));
        const auto a = fp8::quantize(x, fp8::scale_for(fp8::amax(x), fa), fa);
        const auto fb = Fp8Format::e4m3;
        const auto b = fp8::quantize(w, fp8::scale_for(fp8::amax(w), fb), fb);
        CHECK(a.stats.overflow == 0);
        CHECK(b.stats.overflow == 0);
        const std::vector<float> xa = fp8::dequantize(a), wb = fp8::dequantize(b);
        const std::vector<float> c = fp8::emulated_gemm(a, b, m, n, k);
        REQUIRE(c.size() == static_cast<size_t>(m * n));
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double exact = 0, magnitude = 0, unquantized = 0, unquantized_magnitude = 0;
                for (int64_t p = 0; p < k; ++p) {
                    const double product = double(xa[i * k + p]) * double(wb[j * k + p]);
                    exact += product;
                    magnitude += std::fabs(product);
                    const double fp32_product = double(x[i * k + p]) * double(w[j * k + p]);
                    unquantized += fp32_product;
                    unquantized_magnitude += std::fabs(fp32_product);
                }
                CAPTURE(i);
                CAPTURE(j);
                // Only the float roundings of code / scale (in xa, wb) and of the result differ.
                const double got = c[static_cast<size_t>(i * n + j)];
                CHECK(std::fabs(got - exact) <= 4e-7 * magnitude + 1e-7 * std::fabs(exact));
                // And the emulation is near the fp32 GEMM it stands for: within the formats'
                // relative roundings (2^-4 for E4M3, 2^-3 for E5M2) of each product's size.
                CHECK(std::fabs(got - unquantized) <= 0.25 * unquantized_magnitude);
            }
    }
}
