#pragma once
// parallel::Ddp<Communicator>: every rank holds the whole model and optimizer, trains on its own
// slice of the global batch, and the gradients are averaged across ranks before the update, so
// every rank applies the same update and the weights stay identical — the run equals one process
// on the whole global batch.
//
// This slice reduces the whole flat gradient buffer in one call after backward (host buffers,
// over Mpi). The GPU version over NCCL, with buckets launched during backward on a second stream
// so communication overlaps the rest of the backward, builds on the same hooks.
#include <cstdint>
#include <string_view>

#include "slm/parallel/single.hpp"

namespace slm::parallel {

// Shards nothing: the optimizer slice, the gradient norm and the (absent) parameter gather are
// Single's.
template <class Communicator>
class Ddp : public Single {
public:
    static constexpr std::string_view name = "ddp";

    explicit Ddp(Communicator comm = {}) : comm_(std::move(comm)) {}

    int rank() const { return comm_.rank(); }
    int world_size() const { return comm_.world_size(); }
    const Communicator& communicator() const { return comm_; }

    double sum_across_ranks(double x) const {
        comm_.all_reduce_sum(&x, 1);
        return x;
    }

    // Gradients of each rank's mean loss → the mean over ranks (the global batch's mean loss).
    template <class Backend, class Grad>
    void reduce_gradients(Backend&, Grad* grads, int64_t n) {
        static_assert(Backend::host_memory,
                      "this Ddp reduces host buffers over MPI; GPU backends need the NCCL "
                      "communicator");
        if (comm_.world_size() == 1) return;
        comm_.all_reduce_sum(grads, n);
        const Grad inv = Grad(1) / static_cast<Grad>(comm_.world_size());
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) grads[i] *= inv;
    }

private:
    Communicator comm_;
};

}  // namespace slm::parallel
