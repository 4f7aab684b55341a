#pragma once
// The settings of a run that decide what it computes, as one ConfigSummary: what every rank
// compares at start-up (parallel/transport/config_check.hpp) so ranks started with different
// flags fail before the first step.
#include <cstdint>
#include <string>

#include "slm/core/config.hpp"
#include "slm/parallel/transport/config_check.hpp"
#include "slm/train/run_config.hpp"

namespace slm {

// What must agree across ranks. Not out_dir (nodes may write to different disks) and not the
// rank-dependent loader position.
inline parallel::ConfigSummary run_summary(const ModelConfig& m, const RunConfig& r,
                                           const std::string& data_fingerprint) {
    parallel::ConfigSummary s;
    s.add("model", m.name);
    s.add("vocab", m.vocab);
    s.add("hidden", m.hidden);
    s.add("layers", m.layers);
    s.add("heads", m.heads);
    s.add("kv_heads", m.kv_heads);
    s.add("ffn", m.ffn);
    s.add("max_seq", m.max_seq);
    s.add("rope_theta", m.rope_theta);
    s.add("norm_eps", m.norm_eps);
    s.add("tied_embeddings", m.tied_embeddings);
    s.add("batch", r.batch);
    s.add("seq", r.seq);
    s.add("grad_accum", r.grad_accum);
    s.add("steps", r.steps);
    s.add("lr", r.lr);
    s.add("min_lr", r.min_lr);
    s.add("warmup", r.warmup);
    s.add("beta1", r.adamw.beta1);
    s.add("beta2", r.adamw.beta2);
    s.add("eps", r.adamw.eps);
    s.add("weight_decay", r.adamw.weight_decay);
    s.add("max_grad_norm", r.adamw.max_grad_norm);
    // These decide when ranks meet in collectives (loss logging, evaluation, checkpoints).
    s.add("log_interval", r.log_interval);
    s.add("eval_interval", r.eval_interval);
    s.add("eval_batches", r.eval_batches);
    s.add("checkpoint_interval", r.checkpoint_interval);
    s.add("profile_steps", r.profile_steps);
    s.add("seed", static_cast<int64_t>(r.seed));
    s.add("precision", r.precision);
    s.add("data", data_fingerprint);
    return s;
}

}  // namespace slm
