#pragma once
// Memory per GPU under each data-parallel scheme: the model state each policy keeps (the formulas
// beside parallel/zero.hpp, core/accounting.hpp's expected_state_bytes, checked against the
// buffers the policies allocate by tests/mpi/zero_memory.cpp) plus one micro-batch's activations.
//   Single, Ddp: everything whole.
//   Zero<1>:     optimizer state / W.
//   Zero<2>:     optimizer state and gradients / W, plus one unit's gradient being reduced.
//   Zero<3>:     parameters too / W, plus two gathered units of weights.
// A "unit" is what is gathered at once (the embedding, a block, the LM head): the largest one
// sets the buffers, and for the study's presets that is the vocab × hidden embedding.
#include <algorithm>
#include <cstdint>

#include "slm/core/accounting.hpp"
#include "slm/core/config.hpp"
#include "slm/cost/communication.hpp"

namespace slm::cost {

inline int64_t layer_parameter_count(const ModelConfig& c) {
    const int64_t d = c.hidden;
    return d * c.q_width() + 2 * d * c.kv_width() + c.q_width() * d + 3 * d * c.ffn + 2 * d;
}

inline int64_t largest_unit(const ModelConfig& c) {
    return std::max(c.vocab * c.hidden, layer_parameter_count(c));
}

inline int zero_stage(Scheme s) {
    return s == Scheme::zero1 ? 1 : s == Scheme::zero2 ? 2 : s == Scheme::zero3 ? 3 : 0;
}

// `one` is the one-process estimate (estimate_training_memory); only its activations are reused.
inline int64_t memory_per_gpu(const MemoryEstimate& one, const ModelConfig& c, const Precision& p,
                              Scheme scheme, int gpus) {
    const StateBytes state = expected_state_bytes(zero_stage(scheme), parameter_count(c),
                                                  std::max(gpus, 1), largest_unit(c), p);
    return state.parameters + state.gradients + state.optimizer_state + one.activations;
}

}  // namespace slm::cost
