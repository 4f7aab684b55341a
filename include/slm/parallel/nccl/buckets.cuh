#pragma once
// StreamBuckets<Nccl>::Store: Ddp's device storage. The whole buffers of model::WholeParameters,
// plus the overlap of gradient communication with the backward: the gradient buffer is cut into
// buckets of whole parameter units, in the order the backward completes them (the LM head at the
// loss, the final norm, the blocks from the top, the embedding), each at least bucket_bytes
// except the last. When the backward of the step's last micro-batch completes a bucket's units
// (gradients_done), the bucket's all-reduce is queued on a communication stream behind an event
// on the compute stream, so it runs while the compute stream goes on with the units below.
// finish() (Ddp::reduce_gradients) makes the compute stream wait for the last bucket.
//
// Units complete in descending flat order, and units are contiguous and cover the buffer, so
// every bucket is one contiguous range. With tied embeddings the embedding unit is also the LM
// head: its gradient is complete only at its second gradients_done (after the embedding
// backward), not at the first (after the loss).
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "slm/core/op_profile.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/stream.cuh"
#include "slm/model/whole_parameters.hpp"
#include "slm/parallel/buckets.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/nccl/communicator.cuh"

namespace slm::parallel {

template <>
struct StreamBuckets<Nccl> {
    template <Backend B>
    class Store;
};

template <Backend B>
class StreamBuckets<Nccl>::Store : public model::WholeParameters::Store<B> {
    static_assert(!B::host_memory, "StreamBuckets<Nccl>::Store reduces device buffers");
    using Base = model::WholeParameters::Store<B>;

public:
    Store(B& backend, const ParameterLayout& layout, const model::ParameterUnits& units,
          const OverlappedGradients<Nccl>& policy)
        : Base(backend, layout, units, model::WholeParameters{}),
          backend_(backend),
          comm_(*policy.comm),
          link_(*policy.link),
          bucket_of_(static_cast<size_t>(units.count())),
          expected_(static_cast<size_t>(units.count()), 1),
          calls_(static_cast<size_t>(units.count()), 0) {
        const bool tied = units.lm_head() == units.embedding();
        if (tied) expected_[static_cast<size_t>(units.embedding())] = 2;
        std::vector<int64_t> order;  // units in the order their gradients complete
        if (!tied) order.push_back(units.lm_head());
        order.push_back(units.final_norm());
        for (int64_t u = units.final_norm() - 1; u >= 1; --u) order.push_back(u);  // the blocks
        order.push_back(units.embedding());
        const int64_t per = bucket_elements<typename B::Grad>(policy.bucket_bytes);
        for (const int64_t u : order) {
            const auto& unit = units[u];
            if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= per)
                buckets_.push_back(Bucket{unit.begin, unit.end});
            else
                buckets_.back().begin = unit.begin;  // the next unit lies just below
            ++buckets_.back().units;
            bucket_of_[static_cast<size_t>(u)] = buckets_.size() - 1;
        }
        link_.finish = [this] { finish(); };
    }
    ~Store() { link_.finish = nullptr; }
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    void gradients_done(int64_t unit) {
        if (!link_.overlap || !link_.last_micro_batch) return;
        const auto u = static_cast<size_t>(unit);
        if (++calls_[u] < expected_[u]) return;
        const size_t b = bucket_of_[u];
        if (++buckets_[b].complete == buckets_[b].units) launch(b);
    }

    // After the backward: launches any bucket still waiting (none when every unit reported),
    // then makes the compute stream wait for every launched all-reduce, and starts a new step.
    void finish() {
        for (size_t b = 0; b < buckets_.size(); ++b)
            if (!buckets_[b].launched) launch(b);
        all_done_.record(comm_stream_.get());
        SLM_CUDA_CHECK(cudaStreamWaitEvent(backend_.stream(), all_done_.get(), 0));
        for (auto& bucket : buckets_) bucket.complete = 0, bucket.launched = false;
        for (auto& c : calls_) c = 0;
    }

    int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }

private:
    struct Bucket {
        int64_t begin = 0, end = 0;  // flat elements [begin, end)
        int64_t units = 0, complete = 0;
        bool launched = false;
        cuda::Event ready{false};  // recorded on the compute stream when its gradients are done
    };

    void launch(size_t b) {
        Bucket& bucket = buckets_[b];
        bucket.ready.record(backend_.stream());
        SLM_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_.get(), bucket.ready.get(), 0));
        const auto timed = backend_.op_scope(Op::communication, comm_stream_.get());
        comm_.all_reduce_sum(this->gradients() + bucket.begin, bucket.end - bucket.begin,
                             comm_stream_.get());
        bucket.launched = true;
    }

    B& backend_;
    const Nccl& comm_;
    OverlapLink& link_;
    cuda::Stream comm_stream_;  // made on the backend's GPU: the model is built after it
    cuda::Event all_done_{false};
    std::vector<Bucket> buckets_;
    std::vector<size_t> bucket_of_;  // by unit
    std::vector<int> expected_;      // gradients_done calls that complete a unit, by unit
    std::vector<int> calls_;         // those seen in this step, by unit
};

}  // namespace slm::parallel
