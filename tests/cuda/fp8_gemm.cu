// include/slm/cuda/fp8_gemm.cuh against the CPU emulation (precision::emulated_gemm): the same FP8
// codes and scales on both sides, c = a · bᵀ / (a_scale · b_scale), a (m, k), b (n, k), c (m, n)
// row-major; E4M3 × E4M3 (the forward) and E5M2 × E4M3 (a gradient times the weights), bf16 and
// fp32 output, with and without fast accumulation, on shapes of a small model's linear layers
// and odd ones. The emulation is (nearly) the exact value of the quantized product, so what is
// left is the GPU's accumulation (and, for bf16, the output's rounding): normwise relative error
// below 2e-3 (fp32 out) or 1e-2 (bf16 out); a wrong layout, transpose or scale is off by O(1).
// The operands are cast on the GPU (fp8_cast.cuh) from bf16 data, their scales from their amax.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_cast.cuh"
#include "slm/cuda/fp8_gemm.cuh"
#include "slm/precision/scaling.hpp"

using namespace slm::test;
using slm::precision::Fp8Format;

namespace {

// A bf16 tensor cast to FP8 on the device, and the same codes and scale on the host.
struct Operand {
    slm::cuda::DeviceBuffer<uint8_t> codes;
    slm::cuda::DeviceBuffer<float> scale;  // [amax, scale]
    slm::precision::Quantized host;
};

Operand cast(slm::cuda::Backend& backend, int64_t n, uint64_t seed, double spread, Fp8Format format) {
    const auto values = to_bf16(random_vector<double>(n, seed, spread));
    auto x = to_device(backend, values);
    Operand o{backend.allocate<uint8_t>(n), backend.allocate<float>(2), {}};
    auto counts = backend.allocate<slm::cuda::Fp8CastCounts>(1);
    slm::cuda::fp8_amax(x.data(), n, o.scale.data(), backend.stream());
    slm::cuda::fp8_scale(o.scale.data(), format, 0, o.scale.data() + 1, backend.stream());
    slm::cuda::fp8_cast(x.data(), n, o.scale.data() + 1, format, o.codes.data(), counts.data(), backend.stream());
    o.host.codes = to_host(backend, o.codes);
    o.host.scale = to_host(backend, o.scale)[1];
    o.host.format = format;
    return o;
}

template <class C>
std::vector<double> run(slm::cuda::Backend& backend, slm::cuda::Fp8Gemm& gemm, const Operand& a,
                        const Operand& b, int64_t m, int64_t n, int64_t k, bool fast) {
    auto c = backend.allocate<C>(m * n);
    gemm(backend.stream(), a.codes.data(), a.host.format, a.scale.data() + 1, b.codes.data(), b.host.format,
         b.scale.data() + 1, c.data(), m, n, k, fast);
    return to_double(to_host(backend, c));
}

}  // namespace

TEST_CASE("fp8 gemm on the GPU equals the CPU emulation of the same codes and scales") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    slm::cuda::Fp8Gemm gemm;
    struct Shape {
        int64_t m, n, k;
    };
    // A 768-wide model's qkv and FFN projections at 256 tokens, and shapes that fill no tile.
    for (const Shape s : {Shape{256, 2304, 768}, Shape{256, 768, 2048}, Shape{100, 48, 32}, Shape{1, 16, 16},
                          Shape{333, 160, 528}})
        for (const auto& [fa, fb] : {std::pair{Fp8Format::e4m3, Fp8Format::e4m3},
                                     std::pair{Fp8Format::e5m2, Fp8Format::e4m3}}) {
            CAPTURE(s.m);
            CAPTURE(s.n);
            CAPTURE(s.k);
            CAPTURE(static_cast<int>(fa));
            // Activations of a few units, weights of 0.02 (an initialised layer's scale).
            const Operand a = cast(backend, s.m * s.k, 7 + s.m, 2.0, fa);
            const Operand b = cast(backend, s.n * s.k, 9 + s.n, 0.02, fb);
            const auto emulated = slm::precision::emulated_gemm(a.host, b.host, s.m, s.n, s.k);
            const std::vector<double> want(emulated.begin(), emulated.end());
            for (const bool fast : {false, true}) {
                CAPTURE(fast);
                const double e32 = relative_error(run<float>(backend, gemm, a, b, s.m, s.n, s.k, fast), want);
                const double e16 = relative_error(run<bf16>(backend, gemm, a, b, s.m, s.n, s.k, fast), want);
                CAPTURE(e32);
                CAPTURE(e16);
                CHECK(e32 < 2e-3);
                CHECK(e16 < 1e-2);
            }
        }
}

TEST_CASE("fp8 gemm on the GPU refuses shapes and formats cuBLASLt's FP8 kernels cannot take") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    slm::cuda::Fp8Gemm gemm;
    auto a = backend.allocate<uint8_t>(64 * 64), b = backend.allocate<uint8_t>(64 * 64);
    auto scale = backend.allocate<float>(1);
    auto c = backend.allocate<float>(64 * 64);
    CHECK(throws_error_containing(
        [&] { gemm(backend.stream(), a.data(), Fp8Format::e4m3, scale.data(), b.data(), Fp8Format::e4m3,
                   scale.data(), c.data(), 8, 8, 24); },
        "multiples of 16"));
    CHECK(throws_error_containing(
        [&] { gemm(backend.stream(), a.data(), Fp8Format::e5m2, scale.data(), b.data(), Fp8Format::e5m2,
                   scale.data(), c.data(), 16, 16, 16); },
        "E5M2 x E5M2"));
}
