#pragma once
// What the trainer asks of a parallel policy beyond the ParallelPolicy hooks: how the model
// stores its parameters, what this rank's optimizer updates, and how a checkpoint gathers the
// state. A ShardingPolicy (Zero<k>) answers itself; a policy that shards nothing (Single, Ddp)
// gets the answers here: whole buffers, its one [shard_begin, shard_end) slice, and rank 0 already
// holding everything.
#include <concepts>
#include <cstdint>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/model/whole_parameters.hpp"
#include "slm/optim/update_plan.hpp"

namespace slm::parallel {

template <class P>
concept ShardingPolicy = requires(P& p, const P& cp, const ModelConfig& config, const float* held,
                                  float* whole) {
    typename P::Parameters;
    { p.model_parameters(config) } -> std::same_as<typename P::Parameters>;
    { cp.update_plan() } -> std::same_as<optim::UpdatePlan>;
    { cp.gather_to_root(held, whole) };
};

namespace sharding_detail {
template <class P>
struct parameters_of {
    using type = model::WholeParameters;
};
template <ShardingPolicy P>
struct parameters_of<P> {
    using type = typename P::Parameters;
};
}  // namespace sharding_detail

// The storage policy the model is built with under policy P.
template <class P>
using parameters_t = typename sharding_detail::parameters_of<P>::type;

// Called once, before the model is built (a sharding policy cuts the model here).
template <class P>
parameters_t<P> model_parameters(P& policy, const ModelConfig& config) {
    if constexpr (ShardingPolicy<P>) return policy.model_parameters(config);
    else return {};
}

template <class P>
optim::UpdatePlan update_plan(const P& policy, int64_t total) {
    if constexpr (ShardingPolicy<P>) return policy.update_plan();
    else return optim::UpdatePlan::slice(policy.shard_begin(total), policy.shard_end(total));
}

// Collective: the optimizer-state buffer `state` (this rank's, `count` elements) as a whole flat
// buffer of `total` elements into `whole` on rank 0 (others pass nullptr).
template <class P, class Backend, class T>
void gather_state_to_root(const P& policy, Backend& backend, const T* state, int64_t count,
                          int64_t total, T* whole) {
    if constexpr (ShardingPolicy<P>) {
        policy.gather_to_root(state, whole);
    } else {
        require(count == total, "a policy that does not shard must hold the whole optimizer state");
        if (whole) backend.download(whole, state, total);
    }
}

}  // namespace slm::parallel
