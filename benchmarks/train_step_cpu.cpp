// Training-step throughput of the CPU reference backend on the tiny preset (runs in CI: it
// shows the fixture works end to end; the GPU fixture is train_step_cuda.cu).
#include <benchmark/benchmark.h>

#include <chrono>

#include "slm/slm.hpp"
#include "train_step.hpp"

namespace {

template <class Attention>
void cpu_train_step(benchmark::State& state) {
    using Model = slm::Llama<slm::cpu::Backend<float>, Attention>;
    auto timer = [](auto&, auto&& step) {
        const auto t0 = std::chrono::steady_clock::now();
        step();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    slm::bench::train_step<Model>(state, slm::presets::tiny(), state.range(0), state.range(1),
                                  slm::bench::Device{}, timer, 1);
}

}  // namespace

BENCHMARK(cpu_train_step<slm::attention::Naive>)
    ->ArgNames({"batch", "seq"})
    ->Args({4, 256})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(cpu_train_step<slm::attention::Flash>)
    ->ArgNames({"batch", "seq"})
    ->Args({4, 256})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
