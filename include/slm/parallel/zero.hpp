#pragma once
// parallel::Zero<Stage, Communicator>: ZeRO data parallelism. The flat buffers are cut into one
// contiguous slice per rank; each rank's AdamW state covers only its slice (the trainer builds
// the optimizer over [shard_begin, shard_end)), and after the update every rank's slice of the
// parameters is all-gathered so all ranks again hold the whole model.
//   Stage 1: gradients are all-reduced whole; only the optimizer state is sharded.
//   Stage 2: gradients are reduce-scattered: each rank ends up with the summed gradient of its
//            own slice only (what lets the GPU version free the rest).
// Stage 3 (parameters sharded and gathered layer by layer, FSDP's scheme) needs the model's
// per-layer hooks and is not implemented yet: Zero<3> does not compile rather than quietly
// running as another stage.
//
// This version reduces host buffers over Mpi (CPU backend); the NCCL one builds on the same hooks.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "slm/parallel/single.hpp"

namespace slm::parallel {

template <int Stage, class Communicator>
class Zero {
    static_assert(Stage == 1 || Stage == 2,
                  "Zero<3> (parameter sharding) is not implemented yet: use Zero<1> or Zero<2>");

public:
    static constexpr std::string_view name = Stage == 1 ? "zero1" : "zero2";

    explicit Zero(Communicator comm = {}) : comm_(std::move(comm)) {}

    int rank() const { return comm_.rank(); }
    int world_size() const { return comm_.world_size(); }

    double sum_across_ranks(double x) const {
        comm_.all_reduce_sum(&x, 1);
        return x;
    }

    // Elements per rank's slice; 64-element multiples keep every slice 256-byte aligned.
    int64_t slice(int64_t total) const {
        const int64_t per = (total + world_size() - 1) / world_size();
        return (per + 63) / 64 * 64;
    }
    int64_t shard_begin(int64_t total) const { return std::min(total, rank() * slice(total)); }
    int64_t shard_end(int64_t total) const { return std::min(total, (rank() + 1) * slice(total)); }

    template <class Backend, class Grad>
    void reduce_gradients(Backend&, Grad* grads, int64_t n) {
        static_assert(Backend::host_memory,
                      "this Zero reduces host buffers over MPI; GPU backends need the NCCL "
                      "communicator");
        if constexpr (Stage == 1) comm_.all_reduce_sum(grads, n);
        else comm_.reduce_scatter_sum(grads, n, slice(n));
        // Average: only the slice this rank's optimizer reads needs it.
        const Grad inv = Grad(1) / static_cast<Grad>(world_size());
        const int64_t begin = Stage == 1 ? 0 : shard_begin(n), end = Stage == 1 ? n : shard_end(n);
#pragma omp parallel for schedule(static)
        for (int64_t i = begin; i < end; ++i) grads[i] *= inv;
    }

    // Stage 2 ranks hold only their slice of the reduced gradient: sum the slices' squares.
    template <class Backend, class Grad>
    double gradient_square_sum(Backend& b, Grad* grads, int64_t n) {
        if constexpr (Stage == 1) return b.sum_of_squares(grads, n);
        else return sum_across_ranks(b.sum_of_squares(grads + shard_begin(n), shard_end(n) - shard_begin(n)));
    }

    template <class Backend, class Master>
    void gather_parameters(Backend&, Master* params, int64_t n) {
        comm_.all_gather(params, n, slice(n));
    }

private:
    Communicator comm_;
};

}  // namespace slm::parallel
