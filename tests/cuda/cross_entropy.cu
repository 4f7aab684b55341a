// include/slm/cuda/cross_entropy.cuh vs cpu/cross_entropy.hpp in double on the same bf16 x and W.
// Tolerances: the GPU rounds logits to bf16 before the softmax (as the fused design specifies),
// so the loss is within 1e-2 relative; dx (bf16) within 1e-2; dW is accumulated in fp32 but from
// bf16-rounded dlogits, so its increment is within 1e-2 too (bf16 tolerance, not fp32). Counts
// are exact. Chunks smaller than, equal to and larger than the rows; vocab odd (scalar path,
// odd GEMM row strides) and a multiple of 8 (vector path); ignored targets; loss only; every
// target ignored; an out-of-range target throws.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/core/random.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

namespace {

struct Problem {
    int64_t n, d, vocab;
    std::vector<double> x, w;
    std::vector<int32_t> targets;
    Problem(int64_t n_, int64_t d_, int64_t vocab_) : n(n_), d(d_), vocab(vocab_) {
        x = to_double(to_bf16(random_vector<double>(n * d, 1)));
        w = to_double(to_bf16(random_vector<double>(vocab * d, 2, 0.3)));  // logits ~ N(0, 1.5²)
        targets.resize(n);
        for (int64_t i = 0; i < n; ++i)
            targets[i] = static_cast<int32_t>(slm::splitmix64(i + 7) % vocab);
        targets[2] = targets[n / 2] = targets[n - 1] = slm::ignore_index;
    }
};

}  // namespace

TEST_CASE("fused LM head + cross-entropy matches the CPU reference") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const double grad_scale = 0.75;
    for (int64_t vocab : {1001, 1024}) {
        for (int64_t d : {200, 37}) {
            for (int64_t chunk : {16, 37, 1000}) {
                CAPTURE(vocab);
                CAPTURE(d);
                CAPTURE(chunk);
                const Problem p(37, d, vocab);
                const auto dw0 = to_double(to_float(random_vector<double>(vocab * d, 3, 0.01)));
                std::vector<double> logits(chunk * vocab), dx_ref(p.n * d), dw_ref = dw0;
                const auto ref = slm::cpu::lm_head_cross_entropy(
                    p.x.data(), p.w.data(), p.targets.data(), p.n, d, vocab, logits.data(), chunk,
                    grad_scale, dx_ref.data(), dw_ref.data());

                auto dx_in = to_device(backend, to_bf16(p.x));
                auto dw_in = to_device(backend, to_bf16(p.w));
                auto dt = to_device(backend, p.targets);
                auto scratch = backend.allocate<std::byte>(chunk * vocab * 2);
                auto dx = to_device(backend, to_bf16(std::vector<double>(p.n * d, 5.0)));
                auto dw = to_device(backend, to_float(dw0));
                const auto got = backend.lm_head_cross_entropy(
                    dx_in.data(), dw_in.data(), dt.data(), p.n, d, vocab, scratch.data(), chunk,
                    grad_scale, dx.data(), dw.data());
                CHECK(got.counted == ref.counted);
                CHECK(got.counted == p.n - 3);
                CHECK(std::abs(got.mean - ref.mean) / ref.mean < 1e-2);
                CHECK(relative_error(to_double(to_host(backend, dx)), dx_ref) < 1e-2);
                const auto dw_got = to_double(to_host(backend, dw));
                std::vector<double> inc_got(dw_got.size()), inc_ref(dw_got.size());
                for (size_t k = 0; k < dw_got.size(); ++k) {
                    inc_got[k] = dw_got[k] - dw0[k];
                    inc_ref[k] = dw_ref[k] - dw0[k];
                }
                CHECK(relative_error(inc_got, inc_ref) < 1e-2);

                // Loss only: the same loss, dW untouched.
                const auto loss_only = backend.lm_head_cross_entropy(
                    dx_in.data(), dw_in.data(), dt.data(), p.n, d, vocab, scratch.data(), chunk,
                    grad_scale, nullptr, dw.data());
                CHECK(loss_only.mean == got.mean);
                CHECK(to_double(to_host(backend, dw)) == dw_got);
            }
        }
    }
}

TEST_CASE("cross-entropy: every target ignored gives count 0, loss 0 and a zero dx") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    Problem p(37, 40, 101);
    std::fill(p.targets.begin(), p.targets.end(), slm::ignore_index);
    auto dx_in = to_device(backend, to_bf16(p.x));
    auto dw_in = to_device(backend, to_bf16(p.w));
    auto dt = to_device(backend, p.targets);
    auto scratch = backend.allocate<std::byte>(16 * 101 * 2);
    auto dx = to_device(backend, to_bf16(std::vector<double>(37 * 40, 5.0)));
    auto dw = backend.allocate<float>(101 * 40);
    const auto got =
        backend.lm_head_cross_entropy(dx_in.data(), dw_in.data(), dt.data(), 37, 40, 101,
                                      scratch.data(), 16, 1.0, dx.data(), dw.data());
    CHECK(got.counted == 0);
    CHECK(got.mean == 0.0);
    for (double v : to_double(to_host(backend, dx))) REQUIRE(v == 0.0);
    for (float v : to_host(backend, dw)) REQUIRE(v == 0.0f);
}

