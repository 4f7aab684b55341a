// The FP8 precision policy's linear layers on the GPU (cuda/fp8_linear.cuh) against the same
// layers on the CPU (cpu/fp8_linear.hpp) from the same bf16 values: the same codes and scales on
// both sides, so what differs is the GPU's accumulation and its bf16 outputs (normwise relative
// error below 1e-2 for y and dx, 2e-3 for the fp32 dW); a wrong transpose or scale is off by O(1).
// Also: the counts match the CPU's exactly, a shape the FP8 GEMMs do not take runs in bf16 and
// is counted, and a small model trained in FP8 holds its bf16 loss.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/bigram_training.hpp"
#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cpu/fp8_linear.hpp"
#include "slm/cuda/attention.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_linear.cuh"
#include "slm/slm.hpp"

using namespace slm::test;
using slm::precision::Fp8;
using slm::precision::LinearKernel;
using slm::precision::LinearSite;
using slm::precision::Projection;

namespace {

struct Result {
    std::vector<double> y, dx, dw;
    std::vector<slm::precision::LinearCastReport> report;
};

// Each call of `scales` is one forward and backward with x and dy multiplied by its factors, so
// that the delayed scales (the history of earlier calls' amaxes) differ from the tensors' own;
// y and dx are the last call's, dw the sum over the calls.
struct Call {
    float x = 1.0f, dy = 1.0f;
};

std::vector<bf16> times(const std::vector<bf16>& v, float f) {
    std::vector<bf16> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16_rn(f * __bfloat162float(v[i]));
    return out;
}

Result on_gpu(const std::vector<bf16>& x, const std::vector<bf16>& w, const std::vector<bf16>& dy, int64_t n,
              int64_t in, int64_t out, const std::vector<Call>& calls = {Call{}}) {
    slm::cuda::Backend backend;
    LinearKernel<Fp8, slm::cuda::Backend> kernel(backend, 1);
    const LinearSite site{0, Projection::qkv};  // site 0: what the tests read, report[0]
    auto wd = to_device(backend, w);
    auto y = backend.allocate<bf16>(n * out), dx = backend.allocate<bf16>(n * in);
    auto dw = backend.allocate<float>(out * in);
    SLM_CUDA_CHECK(cudaMemsetAsync(dw.data(), 0, static_cast<size_t>(dw.bytes()), backend.stream()));
    for (const Call& c : calls) {
        auto xd = to_device(backend, times(x, c.x)), dyd = to_device(backend, times(dy, c.dy));
        kernel.forward(backend, site, xd.data(), wd.data(), y.data(), n, in, out);
        kernel.backward(backend, site, xd.data(), wd.data(), dyd.data(), dx.data(), dw.data(), n, in, out);
        backend.synchronize();  // xd and dyd go at the end of this iteration
    }
    return {to_double(to_host(backend, y)), to_double(to_host(backend, dx)), to_double(to_host(backend, dw)),
            kernel.cast_report()};
}

Result on_cpu(const std::vector<bf16>& x, const std::vector<bf16>& w, const std::vector<bf16>& dy, int64_t n,
              int64_t in, int64_t out, const std::vector<Call>& calls = {Call{}}) {
    slm::cpu::Backend<float> backend;
    LinearKernel<Fp8, slm::cpu::Backend<float>> kernel(backend, 1);
    const LinearSite site{0, Projection::qkv};
    const auto wf = to_float(to_double(w));
    std::vector<float> y(static_cast<size_t>(n * out)), dx(static_cast<size_t>(n * in)),
        dw(static_cast<size_t>(out * in), 0.0f);
    for (const Call& c : calls) {
        const auto xf = to_float(to_double(times(x, c.x))), dyf = to_float(to_double(times(dy, c.dy)));
        kernel.forward(backend, site, xf.data(), wf.data(), y.data(), n, in, out);
        kernel.backward(backend, site, xf.data(), wf.data(), dyf.data(), dx.data(), dw.data(), n, in, out);
    }
    return {to_double(y), to_double(dx), to_double(dw), kernel.cast_report()};
}

}  // namespace

