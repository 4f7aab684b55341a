// Attention kernels on one GPU, the shapes of docs/sources.md:
// causal, bf16, B·T = 16384 tokens, hidden 2048 (heads = 2048 / head_dim rounded down, MHA),
// head_dim 64 and 128 (Flash and its deterministic mode also 32, 48, 80, 96, 256), seq 512 … 16384.
// Kernels: Flash with atomic dQ (the default), its mma.sync variant, Flash deterministic (on a
// Hopper the warpgroup kernel taking turns), its mma.sync variant and the candidate with turns
// from key tile 0 up (backward and fwd_bwd), and Naive (cuBLASLt + materialised probabilities;
// "does not fit" where its B·H·T² buffers exceed the memory).
// Passes: fwd, bwd (after one forward, whose saved state it reuses), fwd_bwd.
// Each iteration flushes L2 (memset of a 256 MB buffer) and then times the pass alone between two
// CUDA events on the backend's stream; TFLOPs and median_ms come from the median iteration.
// FLOPs, the FlashAttention papers' convention: forward = 4·B·H·T²·D / 2 (causal half),
// backward = 2.5 × forward, forward+backward = 3.5 × forward.
//
//   attention_cuda --benchmark_filter='flash/.*/hdim:128' --benchmark_format=json
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/cuda/attention/flash.cuh"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"
#include "random_bf16.hpp"

namespace {

using bf16 = slm::cuda::bf16;

// backward_then_rope / backward_through_rope: the backward followed by RoPE's (theta 10000), as
// two passes (Kernel::backward, cuda::rope_backward) and as the kernel's fused call.
enum class Pass { forward, backward, forward_backward, backward_then_rope, backward_through_rope };

constexpr int64_t tokens = 16384, hidden = 2048;
constexpr int64_t flush_bytes = int64_t{256} << 20;

const char* pass_name(Pass p) {
    switch (p) {
        case Pass::forward: return "fwd";
        case Pass::backward: return "bwd";
        case Pass::forward_backward: return "fwd_bwd";
        case Pass::backward_then_rope: return "bwd_then_rope";
        case Pass::backward_through_rope: return "bwd_through_rope";
    }
    return "?";
}

double flop_multiplier(Pass p) {
    return p == Pass::forward ? 1.0 : p == Pass::forward_backward ? 3.5 : 2.5;
}

// The same random bits for every shape (every shape here has B·T·qkv_stride = 16384 · 3 · 2048
// elements), made once.
const std::vector<bf16>& random_bf16(int64_t n) {
    static std::vector<bf16> values;
    if (static_cast<int64_t>(values.size()) != n)
        values = slm::bench::random_bf16(n, 0x9e3779b97f4a7c15ull);
    return values;
}

// One L2-sized-plus buffer for every benchmark; writing it evicts the previous pass's data.
void flush_l2(cudaStream_t stream, int value) {
    static slm::cuda::DeviceBuffer<std::byte> buffer(flush_bytes);
    SLM_CUDA_CHECK(cudaMemsetAsync(buffer.data(), value & 0xff, flush_bytes, stream));
}

template <class Kernel>
void attention(benchmark::State& state, const slm::AttentionShape& s, Pass pass) {
    slm::cuda::Backend backend;
    cudaStream_t stream = backend.stream();
    const auto footprint = Kernel::footprint(s);
    try {
        auto qkv = backend.allocate<bf16>(s.tokens() * s.qkv_stride());
        auto d_out = backend.allocate<bf16>(s.tokens() * s.out_stride());
        auto out = backend.allocate<bf16>(s.tokens() * s.out_stride());
        auto d_qkv = backend.allocate<bf16>(s.tokens() * s.qkv_stride());
        auto saved = backend.allocate<std::byte>(footprint.saved_bytes_per_layer);
        auto scratch = backend.allocate<std::byte>(footprint.scratch_bytes);
        backend.upload(qkv.data(), random_bf16(qkv.size()).data(), qkv.size());
        backend.upload(d_out.data(), random_bf16(qkv.size()).data() + 7, d_out.size());
        auto forward = [&] { Kernel::forward(backend, s, qkv.data(), out.data(), saved.data()); };
        auto backward = [&] {
            Kernel::backward(backend, s, qkv.data(), out.data(), d_out.data(), saved.data(),
                             scratch.data(), d_qkv.data());
        };
        for (int i = 0; i < 2; ++i) {  // warm-up: module load, first-touch, clocks
            forward();
            backward();
        }
        backend.synchronize();

        cudaEvent_t start, stop;
        SLM_CUDA_CHECK(cudaEventCreate(&start));
        SLM_CUDA_CHECK(cudaEventCreate(&stop));
        std::vector<double> times;
        for (auto _ : state) {
            flush_l2(stream, static_cast<int>(times.size()));
            SLM_CUDA_CHECK(cudaEventRecord(start, stream));
            if (pass == Pass::forward || pass == Pass::forward_backward) forward();
            if (pass == Pass::backward || pass == Pass::forward_backward) backward();
            if (pass == Pass::backward_then_rope) {
                backward();
                slm::cuda::rope_backward(d_qkv.data(), s, 10000.0, stream);
            }
            if constexpr (requires { &Kernel::backward_through_rope; })
                if (pass == Pass::backward_through_rope)
                    Kernel::backward_through_rope(backend, s, 10000.0, qkv.data(), out.data(),
                                                  d_out.data(), saved.data(), scratch.data(),
                                                  d_qkv.data());
            SLM_CUDA_CHECK(cudaEventRecord(stop, stream));
            SLM_CUDA_CHECK(cudaEventSynchronize(stop));
            float ms = 0;
            SLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
            state.SetIterationTime(ms / 1e3);
            times.push_back(ms / 1e3);
        }
        SLM_CUDA_CHECK(cudaEventDestroy(start));
        SLM_CUDA_CHECK(cudaEventDestroy(stop));
        backend.synchronize();
        std::sort(times.begin(), times.end());
        const double median = times[times.size() / 2];
        const double T = static_cast<double>(s.seq);
        const double forward_flops = 4.0 * static_cast<double>(s.batch * s.heads) * T * T *
                                     static_cast<double>(s.head_dim) / 2.0;
        state.counters["TFLOPs"] = forward_flops * flop_multiplier(pass) / median / 1e12;
        state.counters["median_ms"] = median * 1e3;
        state.counters["saved_MiB"] =
            static_cast<double>(footprint.saved_bytes_per_layer) / (1 << 20);
    } catch (const slm::Error& e) {
        const std::string what = e.what();
        if (what.find("out of GPU memory") == std::string::npos) throw;
        state.SkipWithError(("does not fit: " + what).c_str());
    }
}

template <class Kernel>
void register_kernel(const std::string& name, std::initializer_list<Pass> passes, int iterations,
                     std::initializer_list<int64_t> head_dims = {64, 128}) {
    for (int64_t head_dim : head_dims)
        for (int64_t seq : {512, 1024, 2048, 4096, 8192, 16384})
            for (Pass pass : passes) {
                const int64_t heads = hidden / head_dim;
                const slm::AttentionShape s{tokens / seq, seq, heads, heads, head_dim};
                const std::string label = "attention/" + name + "/" + pass_name(pass) +
                                          "/hdim:" + std::to_string(head_dim) +
                                          "/seq:" + std::to_string(seq);
                benchmark::RegisterBenchmark(label.c_str(), [s, pass](benchmark::State& state) {
                    attention<Kernel>(state, s, pass);
                })
                    ->UseManualTime()
                    ->Iterations(iterations)
                    ->Unit(benchmark::kMillisecond);
            }
}

}  // namespace

