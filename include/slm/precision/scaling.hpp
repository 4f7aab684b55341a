#pragma once
// Per-tensor scaling for FP8 training, on the CPU: a tensor's amax, the scale that maps it onto
// the format's range, the quantize/dequantize pair that counts what the format could not hold,
// and the GEMM of two quantized operands that the GPU's FP8 GEMMs (cuBLASLt) are tested against.
//
// Convention (Transformer Engine's): the stored codes are fp8(x * scale), and a value is read
// back as from_fp8(code) / scale. A GEMM of two quantized operands multiplies the decoded codes
// and divides by both scales once at the end, which is what cuBLASLt does with its A/B scale
// pointers (there the inverse scales, multiplied in).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/precision/fp8.hpp"

namespace slm::precision {

// What one cast did to its input; counted, never silently clamped, so a training run can
// report per layer that no scale overflowed or underflowed. Adds up over tensors and steps.
struct CastStats {
    int64_t count = 0;      // values cast
    int64_t overflow = 0;   // |x * scale| > max finite (inf included): saturated to +-max
    int64_t underflow = 0;  // finite x != 0 whose x * scale rounded to +-0
    int64_t nan = 0;        // NaN inputs (cast to NaN, not counted as overflow)

    CastStats& operator+=(const CastStats& other) {
        count += other.count;
        overflow += other.overflow;
        underflow += other.underflow;
        nan += other.nan;
        return *this;
    }
    bool clean() const { return overflow == 0 && underflow == 0 && nan == 0; }
};

// A tensor in FP8: its codes, the scale they were cast with, and what the cast lost.
struct Quantized {
    std::vector<uint8_t> codes;
    float scale = 1.0f;
    Fp8Format format = Fp8Format::e4m3;
    CastStats stats;
};

// max |x|. NaN if any element is NaN: a NaN must reach scale_for (which then keeps scale 1) and
// the cast (which keeps it NaN and counts it), not vanish inside a max that skips it.
inline float amax(std::span<const float> x) {
    float result = 0.0f;
    for (float v : x) {
        if (std::isnan(v)) return std::numeric_limits<float>::quiet_NaN();
        result = std::max(result, std::fabs(v));
    }
    return result;
}

// The scale that puts amax at the format's largest finite value, 2^margin below it with a
// margin (headroom for delayed scaling, where the next tensor's amax may be larger):
// scale = max_finite / amax / 2^margin.
//
// amax 0 (an all-zero tensor) or not finite (inf or NaN: the step has already diverged) gives
// scale 1: any scale holds zeros exactly, and a scale computed from inf or NaN would be 0 or NaN
// and wipe out the tensor's finite values too; with 1 they pass through and the cast's counters
// report the inf and NaN. A quotient beyond float's range is clamped to [FLT_MIN, FLT_MAX] for
// the same reason (Transformer Engine clamps an infinite scale to FLT_MAX).
//
// The float quotient can round up by one ulp, so that amax * scale lands just above max_finite
// and the cast would count amax itself as an overflow: the scale is stepped down until it fits.
inline float scale_for(float amax_value, Fp8Format format, int margin = 0) {
    require(margin >= 0, "scale_for: margin must be >= 0 (it divides the scale by 2^margin)");
    if (!std::isfinite(amax_value) || !(amax_value > 0.0f)) return 1.0f;
    const float max_finite = fp8_max_finite(format);
    const double quotient = static_cast<double>(max_finite) / static_cast<double>(amax_value) /
                            std::ldexp(1.0, margin);
    constexpr double lowest = std::numeric_limits<float>::min();
    constexpr double highest = std::numeric_limits<float>::max();
    float scale = static_cast<float>(std::clamp(quotient, lowest, highest));
    while (scale > std::numeric_limits<float>::min() && amax_value * scale > max_finite)
        scale = std::nextafter(scale, 0.0f);
    return scale;
}

// Casts x * scale to the format into out (same length), adding what it lost to stats.
inline void quantize_into(std::span<const float> in, float scale, Fp8Format format,
                          std::span<uint8_t> out, CastStats& stats) {
    require(in.size() == out.size(), "quantize: input and output lengths differ");
    require(std::isfinite(scale) && scale > 0.0f, "quantize: scale must be finite and > 0");
    const float max_finite = fp8_max_finite(format);
    for (size_t i = 0; i < in.size(); ++i) {
        const float x = in[i];
        const float y = x * scale;  // in float, as the GPU cast computes it
        const uint8_t code = to_fp8(y, format);
        out[i] = code;
        if (std::isnan(x)) {
            ++stats.nan;
        } else if (!(std::fabs(y) <= max_finite)) {
            ++stats.overflow;
        } else if (x != 0.0f && (code & 0x7F) == 0) {
            ++stats.underflow;
        }
    }
    stats.count += static_cast<int64_t>(in.size());
}

inline Quantized quantize(std::span<const float> in, float scale, Fp8Format format) {
    Quantized q;
    q.codes.resize(in.size());
    q.scale = scale;
    q.format = format;
    quantize_into(in, scale, format, q.codes, q.stats);
    return q;
}

// from_fp8(code) / scale, rounded to float. Nothing is counted here: what the format could not
// hold was counted by the cast on the way in.
inline std::vector<float> dequantize(std::span<const uint8_t> codes, float scale,
                                     Fp8Format format) {
    require(std::isfinite(scale) && scale > 0.0f, "dequantize: scale must be finite and > 0");
    std::vector<float> out(codes.size());
    for (size_t i = 0; i < codes.size(); ++i) out[i] = from_fp8(codes[i], format) / scale;
    return out;
}

inline std::vector<float> dequantize(const Quantized& q) {
    return dequantize(q.codes, q.scale, q.format);
}

// The FP8 GEMM of a linear layer, emulated: c = dequant(a) · dequant(b)ᵀ.
//
// Layout as PyTorch's Linear, y = x · Wᵀ, everything row-major:
//   a: (m, k), the activations x;
//   b: (n, k), the weight W as stored, (out, in);
//   c: (m, n), fp32.
// Both operands are contiguous along k: the one layout Hopper's FP8 GEMMs take ("TN" in
// cuBLASLt's column-major terms), so a GPU test hands the same buffers to both. The backward
// GEMMs take this form once their operands are stored k-contiguous, as Transformer Engine does:
// dgrad dY (m, out) with Wᵀ (in, out); wgrad dYᵀ (out, m) with xᵀ (in, m).
//
// Each product of two decoded codes is exact in float (at most 4 x 4 significant bits, exponents
// well inside float's range); the products are summed in double and divided by the product of
// the scales in double, then rounded to float once. The result is thus (nearly) the exact value
// of the quantized product, independent of summation order: a GPU that accumulates in fp32 (or
// in fewer bits, with cuBLASLt's fast accumulation) differs from it by its own accumulation error.
inline std::vector<float> emulated_gemm(const Quantized& a, const Quantized& b, int64_t m,
                                        int64_t n, int64_t k) {
    require(m >= 0 && n >= 0 && k >= 0, "emulated_gemm: negative dimension");
    require(static_cast<int64_t>(a.codes.size()) == m * k, "emulated_gemm: a is not (m, k)");
    require(static_cast<int64_t>(b.codes.size()) == n * k, "emulated_gemm: b is not (n, k)");
    require(std::isfinite(a.scale) && a.scale > 0.0f && std::isfinite(b.scale) && b.scale > 0.0f,
            "emulated_gemm: scales must be finite and > 0");
    // Decoding through a 256-entry table keeps the inner loop a multiply-add.
    float decode_a[256], decode_b[256];
    for (int code = 0; code < 256; ++code) {
        decode_a[code] = from_fp8(static_cast<uint8_t>(code), a.format);
        decode_b[code] = from_fp8(static_cast<uint8_t>(code), b.format);
    }
    // Exact in double (24 + 24 significant bits), so dividing by it rounds once.
    const double scales = static_cast<double>(a.scale) * static_cast<double>(b.scale);
    std::vector<float> c(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i) {
        const uint8_t* a_row = a.codes.data() + i * k;  // (k)
        for (int64_t j = 0; j < n; ++j) {
            const uint8_t* b_row = b.codes.data() + j * k;  // (k)
            double sum = 0.0;
            for (int64_t p = 0; p < k; ++p) sum += decode_a[a_row[p]] * decode_b[b_row[p]];
            c[static_cast<size_t>(i * n + j)] = static_cast<float>(sum / scales);
        }
    }
    return c;
}

}  // namespace slm::precision
