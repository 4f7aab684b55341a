#pragma once
// The memory a Trainer<Model> will allocate for one process, from core/'s accounting with the
// model's own backend precision, attention footprint, loss scratch and precision policy's
// buffers — what benchmarks and the sweep check against the GPU before they try a configuration.
#include <cstdint>

#include "slm/core/accounting.hpp"
#include "slm/core/config.hpp"

namespace slm {

template <class Model>
MemoryEstimate estimate_memory(const ModelConfig& model, int64_t batch, int64_t seq,
                               Recompute recompute = Recompute::none) {
    using B = typename Model::BackendType;
    using Kernel = typename Model::Kernel;
    MemoryEstimate e = estimate_training_memory(
        model, batch, seq, Model::precision(),
        Kernel::footprint({batch, seq, model.heads, model.kv_heads, model.head_dim()}),
        B::loss_chunk_rows(batch * seq, model.vocab) * model.vocab * B::precision().activation,
        recompute);
    if constexpr (requires { Model::Linear::footprint(model, batch * seq); })
        e.precision_buffers = Model::Linear::footprint(model, batch * seq);
    return e;
}

}  // namespace slm
