#pragma once
// When a model counts as diverged, so that it is never saved over the last good checkpoint:
// weights that are not finite (their sum of squares is not), a validation loss that is not
// finite, or one above twice a uniform guess's, 2 ln(vocab) — a freshly initialised model
// scores about ln(vocab), and training only lowers it, so a model above twice that has blown up
// (an lr of 1e9 gives weights of 1e8, finite, and losses far above it).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "slm/core/error.hpp"

namespace slm {

// What is wrong, or nullptr when nothing is.
inline const char* divergence(double weight_square_sum, double val_loss, int64_t vocab) {
    const double uniform = std::log(static_cast<double>(vocab));
    if (!std::isfinite(weight_square_sum)) return "the weights are not finite";
    if (!std::isfinite(val_loss)) return "the validation loss is not finite";
    if (val_loss > 2 * uniform) return "the validation loss is above twice ln(vocab)";
    return nullptr;
}

inline void require_not_diverged(int64_t step, double weight_square_sum, double val_loss,
                                 int64_t vocab, const std::filesystem::path& out_dir) {
    const char* what = divergence(weight_square_sum, val_loss, vocab);
    if (!what) return;
    fail("step " + std::to_string(step) + ": " + what + " (validation loss " +
         std::to_string(val_loss) + ", ln vocab " + std::to_string(std::log(static_cast<double>(vocab))) +
         "): the model diverged, so it is not saved; the last good checkpoint in '" +
         out_dir.string() + "' stays. Resume from it with a lower --lr or a longer --warmup");
}

}  // namespace slm
