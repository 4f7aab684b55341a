#pragma once
// StreamShards<Nccl>: ZeRO's shards on device buffers (the CUDA backend), moved by NCCL on the
// backend's stream, so they are ordered with the kernels around them without host waits.
// Include it to train Zero<2> and Zero<3> (and to checkpoint any Zero<k>) over Nccl; it brings
// Ddp's device storage (nccl_buckets.cuh) too, so this one header makes every policy work over
// Nccl.
//
// Store<ShardWeights, B> is ShardedParameters' device storage:
//   Zero<2> (ShardWeights = false): fp32 masters and their bf16 working copy whole (the GEMMs
//     read the copy), the fp32 gradient shard, one unit-sized fp32 reduce buffer.
//   Zero<3> (true): the fp32 master shard, the gradient shard, the reduce buffer and two bf16
//     gather buffers; gather(unit) converts this rank's master slice to bf16 in place in a
//     gather buffer and all-gathers the unit in bf16 (half the bytes of the masters).
// Every collective uses the unit's padded extent (slice · W elements, within the unit-sized
// buffers), so it is one equal-slice NCCL reduce-scatter or all-gather.
//
// Gradients accumulate without an add kernel: gradients_for(unit) zeroes the reduce buffer and
// copies this rank's held sum into its own slice; the backward adds the unit's gradient on top;
// the reduce-scatter then sums every rank's contribution onto the held sum, and gradients_done
// copies the slice back. The gradients were pre-divided by W (Zero::backward_scale), so the
// held shard is the mean over ranks with no division afterwards.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "slm/core/op_profile.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/convert.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/stream.cuh"
#include "slm/model/parameter_storage.hpp"
#include "slm/parallel/nccl.cuh"
#include "slm/parallel/nccl_buckets.cuh"
#include "slm/parallel/shard_map.hpp"
#include "slm/parallel/sharded_parameters.hpp"

namespace slm::parallel {

template <>
struct StreamShards<Nccl> {
    template <bool ShardWeights, Backend B>
    class Store;

    // Collective: the whole flat buffer (layout total elements) from every rank's held device
    // buffer, into host `whole` on the ranks that pass one (others only contribute). One unit at
    // a time through one unit of device scratch, queued on `stream` after what is there.
    template <class T>
    static void gather_whole(const Nccl& comm, const ShardMap& map, const T* held, T* whole,
                             cudaStream_t stream) {
        cuda::DeviceBuffer<T> scratch(map.largest_gather());
        const int64_t world = map.world(), rank = map.rank();
        for (int64_t s = 0; s < static_cast<int64_t>(map.segments().size()); ++s) {
            const auto& g = map.segment(s);
            SLM_CUDA_CHECK(cudaMemcpyAsync(scratch.data() + rank * g.slice, held + g.held_at,
                                           static_cast<size_t>(g.slice) * sizeof(T),
                                           cudaMemcpyDeviceToDevice, stream));
            comm.all_gather(scratch.data(), g.slice * world, g.slice, stream);
            comm.wait(stream);  // bounded wait: a dead peer throws instead of hanging the copy
            if (whole)
                SLM_CUDA_CHECK(cudaMemcpy(whole + g.begin, scratch.data(),
                                          static_cast<size_t>(g.size()) * sizeof(T),
                                          cudaMemcpyDeviceToHost));
        }
    }

    // Zero::gather_to_root's form (checkpoints: the optimizer state): the state was written on
    // the backend's stream, which is not at hand here, so wait for the device first.
    template <class T>
    static void gather_whole(const Nccl& comm, const ShardMap& map, const T* held, T* whole) {
        SLM_CUDA_CHECK(cudaDeviceSynchronize());
        const cuda::Stream stream;
        gather_whole(comm, map, held, whole, stream.get());
    }
};

template <bool ShardWeights, Backend B>
class StreamShards<Nccl>::Store {
    static_assert(!B::host_memory, "StreamShards<Nccl>::Store holds device buffers");
    static_assert(std::is_same_v<typename B::Master, float> &&
                      std::is_same_v<typename B::Grad, float> &&
                      std::is_same_v<typename B::Act, __nv_bfloat16>,
                  "StreamShards<Nccl>::Store expects fp32 masters and gradients and bf16 weights "
                  "for the GEMMs (cuda::Backend)");

public:
    using Master = typename B::Master;
    using Act = typename B::Act;
    using Grad = typename B::Grad;

    Store(B& backend, const ParameterLayout& layout, const model::ParameterUnits&,
          const ShardedParameters<Nccl, ShardWeights>& policy)
        : backend_(backend),
          comm_(*policy.comm),
          map_(policy.map),
          total_(layout.total()),
          params_(backend.template allocate<Master>(ShardWeights ? map_.held() : total_)),
          grads_(backend.template allocate<Grad>(map_.held())),
          reduce_buffer_(backend.template allocate<Grad>(map_.largest_gather())) {
        require(map_.segments().back().end == total_,
                "ShardedParameters: the shard map does not cover this model's parameters");
        if constexpr (ShardWeights)
            for (auto& slot : slots_) slot.buffer = backend.template allocate<Act>(map_.largest_gather());
        else
            working_.emplace(backend.template allocate<Act>(total_));
    }

