#pragma once
// What a resume may change. A checkpoint keeps the settings of the run that wrote it (its
// run_summary, plus the world size and the global batch); a resume compares them with its own:
//   - the model is compared field by field before (config_difference);
//   - how often to log, evaluate and checkpoint, and profiling, may change freely;
//   - `steps` may change: the learning-rate schedule is the one the run started with (its cosine
//     decays over the original steps and stays at min_lr after), --steps only moves the end;
//   - the per-rank batch and the world size may change together (a resume on more or fewer
//     ranks) as long as the global batch stays;
//   - anything else that differs (global batch, seq, lr, schedule, optimizer, seed, data) is
//     refused, naming each setting, both values and the flag that accepts it (--allow-change).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slm/core/config_io.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/parallel/transport/config_check.hpp"
#include "slm/train/checkpoint.hpp"
#include "slm/train/run_config.hpp"
#include "slm/train/run_directory.hpp"
#include "slm/train/run_summary.hpp"

namespace slm {

namespace resume_detail {
inline bool free_to_change(std::string_view name) {
    for (std::string_view n : {"steps", "log_interval", "eval_interval", "eval_batches",
                               "checkpoint_interval", "profile_steps", "batch", "world", "grad_accum"})
        if (n == name) return true;
    return false;
}
// The flag that sets a field, for messages ("" when only the library sets it).
inline std::string flag_of(std::string_view name) {
    static constexpr std::pair<std::string_view, std::string_view> flags[] = {
        {"global_batch", "--batch x ranks x --grad-accum"}, {"seq", "--seq"}, {"lr", "--lr"},
        {"min_lr", "--min-lr"}, {"warmup", "--warmup"}, {"weight_decay", "--weight-decay"},
        {"max_grad_norm", "--clip"}, {"seed", "--seed"}, {"data", "--data"},
        {"precision", "--precision"}};
    for (const auto& [field, flag] : flags)
        if (field == name) return std::string(flag);
    return "";
}
}  // namespace resume_detail

// "" when `now` may resume a checkpoint written with `saved`; otherwise one line per setting
// that differs and is not in `allowed`, then how to accept them.
inline std::string resume_differences(const parallel::ConfigSummary& saved,
                                      const parallel::ConfigSummary& now,
                                      const std::vector<std::string>& allowed) {
    using namespace resume_detail;
    std::string lines, names;
    for (const auto& f : now.fields()) {
        if (free_to_change(f.name) || f.name == "model" ||
            std::find(allowed.begin(), allowed.end(), f.name) != allowed.end())
            continue;
        const auto& old = saved.fields();
        const auto it = std::find_if(old.begin(), old.end(), [&](const auto& o) { return o.name == f.name; });
        if (it == old.end() || it->value == f.value) continue;
        if (f.name == "data" && (f.value.empty() || it->value.empty())) continue;  // not recorded
        const std::string flag = flag_of(f.name);
        lines += "  " + f.name + (flag.empty() ? "" : " (" + flag + ")") + ": " + it->value +
                 " in the checkpoint, " + f.value + " now\n";
        names += (names.empty() ? "" : ",") + f.name;
    }
    if (lines.empty()) return "";
    return lines + "resume with the checkpoint's values, or pass --allow-change " + names +
           " to continue with the new ones";
}

// The settings a checkpoint keeps: the run's run_summary, the world size and the global batch.
inline std::string checkpoint_settings(const ModelConfig& model, const RunConfig& run, int world) {
    auto s = run_summary(model, run, run.data_fingerprint);
    s.add("world", static_cast<int64_t>(world));
    s.add("global_batch", run.batch * run.grad_accum * world);
    return s.encode();
}

// Throws unless checkpoint `c` (read from `path`) may be resumed by a run of `model` with
// `run` (whose checkpoint_settings are `settings_now`): the same model, as many values as the
// model has, settings that differ only where allowed, and --steps not below its step.
template <class Master>
void check_resume(const Checkpoint<Master>& c, const std::filesystem::path& path,
                  const ModelConfig& model, const std::string& settings_now, const RunConfig& run) {
    const std::string diff = config_difference(c.config, model);
    require(diff.empty(), "checkpoint '" + path.string() + "' was written for another model (" +
                              diff + "); pick the matching --preset or a new --out directory");
    const int64_t n = ParameterLayout(model).total();
    require(static_cast<int64_t>(c.params.size()) == n,
            "checkpoint '" + path.string() + "' holds " + std::to_string(c.params.size()) +
                " values, the model needs " + std::to_string(n));
    if (!c.settings.empty()) {
        const std::string changes =
            resume_differences(parallel::ConfigSummary::decode(c.settings, 0),
                               parallel::ConfigSummary::decode(settings_now, 0), run.allow_changes);
        require(changes.empty(), "checkpoint '" + path.string() +
                                     "' was written by a run with other settings:\n" + changes);
    }
    require(run.steps >= c.state.step,
            "checkpoint '" + path.string() + "' is at step " + std::to_string(c.state.step) +
                ", past --steps " + std::to_string(run.steps) + ": give --steps " +
                std::to_string(c.state.step) + " or more");
}

// The newest checkpoint in `out` that verifies, falling back to older ones with a message (on
// the lead rank) when the newest is damaged; an error listing every failure when none does.
template <class Master>
std::pair<Checkpoint<Master>, std::filesystem::path> load_newest_checkpoint(const std::filesystem::path& out,
                                                                             bool lead) {
    const auto candidates = RunDirectory(out).resume_candidates();
    require(!candidates.empty(), "no checkpoint in '" + out.string() + "' to resume from");
    std::string skipped;
    for (const auto& file : candidates) {
        try {
            return {load_checkpoint<Master>(file), file};
        } catch (const Error& e) {
            if (lead) std::fprintf(stderr, "resume: %s; trying the checkpoint before it\n", e.what());
            skipped += "\n  " + std::string(e.what());
        }
    }
    fail("no checkpoint in '" + out.string() + "' verifies:" + skipped);
}

}  // namespace slm
