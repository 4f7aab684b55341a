#pragma once
// What a run reports while it trains: one human progress line per interval on stderr and the
// same numbers as JSON lines in <out>/metrics.jsonl (appended, so a resumed run continues it).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

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
    MetricsLog() = default;
    explicit MetricsLog(const std::filesystem::path& file) : out_(file, std::ios::app) {
        require(static_cast<bool>(out_), "cannot write metrics log '" + file.string() +
                                             "'; check that the output directory is writable");
    }

    void train(const StepStats& s, int64_t total_steps, double tokens_per_s, double elapsed,
               double eta) {
        std::fprintf(stderr,
                     "step %6lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | "
                     "elapsed %s | ETA %s\n",
                     (long long)s.step, (long long)total_steps, s.loss, s.lr, s.grad_norm,
                     tokens_per_s, format_duration(elapsed).c_str(), format_duration(eta).c_str());
        line("{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6f,\"tokens_per_s\":%.1f,"
             "\"elapsed_s\":%.3f,\"eta_s\":%.3f}",
             (long long)s.step, s.loss, s.lr, s.grad_norm, tokens_per_s, elapsed, eta);
    }

    void validation(int64_t step, double loss) {
        std::fprintf(stderr, "step %6lld | validation loss %.4f\n", (long long)step, loss);
        line("{\"step\":%lld,\"val_loss\":%.6f}", (long long)step, loss);
    }

    void profile(int64_t step, const OpBreakdown& b) {
        std::fprintf(stderr, "per-op time over %lld steps from step %lld:\n%s", (long long)b.steps,
                     (long long)step, b.table().c_str());
        if (out_.is_open()) out_ << "{\"step\":" << step << ",\"profile\":" << b.json() << "}\n";
        out_.flush();
    }

private:
    template <class... Args>
    void line(const char* format, Args... args) {
        if (!out_.is_open()) return;
        char buf[512];
        std::snprintf(buf, sizeof buf, format, args...);
        out_ << buf << '\n';
        out_.flush();
    }
    std::ofstream out_;
};

}  // namespace slm
