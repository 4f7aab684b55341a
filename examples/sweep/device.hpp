#pragma once
// Where the sweep runs: the GPU (when this program was built by nvcc and one is visible) or the
// CPU, as one Target whose functions hide the backend types: measuring a point (alone, or on the
// sweep's ranks under a data-parallel policy), running a loss curve, and estimating memory with
// that backend's precision and attention footprints. A rank of a multi-GPU sweep uses GPU
// LOCAL_RANK.
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../device_choice.hpp"
#include "../parallel_choice.hpp"
#include "slm/cost/gpu_catalog.hpp"
#include "slm/cpu/attention.hpp"
#include "slm/cpu/backend.hpp"
#include "slm/cpu/fp8_linear.hpp"
#include "slm/model/llama.hpp"
#include "slm/study/loss_curve_run.hpp"
#include "slm/study/measure.hpp"
#include "slm/study/measure_ranks.hpp"
#include "slm/study/predict.hpp"
#include "slm/study/target.hpp"
#if defined(__CUDACC__)
#include <cuda_runtime.h>

#include "slm/cuda/attention.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_linear.cuh"
#include "slm/cuda/stream_timer.cuh"
#endif

namespace sweep {
using namespace slm::study;

// fn(std::type_identity<Llama<Backend, A, ..., P>>{}) for the sweep's attention policy called
// `attention` and the precision policy called `precision`.
template <class Backend, class Fn>
decltype(auto) with_model(std::string_view attention, std::string_view precision, Fn&& fn) {
    return slm::names::with_named<Attention>("attention policy", attention, [&](auto tag) {
        return slm::names::with_precision(precision, [&](auto p) {
            using Model = slm::Llama<Backend, typename decltype(tag)::type>;
            return fn(std::type_identity<typename Model::template with_precision<typename decltype(p)::type>>{});
        });
    });
}
// The same in bf16, compiled for bf16 alone: what the memory estimate (an FP8 run's scratch is
// not in it) and the loss curves use.
template <class Backend, class Fn>
decltype(auto) with_model(std::string_view attention, Fn&& fn) {
    return slm::names::with_named<Attention>("attention policy", attention, [&](auto tag) {
        return fn(std::type_identity<slm::Llama<Backend, typename decltype(tag)::type>>{});
    });
}


// Binds the Target's functions to one backend type; `timer(backend, fn)` times fn on its clock.
template <class Backend, class Timer>
void bind_backend(Target& t, Timer timer) {
    t.precision = Backend::precision();
    t.estimate = [](const slm::ModelConfig& m, const std::string& attention, int64_t mb, int64_t seq) {
        return with_model<Backend>(attention, [&](auto model) {
            return slm::estimate_memory<typename decltype(model)::type>(m, mb, seq);
        });
    };
    // A copy of the device: the Target (and its functions) is returned by value.
    t.measure = [device = t.device, timer](const Point& p, const Timing& timing) {
        return with_model<Backend>(p.attention, p.precision, [&](auto model) {
            return measure_point<typename decltype(model)::type>(p, device, timer, timing);
        });
    };
    t.loss_curve = [](const LossRun& r, const std::vector<std::filesystem::path>& shards,
                      const std::filesystem::path& dir) {
        return with_model<Backend>(r.attention, [&](auto model) {
            return run_loss_curve<typename decltype(model)::type>(r, shards, dir);
        });
    };
}

// Binds measure_ranked; `make_comm(ranks)` makes the communicator for one point.
template <class Backend, class Timer, class MakeComm>
void bind_ranked(Target& t, Timer timer, MakeComm make_comm) {
    t.measure_ranked = [device = t.device, timer, make_comm](const Point& p, const Timing& timing, Ranks& ranks) {
        const int64_t before = device.memory_in_use ? device.memory_in_use() : 0;
        Json line;
        slm::names::with_data_parallel(p.parallel, make_comm(ranks), [&](auto policy) {
            line = with_model<Backend>(p.attention, p.precision, [&](auto model) {
                return measure_on_ranks<typename decltype(model)::type>(
                    p, device, timer, timing, std::move(policy), ranks, before);
            });
        });
        return line;
    };
}

inline double steady_seconds(const std::function<void()>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#if defined(__CUDACC__)
inline int64_t gpu_memory_in_use() {
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    return static_cast<int64_t>(total - free);
}
#endif

// Points the predictor at the GPU backend's memory estimate, which needs no GPU to compute
// (precision and footprints are static): what --derive-only predicts with on a machine without
// one. False in a CPU-only build.
inline bool use_gpu_estimates(Predictor& p) {
#if defined(__CUDACC__)
    Target t;
    bind_backend<slm::cuda::Backend>(t, [](slm::cuda::Backend&, const std::function<void()>& fn) {
        return steady_seconds(fn);
    });
    p.estimate = t.estimate;
    p.precision = t.precision;
    return true;
#else
    (void)p;
    return false;
#endif
}

inline Target pick_target(const std::string& device_flag, const std::vector<slm::cost::GpuSpec>& catalog,
                          const std::string& gpu_override, int local_rank = 0) {
    Target t;
#if defined(__CUDACC__)
    slm::require(device_flag != "cuda" || slm::cli::gpu_present(),
                 "--device cuda: no GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES), or use --device cpu");
    if (device_flag != "cpu" && slm::cli::gpu_present()) {
        int count = 0;
        cudaGetDeviceCount(&count);
        slm::require(local_rank < count, "this rank's LOCAL_RANK is " + std::to_string(local_rank) + " but " +
                                             std::to_string(count) + " GPU(s) are visible: start at most " +
                                             std::to_string(count) + " ranks per node (CUDA_VISIBLE_DEVICES)");
        SLM_CUDA_CHECK(cudaSetDevice(local_rank));
        cudaDeviceProp prop{};
        cudaGetDeviceProperties(&prop, local_rank);
        t.on_gpu = true;
        t.device.device_name = prop.name;
        const slm::cost::GpuSpec* spec = gpu_override.empty()
                                             ? slm::cost::find_by_device_name(catalog, prop.name)
                                             : &slm::cost::find_by_name(catalog, gpu_override);
        slm::require(spec != nullptr, std::string("GPU '") + prop.name +
                                          "' is not in the catalog; name it with --gpu (catalog: " +
                                          slm::cost::catalog_names(catalog) + ") or add it with --catalog");
        t.device.gpu = spec->name;
        t.device.peak_tflops = spec->bf16_tflops;
        t.device.dollars_per_hour = spec->dollars_per_hour;
        // What is free now, less a margin for the allocator's rounding and the CUDA libraries'
        // lazily loaded modules: the estimate matches our own allocations, not those.
        size_t free = 0, total = 0;
        cudaMemGetInfo(&free, &total);
        t.device.memory_limit = static_cast<int64_t>(free) - (int64_t{512} << 20);
        t.device.memory_in_use = gpu_memory_in_use;
        t.device.synchronize = [] { cudaDeviceSynchronize(); };
        auto timer = [](slm::cuda::Backend& b, const std::function<void()>& fn) {
            return slm::cuda::seconds_on_stream(b.stream(), fn);
        };
        bind_backend<slm::cuda::Backend>(t, timer);
        bind_ranked<slm::cuda::Backend>(t, timer, [](Ranks& r) {
            return r.world_size() == 1 ? slm::parallel::Nccl(r.launch()) : slm::parallel::Nccl(r.launch(), r);
        });
        return t;
    }
#endif
    slm::require(device_flag != "cuda",
                 "--device cuda: this build of sweep has no CUDA backend (build with the cuda preset), or use --device cpu");
    t.device.gpu = "CPU";
    t.device.device_name = "CPU, " + std::to_string(std::thread::hardware_concurrency()) + " threads";
    using Cpu = slm::cpu::Backend<float>;
    auto timer = [](Cpu&, const std::function<void()>& fn) { return steady_seconds(fn); };
    bind_backend<Cpu>(t, timer);
#if SLM_EXAMPLES_HAVE_MPI
    bind_ranked<Cpu>(t, timer, [](Ranks&) { return slm::parallel::Mpi{}; });
#endif
    return t;
}

}  // namespace sweep
