#pragma once
// Memory per GPU under each data-parallel scheme, from the one-process estimate in core/: ZeRO
// divides what it shards by the GPU count and adds back what it gathers.
//   Single, Ddp: everything whole.
//   Zero<1>:     optimizer state / W.
//   Zero<2>:     optimizer state and gradients / W.
//   Zero<3>:     optimizer state, gradients, master and working weights / W, plus two layers of
//                gathered working weights and their gradients (the layer in use and the next,
//                prefetched).
#include <cstdint>

#include "slm/core/accounting.hpp"
#include "slm/core/config.hpp"
#include "slm/cost/communication.hpp"

namespace slm::cost {

inline int64_t layer_parameter_count(const ModelConfig& c) {
    const int64_t d = c.hidden;
    return d * c.q_width() + 2 * d * c.kv_width() + c.q_width() * d + 3 * d * c.ffn + 2 * d;
}

inline int64_t memory_per_gpu(const MemoryEstimate& one, const ModelConfig& c, const Precision& p,
                              Scheme scheme, int gpus) {
    const int64_t w = gpus < 1 ? 1 : gpus;
    auto shard = [w](int64_t bytes) { return (bytes + w - 1) / w; };
    switch (scheme) {
        case Scheme::single:
        case Scheme::ddp: return one.total();
        case Scheme::zero1:
            return one.parameters + one.working_copy + one.gradients + shard(one.optimizer_state) +
                   one.activations;
        case Scheme::zero2:
            return one.parameters + one.working_copy + shard(one.gradients) +
                   shard(one.optimizer_state) + one.activations;
        case Scheme::zero3: {
            const int64_t gathered = 2 * layer_parameter_count(c) *
                                     ((p.working > 0 ? p.working : p.master) + p.gradient);
            return shard(one.parameters + one.working_copy + one.gradients + one.optimizer_state) +
                   gathered + one.activations;
        }
    }
    return one.total();
}

}  // namespace slm::cost
