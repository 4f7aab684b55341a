#pragma once
// Memory per GPU under each data-parallel scheme: the model state each policy keeps (the formulas
// beside parallel/zero.hpp, core/accounting.hpp's expected_state_bytes, checked against the
// buffers the policies allocate by tests/mpi/zero_memory.cpp) plus one micro-batch's activations.
//   Single, Ddp: everything whole.
//   Zero<1>:     optimizer state / W.
//   Zero<2>:     optimizer state and gradients / W, plus one unit's gradient being reduced.
//   Zero<3>:     parameters too / W, plus two gathered units of weights.
// A "unit" is what is gathered at once (model/parameter_units.hpp: the embedding, a block, the LM
// head): the largest one sets the buffers; for the study's presets that is the embedding.
#include <algorithm>
#include <cstdint>

#include "slm/core/accounting.hpp"
#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/cost/communication.hpp"
#include "slm/model/parameter_units.hpp"

namespace slm::cost {

inline int zero_stage(Scheme s) {
    return s == Scheme::zero1 ? 1 : s == Scheme::zero2 ? 2 : s == Scheme::zero3 ? 3 : 0;
}

// `one` is the one-process estimate (estimate_memory); its activations and precision buffers are
// reused (FP8 keeps every layer's weight codes on every rank, whatever is sharded).
inline int64_t memory_per_gpu(const MemoryEstimate& one, const ModelConfig& c, const Precision& p,
                              Scheme scheme, int gpus) {
    const StateBytes state = expected_state_bytes(zero_stage(scheme), parameter_count(c),
                                                  std::max(gpus, 1),
                                                  model::ParameterUnits(c, ParameterLayout(c)).largest(), p);
    return state.parameters + state.gradients + state.optimizer_state + one.activations + one.precision_buffers;
}

}  // namespace slm::cost
