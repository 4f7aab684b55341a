#pragma once
// Everything about a training run that is not the model: batch geometry, schedule, optimizer,
// how often to log, evaluate and checkpoint, and where to write.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "slm/core/activation_layout.hpp"
#include "slm/core/backend_options.hpp"
#include "slm/core/error.hpp"
#include "slm/optim/adamw.hpp"
#include "slm/train/checkpoint_segments.hpp"
#include "slm/train/save_schedule.hpp"

namespace slm {

struct RunConfig {
    int64_t batch = 8;          // sequences per micro-batch
    int64_t seq = 256;          // tokens per sequence
    int64_t grad_accum = 1;     // micro-batches per optimizer step
    int64_t steps = 1000;       // optimizer steps in the whole run
    double lr = 3e-4;
    double min_lr = 3e-5;
    int64_t warmup = 100;
    optim::AdamWConfig adamw;
    int64_t log_interval = 10;         // steps between progress lines
    int64_t eval_interval = 100;       // steps between validation losses (0: only at the end)
    int64_t eval_batches = 8;
    int64_t checkpoint_interval = 0;   // steps between checkpoints (0: only at the end)
    double checkpoint_minutes = 30;    // also save when this much time passed since the last (0: off)
    int64_t keep_checkpoints = 2;      // numbered checkpoints kept in out_dir (the newest)
    // A save due while the previous one is still being written: deferred past it, or waited
    // for (train/save_schedule.hpp).
    WhenBusy when_busy = WhenBusy::defer;
    // The unit of parallel checkpoint writes and of their checksums (train/checkpoint_segments.hpp).
    uint64_t checkpoint_segment_bytes = default_segment_bytes;
    // A fresh run (nothing resumed) into an out_dir that holds a run (checkpoints or metrics):
    // refused, unless overwrite, which removes them first.
    bool overwrite = false;
    // What a resume may change: the names of run settings (train/run_summary.hpp) that may
    // differ from the checkpoint's; any other difference is refused, naming it.
    std::vector<std::string> allow_changes;
    // The data's fingerprint (parallel/transport/data_fingerprint.hpp), kept in checkpoints so a
    // resume on other data is refused; empty: not compared.
    std::string data_fingerprint;
    // The model's precision policy (precision/policy.hpp); the Trainer sets it from the model's
    // type. Kept in checkpoints, so a resume in another precision is refused unless allowed.
    std::string precision = "bf16";
    int64_t profile_steps = 0;         // steps timed op by op after the first (0: none)
    std::filesystem::path out_dir = "runs/default";
    uint64_t seed = 1234;
    // Passed to the backend untouched (the GPU backend's GEMM algorithm picks).
    BackendOptions backend;
    // What the backward computes again instead of keeping it from the forward (same results):
    // swiglu saves layers · batch · seq · ffn activations (5.1 GiB at llama_2b, micro-batch 8)
    // for one more write of them in the backward.
    Recompute recompute = Recompute::none;

    int64_t tokens_per_step() const { return batch * seq * grad_accum; }

    void validate() const {
        auto positive = [](int64_t v, const char* field) {
            require(v > 0, std::string("RunConfig.") + field + " must be > 0, got " +
                               std::to_string(v));
        };
        positive(batch, "batch");
        positive(seq, "seq");
        positive(grad_accum, "grad_accum");
        positive(steps, "steps");
        positive(log_interval, "log_interval");
        positive(eval_batches, "eval_batches");
        require(lr > 0 && min_lr >= 0 && min_lr <= lr,
                "RunConfig: need 0 <= min_lr <= lr and lr > 0 (got lr " + std::to_string(lr) +
                    ", min_lr " + std::to_string(min_lr) + ")");
        backend.validate();
        require(std::isfinite(checkpoint_minutes) && checkpoint_minutes >= 0 && keep_checkpoints >= 1 &&
                    checkpoint_segment_bytes >= 8,
                "RunConfig: checkpoint_minutes must be >= 0, keep_checkpoints >= 1 and "
                "checkpoint_segment_bytes >= 8");
        require(warmup >= 0 && eval_interval >= 0 && checkpoint_interval >= 0 && profile_steps >= 0,
                "RunConfig: warmup, eval_interval, checkpoint_interval and profile_steps must be >= 0");
    }
};

}  // namespace slm
