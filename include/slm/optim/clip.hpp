#pragma once
// Global gradient-norm clipping: the factor that brings the norm of all gradients to max_norm.
// It is applied inside the optimizer's update, so gradients are not rewritten in a separate pass.
#include <cmath>

namespace slm::optim {

// max_norm <= 0 disables clipping.
inline double clip_factor(double global_norm, double max_norm) {
    if (max_norm <= 0 || !(global_norm > max_norm)) return 1.0;
    return max_norm / (global_norm + 1e-6);
}

}  // namespace slm::optim
