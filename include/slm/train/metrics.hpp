#pragma once
// What a run reports while it trains: one human line per event on stderr (progress, validation,
// checkpoint) and the same numbers as JSON lines in <out>/metrics.jsonl (appended, so a resumed
// run continues it). The lines are written by nlohmann::json, so a non-finite number becomes
// null and every line stays valid JSON; a failed write is an error naming the file, not silence.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "slm/core/error.hpp"
#include "slm/core/op_profile.hpp"

namespace slm {

struct StepStats {
    int64_t step = 0;  // optimizer steps completed after this one
    double loss = 0;
    double lr = 0;
    double grad_norm = 0;
    int64_t tokens = 0;  // tokens processed by this step (all ranks)
};

inline std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto s = static_cast<int64_t>(seconds + 0.5);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
    else std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    return buf;
}

class MetricsLog {
public:
    using Json = nlohmann::ordered_json;

    MetricsLog() = default;
    explicit MetricsLog(const std::filesystem::path& file) : path_(file), out_(file, std::ios::app) {
        require(static_cast<bool>(out_), "cannot write metrics log '" + file.string() +
                                             "'; check that the output directory is writable");
    }

    // tokens_per_s counts training time only (not evaluations or saves, which have their own
    // lines); eta_s is the wall time per step so far, times the steps left; tokens: trained through
    // this step, all ranks (every step takes the same number), the x axis of a loss-per-token plot.
    void train(const StepStats& s, int64_t total_steps, double tokens_per_s, double elapsed,
               double eta) {
        std::fprintf(stderr,
                     "step %6lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | "
                     "elapsed %s | ETA %s\n",
                     (long long)s.step, (long long)total_steps, s.loss, s.lr, s.grad_norm,
                     tokens_per_s, format_duration(elapsed).c_str(), format_duration(eta).c_str());
        line({{"step", s.step},
              {"loss", s.loss},
              {"lr", s.lr},
              {"grad_norm", s.grad_norm},
              {"tokens", s.tokens * s.step},
              {"tokens_per_s", tokens_per_s},
              {"elapsed_s", elapsed},
              {"eta_s", eta}});
    }

    // seconds < 0: not timed (the evaluation at step 0 of a fresh run is reported the same way).
    void validation(int64_t step, double loss, double seconds = -1) {
        if (seconds >= 0)
            std::fprintf(stderr, "step %6lld | validation loss %.4f (%.1f s)\n", (long long)step,
                         loss, seconds);
        else
            std::fprintf(stderr, "step %6lld | validation loss %.4f\n", (long long)step, loss);
        Json j = {{"step", step}, {"val_loss", loss}};
        if (seconds >= 0) j["eval_s"] = seconds;
        line(j);
    }

    // blocked_s: how long training waited for the save; due_step: the step it fell due at,
    // when it was deferred (train/save_schedule.hpp) past a write in flight.
    void checkpoint(int64_t step, const std::filesystem::path& file, double blocked_s,
                    int64_t due_step = -1) {
        Json j = {{"step", step}, {"checkpoint", file.string()}, {"blocked_s", blocked_s}};
        if (due_step >= 0 && due_step != step) {
            std::fprintf(stderr, "step %6lld | checkpoint %s, due at step %lld (training blocked %.1f s)\n",
                         (long long)step, file.c_str(), (long long)due_step, blocked_s);
            j["due_step"] = due_step;
        } else {
            std::fprintf(stderr, "step %6lld | checkpoint %s (training blocked %.1f s)\n",
                         (long long)step, file.c_str(), blocked_s);
        }
        line(j);
    }

    // A save fell due while the one of `writing_step` was still being written, and is deferred.
    void checkpoint_deferred(int64_t step, int64_t writing_step, bool first) {
        std::fprintf(stderr, "step %6lld | checkpoint deferred: the write of step %lld is still in flight%s\n",
                     (long long)step, (long long)writing_step,
                     first ? "; the save is taken at the first step after it ends, so saves come as "
                             "often as the disk allows (--checkpoint-when-busy wait waits instead)"
                           : "");
        line({{"step", step}, {"checkpoint_deferred", true}, {"writing_step", writing_step}});
    }

    void profile(int64_t step, const OpBreakdown& b) {
        std::fprintf(stderr, "per-op time over %lld steps from step %lld:\n%s", (long long)b.steps,
                     (long long)step, b.table().c_str());
        line({{"step", step}, {"profile", b.json()}});
    }

private:
    void line(const Json& j) {
        if (!out_.is_open()) return;
        out_ << j.dump() << '\n';
        out_.flush();
        require(static_cast<bool>(out_), "writing metrics log '" + path_.string() +
                                             "' failed (disk full or removed?)");
    }
    std::filesystem::path path_;
    std::ofstream out_;
};

}  // namespace slm
