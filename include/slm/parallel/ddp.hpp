#pragma once
// parallel::Ddp<Comm>: every rank holds the whole model and optimizer, trains on its own slice of
// the global batch, and the gradients are averaged across ranks before the update, so every rank
// applies the same update and the weights stay identical — the run equals one process on the
// whole global batch.
//
// Host buffers over Mpi (the CPU backend): the whole flat gradient buffer is summed in one call
// after backward, then divided by W.
// Device buffers over Nccl (the CUDA backend; include slm/parallel/nccl/buckets.cuh): the loss
// gradient is pre-divided by W (backward_scale), so the sum over ranks is already the mean, and
// the gradient buffer is all-reduced in buckets of bucket_bytes (default 25 MiB), each timed as
// communication. With overlap (the default) the model's storage launches a bucket on a second
// stream as soon as the backward completes its units' gradients (on the step's last
// micro-batch), so communication runs beside the rest of the backward; reduce_gradients then
// only makes the compute stream wait for the last bucket. Without overlap the buckets are
// reduced on the compute stream after the backward.
#include <cstdint>
#include <functional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "slm/core/backend.hpp"
#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/model/whole_parameters.hpp"
#include "slm/parallel/buckets.hpp"
#include "slm/parallel/single.hpp"
#include "slm/parallel/transport/communicator.hpp"

namespace slm::parallel {

// What Ddp shares with the storage that launches its buckets (owned by the policy, which
// outlives the model: the trainer builds the model after taking the policy).
struct OverlapLink {
    bool overlap = true;           // launch buckets during the backward (else after it)
    bool last_micro_batch = true;  // the trainer's word: this backward completes the gradients
    std::function<void()> finish;  // the storage's: queue what is left, make compute wait for it
};

namespace ddp_detail {
template <class Comm, class B>
struct store_of {
    using type = typename StreamBuckets<Comm>::template Store<B>;
};
}  // namespace ddp_detail

// Ddp's storage over a stream communicator: whole buffers, plus the bucket launches.
template <class Comm>
struct OverlappedGradients {
    const Comm* comm = nullptr;
    int64_t bucket_bytes = default_bucket_bytes;
    OverlapLink* link = nullptr;

    template <Backend B>
    using Store = typename ddp_detail::store_of<Comm, B>::type;
};

// Shards nothing: the optimizer slice, the gradient norm and the (absent) parameter gather are
// Single's.
template <AnyCommunicator Comm>
class Ddp : public Single {
public:
    static constexpr std::string_view name = "ddp";
    using Parameters = std::conditional_t<StreamCommunicator<Comm>, OverlappedGradients<Comm>,
                                          model::WholeParameters>;

    explicit Ddp(Comm comm = {}, int64_t bucket_bytes = default_bucket_bytes, bool overlap = true)
        : comm_(std::move(comm)), bucket_bytes_(bucket_bytes) {
        link_.overlap = overlap;
    }

    int rank() const { return comm_.rank(); }
    int world_size() const { return comm_.world_size(); }
    const Comm& communicator() const { return comm_; }
    int64_t bucket_bytes() const { return bucket_bytes_; }
    bool overlaps() const { return StreamCommunicator<Comm> && link_.overlap; }
    // The GPU this rank's communicator uses (the trainer builds its backend there).
    int device() const
        requires requires(const Comm& c) { c.device(); }
    {
        return comm_.device();
    }

    // The model's storage; refers to this policy, which must not move afterwards.
    Parameters model_parameters(const ModelConfig&) {
        if constexpr (StreamCommunicator<Comm>) return {&comm_, bucket_bytes_, &link_};
        else return {};
    }
    void before_micro_batch(bool last) { link_.last_micro_batch = last; }

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
            {
                const auto timed = backend.op_scope(Op::communication);
                comm_.all_reduce_sum(grads, n);
            }
            const Grad inv = Grad(1) / static_cast<Grad>(comm_.world_size());
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; ++i) grads[i] *= inv;
        } else {
            static_assert(StreamCommunicator<Comm>,
                          "Ddp: device gradients need a stream communicator (Nccl)");
            // Even alone: NCCL runs the collective, so a one-GPU run measures its cost.
            if (link_.overlap) {
                require(static_cast<bool>(link_.finish),
                        "Ddp: the model was not built over this policy's storage "
                        "(model_parameters), so no bucket was launched");
                link_.finish();
            } else {
                all_reduce_in_buckets(comm_, backend, grads, n, bucket_bytes_);
            }
        }
    }

private:
    Comm comm_;
    int64_t bucket_bytes_;
    OverlapLink link_;
};

}  // namespace slm::parallel
