#pragma once
// The Backend concept: what Llama and the trainer need from a place to compute. cpu::Backend<T>
// and cuda::Backend model it; a class missing a piece fails here, at the concept's name, rather
// than deep inside the model.
#include <concepts>
#include <cstdint>

#include "slm/core/accounting.hpp"
#include "slm/core/adamw_step.hpp"
#include "slm/core/op_profile.hpp"
#include "slm/core/shapes.hpp"

namespace slm {

template <class B>
concept Backend = requires(B& b, typename B::Act* act, typename B::Grad* grad,
                           typename B::Master* master, typename B::Stat* stat,
                           const int32_t* tokens, const AttentionShape& shape,
                           const optim::AdamWStep& step, int64_t n) {
    typename B::Master;
    typename B::Act;
    typename B::Grad;
    typename B::Stat;
    { B::has_working_copy } -> std::convertible_to<bool>;
    { b.template allocate<float>(n) };
    { b.template upload<float>(nullptr, nullptr, n) };
    { b.template download<float>(nullptr, nullptr, n) };
    { b.template zero<float>(nullptr, n) };
    { b.synchronize() };
    { b.precision() } -> std::same_as<Precision>;
    { b.loss_chunk_rows(n, n) } -> std::same_as<int64_t>;
    { b.embedding_forward(tokens, act, act, n, n, n) };
    { b.embedding_backward(tokens, act, grad, n, n) };
    { b.add_rmsnorm_forward(act, act, act, act, act, stat, n, n, 1e-5) };
    { b.rmsnorm_backward(act, act, stat, act, act, grad, n, n) };
    { b.linear_forward(act, act, act, n, n, n) };
    { b.linear_backward(act, act, act, act, grad, n, n, n) };
    { b.rope_forward(act, shape, 1e4) };
    { b.rope_backward(act, shape, 1e4) };
    { b.swiglu_forward(act, act, n, n) };
    { b.swiglu_backward(act, act, act, n, n) };
    { b.swiglu_backward_recompute(act, act, act, n, n) };
    { b.lm_head_cross_entropy(act, act, tokens, n, n, n, nullptr, n, 1.0, act, grad) }
        -> std::same_as<LossResult>;
    { b.adamw_update(master, grad, master, master, act, n, step) };
    { b.sum_of_squares(grad, n) } -> std::convertible_to<double>;
    { b.enable_profiling(true) };
    { b.collect_op_seconds() } -> std::same_as<std::array<double, op_count>>;
    { b.op_scope(Op::attention) };
};

}  // namespace slm
