#pragma once
// The loss side of loss per dollar: a short real training run of one preset at one global batch
// on real text, with validation loss recorded against tokens seen. Its length is set in seconds
// from the preset's measured speed, so every preset gets a curve of about the same cost.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "slm/attention/flash.hpp"
#include "slm/core/presets.hpp"
#include "slm/data/loader.hpp"
#include "slm/study/records.hpp"
#include "slm/train/trainer.hpp"

namespace slm::study {

struct LossRun {
    std::string preset;
    std::string attention = std::string(attention::Flash::name);
    int64_t global_batch = 16, micro_batch = 8, seq = 2048;
    int64_t steps = 100;
    int evaluations = 10;  // validation points after the one at step 0
    uint64_t seed = 1234;
};

// The fastest measured configuration of the run's preset whose micro-batch divides the global
// batch: the loss run uses its attention and micro-batch; returns its tokens/s.
inline double fastest_measured(const Records& records, const std::string& gpu, LossRun& run) {
    double best = 0;
    for (const auto& l : records.lines()) {
        if (l.value("kind", "") != "measured" || l.value("gpu", "") != gpu || l.value("preset", "") != run.preset ||
            l.value("seq", int64_t{0}) != run.seq)
            continue;
        const int64_t mb = l.at("micro_batch").get<int64_t>();
        if (run.global_batch % mb != 0 || l.at("tokens_per_s").get<double>() <= best) continue;
        best = l.at("tokens_per_s").get<double>();
        run.micro_batch = mb;
        run.attention = l.at("attention").get<std::string>();
    }
    slm::require(best > 0, "loss curve for " + run.preset + ": no measured point of it at seq " +
                               std::to_string(run.seq) + " with a micro-batch dividing the global batch " +
                               std::to_string(run.global_batch) + " (measure the grid first)");
    return best;
}

// Peak learning rate for a short run: 3e-3 at the CPU demo's width, falling as 1/√width — the
// usual shrinking of stable rates with width, without per-preset tuning we have not done.
inline double short_run_learning_rate(const slm::ModelConfig& m) {
    return 3e-3 * std::sqrt(256.0 / static_cast<double>(m.hidden));
}

template <class Model>
Json run_loss_curve(const LossRun& r, const std::vector<std::filesystem::path>& shards,
                    const std::filesystem::path& scratch_dir) {
    auto model = slm::presets::by_name(r.preset);
    model.max_seq = std::max(model.max_seq, r.seq);
    slm::require(r.global_batch % r.micro_batch == 0,
                 "loss curve: global batch " + std::to_string(r.global_batch) +
                     " is not a multiple of the micro-batch " + std::to_string(r.micro_batch));
    slm::RunConfig run;
    run.batch = r.micro_batch;
    run.seq = r.seq;
    run.grad_accum = r.global_batch / r.micro_batch;
    run.steps = std::max<int64_t>(r.steps, 2);
    run.lr = short_run_learning_rate(model);
    run.min_lr = run.lr / 10;
    run.warmup = std::max<int64_t>(1, run.steps / 10);
    run.eval_batches = 4;
    run.out_dir = scratch_dir;
    run.seed = r.seed;
    slm::data::Loader data(shards, {r.micro_batch, r.seq, r.seed, 0, 1});
    slm::require(data.vocab() <= model.vocab,
                 "loss curve: the token shards use a vocabulary of " + std::to_string(data.vocab()) +
                     ", larger than " + r.preset + "'s " + std::to_string(model.vocab) +
                     "; prepare the corpus with --vocab " + std::to_string(model.vocab));
    slm::Trainer<Model> trainer(model, run);
    const double tokens_per_step = static_cast<double>(r.global_batch * r.seq);
    Json points = Json::array();
    points.push_back({0.0, trainer.evaluate(data)});
    const int64_t every = std::max<int64_t>(1, run.steps / std::max(r.evaluations, 1));
    const auto start = std::chrono::steady_clock::now();
    for (int64_t s = 1; s <= run.steps; ++s) {
        trainer.train_step(data);
        if (s % every == 0 || s == run.steps) {
            const double val = trainer.evaluate(data);
            points.push_back({tokens_per_step * static_cast<double>(s), val});
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::printf("  loss curve %s: step %lld/%lld, %.3g tokens, val loss %.4f (%.0f s)\n",
                        r.preset.c_str(), static_cast<long long>(s),
                        static_cast<long long>(run.steps), tokens_per_step * static_cast<double>(s),
                        val, elapsed);
            std::fflush(stdout);
        }
    }
    return Json{{"kind", "loss_curve"},
                {"key", r.preset + "/" + std::to_string(r.global_batch) + "/" + std::to_string(r.seq)},
                {"preset", r.preset},
                {"global_batch", r.global_batch},
                {"micro_batch", r.micro_batch},
                {"seq", r.seq},
                {"lr", run.lr},
                {"steps", run.steps},
                {"points", points},
                {"max_tokens", tokens_per_step * static_cast<double>(run.steps)}};
}

}  // namespace slm::study
