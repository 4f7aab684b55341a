// The FP8 linear layer (cuda/fp8_linear.cuh) beside the bf16 one (cuda/linear.cuh) on one GPU, at
// the projection shapes of the study presets at their best micro-batch (seq 2048), and the FP8
// layer's parts alone: where a training step's "matmul" milliseconds go under --precision fp8.
//
//   fp8_linear/<shape>/precision:{bf16,fp8}
//       one layer's forward and backward (dx and dW); fp8 casts W again every iteration
//       (weights_changed(), as after each optimizer step without gradient accumulation)
//   fp8_part/<shape>/<part>
//       amax_x         x's amax (current scaling's first pass)
//       cast_x         x → E4M3 codes
//       cast_x_t       x → E4M3 codes transposed (wgrad's xᵀ)
//       cast_dy_both   dY → E5M2 codes and their transpose, one pass (dgrad's and wgrad's)
//       cast_w_both    W → E4M3 codes and Wᵀ's, one pass (once per optimizer step)
//       fp8_fwd, fp8_dgrad, fp8_wgrad   the three FP8 GEMMs (cuBLASLt)
//       bf16_fwd, bf16_dgrad, bf16_wgrad   the bf16 GEMMs they replace
//
// Counters: median_ms (median iteration, CUDA events); TFLOPs for GEMMs and layers (2·n·in·out per
// GEMM); GBps for the casts (bytes read and written; the amax only reads). Inputs are uniform
// random bf16 (x in ±3, W in ±0.02, dY in ±1e-4; a block of 2^20 values repeated), never zeros.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "slm/core/presets.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_cast.cuh"
#include "slm/cuda/fp8_gemm.cuh"
#include "slm/cuda/fp8_linear.cuh"
#include "slm/cuda/linear.cuh"
#include "slm/cuda/stream_timer.cuh"
#include "median_time.hpp"
#include "random_bf16.hpp"

namespace {

using bf16 = slm::cuda::bf16;
namespace cu = slm::cuda;
using slm::precision::Fp8Format;

struct Shape {
    std::string name;
    int64_t n, in, out;
};

// Each preset's four projections as the model calls them (precision::projection_shapes: qkv,
// o, gate_up, down), n = micro-batch · 2048 rows.
std::vector<Shape> shapes() {
    struct Point {
        const char* preset;
        int64_t micro_batch;
    };
    const Point points[] = {{"llama_100m", 32}, {"llama_500m", 32}, {"llama_1b", 16}, {"llama_2b", 8}};
    const char* projections[] = {"qkv", "o", "gate_up", "down"};
    std::vector<Shape> out;
    for (const auto& p : points) {
        const std::string base = std::string(p.preset) + "_mb" + std::to_string(p.micro_batch);
        const auto projected = slm::precision::projection_shapes(slm::presets::by_name(p.preset));
        for (size_t i = 0; i < projected.size(); ++i)
            out.push_back({base + "_" + projections[i], p.micro_batch * 2048, projected[i].in, projected[i].out});
    }
    return out;
}

// Device operands of one shape, with FP8 codes and scales for the GEMM parts.
struct Operands {
    cu::Backend backend;
    cu::DeviceBuffer<bf16> x, w, dy, y, dx;
    cu::DeviceBuffer<float> dw, scales;  // scales: x, W, dY, amax scratch
    cu::DeviceBuffer<uint8_t> xq, xq_t, wq, wq_t, dyq, dyq_t;
    cu::DeviceBuffer<cu::Fp8CastCounts> counts;
    explicit Operands(const Shape& s)
        : x(backend.allocate<bf16>(s.n * s.in)), w(backend.allocate<bf16>(s.out * s.in)),
          dy(backend.allocate<bf16>(s.n * s.out)), y(backend.allocate<bf16>(s.n * s.out)),
          dx(backend.allocate<bf16>(s.n * s.in)), dw(backend.allocate<float>(s.out * s.in)),
          scales(backend.allocate<float>(4)), xq(backend.allocate<uint8_t>(s.n * s.in)),
          xq_t(backend.allocate<uint8_t>(s.n * s.in)), wq(backend.allocate<uint8_t>(s.out * s.in)),
          wq_t(backend.allocate<uint8_t>(s.out * s.in)), dyq(backend.allocate<uint8_t>(s.n * s.out)),
          dyq_t(backend.allocate<uint8_t>(s.n * s.out)), counts(backend.allocate<cu::Fp8CastCounts>(1)) {
        constexpr uint64_t golden = 0x9e3779b97f4a7c15ull;
        fill(x, golden + 1, 3.0f);
        fill(w, 2 * golden + 1, 0.02f);
        fill(dy, 3 * golden + 1, 1e-4f);
        SLM_CUDA_CHECK(cudaMemsetAsync(dw.data(), 0, static_cast<size_t>(dw.bytes()), backend.stream()));
        SLM_CUDA_CHECK(cudaMemsetAsync(counts.data(), 0, sizeof(cu::Fp8CastCounts), backend.stream()));
        // Real codes for the GEMM parts: each operand cast with its own scale.
        const cudaStream_t st = backend.stream();
        auto scaled = [&](const bf16* t, int64_t rows, int64_t cols, Fp8Format f, float* scale, uint8_t* codes,
                          uint8_t* codes_t) {
            cu::fp8_amax(t, rows * cols, scales.data() + 3, st);
            cu::fp8_scale(scales.data() + 3, f, 0, scale, st);
            cu::fp8_cast_transpose(t, rows, cols, scale, f, codes_t, counts.data(), st, codes);
        };
        scaled(x.data(), s.n, s.in, Fp8Format::e4m3, scales.data(), xq.data(), xq_t.data());
        scaled(w.data(), s.out, s.in, Fp8Format::e4m3, scales.data() + 1, wq.data(), wq_t.data());
        scaled(dy.data(), s.n, s.out, Fp8Format::e5m2, scales.data() + 2, dyq.data(), dyq_t.data());
        backend.synchronize();
    }

