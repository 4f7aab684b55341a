#pragma once
// One measured point of the sweep: a Trainer<Model> on random tokens, timed optimizer steps
// (windows of them: study/timing.hpp), the per-op profile, memory in use, and the cost columns. A configuration whose
// memory estimate exceeds what the device has free is recorded as skipped without being tried;
// one that runs out of memory anyway is recorded the same way, with the allocator's message, and
// so is one whose attention kernel does not support the preset's head_dim.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "slm/core/accounting.hpp"
#include "slm/core/presets.hpp"
#include "slm/cost/loss_curve.hpp"
#include "slm/data/random_tokens.hpp"
#include "slm/study/grid.hpp"
#include "slm/study/records.hpp"
#include "slm/study/timing.hpp"
#include "slm/train/memory_estimate.hpp"
#include "slm/train/trainer.hpp"

namespace slm::study {

struct Device {
    std::string gpu;          // catalog name ("H100-80GB"), or "CPU"
    std::string device_name;  // what the driver calls it
    double peak_tflops = 0;   // 0: no MFU
    double dollars_per_hour = 0;
    int64_t memory_limit = 0;                // bytes free for a run (0: unknown, no pre-check)
    std::function<int64_t()> memory_in_use;  // may be empty
    std::function<void()> synchronize;
};

inline double gib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

// Fields every line about a point carries; `gpus` ranks of p.micro_batch each (data-parallel
// under p.parallel when more than one, or when p.parallel is not "single").
inline Json identity(const Device& d, const Point& p, const slm::ModelConfig& model, int gpus = 1) {
    return Json{{"key", key(d.gpu, gpus, p)},   {"gpu", d.gpu},
                {"device_name", d.device_name}, {"gpus", gpus},
                {"preset", p.preset},           {"params", slm::parameter_count(model)},
                {"attention", p.attention},     {"parallel", p.parallel},
                {"precision", p.precision},
                {"micro_batch", p.micro_batch}, {"seq", p.seq},
                {"grad_accum", 1},              {"global_batch", p.micro_batch * gpus},
                // The FFN width the GEMMs ran at (ModelConfig::ffn_padded; lines without it come
                // from trees that ran the unpadded width, which the throughput model tells apart).
                {"ffn_stored", model.ffn_padded()}};
}

inline void add_cost(Json& line, double tokens_per_s, int gpus, double dollars_per_hour) {
    line["dollars_per_gpu_hour"] = dollars_per_hour;
    if (dollars_per_hour <= 0 || tokens_per_s <= 0) return;  // a CPU, or a GPU without a price
    const double per_dollar = slm::cost::tokens_per_dollar(tokens_per_s, gpus, dollars_per_hour);
    line["tokens_per_dollar"] = per_dollar;
    line["dollars_per_mtok"] = 1e6 / per_dollar;
}

// The timing windows behind a measured tokens/s.
inline void add_windows(Json& line, const Timed& timed, const Timing& timing) {
    line["repeats"] = timing.repeats;
    line["steps_per_repeat"] = timing.steps;
    line["tokens_per_s_repeats"] = timed.tokens_per_s;
    line["tokens_per_s_spread"] = timed.spread;
}

// The per-op profile as {op: milliseconds per step} plus "idle".
template <class Profile>
Json ops_ms(const Profile& ops) {
    Json out = Json::object();
    const auto steps = static_cast<double>(ops.steps);
    for (int i = 0; i < slm::op_count; ++i)
        out[std::string(slm::op_names[static_cast<size_t>(i)])] =
            1e3 * ops.seconds[static_cast<size_t>(i)] / steps;
    out["idle"] = 1e3 * ops.idle_seconds() / steps;
    return out;
}

// `step_seconds(backend, fn)` runs fn and returns its duration by the device's clock.
template <class Model, class StepTimer>
Json measure_point(const Point& p, const Device& device, StepTimer step_seconds, const Timing& timing) {
    auto model = slm::presets::by_name(p.preset);
    model.max_seq = std::max(model.max_seq, p.seq);  // RoPE has no length limit
    Json line = identity(device, p, model);
    const auto estimate = slm::estimate_memory<Model>(model, p.micro_batch, p.seq);
    line["estimate_gib"] = gib(estimate.total());
    if (device.memory_limit > 0) line["memory_limit_gib"] = gib(device.memory_limit);
    auto skipped = [&](const std::string& reason) {
        Json s = Json{{"kind", "skipped"}};
        s.update(line);
        s["reason"] = reason;
        return s;
    };
    if (device.memory_limit > 0 && estimate.total() > device.memory_limit)
        return skipped("does not fit");
    const int64_t before = device.memory_in_use ? device.memory_in_use() : 0;
    try {
        slm::RunConfig run;
        run.batch = p.micro_batch;
        run.seq = p.seq;
        run.steps = 1'000'000;  // constant learning rate over the timed steps: no warm-up ramp
        run.warmup = 0;
        slm::Trainer<Model> trainer(model, run);
        slm::data::RandomTokens data(model.vocab, p.micro_batch, p.seq, 1);
        for (int i = 0; i < timing.warmup; ++i) trainer.train_step(data);
        if (device.synchronize) device.synchronize();
        std::vector<double> times;
        for (int i = 0; i < timing.timed_steps(); ++i)
            times.push_back(step_seconds(trainer.backend(), [&] { trainer.train_step(data); }));
        const Timed timed = time_windows(times, timing, static_cast<double>(p.micro_batch * p.seq));
        const double tokens_per_s = timed.mean;
        const slm::OpBreakdown ops = trainer.profile(data, 2);
        Json measured = Json{{"kind", "measured"}};
        measured.update(line);
        measured["step_ms"] = timed.step_seconds * 1e3;
        measured["tokens_per_s"] = tokens_per_s;
        add_windows(measured, timed, timing);
        measured["tokens_per_s_per_gpu"] = tokens_per_s;
        if (device.peak_tflops > 0)
            measured["mfu_pct"] = 100.0 * tokens_per_s * slm::flops_per_token(model, p.seq) /
                                  (device.peak_tflops * 1e12);
        if (device.memory_in_use) measured["memory_gib"] = gib(device.memory_in_use() - before);
        add_cost(measured, tokens_per_s, 1, device.dollars_per_hour);
        measured["ops_ms"] = ops_ms(ops);
        return measured;
    } catch (const slm::Error& e) {
        // Two failures are facts about the point, not faults of the sweep: it ran out of memory,
        // or its kernel has no variant for this shape (GPU Flash at head_dim 96, say). Both are
        // recorded as skipped with the message; anything else stops the sweep.
        const std::string what = e.what();
        if (what.find("out of GPU memory") != std::string::npos) return skipped("out of memory: " + what);
        if (what.find("supports head_dim") != std::string::npos) return skipped("unsupported: " + what);
        throw;
    }
}

}  // namespace slm::study
