#pragma once
// Learning rate: linear warmup from 0, then cosine decay to min_lr at total_steps (and min_lr
// after). The usual LLaMA-pretraining schedule.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace slm::optim {

struct WarmupCosine {
    double max_lr = 3e-4;
    double min_lr = 3e-5;
    int64_t warmup_steps = 100;
    int64_t total_steps = 1000;

    // step counts from 0: the first update uses lr(0).
    double operator()(int64_t step) const {
        if (warmup_steps > 0 && step < warmup_steps)
            return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
        const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps);
        const double progress =
            std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps),
                       0.0, 1.0);
        return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
    }
};

}  // namespace slm::optim
