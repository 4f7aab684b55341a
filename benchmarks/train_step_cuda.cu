// Training-step throughput on one GPU: every study preset at seq 2048 over a range of
// micro-batches, per attention policy, and each data-parallel policy over NCCL at world size 1;
// the paper's presets at seq 1024; FP8 linear layers beside bf16.
// Iteration = one optimizer step, timed with CUDA events on the backend's stream after 3 warm-up
// steps. Configurations that do not fit are reported as
// "does not fit" with the memory estimate; the rest still run.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "slm/cost/gpu_catalog.hpp"
#include "slm/cuda/attention.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_linear.cuh"
#include "slm/cuda/stream_timer.cuh"
#include "slm/names.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/nccl/communicator.cuh"
#include "slm/parallel/nccl/shards.cuh"
#include "slm/parallel/zero.hpp"
#include "slm/slm.hpp"
#include "train_step.hpp"

namespace slm::attention {

// Flash with a candidate backward mode and forward kernel, only here: the whole training step
// with a kernel before it becomes the default ("flash_candidate/<name>", beside "flash").
template <FlashBackward Mode, FlashForward Forward>
struct FlashCandidate {
    static constexpr std::string_view name = "flash_candidate";
    static constexpr bool supports_head_dim(int64_t d) { return d > 0; }
    static constexpr bool keeps_probabilities = false;
};
template <FlashBackward Mode, FlashForward Forward>
struct AttentionKernel<FlashCandidate<Mode, Forward>, cuda::Backend>
    : FlashCudaKernel<Mode, Forward> {};

}  // namespace slm::attention

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

// `variant` names the configuration: the attention policy's name, "_fp8" added under Fp8.
template <class Attention, class Precision = slm::precision::Bf16>
void register_one(const std::string& variant, const char* preset, int64_t batch, int64_t seq) {
    const std::string name = "train_step/" + variant + "/" + preset + "/batch:" +
                             std::to_string(batch) + "/seq:" + std::to_string(seq);
    benchmark::RegisterBenchmark(name.c_str(), [preset, batch, seq](benchmark::State& state) {
        using Model = typename slm::Llama<slm::cuda::Backend, Attention>::template with_precision<Precision>;
        static const slm::bench::Device gpu = this_gpu();
        auto model = slm::presets::by_name(preset);
        model.max_seq = std::max(model.max_seq, seq);  // RoPE has no length limit: longer runs are fine
        slm::bench::train_step<Model>(state, model, batch, seq, gpu,
                                      [](slm::cuda::Backend& b, auto&& step) {
                                          return slm::cuda::seconds_on_stream(b.stream(), step);
                                      });
    })
        ->UseManualTime()
        ->Iterations(8)
        ->Unit(benchmark::kMillisecond);
}

// One train_step benchmark of Llama<cuda::Backend, Flash> at seq 2048 under `name`:
// make_policy() builds its data-parallel policy, setup(backend) runs before the warm-up steps.
template <class MakePolicy, class Setup = slm::bench::NoSetup>
void register_flash(const std::string& name, const char* preset, int64_t batch,
                    MakePolicy make_policy, Setup setup = {},
                    slm::Recompute recompute = slm::Recompute::none) {
    benchmark::RegisterBenchmark(name.c_str(), [preset, batch, make_policy, setup, recompute](benchmark::State& state) {
        using Model = slm::Llama<slm::cuda::Backend, slm::attention::Flash>;
        static const slm::bench::Device gpu = this_gpu();
        slm::bench::train_step<Model>(
            state, slm::presets::by_name(preset), batch, 2048, gpu,
            [](slm::cuda::Backend& b, auto&& step) { return slm::cuda::seconds_on_stream(b.stream(), step); }, 3,
            make_policy(), setup, recompute);
    })
        ->UseManualTime()
        ->Iterations(8)
        ->Unit(benchmark::kMillisecond);
}

// Every GEMM shape's algorithm timed among the cuBLASLt heuristic's first 8 candidates at its
// first use (train_llama --gemm-candidates 8), beside "flash", which takes the heuristic's first
// choice untimed (the default): "flash_tuned_gemm".
void register_tuned_gemm(const char* preset, int64_t batch) {
    register_flash(std::string("train_step/flash_tuned_gemm/") + preset + "/batch:" +
                       std::to_string(batch) + "/seq:2048",
                   preset, batch, [] { return slm::parallel::Single{}; },
                   [](slm::cuda::Backend& b) { b.gemm().set_timed_candidates(8); });
}

// The SwiGLU output recomputed in the backward instead of kept (RunConfig::recompute), beside
// "flash", which keeps it: "flash_recompute_swiglu".
void register_recompute_swiglu(const char* preset, int64_t batch) {
    register_flash(std::string("train_step/flash_recompute_swiglu/") + preset + "/batch:" +
                       std::to_string(batch) + "/seq:2048",
                   preset, batch, [] { return slm::parallel::Single{}; }, slm::bench::NoSetup{},
                   slm::Recompute::swiglu);
}