TEST_CASE("fp8 linear on the GPU equals the CPU's FP8 linear: forward, dgrad, wgrad and the counts") {
    if (!gpu_available()) return;
    struct Shape {
        int64_t n, in, out;
    };
    for (const Shape s : {Shape{256, 768, 2304}, Shape{512, 2048, 768}, Shape{96, 64, 160}}) {
        CAPTURE(s.n);
        CAPTURE(s.in);
        CAPTURE(s.out);
        const auto x = to_bf16(random_vector<double>(s.n * s.in, 31 + s.in, 3.0));
        const auto w = to_bf16(random_vector<double>(s.out * s.in, 32 + s.out, 0.02));
        const auto dy = to_bf16(random_vector<double>(s.n * s.out, 33 + s.n, 1e-5));
        const Result gpu = on_gpu(x, w, dy, s.n, s.in, s.out);
        const Result cpu = on_cpu(x, w, dy, s.n, s.in, s.out);
        const double ey = relative_error(gpu.y, cpu.y), edx = relative_error(gpu.dx, cpu.dx),
                     edw = relative_error(gpu.dw, cpu.dw);
        CAPTURE(ey);
        CAPTURE(edx);
        CAPTURE(edw);
        CHECK(ey < 1e-2);
        CHECK(edx < 1e-2);
        CHECK(edw < 2e-3);
        const auto &g = gpu.report[0], &c = cpu.report[0];
        CHECK(g.x.count == c.x.count);
        CHECK(g.w.count == c.w.count);
        CHECK(g.dy.count == c.dy.count);
        CHECK(g.x.underflow == c.x.underflow);
        CHECK(g.w.underflow == c.w.underflow);
        CHECK(g.dy.underflow == c.dy.underflow);
        CHECK(g.x.overflow + g.w.overflow + g.dy.overflow == 0);
        CHECK(g.fallback_gemms == 0);
    }
}

TEST_CASE("fp8 linear on the GPU follows the CPU's delayed scaling over calls whose tensors grow and shrink") {
    if (!gpu_available()) return;
    const int64_t n = 256, in = 512, out = 384;
    const auto x = to_bf16(random_vector<double>(n * in, 61, 2.0));
    const auto w = to_bf16(random_vector<double>(out * in, 62, 0.02));
    const auto dy = to_bf16(random_vector<double>(n * out, 63, 1e-4));
    // x shrinks then grows past its history (saturating: overflows), dy the other way round.
    const std::vector<Call> calls = {{1.0f, 1.0f}, {0.25f, 4.0f}, {0.5f, 1.0f}, {8.0f, 0.125f}};
    const Result gpu = on_gpu(x, w, dy, n, in, out, calls);
    const Result cpu = on_cpu(x, w, dy, n, in, out, calls);
    CHECK(relative_error(gpu.y, cpu.y) < 1e-2);
    CHECK(relative_error(gpu.dx, cpu.dx) < 1e-2);
    CHECK(relative_error(gpu.dw, cpu.dw) < 2e-3);
    const auto &g = gpu.report[0], &c = cpu.report[0];
    CHECK(c.x.overflow > 0);  // the last call's 8·x against a history 8 times smaller (margin 2: 4)
    CHECK(g.x.overflow == c.x.overflow);
    CHECK(g.dy.overflow == c.dy.overflow);
    CHECK(g.x.underflow == c.x.underflow);
    CHECK(g.dy.underflow == c.dy.underflow);
    CHECK(g.w.count == c.w.count);
}