int main(int argc, char** argv) {
    using namespace slm::attention;
    const auto all = {Pass::forward, Pass::backward, Pass::forward_backward};
    const auto flash_dims = {int64_t{32}, int64_t{48}, int64_t{64}, int64_t{80}, int64_t{96}, int64_t{128},
                             int64_t{256}};
    register_kernel<AttentionKernel<Flash, slm::cuda::Backend>>(
        "flash", {Pass::forward, Pass::backward, Pass::forward_backward, Pass::backward_then_rope,
                  Pass::backward_through_rope}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic, FlashForward::tma>>(
        "flash_tma", {Pass::forward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic_tma>>(
        "flash_tma_backward", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic_tma_bulk_dq>>(
        "flash_tma_bulk_dq", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic_tma_kv_registers>>(
        "flash_tma_kv_registers", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic_tma_overlapped_dq>>(
        "flash_tma_overlapped_dq", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::deterministic_tma>>(
        "flash_deterministic_tma", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic, FlashForward::warpgroup>>(
        "flash_warpgroup_forward", {Pass::forward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::atomic_mma_sync>>(
        "flash_mma_sync", {Pass::backward, Pass::forward_backward}, 30);
    register_kernel<FlashCudaKernel<FlashBackward::deterministic>>(
        "flash_deterministic", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<FlashCudaKernel<FlashBackward::deterministic_mma_sync>>(
        "flash_deterministic_mma_sync", {Pass::backward, Pass::forward_backward}, 30);
    register_kernel<FlashCudaKernel<FlashBackward::deterministic_tile_0_up>>(
        "flash_deterministic_tile_0_up", {Pass::backward, Pass::forward_backward}, 30, flash_dims);
    register_kernel<AttentionKernel<Naive, slm::cuda::Backend>>("naive", all, 10);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
