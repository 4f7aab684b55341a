// include/slm/cuda/fp8_cast.cuh against the CPU reference (precision/scaling.hpp): the amax, the
// scale computed from it on the device, every code of the cast and its counts of overflow,
// underflow and NaN, bit for bit, for E4M3 and E5M2, with and without a margin, on lengths that
// fill no block, aligned and not; and the transposed cast (the TN GEMMs' k-contiguous operands) on
// shapes that fill no tile. Inputs: bf16 values over many binades, with exact zeros, values far below
// the format's range once scaled (underflow), and, cast with a scale from a smaller amax, values
// above it (overflow); a NaN in one case. The amax the casts take themselves (delayed scaling's)
// against the CPU's, and the delayed scale from a history of amaxes against its CPU rule.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/core/random.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_cast.cuh"
#include "slm/precision/delayed_scaling.hpp"
#include "slm/precision/scaling.hpp"

using namespace slm::test;
using slm::precision::Fp8Format;

namespace {

uint32_t float_bits(float x) {
    uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

// n bf16 values spread over 2^-40 .. 2^8 in magnitude, both signs; every 97th exactly zero.
std::vector<bf16> spread(int64_t n, uint64_t seed) {
    std::vector<bf16> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const double u = slm::uniform_open(seed, static_cast<uint64_t>(2 * i));
        const double w = slm::uniform_open(seed, static_cast<uint64_t>(2 * i + 1));
        const double x = (w < 0.5 ? -1.0 : 1.0) * std::ldexp(1.0 + u, static_cast<int>(w * 48.0) - 40);
        v[static_cast<size_t>(i)] = __float2bfloat16_rn(i % 97 == 0 ? 0.0f : static_cast<float>(x));
    }
    return v;
}

struct Gpu {
    uint32_t amax_bits = 0, scale_bits = 0, cast_amax_bits = 0;  // the last: taken by the cast itself
    std::vector<uint8_t> codes;
    slm::cuda::Fp8CastCounts counts;
};

// amax and scale from x on the device, then x cast with `cast_scale` (< 0: the device's scale).
// offset: x and the codes start that many elements into their buffers (1: the kernels' path for
// pointers too misaligned for wide loads and stores).
Gpu run(slm::cuda::Backend& backend, const std::vector<bf16>& x, Fp8Format format, int margin,
        float cast_scale, int64_t offset) {
    const auto n = static_cast<int64_t>(x.size());
    std::vector<bf16> shifted(static_cast<size_t>(offset), __float2bfloat16_rn(1e9f));  // never read
    shifted.insert(shifted.end(), x.begin(), x.end());
    auto in_buffer = to_device(backend, shifted);
    const bf16* in = in_buffer.data() + offset;
    auto stats = backend.allocate<float>(4);  // amax, scale, the scale the cast uses, the cast's amax
    auto out_buffer = backend.allocate<uint8_t>(n + offset);
    auto counts = backend.allocate<slm::cuda::Fp8CastCounts>(1);
    SLM_CUDA_CHECK(cudaMemsetAsync(counts.data(), 0, sizeof(slm::cuda::Fp8CastCounts), backend.stream()));
    SLM_CUDA_CHECK(cudaMemsetAsync(stats.data() + 3, 0, sizeof(float), backend.stream()));
    slm::cuda::fp8_amax(in, n, stats.data(), backend.stream());
    slm::cuda::fp8_scale(stats.data(), format, margin, stats.data() + 1, backend.stream());
    const float* used = stats.data() + 1;
    if (cast_scale > 0) {
        SLM_CUDA_CHECK(cudaMemcpyAsync(stats.data() + 2, &cast_scale, sizeof(float), cudaMemcpyHostToDevice,
                                       backend.stream()));
        used = stats.data() + 2;
    }
    slm::cuda::fp8_cast(in, n, used, format, out_buffer.data() + offset, counts.data(), backend.stream(),
                        stats.data() + 3);
    const auto s = to_host(backend, stats);
    const auto c = to_host(backend, counts);
    auto codes = to_host(backend, out_buffer);
    codes.erase(codes.begin(), codes.begin() + offset);
    return {float_bits(s[0]), float_bits(s[1]), float_bits(s[3]), codes, c[0]};
}

void compare(slm::cuda::Backend& backend, const std::vector<bf16>& x, Fp8Format format, int margin,
             float cast_scale = -1, int64_t offset = 0) {
    CAPTURE(x.size());
    CAPTURE(offset);
    CAPTURE(static_cast<int>(format));
    CAPTURE(margin);
    CAPTURE(cast_scale);
    std::vector<float> xf(x.size());
    for (size_t i = 0; i < x.size(); ++i) xf[i] = __bfloat162float(x[i]);
    const float amax = slm::precision::amax(xf);
    const float scale = slm::precision::scale_for(amax, format, margin);
    const float used = cast_scale > 0 ? cast_scale : scale;
    const auto cpu = slm::precision::quantize(xf, used, format);
    const Gpu gpu = run(backend, x, format, margin, cast_scale, offset);
    if (std::isnan(amax)) {
        CHECK(std::isnan(std::bit_cast<float>(gpu.amax_bits)));
        CHECK(std::isnan(std::bit_cast<float>(gpu.cast_amax_bits)));
    } else {
        CHECK(gpu.amax_bits == float_bits(amax));
        CHECK(gpu.cast_amax_bits == float_bits(amax));  // delayed scaling's amax, taken in the cast
    }
    CHECK(gpu.scale_bits == float_bits(scale));
    int64_t differ = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const bool both_nan = slm::precision::fp8_is_nan(cpu.codes[i], format) &&
                              slm::precision::fp8_is_nan(gpu.codes[i], format);
        differ += !both_nan && cpu.codes[i] != gpu.codes[i];
    }
    CHECK(differ == 0);
    CHECK(gpu.counts.overflow == static_cast<unsigned long long>(cpu.stats.overflow));
    CHECK(gpu.counts.underflow == static_cast<unsigned long long>(cpu.stats.underflow));
    CHECK(gpu.counts.nan == static_cast<unsigned long long>(cpu.stats.nan));
}

}  // namespace