    // Random values in ±scale: one block of 2^20 repeated (a whole tensor's worth from the host
    // generator would make setting up the larger shapes take longer than timing them).
    void fill(cu::DeviceBuffer<bf16>& t, uint64_t seed, float scale) {
        constexpr int64_t block = int64_t{1} << 20;
        const auto values = slm::bench::random_bf16(std::min(block, t.size()), seed, scale);
        for (int64_t at = 0; at < t.size(); at += block)
            backend.upload(t.data() + at, values.data(), std::min(block, t.size() - at));
    }
};

using slm::bench::time_median;

void layer(benchmark::State& state, const Shape& s, bool fp8) {
    Operands o(s);
    slm::precision::LinearKernel<slm::precision::Fp8, cu::Backend> kernel(o.backend, 1);
    const slm::precision::LinearSite site{0, slm::precision::Projection::qkv};
    const double median = time_median(state, o.backend.stream(), [&] {
        if (fp8) {
            kernel.weights_changed();
            kernel.forward(o.backend, site, o.x.data(), o.w.data(), o.y.data(), s.n, s.in, s.out);
            kernel.backward(o.backend, site, o.x.data(), o.w.data(), o.dy.data(), o.dx.data(), o.dw.data(), s.n,
                            s.in, s.out);
        } else {
            cu::linear_forward(o.backend.gemm(), o.x.data(), o.w.data(), o.y.data(), s.n, s.in, s.out,
                               o.backend.stream());
            cu::linear_backward(o.backend.gemm(), o.x.data(), o.w.data(), o.dy.data(), o.dx.data(), o.dw.data(),
                                s.n, s.in, s.out, o.backend.stream());
        }
    });
    state.counters["TFLOPs"] = 6.0 * static_cast<double>(s.n * s.in * s.out) / median / 1e12;
}

const char* const part_names[] = {"amax_x",  "cast_x",    "cast_x_t",  "cast_dy_both", "cast_w_both", "fp8_fwd",
                                  "fp8_dgrad", "fp8_wgrad", "bf16_fwd", "bf16_dgrad",   "bf16_wgrad"};

void part(benchmark::State& state, const Shape& s, int which) {
    Operands o(s);
    cu::Fp8Gemm fp8;
    const cudaStream_t st = o.backend.stream();
    const int64_t n = s.n, in = s.in, out = s.out;
    float* sc = o.scales.data();
    const auto e4m3 = Fp8Format::e4m3, e5m2 = Fp8Format::e5m2;
    std::function<void()> work;
    double bytes = 0, flops = 0;
    switch (which) {
        case 0: work = [&] { cu::fp8_amax(o.x.data(), n * in, sc + 3, st); }; bytes = 2.0 * n * in; break;
        case 1: work = [&] { cu::fp8_cast(o.x.data(), n * in, sc, e4m3, o.xq.data(), o.counts.data(), st); };
            bytes = 3.0 * n * in; break;
        case 2: work = [&] { cu::fp8_cast_transpose(o.x.data(), n, in, sc, e4m3, o.xq_t.data(), o.counts.data(), st); };
            bytes = 3.0 * n * in; break;
        case 3: work = [&] { cu::fp8_cast_transpose(o.dy.data(), n, out, sc + 2, e5m2, o.dyq_t.data(), o.counts.data(), st, o.dyq.data()); };
            bytes = 4.0 * n * out; break;
        case 4: work = [&] { cu::fp8_cast_transpose(o.w.data(), out, in, sc + 1, e4m3, o.wq_t.data(), o.counts.data(), st, o.wq.data()); };
            bytes = 4.0 * out * in; break;
        case 5: work = [&] { fp8(st, o.xq.data(), e4m3, sc, o.wq.data(), e4m3, sc + 1, o.y.data(), n, out, in, true); };
            flops = 2.0 * n * in * out; break;
        case 6: work = [&] { fp8(st, o.dyq.data(), e5m2, sc + 2, o.wq_t.data(), e4m3, sc + 1, o.dx.data(), n, in, out); };
            flops = 2.0 * n * in * out; break;
        case 7: work = [&] { fp8(st, o.dyq_t.data(), e5m2, sc + 2, o.xq_t.data(), e4m3, sc, o.dw.data(), out, in, n, false, true); };
            flops = 2.0 * n * in * out; break;
        case 8: work = [&] { cu::linear_forward(o.backend.gemm(), o.x.data(), o.w.data(), o.y.data(), n, in, out, st); };
            flops = 2.0 * n * in * out; break;
        case 9: work = [&] { cu::linear_backward(o.backend.gemm(), nullptr, o.w.data(), o.dy.data(), o.dx.data(), nullptr, n, in, out, st); };
            flops = 2.0 * n * in * out; break;
        default: work = [&] { cu::linear_backward(o.backend.gemm(), o.x.data(), nullptr, o.dy.data(), nullptr, o.dw.data(), n, in, out, st); };
            flops = 2.0 * n * in * out; break;
    }
    const double median = time_median(state, st, work);
    if (bytes > 0) state.counters["GBps"] = bytes / median / 1e9;
    if (flops > 0) state.counters["TFLOPs"] = flops / median / 1e12;
}

const int registered = [] {
    for (const Shape& s : shapes()) {
        for (const bool fp8 : {false, true})
            benchmark::RegisterBenchmark(("fp8_linear/" + s.name + "/precision:" + (fp8 ? "fp8" : "bf16")).c_str(),
                                         [s, fp8](benchmark::State& st) { layer(st, s, fp8); })
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond)
                ->Iterations(20);
        for (int p = 0; p < static_cast<int>(std::size(part_names)); ++p)
            benchmark::RegisterBenchmark(("fp8_part/" + s.name + "/" + part_names[p]).c_str(),
                                         [s, p](benchmark::State& st) { part(st, s, p); })
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond)
                ->Iterations(20);
    }
    return 0;
}();

}  // namespace

BENCHMARK_MAIN();
