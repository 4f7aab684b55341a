#pragma once
// One data-parallel point measured on W ranks: every rank builds Trainer<Model, Policy> over its
// communicator with the point's micro-batch (global batch W × micro-batch), times the same
// steps, and the ranks' numbers are gathered:
//   step time      for each timed step the slowest rank's time (the collectives make every rank
//                  wait for the slowest anyway), then the median over the steps;
//   tokens/s       W · micro_batch · seq / step time (tokens_per_s_per_gpu: that / W);
//   memory         the largest rank's device memory in use (GPU), and the largest rank's bytes of
//                  parameters, gradients and optimizer state from its allocations (state_gib);
//   ops_ms         rank 0's per-op profile, communication included.
// Every rank calls measure_on_ranks with the same point; rank 0 gets the line, the others {}.
// A rank that runs out of memory mid-point cannot leave the collectives its peers wait in: the
// whole job ends (the per-rank memory pre-check in ranked_sweep.hpp is there to prevent it).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "slm/cost/communication.hpp"
#include "slm/cost/memory_model.hpp"
#include "slm/study/measure.hpp"
#include "slm/study/ranks.hpp"

namespace slm::study {

// The estimate the pre-check compares with the device: one rank's bytes under p.parallel at W.
inline int64_t per_rank_estimate(const slm::MemoryEstimate& one_process, const slm::ModelConfig& model,
                                 const slm::Precision& precision, const Point& p, int gpus) {
    return slm::cost::memory_per_gpu(one_process, model, precision, slm::cost::scheme_by_name(p.parallel), gpus);
}

// Per step, the slowest rank (the step ends for all when it ends for the last). times[r][i]:
// rank r's step i.
inline std::vector<double> slowest_rank(const std::vector<std::vector<double>>& times) {
    slm::require(!times.empty() && !times[0].empty(), "sweep: no step times were gathered");
    std::vector<double> slowest(times[0].size(), 0.0);
    for (const auto& rank : times) {
        slm::require(rank.size() == slowest.size(), "sweep: the ranks timed different numbers of steps");
        for (size_t i = 0; i < rank.size(); ++i) slowest[i] = std::max(slowest[i], rank[i]);
    }
    return slowest;
}

// `step_seconds(backend, fn)` times fn by the device's clock; `memory_before` is this rank's
// device memory in use before the policy's communicator was made (0 without a counter).
template <class Model, class Policy, class StepTimer>
Json measure_on_ranks(const Point& p, const Device& device, StepTimer step_seconds, const Timing& timing,
                      Policy policy, Ranks& ranks, int64_t memory_before) {
    auto model = slm::presets::by_name(p.preset);
    model.max_seq = std::max(model.max_seq, p.seq);  // RoPE has no length limit
    const int world = policy.world_size();
    slm::require(world == ranks.world_size(), "sweep: the policy's communicator has " + std::to_string(world) +
                                                  " ranks but the sweep runs on " +
                                                  std::to_string(ranks.world_size()));
    slm::RunConfig run;
    run.batch = p.micro_batch;
    run.seq = p.seq;
    run.steps = 1'000'000;  // constant learning rate over the timed steps: no warm-up ramp
    run.warmup = 0;
    slm::Trainer<Model, Policy> trainer(model, run, std::move(policy));
    slm::data::RandomTokens data(model.vocab, p.micro_batch, p.seq, 1, ranks.rank());
    for (int i = 0; i < timing.warmup; ++i) trainer.train_step(data);
    if (device.synchronize) device.synchronize();
    std::vector<double> times;
    for (int i = 0; i < timing.timed_steps(); ++i)
        times.push_back(step_seconds(trainer.backend(), [&] { trainer.train_step(data); }));
    const slm::OpBreakdown ops = trainer.profile(data, 2);
    const Json mine{{"times", times},
                    {"memory", device.memory_in_use ? device.memory_in_use() - memory_before : int64_t{-1}},
                    {"state", trainer.state_bytes().total()}};
    std::vector<std::vector<double>> all_times;
    int64_t memory = -1, state = 0;
    for (const auto& blob : ranks.all_gather_blobs(mine.dump())) {
        const Json r = Json::parse(blob);
        all_times.push_back(r.at("times").get<std::vector<double>>());
        memory = std::max(memory, r.at("memory").get<int64_t>());
        state = std::max(state, r.at("state").get<int64_t>());
    }
    if (!ranks.lead()) return Json::object();

    const Timed timed = time_windows(slowest_rank(all_times), timing,
                                     static_cast<double>(world * p.micro_batch * p.seq));
    const double tokens_per_s = timed.mean;
    const double per_gpu = tokens_per_s / world;
    Json measured = Json{{"kind", "measured"}};
    measured.update(identity(device, p, model, world));
    measured["step_ms"] = timed.step_seconds * 1e3;
    measured["step_time"] = "per window the median over steps of the slowest rank; the mean over windows";
    measured["tokens_per_s"] = tokens_per_s;
    add_windows(measured, timed, timing);
    measured["tokens_per_s_per_gpu"] = per_gpu;
    if (device.peak_tflops > 0)
        measured["mfu_pct"] = 100.0 * per_gpu * slm::flops_per_token(model, p.seq) / (device.peak_tflops * 1e12);
    if (memory >= 0) measured["memory_gib"] = gib(memory);
    measured["state_gib"] = gib(state);
    add_cost(measured, tokens_per_s, world, device.dollars_per_hour);
    measured["ops_ms"] = ops_ms(ops);
    return measured;
}

}  // namespace slm::study
