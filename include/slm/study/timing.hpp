#pragma once
// How the sweep times a point, and what it reports: after `warmup` untimed steps, `repeats`
// windows of `steps` timed steps each, one after another on the same model (the paper ran at
// least 3 runs of 10 steps and plots their mean with error bars). Each window's tokens/s comes
// from its median step, so one slow step (a page fault, a clock change) does not move it; the
// point's tokens/s is the mean over windows, and the spread (max - min) and every window's value
// go into its line, so tables and plots can show how far a ranking is from noise.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::study {

struct Timing {
    int warmup = 2;
    int steps = 10;   // timed steps per window
    int repeats = 3;  // windows
    int timed_steps() const { return steps * repeats; }

    void validate() const {
        require(warmup >= 0 && steps >= 1 && repeats >= 1,
                "sweep timing: need warmup >= 0, steps >= 1 and repeats >= 1 (got " + std::to_string(warmup) +
                    ", " + std::to_string(steps) + ", " + std::to_string(repeats) + ")");
    }
};

struct Timed {
    std::vector<double> tokens_per_s;  // one per window
    double mean = 0;                   // tokens/s over the windows
    double spread = 0;                 // max - min over the windows
    double step_seconds = 0;           // the step the mean corresponds to
};

// step_seconds: timing.timed_steps() step durations in the order they ran; tokens_per_step: the
// tokens one step trains (all ranks together).
inline Timed time_windows(const std::vector<double>& step_seconds, const Timing& timing, double tokens_per_step) {
    require(step_seconds.size() == static_cast<size_t>(timing.timed_steps()),
            "sweep timing: " + std::to_string(step_seconds.size()) + " step times for " +
                std::to_string(timing.repeats) + " windows of " + std::to_string(timing.steps) + " steps");
    Timed t;
    const auto per = static_cast<size_t>(timing.steps);
    for (size_t w = 0; w < static_cast<size_t>(timing.repeats); ++w) {
        std::vector<double> window(step_seconds.begin() + static_cast<std::ptrdiff_t>(w * per),
                                   step_seconds.begin() + static_cast<std::ptrdiff_t>((w + 1) * per));
        std::sort(window.begin(), window.end());
        const double median = window[window.size() / 2];
        require(median > 0, "sweep timing: a window's median step took no time");
        t.tokens_per_s.push_back(tokens_per_step / median);
    }
    t.mean = std::accumulate(t.tokens_per_s.begin(), t.tokens_per_s.end(), 0.0) /
             static_cast<double>(t.tokens_per_s.size());
    const auto [lo, hi] = std::minmax_element(t.tokens_per_s.begin(), t.tokens_per_s.end());
    t.spread = *hi - *lo;
    t.step_seconds = tokens_per_step / t.mean;
    return t;
}

}  // namespace slm::study
