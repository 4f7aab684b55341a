#pragma once
// The scalars of one AdamW update, computed once on the host and handed to every backend's
// update kernel, so CPU and GPU apply the same formula.
namespace slm::optim {

struct AdamWStep {
    double lr = 0;
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double weight_decay = 0;       // decoupled: p -= lr · wd · p (0 for ranges without decay)
    double grad_scale = 1;         // global-norm clipping factor, applied to the gradient
    double bias_correction1 = 1;   // 1 - beta1^t
    double bias_correction2 = 1;   // 1 - beta2^t
};

}  // namespace slm::optim
