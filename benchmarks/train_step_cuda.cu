// Training-step throughput on one GPU: every study preset at seq 2048 over a range of
// micro-batches, per attention policy. Iteration = one optimizer step, timed with CUDA events on
// the backend's stream after 3 warm-up steps. Configurations that do not fit are reported as
// "does not fit" with the memory estimate; the rest still run.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "slm/attention/cuda/flash.cuh"
#include "slm/attention/cuda/naive.cuh"
#include "slm/cost/gpu_catalog.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"
#include "train_step.hpp"

namespace {

slm::bench::Device this_gpu() {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return {};
    const auto catalog = slm::cost::default_catalog();
    const auto* spec = slm::cost::find_by_device_name(catalog, prop.name);
    slm::bench::Device d;
    d.peak_tflops = spec ? spec->bf16_tflops : 0;
    d.dollars_per_hour = spec ? spec->dollars_per_hour : 0;
    d.memory_in_use = [] {
        size_t free = 0, total = 0;
        cudaMemGetInfo(&free, &total);
        return static_cast<int64_t>(total - free);
    };
    d.synchronize = [] { cudaDeviceSynchronize(); };
    return d;
}

double event_seconds(slm::cuda::Backend& backend, const std::function<void()>& step) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, backend.stream());
    step();
    cudaEventRecord(stop, backend.stream());
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms / 1e3;
}

template <class Attention>
void register_one(const std::string& attention, const char* preset, int64_t batch, int64_t seq) {
    const std::string name = "train_step/" + attention + "/" + preset + "/batch:" +
                             std::to_string(batch) + "/seq:" + std::to_string(seq);
    benchmark::RegisterBenchmark(name.c_str(), [preset, batch, seq](benchmark::State& state) {
        using Model = slm::Llama<slm::cuda::Backend, Attention>;
        static const slm::bench::Device gpu = this_gpu();
        auto model = slm::presets::by_name(preset);
        model.max_seq = std::max(model.max_seq, seq);  // RoPE has no length limit: longer runs are fine
        slm::bench::train_step<Model>(state, model, batch, seq, gpu,
                                      [](slm::cuda::Backend& b, auto&& step) {
                                          return event_seconds(b, step);
                                      });
    })
        ->UseManualTime()
        ->Iterations(8)
        ->Unit(benchmark::kMillisecond);
}

// The study's grid at seq 2048, and llama_1b at seq 8192 where attention memory decides the
// largest micro-batch.
template <class Attention>
void register_grid(const std::string& attention) {
    for (const char* preset : {"llama_100m", "llama_500m", "llama_1b", "llama_2b"})
        for (int64_t batch : {1, 2, 4, 8, 16, 32}) register_one<Attention>(attention, preset, batch, 2048);
    for (int64_t batch : {1, 2, 4}) register_one<Attention>(attention, "llama_1b", batch, 8192);
}

}  // namespace

int main(int argc, char** argv) {
    register_grid<slm::attention::Naive>("naive");
    register_grid<slm::attention::Flash>("flash");
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
