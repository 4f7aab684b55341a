#pragma once
// Counting before measuring: exact parameter counts, model FLOPs per token, and what a training
// step needs in memory. MFU everywhere in slm divides by flops_per_token() from here.
#include <cstdint>
#include <cstdio>
#include <string>

#include "slm/core/activation_layout.hpp"
#include "slm/core/config.hpp"

namespace slm {

// Parameters in the matrices that are multiplied per token (everything but norms and the
// embedding lookup; the LM head counts).
inline int64_t matmul_parameter_count(const ModelConfig& c) {
    const int64_t d = c.hidden;
    const int64_t attention = d * c.q_width() + 2 * d * c.kv_width() + c.q_width() * d;
    const int64_t mlp = 3 * d * c.ffn;
    return c.layers * (attention + mlp) + c.vocab * d;
}

// Every trainable parameter, counted from the shapes (the flat layout must agree; tested).
inline int64_t parameter_count(const ModelConfig& c) {
    const int64_t norms = c.layers * 2 * c.hidden + c.hidden;
    const int64_t embeddings = c.tied_embeddings ? c.vocab * c.hidden : 2 * c.vocab * c.hidden;
    return matmul_parameter_count(c) - c.vocab * c.hidden + embeddings + norms;
}

// Model FLOPs of one training token at context `seq`: 6 per matmul parameter (forward 2,
// backward 4) plus causal attention, 6·L·T·d (half of the full 12·L·T·d). Recomputation is not
// counted: this is the numerator of MFU.
inline double flops_per_token(const ModelConfig& c, int64_t seq) {
    return 6.0 * static_cast<double>(matmul_parameter_count(c)) +
           6.0 * static_cast<double>(c.layers) * static_cast<double>(seq) *
               static_cast<double>(c.q_width());
}

// How a backend stores things, in bytes per element.
struct Precision {
    int64_t master = 4;        // parameters the optimizer updates
    int64_t working = 0;       // a lower-precision copy the GEMMs read (0: none, master is used)
    int64_t gradient = 4;
    int64_t optimizer = 8;     // AdamW: two moments
    int64_t activation = 2;
    int64_t statistic = 4;     // saved norms' rstd, attention's log-sum-exp
    int64_t residual = 0;      // the residual stream's elements (0: the activation size)
};

struct MemoryEstimate {
    int64_t parameters = 0, working_copy = 0, gradients = 0, optimizer_state = 0, activations = 0;
    // What a precision policy's linear layers keep of their own (FP8: the weights' codes, its
    // operand buffers; LinearKernel::footprint), the same on every rank whatever the scheme.
    int64_t precision_buffers = 0;
    int64_t total() const {
        return parameters + working_copy + gradients + optimizer_state + activations + precision_buffers;
    }
};

// Bytes of model state one rank holds, read from the buffers it actually allocated (the model's
// Llama::state_bytes(), the optimizer's bytes()) — how the memory claims of the parallel policies
// are checked rather than assumed.
struct StateBytes {
    int64_t parameters = 0;       // master weights (whole or this rank's shard), any working copy,
                                  // and ZeRO-3's per-unit gather buffers
    int64_t gradients = 0;        // whole or this rank's shard, and ZeRO-2/3's reduce buffer
    int64_t optimizer_state = 0;  // AdamW's moments (whole or this rank's shard)
    int64_t total() const { return parameters + gradients + optimizer_state; }
};

// What StateBytes should be on each of `world` ranks under ZeRO stage `stage` (0: nothing sharded,
// as Single and Ddp) for `params` parameters whose largest unit (model/parameter_units.hpp) holds
// `largest_unit` elements. With P = params, W = world, U = largest_unit:
//   stage 0 (Single, Ddp): parameters P·m,              gradients P·g,         optimizer P·o
//   stage 1 (Zero<1>):     parameters P·m,              gradients P·g,         optimizer P/W·o
//   stage 2 (Zero<2>):     parameters P·m,              gradients (P/W + U)·g, optimizer P/W·o
//   stage 3 (Zero<3>):     parameters P/W·m + 2·U·a,    gradients (P/W + U)·g, optimizer P/W·o
// m: master (+ working copy) bytes per element, g: gradient, o: optimizer state, a: the bytes of
// what the GEMMs read (the working copy, or the master). U·g is the buffer one unit's gradient is
// reduce-scattered from; 2·U·a are the two gather buffers (a block's weights and the next one's,
// which the norm closing the block already needs). Per-unit slices are rounded up to 64 elements,
// which the formula leaves out: it is a fraction of a percent once units are large.
inline StateBytes expected_state_bytes(int stage, int64_t params, int64_t world,
                                       int64_t largest_unit, const Precision& p) {
    const int64_t per_rank = (params + world - 1) / world, whole = params;
    const int64_t master = p.master + p.working, read = p.working > 0 ? p.working : p.master;
    StateBytes b;
    b.parameters = stage == 3 ? per_rank * master + 2 * largest_unit * read : whole * master;
    b.gradients = stage >= 2 ? (per_rank + largest_unit) * p.gradient : whole * p.gradient;
    b.optimizer_state = (stage >= 1 ? per_rank : whole) * p.optimizer;
    return b;
}

inline std::string format_gib(int64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

// Memory of one training process holding everything (no sharding): the flat buffers plus the
// activation arena for one micro-batch. `attention` comes from the attention policy's
// footprint(), `loss_chunk_bytes` from the backend's loss.
inline MemoryEstimate estimate_training_memory(const ModelConfig& c, int64_t batch, int64_t seq,
                                               const Precision& p, AttentionFootprint attention,
                                               int64_t loss_chunk_bytes,
                                               Recompute recompute = Recompute::none) {
    const int64_t n = parameter_count(c);
    MemoryEstimate m;
    m.parameters = n * p.master;
    m.working_copy = n * p.working;
    m.gradients = n * p.gradient;
    m.optimizer_state = n * p.optimizer;
    m.activations = ActivationLayout(c, batch, seq, p.activation, p.statistic, attention,
                                     loss_chunk_bytes, p.residual, recompute)
                        .total_bytes();
    return m;
}

}  // namespace slm
