#pragma once
// parallel::ShardedParameters<Comm, ShardWeights>: the model's storage under Zero<2>
// (ShardWeights = false) and Zero<3> (true). Cut as ShardMap says, one slice of each unit per rank.
//
// Gradients (both): a rank keeps only its gradient shard. The backward writes each unit's
// gradient into one unit-sized reduce buffer; when the unit is done that buffer is
// reduce-scattered and this rank adds its slice of the sum into its shard. So the shard holds the
// SUM over ranks (and over micro-batches); the policy's reduce_gradients averages it.
//
// Weights (Zero<3> only): a rank keeps only its master shard. gather(unit) all-gathers the unit
// into one of two gather buffers just before its first use and release(unit) frees the buffer;
// two, because the norm closing a block already reads the next block's first norm gain. The
// forward gathers every unit and the backward gathers them again (FSDP's reshard-after-forward).
// Under Zero<2> the weights stay whole and the policy all-gathers them after each update.
//
// Two stores: host buffers over a host communicator (Mpi; below), and device buffers over a
// stream communicator (StreamShards<Comm>::Store, nccl_shards.cuh for Nccl), picked by the
// backend's memory. The policy refers to its communicator (owned by the Zero policy, which
// outlives the model): Nccl cannot be copied.
#include <array>
#include <cstdint>
#include <optional>

#include "slm/core/op_profile.hpp"
#include "slm/model/parameter_storage.hpp"
#include "slm/parallel/communicator.hpp"
#include "slm/parallel/shard_map.hpp"

namespace slm::parallel {

template <class Comm, bool ShardWeights, Backend B>
class HostShardedStore;

namespace sharded_detail {
// Picked lazily, so a CPU build never names the device store and vice versa.
template <class Comm, bool ShardWeights, class B, bool Host = B::host_memory>
struct store_of {
    using type = HostShardedStore<Comm, ShardWeights, B>;
};
template <class Comm, bool ShardWeights, class B>
struct store_of<Comm, ShardWeights, B, false> {
    using type = typename StreamShards<Comm>::template Store<ShardWeights, B>;
};
}  // namespace sharded_detail

template <AnyCommunicator Comm, bool ShardWeights>
struct ShardedParameters {
    const Comm* comm = nullptr;
    ShardMap map;

    template <Backend B>
    using Store = typename sharded_detail::store_of<Comm, ShardWeights, B>::type;
};

template <class Comm, bool ShardWeights, Backend B>
class HostShardedStore {
    static_assert(Communicator<Comm>,
                  "ShardedParameters: host buffers need a host communicator (Mpi)");
    static_assert(!B::has_working_copy,
                  "ShardedParameters keeps no working copy: the CPU backend reads its masters");

public:
    using Master = typename B::Master;
    using Act = typename B::Act;
    using Grad = typename B::Grad;

    HostShardedStore(B& backend, const ParameterLayout& layout, const model::ParameterUnits&,
                     const ShardedParameters<Comm, ShardWeights>& policy)
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
    }

    // The unit's weights: a view of the whole buffer, or (Zero<3>) a freshly gathered copy.
    model::FlatView<Act> gather(int64_t unit) {
        if constexpr (!ShardWeights) {
            return {params_.data(), 0};
        } else {
            for (auto& slot : slots_)
                if (slot.unit == unit) return {slot.buffer.data(), map_.segment(unit).begin};
            for (auto& slot : slots_)
                if (slot.unit < 0) {
                    const auto timed = backend_.op_scope(Op::communication);
                    gather_segment(comm_, map_, unit, params_.data(), slot.buffer.data());
                    slot.unit = unit;
                    return {slot.buffer.data(), map_.segment(unit).begin};
                }
            fail("ShardedParameters: more than two units gathered at once (release one first)");
        }
    }
    void release(int64_t unit) {
        if constexpr (ShardWeights)
            for (auto& slot : slots_)
                if (slot.unit == unit) slot.unit = -1;
    }

    // The backward adds into the returned (zeroed) buffer; gradients_done reduce-scatters it.
    model::FlatView<Grad> gradients_for(int64_t unit) {
        backend_.zero(reduce_buffer_.data(), map_.segment(unit).size());
        return {reduce_buffer_.data(), map_.segment(unit).begin};
    }
    void gradients_done(int64_t unit) {
        const auto timed = backend_.op_scope(Op::communication);
        reduce_scatter_segment(comm_, map_, unit, reduce_buffer_.data(), grads_.data());
    }

    Master* parameters() { return params_.data(); }
    Grad* gradients() { return grads_.data(); }
    Act* working() { return nullptr; }
    int64_t parameter_count() const { return ShardWeights ? map_.held() : total_; }
    int64_t gradient_count() const { return map_.held(); }

    void set_parameters(const Master* host) {
        if constexpr (ShardWeights) take_held(map_, host, params_.data());
        else backend_.upload(params_.data(), host, total_);
    }
    // Zero<3>: collective (every rank must call it); ranks passing nullptr only contribute.
    void get_parameters(Master* host) {
        if constexpr (ShardWeights) gather_whole(comm_, map_, params_.data(), host);
        else if (host) backend_.download(host, params_.data(), total_);
    }
    // Collective: the gradient shards gathered whole — the sum over ranks of what was reduced so
    // far (not the per-rank gradient a whole store would hold).
    void get_gradients(Grad* host) { gather_whole(comm_, map_, grads_.data(), host); }
    void zero_gradients() { backend_.zero(grads_.data(), map_.held()); }
    void refresh_working_copy() {}

    StateBytes bytes() const {
        StateBytes b;
        b.parameters = model::buffer_bytes(params_);
        if constexpr (ShardWeights)
            for (const auto& slot : slots_) b.parameters += model::buffer_bytes(slot.buffer);
        b.gradients = model::buffer_bytes(grads_) + model::buffer_bytes(reduce_buffer_);
        return b;
    }

private:
    struct Slot {
        typename B::template Buffer<Act> buffer;
        int64_t unit = -1;  // the unit it holds, -1 when free
    };

    B& backend_;
    const Comm& comm_;
    ShardMap map_;
    int64_t total_;
    typename B::template Buffer<Master> params_;  // Zero<3>: this rank's shard; Zero<2>: whole
    typename B::template Buffer<Grad> grads_;     // this rank's shard
    typename B::template Buffer<Grad> reduce_buffer_;
    std::array<Slot, ShardWeights ? 2 : 0> slots_;
};

}  // namespace slm::parallel