TEST_CASE("fp8 linear on the GPU casts its weights once per change: weights_changed() or another W") {
    if (!gpu_available()) return;
    const int64_t n = 128, in = 256, out = 192;
    const auto x = to_bf16(random_vector<double>(n * in, 51, 1.0));
    const auto w = to_bf16(random_vector<double>(out * in, 52, 0.02));
    const auto w2 = to_bf16(random_vector<double>(out * in, 53, 0.05));
    const auto dy = to_bf16(random_vector<double>(n * out, 54, 1e-4));
    slm::cuda::Backend backend;
    LinearKernel<Fp8, slm::cuda::Backend> kernel(backend, 1);
    const LinearSite site{0, Projection::qkv};
    auto xd = to_device(backend, x), wd = to_device(backend, w), dyd = to_device(backend, dy);
    auto y = backend.allocate<bf16>(n * out), dx = backend.allocate<bf16>(n * in);
    kernel.forward(backend, site, xd.data(), wd.data(), y.data(), n, in, out);
    kernel.backward(backend, site, xd.data(), wd.data(), dyd.data(), dx.data(), nullptr, n, in, out);
    CHECK(kernel.cast_report()[0].w.count == out * in);  // the backward's Wᵀ came from the same pass
    // New values behind the same pointer: cast again once told, and the results are w2's.
    backend.upload(wd.data(), w2.data(), out * in);
    kernel.weights_changed();
    kernel.forward(backend, site, xd.data(), wd.data(), y.data(), n, in, out);
    kernel.backward(backend, site, xd.data(), wd.data(), dyd.data(), dx.data(), nullptr, n, in, out);
    CHECK(kernel.cast_report()[0].w.count == 2 * out * in);
    // The CPU's layer through the same calls: the second call's delayed scales are the same bits
    // (a fresh layer's current scales would differ by an ulp, enough to flip E5M2 rounding ties).
    slm::cpu::Backend<float> cpu_backend;
    LinearKernel<Fp8, slm::cpu::Backend<float>> cpu(cpu_backend, 1);
    const auto xf = to_float(to_double(x)), dyf = to_float(to_double(dy));
    auto wf = to_float(to_double(w));
    std::vector<float> cy(static_cast<size_t>(n * out)), cdx(static_cast<size_t>(n * in));
    cpu.forward(cpu_backend, site, xf.data(), wf.data(), cy.data(), n, in, out);
    cpu.backward(cpu_backend, site, xf.data(), wf.data(), dyf.data(), cdx.data(), nullptr, n, in, out);
    const auto w2f = to_float(to_double(w2));
    std::copy(w2f.begin(), w2f.end(), wf.begin());  // the same buffer, new values
    cpu.weights_changed();
    cpu.forward(cpu_backend, site, xf.data(), wf.data(), cy.data(), n, in, out);
    cpu.backward(cpu_backend, site, xf.data(), wf.data(), dyf.data(), cdx.data(), nullptr, n, in, out);
    CHECK(relative_error(to_double(to_host(backend, y)), to_double(cy)) < 1e-2);
    CHECK(relative_error(to_double(to_host(backend, dx)), to_double(cdx)) < 1e-2);
    // And they are w2's: a stale W would be 2.5x off.
    CHECK(relative_error(to_double(to_host(backend, y)), on_cpu(x, w2, dy, n, in, out).y) < 1e-2);
}

TEST_CASE("fp8 linear on the GPU runs a shape the FP8 GEMMs do not take in bf16, and counts it") {
    if (!gpu_available()) return;
    const int64_t n = 64, in = 40, out = 64;  // in = 40: not a multiple of 16
    const auto x = to_bf16(random_vector<double>(n * in, 41, 1.0));
    const auto w = to_bf16(random_vector<double>(out * in, 42, 0.05));
    const auto dy = to_bf16(random_vector<double>(n * out, 43, 1e-3));
    const Result gpu = on_gpu(x, w, dy, n, in, out);
    const Result cpu = on_cpu(x, w, dy, n, in, out);  // FP8 on the CPU: bf16 is closer to exact
    CHECK(gpu.report[0].fallback_gemms == 3);
    CHECK(gpu.report[0].x.count == 0);
    CHECK(relative_error(gpu.y, cpu.y) < 0.1);  // the same layer, one side without FP8's error
}

TEST_CASE("a small model trained in FP8 on the GPU holds its bf16 loss, and no cast overflows") {
    if (!gpu_available()) return;
    slm::ModelConfig c;
    c.name = "fp8_gpu_check";
    c.vocab = 512;
    c.hidden = 256;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 688;
    c.max_seq = 128;
    const int64_t batch = 8, seq = 128, steps = 60;
    auto train = [&]<class Precision>(std::type_identity<Precision>, auto&& report) {
        slm::cuda::Backend backend;
        using Model = slm::Llama<slm::cuda::Backend, slm::attention::Flash>::with_precision<Precision>;
        Model model(c, backend, 7);
        const double loss = train_on_bigrams(model, backend, model.weights(), c.vocab, batch, seq, steps, 6);
        report(model);
        return loss;
    };
    const double bf16_loss = train(std::type_identity<slm::precision::Bf16>{}, [](auto&) {});
    std::vector<slm::precision::LinearCastReport> casts;
    const double fp8_loss = train(std::type_identity<Fp8>{}, [&](auto& model) { casts = model.linear().cast_report(); });
    MESSAGE("held-out loss after " << steps << " steps: bf16 " << bf16_loss << ", fp8 " << fp8_loss);
    CHECK(bf16_loss < std::log(512.0) - 1.0);
    CHECK(std::fabs(fp8_loss - bf16_loss) / bf16_loss < 0.02);
    REQUIRE(casts.size() == 8);
    for (const auto& r : casts) {
        INFO(r.site);
        CHECK(r.x.count > 0);
        CHECK(r.fallback_gemms == 0);
        CHECK(r.x.overflow + r.w.overflow + r.dy.overflow + r.x.nan + r.w.nan + r.dy.nan == 0);
    }
}