TEST_CASE("fp8 cast on the GPU: amax, scale and every code equal the CPU reference, counts too") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (const Fp8Format format : {Fp8Format::e4m3, Fp8Format::e5m2})
        for (const int64_t n : {1, 255, 4099, 300001})
            for (const int margin : {0, 3}) compare(backend, spread(n, 11 + n), format, margin);
    // Misaligned by one element: the one-at-a-time kernels (the aligned lengths above take the
    // 8-wide ones, their n % 8 tails one at a time).
    for (const Fp8Format format : {Fp8Format::e4m3, Fp8Format::e5m2})
        compare(backend, spread(4099, 7), format, 0, -1, 1);
    // The spread's smallest values fall below E4M3's range at the device's own scale: underflow
    // is exercised, not just possible.
    const auto x = spread(4099, 5);
    std::vector<float> xf(x.size());
    for (size_t i = 0; i < x.size(); ++i) xf[i] = __bfloat162float(x[i]);
    const auto q = slm::precision::quantize(
        xf, slm::precision::scale_for(slm::precision::amax(xf), Fp8Format::e4m3), Fp8Format::e4m3);
    CHECK(q.stats.underflow > 0);
}

TEST_CASE("fp8 cast on the GPU: a scale too large saturates and counts, a NaN is kept and counted") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    auto x = spread(1000, 3);
    for (const Fp8Format format : {Fp8Format::e4m3, Fp8Format::e5m2}) {
        compare(backend, x, format, 0, 1e6f);  // 2^8 · 1e6 is beyond both formats: overflow
        auto with_nan = x;
        with_nan[17] = __float2bfloat16_rn(std::numeric_limits<float>::quiet_NaN());
        compare(backend, with_nan, format, 0);  // amax NaN → scale 1; the NaN cast and counted
    }
}

