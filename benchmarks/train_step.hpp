#pragma once
// One benchmark iteration = one optimizer step of Trainer<Model, Parallel> on random tokens,
// timed by the caller's timer (CUDA events on the GPU, a steady clock on the CPU) after warm-up
// steps. Counters (from the median step): tokens/s in total and per GPU, MFU against the GPU's
// dense bf16 peak and $ per million tokens at its catalog price (when known), memory in use, and
// the estimate from core/. A configuration that does not fit is recorded as "does not fit" with
// the estimate, and the next one still runs.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>
#include <functional>
#include <string>

#include "slm/core/accounting.hpp"
#include "slm/core/error.hpp"
#include "slm/cost/loss_curve.hpp"
#include "slm/data/random_tokens.hpp"
#include "slm/train/memory_estimate.hpp"
#include "slm/train/trainer.hpp"

namespace slm::bench {

struct Device {
    double peak_tflops = 0;                   // 0: unknown, no MFU counter
    double dollars_per_hour = 0;              // 0: unknown, no cost counter
    std::function<int64_t()> memory_in_use;   // bytes now held on the device (may be empty)
    std::function<void()> synchronize;
};

struct NoSetup {
    template <class B>
    void operator()(B&) const {}
};

// `step_seconds(backend, fn)` runs fn once and returns its duration as the timer measures it;
// `setup(backend)` runs once before the warm-up steps (backend options under test).
// `recompute`: what the backward computes again (RunConfig::recompute).
template <class Model, class Parallel = parallel::Single, class StepTimer, class Setup = NoSetup>
void train_step(benchmark::State& state, const ModelConfig& model, int64_t batch, int64_t seq,
                const Device& device, StepTimer step_seconds, int64_t warmup = 3,
                Parallel parallel = {}, Setup setup = {}, Recompute recompute = Recompute::none) {
    RunConfig run;
    run.batch = batch;
    run.seq = seq;
    run.recompute = recompute;
    run.steps = 1'000'000;  // the schedule stays in warmup-free decay for every timed step
    run.warmup = 0;
    const int64_t before = device.memory_in_use ? device.memory_in_use() : 0;
    const auto estimate = estimate_memory<Model>(model, batch, seq, recompute);
    state.counters["estimate_GiB"] = static_cast<double>(estimate.total()) / (1 << 30);
    try {
        const int gpus = parallel.world_size();
        Trainer<Model, Parallel> trainer(model, run, std::move(parallel));
        data::RandomTokens data(model.vocab, batch, seq, 1);
        setup(trainer.backend());
        for (int64_t i = 0; i < warmup; ++i) trainer.train_step(data);
        if (device.synchronize) device.synchronize();
        std::vector<double> times;
        for (auto _ : state) {
            const double t = step_seconds(trainer.backend(), [&] { trainer.train_step(data); });
            state.SetIterationTime(t);
            times.push_back(t);
        }
        // Rates from the median step: one slow step (a page fault, a clock change) does not move it.
        std::sort(times.begin(), times.end());
        const double seconds = times[times.size() / 2];
        const double tokens = static_cast<double>(batch * seq);
        state.counters["tokens_per_s"] = tokens * gpus / seconds;
        state.counters["tokens_per_s_per_gpu"] = tokens / seconds;
        if (device.dollars_per_hour > 0)
            state.counters["dollars_per_mtok"] =
                1e6 / cost::tokens_per_dollar(tokens * gpus / seconds, gpus, device.dollars_per_hour);
        if (device.memory_in_use)
            state.counters["memory_GiB"] =
                static_cast<double>(device.memory_in_use() - before) / (1 << 30);
        // Where the time goes, from the trainer's own per-op timing (a few extra steps).
        const OpBreakdown b = trainer.profile(data, 3);
        for (int i = 0; i < op_count; ++i)
            state.counters[std::string(op_names[static_cast<size_t>(i)]) + "_ms"] =
                1e3 * b.seconds[static_cast<size_t>(i)] / static_cast<double>(b.steps);
        state.counters["idle_ms"] = 1e3 * b.idle_seconds() / static_cast<double>(b.steps);
        if (device.peak_tflops > 0)
            state.counters["MFU_pct"] =
                100.0 * tokens / seconds * flops_per_token(model, seq) / (device.peak_tflops * 1e12);
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.find("out of GPU memory") == std::string::npos) throw;
        state.SkipWithError(("does not fit: estimate " + format_gib(estimate.total()) + "; " + what)
                                .c_str());
    }
}

}  // namespace slm::bench
