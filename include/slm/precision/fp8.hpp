#pragma once
// The two OCP 8-bit floating-point formats Hopper's tensor cores multiply, as exact CPU
// conversions: the reference the GPU's FP8 casts and GEMMs are tested against.
//
//   E4M3 ("e4m3fn", NVIDIA's and PyTorch's float8_e4m3fn): S.EEEE.MMM, bias 7, no infinities,
//        NaN only at S.1111.111, so S.1111.110 = 448 is the largest finite value; smallest
//        subnormal 2^-9. Used for weights and activations: one more mantissa bit than E5M2.
//   E5M2: S.EEEEE.MM, bias 15, IEEE-like (S.11111.00 = inf, S.11111.xx NaN), largest finite
//        S.11110.11 = 57344, smallest subnormal 2^-16. Used where range matters more (gradients).
//
// Rounding is to nearest, ties to even, subnormals included, and the result is exact: the float
// is scaled by a power of two onto the integer grid of its binade, where rounding is an integer
// decision with nothing approximate in it.
//
// Overflow saturates: any finite value beyond the largest finite one, and +-inf, become +-max
// finite; NaN stays NaN. This is what the GPU cast does with saturation on (cvt.rn.satfinite,
// cuda_fp8.h's __NV_SATFINITE, the default of its __nv_fp8_e4m3/e5m2 constructors, which
// Transformer Engine's casts go through): one rule for both formats, so E5M2 never produces its
// inf either. Saturation here is not silence:
// precision/scaling.hpp counts every value that saturated.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace slm::precision {

enum class Fp8Format { e4m3, e5m2 };

// The shape of a format: what encode and decode need, and the limits a test or a scale reads.
struct Fp8Traits {
    int mantissa_bits;    // stored fraction bits
    int bias;             // exponent bias
    bool has_inf;         // E5M2: all-ones exponent is inf/NaN; E4M3: only S.1111.111 is NaN
    uint8_t max_code;     // magnitude code of the largest finite value (sign bit clear)
    uint8_t nan_code;     // the NaN written (sign kept); CUDA writes the same for a quiet NaN
    float max_finite;     // 448 or 57344
    float min_normal;     // 2^(1 - bias)
    float min_subnormal;  // 2^(1 - bias - mantissa_bits)
};

constexpr Fp8Traits fp8_traits(Fp8Format format) {
    if (format == Fp8Format::e4m3)
        return {3, 7, false, 0x7E, 0x7F, 448.0f, 0x1p-6f, 0x1p-9f};
    return {2, 15, true, 0x7B, 0x7E, 57344.0f, 0x1p-14f, 0x1p-16f};
}

constexpr const char* fp8_name(Fp8Format format) {
    return format == Fp8Format::e4m3 ? "e4m3" : "e5m2";
}

constexpr float fp8_max_finite(Fp8Format format) { return fp8_traits(format).max_finite; }

// True for every code that decodes to NaN (E4M3: two codes; E5M2: six).
constexpr bool fp8_is_nan(uint8_t code, Fp8Format format) {
    const Fp8Traits t = fp8_traits(format);
    const uint8_t magnitude = code & 0x7F;
    if (!t.has_inf) return magnitude == 0x7F;
    const uint8_t exponent_all_ones = static_cast<uint8_t>(0x7F & ~((1 << t.mantissa_bits) - 1));
    return (magnitude & exponent_all_ones) == exponent_all_ones &&
           (magnitude & ~exponent_all_ones) != 0;
}

inline float from_fp8(uint8_t code, Fp8Format format) {
    const Fp8Traits t = fp8_traits(format);
    const bool negative = (code & 0x80) != 0;
    const int magnitude = code & 0x7F;
    const int exponent = magnitude >> t.mantissa_bits;
    const int mantissa = magnitude & ((1 << t.mantissa_bits) - 1);
    float value;
    if (fp8_is_nan(code, format)) {
        value = std::numeric_limits<float>::quiet_NaN();
    } else if (t.has_inf && exponent == (0x7F >> t.mantissa_bits)) {
        value = std::numeric_limits<float>::infinity();
    } else if (exponent == 0) {
        // Subnormal: no implicit one, the exponent of the smallest normal binade.
        value = std::ldexp(static_cast<float>(mantissa), 1 - t.bias - t.mantissa_bits);
    } else {
        value = std::ldexp(static_cast<float>(mantissa + (1 << t.mantissa_bits)),
                           exponent - t.bias - t.mantissa_bits);
    }
    return negative ? -value : value;
}

inline uint8_t to_fp8(float x, Fp8Format format) {
    const Fp8Traits t = fp8_traits(format);
    const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
    if (std::isnan(x)) return sign | t.nan_code;
    const float a = std::fabs(x);
    if (std::isinf(a)) return sign | t.max_code;
    if (a == 0.0f) return sign;

    // The binade of a, clamped below to the smallest normal one: subnormals share its quantum.
    int frexp_exponent;
    (void)std::frexp(a, &frexp_exponent);  // a = m * 2^frexp_exponent, m in [0.5, 1)
    const int exponent = std::max(frexp_exponent - 1, 1 - t.bias);
    // a in units of the binade's quantum 2^(exponent - mantissa_bits), below 2^(mantissa_bits+1):
    // a power-of-two scaling of a float that cannot underflow, so it and its fraction are exact.
    const float units = std::ldexp(a, t.mantissa_bits - exponent);
    const float whole = std::floor(units);
    const float fraction = units - whole;
    int64_t n = static_cast<int64_t>(whole);
    if (fraction > 0.5f || (fraction == 0.5f && (n & 1) != 0)) ++n;

    // For a normal binade n counts the implicit one too, so adding it to the binade's base code
    // lands on the right exponent field; a carry to 2^(mantissa_bits+1) moves to the next binade,
    // and a subnormal that rounds up to 2^mantissa_bits becomes the smallest normal, both for
    // free. The parity of n is the parity of the code: ties to even on n are ties to even code.
    const int64_t code = (static_cast<int64_t>(exponent + t.bias - 1) << t.mantissa_bits) + n;
    if (code > t.max_code) return sign | t.max_code;
    return static_cast<uint8_t>(sign | code);
}

inline uint8_t to_e4m3(float x) { return to_fp8(x, Fp8Format::e4m3); }
inline uint8_t to_e5m2(float x) { return to_fp8(x, Fp8Format::e5m2); }
inline float from_e4m3(uint8_t code) { return from_fp8(code, Fp8Format::e4m3); }
inline float from_e5m2(uint8_t code) { return from_fp8(code, Fp8Format::e5m2); }

// x rounded to the nearest value of the format (saturated, NaN kept), back as a float.
inline float round_fp8(float x, Fp8Format format) { return from_fp8(to_fp8(x, format), format); }
inline float round_e4m3(float x) { return round_fp8(x, Fp8Format::e4m3); }
inline float round_e5m2(float x) { return round_fp8(x, Fp8Format::e5m2); }

}  // namespace slm::precision
