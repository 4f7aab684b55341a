#pragma once
// parallel::Single: one process trains alone. It is the reference every data-parallel policy
// must reproduce, and the shape of the hooks they implement: the trainer calls them in step
// order and a policy decides what to communicate at each.
#include <cstdint>
#include <string_view>

#include "slm/parallel/policy.hpp"

namespace slm::parallel {

struct Single {
    static constexpr std::string_view name = "single";
    int rank() const { return 0; }
    int world_size() const { return 1; }
    // Reductions of host scalars (loss, squared gradient norm) over ranks.
    double sum_across_ranks(double x) const { return x; }
    // What the loss gradient is multiplied by on this rank. A policy that averages by summing
    // pre-divided gradients (the GPU policies: the ÷W then costs nothing, it rides on the loss
    // kernel's scale) returns 1/W; alone, or dividing after the sum (the CPU policies), 1.
    double backward_scale() const { return 1.0; }
    // After backward: make every rank's gradient buffer the sum over ranks. Alone: nothing.
    template <class Backend, class Grad>
    void reduce_gradients(Backend&, Grad*, int64_t) {}
    // Σ g² over the whole (reduced) gradient, for global-norm clipping.
    template <class Backend, class Grad>
    double gradient_square_sum(Backend& b, Grad* grads, int64_t n) {
        return b.sum_of_squares(grads, n);
    }
    // The slice [begin, end) of the flat buffers this rank's optimizer updates.
    int64_t shard_begin(int64_t) const { return 0; }
    int64_t shard_end(int64_t total) const { return total; }
    // After the update: make every rank's parameters (and the working copy the GEMMs read, null
    // without one) whole again. Alone: nothing.
    template <class Backend, class Master, class Act>
    void gather_parameters(Backend&, Master*, Act*, int64_t) {}
};

}  // namespace slm::parallel