TEST_CASE("fp8 cast on the GPU, transposed: the codes of the plain cast in transposed places, the same counts") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    struct Shape {
        int64_t rows, cols;
    };
    // {256, 768}, {272, 776} and {48, 24} take the wide 64 x 64 kernel (rows % 16, cols % 8), the
    // last two with tiles that their edges cut; the rest the 32 x 32 one.
    for (const Shape sh : {Shape{1, 1}, Shape{33, 17}, Shape{256, 768}, Shape{272, 776}, Shape{48, 24},
                           Shape{100, 2048}, Shape{2049, 40}})
        for (const Fp8Format format : {Fp8Format::e4m3, Fp8Format::e5m2}) {
            CAPTURE(sh.rows);
            CAPTURE(sh.cols);
            CAPTURE(static_cast<int>(format));
            const int64_t n = sh.rows * sh.cols;
            const auto x = spread(n, 21 + n);
            std::vector<float> xf(x.size());
            for (size_t i = 0; i < x.size(); ++i) xf[i] = __bfloat162float(x[i]);
            const float scale = slm::precision::scale_for(slm::precision::amax(xf), format);
            const auto cpu = slm::precision::quantize(xf, scale, format);
            auto in = to_device(backend, x);
            auto s = to_device(backend, std::vector<float>{scale});
            auto out = backend.allocate<uint8_t>(n), plain = backend.allocate<uint8_t>(n);
            auto counts = backend.allocate<slm::cuda::Fp8CastCounts>(1);
            auto cast_amax = to_device(backend, std::vector<float>{0.0f});
            SLM_CUDA_CHECK(cudaMemsetAsync(out.data(), 0xAB, static_cast<size_t>(n), backend.stream()));
            SLM_CUDA_CHECK(cudaMemsetAsync(plain.data(), 0xAB, static_cast<size_t>(n), backend.stream()));
            SLM_CUDA_CHECK(cudaMemsetAsync(counts.data(), 0, sizeof(slm::cuda::Fp8CastCounts), backend.stream()));
            // With the plain output too (the backward's dY): both layouts from one pass.
            slm::cuda::fp8_cast_transpose(in.data(), sh.rows, sh.cols, s.data(), format, out.data(), counts.data(),
                                          backend.stream(), plain.data(), cast_amax.data());
            const auto got = to_host(backend, out);
            const auto got_plain = to_host(backend, plain);
            const auto c = to_host(backend, counts)[0];
            int64_t differ = 0, differ_plain = 0;
            for (int64_t r = 0; r < sh.rows; ++r)
                for (int64_t col = 0; col < sh.cols; ++col) {
                    const uint8_t want = cpu.codes[static_cast<size_t>(r * sh.cols + col)];
                    differ += got[static_cast<size_t>(col * sh.rows + r)] != want;
                    differ_plain += got_plain[static_cast<size_t>(r * sh.cols + col)] != want;
                }
            CHECK(differ == 0);
            CHECK(differ_plain == 0);
            CHECK(c.overflow == static_cast<unsigned long long>(cpu.stats.overflow));
            CHECK(c.underflow == static_cast<unsigned long long>(cpu.stats.underflow));
            CHECK(c.nan == 0);
            CHECK(float_bits(to_host(backend, cast_amax)[0]) == float_bits(slm::precision::amax(xf)));
        }
}

TEST_CASE("fp8 delayed scale on the GPU: the window's largest amax (NaN wins), its scale's bits, the slot cleared") {
    if (!gpu_available()) return;
    constexpr int length = slm::precision::amax_history_length;
    slm::cuda::Backend backend;
    std::vector<float> history(length);
    for (int i = 0; i < length; ++i) history[static_cast<size_t>(i)] = std::ldexp(1.0f + 0.37f * i, (i * 7) % 13 - 6);
    auto with_nan = history;
    with_nan[5] = std::numeric_limits<float>::quiet_NaN();
    for (const auto& h : {history, with_nan})
        for (const Fp8Format format : {Fp8Format::e4m3, Fp8Format::e5m2})
            for (const int window : {1, 5, 6, 11, length}) {
                const int slot = window % length;
                CAPTURE(window);
                CAPTURE(static_cast<int>(format));
                auto d = to_device(backend, h);
                auto scale = backend.allocate<float>(1);
                slm::cuda::fp8_delayed_scale(d.data(), window, slot, format, scale.data(), backend.stream());
                const float want = slm::precision::scale_for(slm::precision::history_amax(h.data(), window), format,
                                                             slm::precision::delayed_scaling_margin);
                CHECK(float_bits(to_host(backend, scale)[0]) == float_bits(want));
                const auto after = to_host(backend, d);
                CHECK(after[static_cast<size_t>(slot)] == 0.0f);
            }
}
