#pragma once
// What the trainer asks of a parallel policy, in one place: the ParallelPolicy concept (the hooks
// the trainer calls in step order; parallel::Single is the reference that every policy must
// reproduce), then how the model stores its parameters, what this rank's optimizer updates, and
// how a checkpoint gathers the state. A ShardingPolicy (Zero<k>) answers those itself; a policy
// that shards nothing (Single, Ddp) gets the answers here: whole buffers, its one
// [shard_begin, shard_end) slice, and rank 0 already holding everything.
#include <concepts>
#include <cstdint>
#include <string_view>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/model/whole_parameters.hpp"
#include "slm/optim/update_plan.hpp"

namespace slm::parallel {

template <class P>
concept ParallelPolicy = requires(P& p, double x) {
    { P::name } -> std::convertible_to<std::string_view>;
    { p.rank() } -> std::convertible_to<int>;
    { p.world_size() } -> std::convertible_to<int>;
    { p.sum_across_ranks(x) } -> std::convertible_to<double>;
    { p.backward_scale() } -> std::convertible_to<double>;
    { p.shard_begin(int64_t{}) } -> std::convertible_to<int64_t>;
    { p.shard_end(int64_t{}) } -> std::convertible_to<int64_t>;
};

// A policy that names the model's storage (Zero<2|3>: shards; Ddp over Nccl: whole buffers whose
// gradients_done launches the bucket all-reduces during backward).
template <class P>
concept StoragePolicy = requires(P& p, const ModelConfig& config) {
    typename P::Parameters;
    { p.model_parameters(config) } -> std::same_as<typename P::Parameters>;
};

template <class P>
concept ShardingPolicy = StoragePolicy<P> && requires(const P& cp, const float* held, float* whole) {
    { cp.update_plan() } -> std::same_as<optim::UpdatePlan>;
    { cp.gather_to_root(held, whole) };
};

namespace sharding_detail {
template <class P>
struct parameters_of {
    using type = model::WholeParameters;
};
template <StoragePolicy P>
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
    if constexpr (StoragePolicy<P>) return policy.model_parameters(config);
    else return {};
}

// Before each micro-batch's forward: whether its backward completes the step's gradients (a
// policy that reduces during the backward may start only then).
template <class P>
void before_micro_batch(P& policy, bool last) {
    if constexpr (requires { policy.before_micro_batch(last); }) policy.before_micro_batch(last);
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