TEST_CASE("cross-entropy: a target outside the vocabulary throws, naming its position") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    Problem p(37, 40, 101);
    p.targets[5] = 101;
    p.targets[9] = -3;
    auto dx_in = to_device(backend, to_bf16(p.x));
    auto dw_in = to_device(backend, to_bf16(p.w));
    auto dt = to_device(backend, p.targets);
    auto scratch = backend.allocate<std::byte>(37 * 101 * 2);
    auto dx = backend.allocate<bf16>(37 * 40);
    auto dw = backend.allocate<float>(101 * 40);
    std::string message;
    CHECK(throws_error_containing(
        [&] {
            backend.lm_head_cross_entropy(dx_in.data(), dw_in.data(), dt.data(), 37, 40, 101,
                                          scratch.data(), 37, 1.0, dx.data(), dw.data());
        },
        "target id 101 at position 5", &message));
    CAPTURE(message);
    CHECK(message.find("[0, 101)") != std::string::npos);
    // The backend stays usable once the error is handled.
    p.targets[5] = 1;
    p.targets[9] = 2;
    backend.upload(dt.data(), p.targets.data(), 37);
    const auto ok = backend.lm_head_cross_entropy(dx_in.data(), dw_in.data(), dt.data(), 37, 40,
                                                  101, scratch.data(), 37, 1.0, nullptr, dw.data());
    CHECK(ok.counted == 34);
}

// The two row kernels behind the vector path: the row held in registers (vocab up to
// ce_row_register_capacity, one, two or four 16-byte packs per thread) and the three-pass kernel
// (any vocab). Each is checked against the CPU reference, and they against each other.
TEST_CASE("cross-entropy row kernels: in registers (1, 2, 4 packs) and in three passes") {
    if (!gpu_available()) return;
    namespace cu = slm::cuda;
    slm::cuda::Backend backend;  // for uploads and downloads
    cu::Gemm gemm;
    cu::Workspace workspace;
    cu::DeviceBuffer<cu::DeviceReport> report(1);
    const int64_t n = 37, d = 40, chunk = 16;
    const double grad_scale = 0.5;
    // 1024 and 5000 → 1 pack per thread, 9000 → 2, 20000 → 4; 40000 is beyond the registers.
    for (int64_t vocab : {1024, 5000, 9000, 20000, 40000}) {
        CAPTURE(vocab);
        const Problem p(n, d, vocab);
        std::vector<double> logits(chunk * vocab), dx_ref(n * d), dw_ref(vocab * d, 0.0);
        const auto ref = slm::cpu::lm_head_cross_entropy(p.x.data(), p.w.data(), p.targets.data(),
                                                         n, d, vocab, logits.data(), chunk,
                                                         grad_scale, dx_ref.data(), dw_ref.data());
        auto x = to_device(backend, to_bf16(p.x));
        auto w = to_device(backend, to_bf16(p.w));
        auto targets = to_device(backend, p.targets);
        auto scratch = backend.allocate<std::byte>(chunk * vocab * 2);
        std::vector<double> losses, dxs[2], dws[2];
        for (bool three_passes : {false, true}) {
            CAPTURE(three_passes);
            const cu::DeviceReport fresh{};
            backend.upload(report.data(), &fresh, 1);
            auto dx = backend.allocate<bf16>(n * d);
            auto dw = to_device(backend, std::vector<float>(static_cast<size_t>(vocab * d), 0.0f));
            cu::lm_head_cross_entropy(gemm, x.data(), w.data(), targets.data(), n, d, vocab,
                                      scratch.data(), chunk, grad_scale, dx.data(), dw.data(),
                                      report.data(), workspace, backend.stream(), three_passes);
            cu::DeviceReport r{};
            backend.download(&r, report.data(), 1);
            REQUIRE(r.counted == n - 3);
            const double mean = r.loss_sum / r.counted;
            CHECK(std::abs(mean - ref.mean) / ref.mean < 1e-2);
            dxs[three_passes] = to_double(to_host(backend, dx));
            dws[three_passes] = to_double(to_host(backend, dw));
            CHECK(relative_error(dxs[three_passes], dx_ref) < 1e-2);
            CHECK(relative_error(dws[three_passes], dw_ref) < 1e-2);
            losses.push_back(mean);
        }
        // The same sums in another order: fp32 rounding apart, and bf16 dlogits a rounding apart.
        CHECK(std::abs(losses[0] - losses[1]) / losses[1] < 1e-5);
        CHECK(relative_error(dxs[0], dxs[1]) < 2e-3);
        CHECK(relative_error(dws[0], dws[1]) < 2e-3);
    }
}
