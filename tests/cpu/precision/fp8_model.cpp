// The FP8 precision policy on the CPU (cpu/fp8_linear.hpp): its linear layers against the
// double-accumulating reference (precision/fp8_linear.hpp), and a model trained with it against
// the same model in fp32: the loss held, every cast counted, nothing overflowed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/bigram_training.hpp"
#include "common/compare.hpp"
#include "slm/core/random.hpp"
#include "slm/cpu/fp8_linear.hpp"
#include "slm/precision/fp8_linear.hpp"
#include "slm/slm.hpp"
#include "slm/train/memory_estimate.hpp"

namespace {

using Cpu = slm::cpu::Backend<float>;
using Fp8Kernel = slm::precision::LinearKernel<slm::precision::Fp8, Cpu>;

std::vector<float> normal(int64_t n, uint64_t seed, double scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        v[static_cast<size_t>(i)] = static_cast<float>(scale * slm::normal(seed, static_cast<uint64_t>(i)));
    return v;
}

}  // namespace

TEST_CASE("fp8 policy, CPU: the linear layer's three GEMMs equal the reference's, and its casts are counted") {
    const int64_t n = 48, in = 64, out = 80;
    const auto x = normal(n * in, 11, 1.5), w = normal(out * in, 12, 0.02), dy = normal(n * out, 13, 1e-4);
    Cpu backend;
    Fp8Kernel kernel(backend, 2);
    const slm::precision::LinearSite site{1, slm::precision::Projection::gate_up};
    std::vector<float> y(static_cast<size_t>(n * out)), dx(static_cast<size_t>(n * in)),
        dw(static_cast<size_t>(out * in), 0.0f);
    kernel.forward(backend, site, x.data(), w.data(), y.data(), n, in, out);
    kernel.backward(backend, site, x.data(), w.data(), dy.data(), dx.data(), dw.data(), n, in, out);

    slm::precision::Fp8LinearFormats formats;
    slm::precision::Fp8LinearStats stats;
    const auto y_ref = slm::precision::fp8_linear_forward(x, w, n, out, in, formats, stats);
    const auto g_ref = slm::precision::fp8_linear_backward(x, w, dy, n, out, in, formats, stats);
    // The same codes; only the accumulation differs (fp32 here, double there).
    CHECK(slm::test::relative_error(y, y_ref) < 1e-5);
    CHECK(slm::test::relative_error(dx, g_ref.dx) < 1e-5);
    CHECK(slm::test::relative_error(dw, g_ref.dw) < 1e-5);

    // dw accumulates; dx alone and dw alone (the recompute path's split backward) give the same.
    std::vector<float> dx2(dx.size()), dw2(dw.size(), 0.0f);
    kernel.backward(backend, site, nullptr, w.data(), dy.data(), dx2.data(), nullptr, n, in, out);
    kernel.backward(backend, site, x.data(), nullptr, dy.data(), nullptr, dw2.data(), n, in, out);
    kernel.backward(backend, site, x.data(), nullptr, dy.data(), nullptr, dw2.data(), n, in, out);
    CHECK(dx2 == dx);
    for (size_t i = 0; i < dw.size(); ++i) REQUIRE(dw2[i] == doctest::Approx(2.0 * dw[i]).epsilon(1e-6));

    const auto& report = kernel.cast_report();
    REQUIRE(report.size() == 8);
    const auto& r = report[static_cast<size_t>(site.index())];
    CHECK(site.index() == 6);
    CHECK(r.site == "layers.1.gate_up_proj");
    // x cast in forward, backward, and twice more; W once: the forward's codes serve the
    // backward and the dx-only call (the weights did not change).
    CHECK(r.x.count == 4 * n * in);
    CHECK(r.w.count == out * in);
    CHECK(r.dy.count == 4 * n * out);
    CHECK(r.x.overflow + r.w.overflow + r.dy.overflow == 0);
    CHECK(report[0].x.count == 0);  // other sites untouched

    // Changed weights are cast again: after weights_changed(), or when another W comes in.
    auto w2 = w;
    for (auto& v : w2) v *= -3.0f;
    std::vector<float> dx3(dx.size()), dx4(dx.size());
    kernel.backward(backend, site, nullptr, w2.data(), dy.data(), dx3.data(), nullptr, n, in, out);
    CHECK(kernel.cast_report()[static_cast<size_t>(site.index())].w.count == 2 * out * in);
    const auto g2 = slm::precision::fp8_linear_backward(x, w2, dy, n, out, in, formats, stats);
    CHECK(slm::test::relative_error(dx3, g2.dx) < 1e-5);
    std::copy(w.begin(), w.end(), w2.begin());  // the same pointer, new values
    kernel.weights_changed();
    kernel.backward(backend, site, nullptr, w2.data(), dy.data(), dx4.data(), nullptr, n, in, out);
    CHECK(dx4 == dx);
    CHECK(kernel.cast_report()[static_cast<size_t>(site.index())].w.count == 3 * out * in);
}