    // The unit's bf16 weights: a view of the whole working copy, or (Zero<3>) a fresh gather.
    model::FlatView<Act> gather(int64_t unit) {
        if constexpr (!ShardWeights) {
            return {working_->data(), 0};
        } else {
            for (auto& slot : slots_)
                if (slot.unit == unit) return {slot.buffer.data(), map_.segment(unit).begin};
            for (auto& slot : slots_)
                if (slot.unit < 0) {
                    const auto& g = map_.segment(unit);
                    const auto timed = backend_.op_scope(Op::communication);
                    cuda::convert(params_.data() + g.held_at, slot.buffer.data() + mine(g),
                                  g.slice, backend_.stream());
                    comm_.all_gather(slot.buffer.data(), padded(g), g.slice, backend_.stream());
                    slot.unit = unit;
                    return {slot.buffer.data(), g.begin};
                }
            fail("ShardedParameters: more than two units gathered at once (release one first)");
        }
    }
    // The buffer is reused by a later gather; the stream orders that after this unit's readers.
    void release(int64_t unit) {
        if constexpr (ShardWeights)
            for (auto& slot : slots_)
                if (slot.unit == unit) slot.unit = -1;
    }

    // The backward adds into the returned buffer: zero, except this rank's slice, which starts
    // at the sum held so far (see the top of this file).
    model::FlatView<Grad> gradients_for(int64_t unit) {
        const auto& g = map_.segment(unit);
        const auto timed = backend_.op_scope(Op::communication);
        backend_.zero(reduce_buffer_.data(), padded(g));
        copy(reduce_buffer_.data() + mine(g), grads_.data() + g.held_at, g.slice);
        return {reduce_buffer_.data(), g.begin};
    }
    void gradients_done(int64_t unit) {
        const auto& g = map_.segment(unit);
        const auto timed = backend_.op_scope(Op::communication);
        comm_.reduce_scatter_sum(reduce_buffer_.data(), padded(g), g.slice, backend_.stream());
        copy(grads_.data() + g.held_at, reduce_buffer_.data() + mine(g), g.slice);
    }

    Master* parameters() { return params_.data(); }
    Grad* gradients() { return grads_.data(); }
    Act* working() {
        if constexpr (ShardWeights) return nullptr;  // gathers convert from the masters
        else return working_->data();
    }
    int64_t parameter_count() const { return ShardWeights ? map_.held() : total_; }
    int64_t gradient_count() const { return map_.held(); }

    void set_parameters(const Master* host) {
        if constexpr (ShardWeights) {
            std::vector<Master> held(static_cast<size_t>(map_.held()), Master(0));
            take_held(map_, host, held.data());
            backend_.upload(params_.data(), held.data(), map_.held());
        } else {
            backend_.upload(params_.data(), host, total_);
            refresh_working_copy();
        }
    }
    // Zero<3>: collective (every rank must call it); ranks passing nullptr only contribute.
    void get_parameters(Master* host) {
        if constexpr (ShardWeights)
            StreamShards::gather_whole(comm_, map_, params_.data(), host, backend_.stream());
        else if (host)
            backend_.download(host, params_.data(), total_);
    }
    // Collective: the gradient shards gathered whole (the mean over ranks reduced so far).
    void get_gradients(Grad* host) {
        StreamShards::gather_whole(comm_, map_, grads_.data(), host, backend_.stream());
    }
    void zero_gradients() { backend_.zero(grads_.data(), map_.held()); }
    void refresh_working_copy() {
        if constexpr (!ShardWeights) backend_.convert(params_.data(), working_->data(), total_);
    }

    StateBytes bytes() const {
        StateBytes b;
        b.parameters = model::buffer_bytes(params_);
        if constexpr (ShardWeights)
            for (const auto& slot : slots_) b.parameters += model::buffer_bytes(slot.buffer);
        else
            b.parameters += model::buffer_bytes(*working_);
        b.gradients = model::buffer_bytes(grads_) + model::buffer_bytes(reduce_buffer_);
        return b;
    }

private:
    struct Slot {
        typename B::template Buffer<Act> buffer;
        int64_t unit = -1;  // the unit it holds, -1 when free
    };

    // Where this rank's slice of a unit starts in a unit-sized buffer, and the unit's padded size.
    int64_t mine(const ShardMap::Segment& g) const { return map_.rank() * g.slice; }
    int64_t padded(const ShardMap::Segment& g) const { return map_.world() * g.slice; }

    void copy(Grad* dst, const Grad* src, int64_t n) {
        SLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(Grad),
                                       cudaMemcpyDeviceToDevice, backend_.stream()));
    }

    B& backend_;
    const Nccl& comm_;
    ShardMap map_;
    int64_t total_;
    typename B::template Buffer<Master> params_;  // Zero<3>: this rank's shard; Zero<2>: whole
    typename B::template Buffer<Grad> grads_;     // this rank's shard
    typename B::template Buffer<Grad> reduce_buffer_;
    std::optional<typename B::template Buffer<Act>> working_;  // Zero<2>: whole bf16 copy
    std::array<Slot, ShardWeights ? 2 : 0> slots_;
};

}  // namespace slm::parallel