// The data-parallel policies over NCCL at world size 1: what each scheme costs one GPU before
// any second GPU shares the work (its collectives still run, timed as "communication").
template <class Policy>
void register_policy(const char* preset, int64_t batch) {
    register_flash("train_step/flash/" + std::string(Policy::name) + "/" + preset + "/batch:" + std::to_string(batch) +
                       "/seq:2048",
                   preset, batch,
                   [] { return Policy(slm::parallel::Nccl(slm::parallel::LaunchInfo{})); });
}

void register_policies() {
    using slm::parallel::Nccl;
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"llama_100m", 16}, {"llama_1b", 8}}) {
        [&]<class... Policies>(slm::names::TypeList<Policies...>) {
            (register_policy<Policies>(preset, batch), ...);
        }(slm::names::DataParallel<Nccl>{});
    }
}

// The study's grid at seq 2048, and llama_1b at seq 8192 where attention memory decides the
// largest micro-batch.
template <class Attention>
void register_grid() {
    const std::string attention(Attention::name);
    for (const char* preset : {"llama_100m", "llama_500m", "llama_1b", "llama_2b"})
        for (int64_t batch : {1, 2, 4, 8, 16, 32}) register_one<Attention>(attention, preset, batch, 2048);
    register_one<Attention>(attention, "llama_100m", 64, 2048);  // fits (45 GiB) with Flash
    // Past what fits on a 141 GB H200, so the largest micro-batch that fits is bounded on
    // either card by a point that does not.
    register_one<Attention>(attention, "llama_1b", 64, 2048);
    for (int64_t batch : {1, 2, 4, 8, 16}) register_one<Attention>(attention, "llama_1b", batch, 8192);
}

// The paper's shapes at its seq 1024. Their FFN = floor(2.7 hidden) is off a multiple of 8 at
// 100M, 500M and 2B (2332, 4147, 6739), which the layout stores padded (ModelConfig::ffn_padded);
// paper_1b (5184) is the aligned control. paper_100m's head_dim 96 has no Flash kernel yet.
void register_paper() {
    register_one<slm::attention::Naive>("naive", "paper_100m", 32, 1024);
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"paper_500m", 16},
                                        {"paper_1b", 16}, {"paper_2b", 8}})
        register_one<slm::attention::Flash>("flash", preset, batch, 1024);
}

// The blocks' linear layers in FP8 (train_llama --precision fp8), "flash_fp8", beside "flash"
// at the same micro-batch and at the larger ones FP8's smaller GEMM time may favour.
void register_fp8() {
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"llama_100m", 32}, {"llama_100m", 64},
                                        {"llama_500m", 16}, {"llama_500m", 32}, {"llama_1b", 8},
                                        {"llama_1b", 16}, {"llama_1b", 32}, {"llama_2b", 8}, {"llama_2b", 16}})
        register_one<slm::attention::Flash, slm::precision::Fp8>("flash_fp8", preset, batch, 2048);
}

// The attention candidates (tools/device/candidates_check.sh) in the training step at the four
// presets' target micro-batches, under "flash_candidate/<what differs from flash>".
void register_candidates() {
    using slm::attention::FlashBackward, slm::attention::FlashForward,
        slm::attention::FlashCandidate;
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"llama_100m", 32},
                                        {"llama_500m", 32}, {"llama_1b", 16}, {"llama_2b", 8}}) {
        register_one<FlashCandidate<FlashBackward::atomic_tma, FlashForward::best>>(
            "flash_candidate/tma_backward", preset, batch, 2048);
        register_one<FlashCandidate<FlashBackward::atomic_tma_bulk_dq, FlashForward::best>>(
            "flash_candidate/tma_backward_bulk_dq", preset, batch, 2048);
        if (slm::presets::by_name(preset).head_dim() > 64) continue;  // the rest: as the above
        register_one<FlashCandidate<FlashBackward::atomic_tma_kv_registers, FlashForward::best>>(
            "flash_candidate/tma_backward_kv_registers", preset, batch, 2048);
        register_one<FlashCandidate<FlashBackward::atomic_tma_overlapped_dq, FlashForward::best>>(
            "flash_candidate/tma_backward_overlapped_dq", preset, batch, 2048);
        register_one<FlashCandidate<FlashBackward::atomic, FlashForward::tma>>(
            "flash_candidate/tma_forward", preset, batch, 2048);
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_grid<slm::attention::Naive>();
    register_grid<slm::attention::Flash>();
    register_paper();
    register_fp8();
    // What repeatable bits cost (train_llama --attention flash_deterministic), beside "flash".
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"llama_100m", 16},
                                        {"llama_100m", 32}, {"llama_1b", 16}})
        register_one<slm::attention::FlashDeterministic>(
            std::string(slm::attention::FlashDeterministic::name), preset, batch, 2048);
    register_policies();
    register_candidates();
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"llama_100m", 32},
                                        {"llama_100m", 64}, {"llama_500m", 32}, {"llama_1b", 16},
                                        {"llama_2b", 8}})
        register_tuned_gemm(preset, batch);
    for (const auto& [preset, batch] : {std::pair<const char*, int64_t>{"llama_100m", 32},
                                        {"llama_500m", 32}, {"llama_1b", 16}, {"llama_2b", 8},
                                        {"llama_2b", 16}})
        register_recompute_swiglu(preset, batch);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