namespace {
slm::ModelConfig two_layers() {
    slm::ModelConfig c;
    c.name = "fp8_check";
    c.vocab = 96;
    c.hidden = 64;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 160;
    c.max_seq = 32;
    return c;
}
}  // namespace

TEST_CASE("fp8 policy, CPU: the memory estimate counts the FP8 layers' own buffers, bf16's none") {
    const slm::ModelConfig c = two_layers();
    using Plain = slm::Llama<Cpu, slm::attention::Flash>;
    using Fp8Model = Plain::with_precision<slm::precision::Fp8>;
    const auto plain = slm::estimate_memory<Plain>(c, 8, 32), fp8 = slm::estimate_memory<Fp8Model>(c, 8, 32);
    CHECK(plain.precision_buffers == 0);
    // Decoded W, 2 layers of qkv 64x128, o 64x64, gate_up 64x320 and down 160x64 floats; and a
    // backward's decoded dY and x at its widest projection, gate_up: 256 rows x (64 + 320) floats.
    CHECK(fp8.precision_buffers == 4 * (2 * (64 * 128 + 64 * 64 + 64 * 320 + 160 * 64) + 256 * (64 + 320)));
    CHECK(fp8.total() - plain.total() == fp8.precision_buffers);
}

TEST_CASE("fp8 policy, CPU: a model trained in FP8 holds fp32's loss, and no cast overflows") {
    const slm::ModelConfig c = two_layers();
    const int64_t batch = 8, seq = 32, steps = 80;
    auto train = [&]<class Precision>(std::type_identity<Precision>, auto&& report) {
        Cpu backend;
        typename slm::Llama<Cpu, slm::attention::Flash>::template with_precision<Precision> model(c, backend, 7);
        const double loss = slm::test::train_on_bigrams(model, backend, static_cast<float*>(nullptr), c.vocab, batch,
                                                        seq, steps, 8);
        report(model);
        return loss;
    };
    const double fp32 = train(std::type_identity<slm::precision::Bf16>{}, [](auto&) {});
    std::vector<slm::precision::LinearCastReport> casts;
    const double fp8 = train(std::type_identity<slm::precision::Fp8>{},
                             [&](auto& model) { casts = model.linear().cast_report(); });
    MESSAGE("held-out loss after " << steps << " steps: fp32 " << fp32 << ", fp8 " << fp8
                                   << " (ln vocab " << std::log(96.0) << ")");
    CHECK(fp32 < std::log(96.0) - 1.0);  // it learned
    CHECK(std::fabs(fp8 - fp32) / fp32 < 0.02);
    REQUIRE(casts.size() == 8);
    for (const auto& r : casts) {
        INFO(r.site);
        CHECK(r.x.count > 0);
        CHECK(r.dy.count > 0);
        CHECK(r.x.overflow + r.w.overflow + r.dy.overflow == 0);
        CHECK(r.x.nan + r.w.nan + r.dy.nan == 0);
    }
}
