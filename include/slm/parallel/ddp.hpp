#pragma once
// parallel::Ddp<Comm>: every rank holds the whole model and optimizer, trains on its own slice of
// the global batch, and the gradients are averaged across ranks before the update, so every rank
// applies the same update and the weights stay identical — the run equals one process on the
// whole global batch.
//
// Host buffers over Mpi (the CPU backend): the whole flat gradient buffer is summed in one call
// after backward, then divided by W.
// Device buffers over Nccl (the CUDA backend): the loss gradient is pre-divided by W
// (backward_scale), so the sum over ranks is already the mean, and the buffer is all-reduced in
// buckets of bucket_bytes (default 25 MiB) on the backend's stream after backward, each timed as
// communication. (Launching each bucket during backward on a second stream, as soon as its units'
// gradients are complete, is the next step: the model's gradients_done(unit) hook is where.)
#include <cstdint>
#include <string_view>
#include <utility>

#include "slm/parallel/buckets.hpp"
#include "slm/parallel/communicator.hpp"
#include "slm/parallel/single.hpp"

namespace slm::parallel {

// Shards nothing: the optimizer slice, the gradient norm and the (absent) parameter gather are
// Single's.
template <AnyCommunicator Comm>
class Ddp : public Single {
public:
    static constexpr std::string_view name = "ddp";

    explicit Ddp(Comm comm = {}, int64_t bucket_bytes = default_bucket_bytes)
        : comm_(std::move(comm)), bucket_bytes_(bucket_bytes) {}

    int rank() const { return comm_.rank(); }
    int world_size() const { return comm_.world_size(); }
    const Comm& communicator() const { return comm_; }
    int64_t bucket_bytes() const { return bucket_bytes_; }
    // The GPU this rank's communicator uses (the trainer builds its backend there).
    int device() const
        requires requires(const Comm& c) { c.device(); }
    {
        return comm_.device();
    }

    double sum_across_ranks(double x) const { return sum_scalar(comm_, x); }

    double backward_scale() const {
        if constexpr (StreamCommunicator<Comm>) return 1.0 / static_cast<double>(world_size());
        else return 1.0;
    }

    // Gradients of each rank's mean loss → the mean over ranks (the global batch's mean loss).
    template <class Backend, class Grad>
    void reduce_gradients(Backend& backend, Grad* grads, int64_t n) {
        if constexpr (Backend::host_memory) {
            static_assert(Communicator<Comm>, "Ddp: host gradients need a host communicator (Mpi)");
            if (comm_.world_size() == 1) return;
            comm_.all_reduce_sum(grads, n);
            const Grad inv = Grad(1) / static_cast<Grad>(comm_.world_size());
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; ++i) grads[i] *= inv;
        } else {
            static_assert(StreamCommunicator<Comm>,
                          "Ddp: device gradients need a stream communicator (Nccl)");
            // Even alone: NCCL runs the collective, so a one-GPU run measures its cost.
            all_reduce_in_buckets(comm_, backend, grads, n, bucket_bytes_);
        }
    }

private:
    Comm comm_;
    int64_t bucket_bytes_;
};

}  // namespace slm::parallel
