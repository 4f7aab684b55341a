#pragma once
// parallel::ShardedParameters<Comm, ShardWeights>: the model's storage under Zero<2>
// (ShardWeights = false) and Zero<3> (true). Cut as ShardMap says, one slice of each unit per rank.
//
// Gradients (both): a rank keeps only its gradient shard. The backward writes each unit's
// gradient into one unit-sized reduce buffer; when the unit is done, ShardMoves'
// end_gradients reduce-scatters that buffer so this rank's shard gains the sum over ranks of
// its slice (and over micro-batches).
//
// Weights (Zero<3> only): a rank keeps only its master shard. gather(unit) gathers the unit into
// one of two gather buffers just before its first use and release(unit) frees the buffer; two,
// because the norm closing a block already reads the next block's first norm gain. The forward
// gathers every unit and the backward gathers them again (FSDP's reshard-after-forward). Under
// Zero<2> the masters stay whole and the policy all-gathers them after each update; a backend
// whose GEMMs read a working copy (the GPU's bf16) keeps that whole too, refreshed from the
// masters.
//
// One store for both kinds of buffers: host arrays over a host communicator (Mpi) and device
// buffers over a stream communicator (Nccl); how a unit moves is ShardMoves<Comm>
// (shard_moves.hpp for Mpi, nccl/shards.cuh for Nccl). The store refers to its communicator
// (owned by the Zero policy, which outlives the model): Nccl cannot be copied.
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "slm/core/backend.hpp"
#include "slm/model/parameter_storage.hpp"
#include "slm/parallel/shard_map.hpp"
#include "slm/parallel/shard_moves.hpp"
#include "slm/parallel/transport/communicator.hpp"

namespace slm::parallel {

template <class Comm, bool ShardWeights, Backend B>
class ShardedStore;

template <AnyCommunicator Comm, bool ShardWeights>
struct ShardedParameters {
    const Comm* comm = nullptr;
    ShardMap map;

    template <Backend B>
    using Store = ShardedStore<Comm, ShardWeights, B>;
};

template <class Comm, bool ShardWeights, Backend B>
class ShardedStore {
    static_assert(B::host_memory == Communicator<Comm>,
                  "ShardedParameters: host buffers move over a host communicator (Mpi), device "
                  "buffers over a stream communicator (Nccl)");
    using Moves = ShardMoves<Comm>;
    // Zero<2> keeps the working copy whole beside the whole masters; Zero<3> gathers into it.
    static constexpr bool whole_working_copy = !ShardWeights && B::has_working_copy;

public:
    using Master = typename B::Master;
    using Act = typename B::Act;
    using Grad = typename B::Grad;

    ShardedStore(B& backend, const ParameterLayout& layout, const model::ParameterUnits&,
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
        if constexpr (whole_working_copy) working_.emplace(backend.template allocate<Act>(total_));
    }

    // The unit's weights as the GEMMs read them: a view of the whole buffer (the working copy
    // where there is one, else the masters), or (Zero<3>) a freshly gathered copy.
    model::FlatView<Act> gather(int64_t unit) {
        if constexpr (!ShardWeights) {
            if constexpr (whole_working_copy) return {working_->data(), 0};
            else return {params_.data(), 0};
        } else {
            for (auto& slot : slots_)
                if (slot.unit == unit) return {slot.buffer.data(), map_.segment(unit).begin};
            for (auto& slot : slots_)
                if (slot.unit < 0) {
                    Moves::gather_unit(backend_, comm_, map_, unit, params_.data(), slot.buffer.data());
                    slot.unit = unit;
                    return {slot.buffer.data(), map_.segment(unit).begin};
                }
            fail("ShardedParameters: more than two units gathered at once (release one first)");
        }
    }
    // The buffer is reused by a later gather (on the GPU the stream orders that after this
    // unit's readers).
    void release(int64_t unit) {
        if constexpr (ShardWeights)
            for (auto& slot : slots_)
                if (slot.unit == unit) slot.unit = -1;
    }

    // The backward adds into the returned buffer; gradients_done reduces it into the shard.
    model::FlatView<Grad> gradients_for(int64_t unit) {
        Moves::begin_gradients(backend_, comm_, map_, unit, grads_.data(), reduce_buffer_.data());
        return {reduce_buffer_.data(), map_.segment(unit).begin};
    }
    void gradients_done(int64_t unit) {
        Moves::end_gradients(backend_, comm_, map_, unit, reduce_buffer_.data(), grads_.data());
    }

    Master* parameters() { return params_.data(); }
    Grad* gradients() { return grads_.data(); }
    Act* working() {
        if constexpr (whole_working_copy) return working_->data();
        else return nullptr;  // none, or (Zero<3>) gathers convert from the masters
    }
    int64_t parameter_count() const { return ShardWeights ? map_.held() : total_; }
    int64_t gradient_count() const { return map_.held(); }

    // host: the whole flat buffer; this rank keeps what it holds.
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
        if constexpr (ShardWeights) Moves::gather_whole(backend_, comm_, map_, params_.data(), host);
        else if (host) backend_.download(host, params_.data(), total_);
    }
    // Collective: the gradient shards gathered whole — the sum over ranks of what was reduced so
    // far (host: before the policy's division by W; device: pre-divided, so the mean).
    void get_gradients(Grad* host) { Moves::gather_whole(backend_, comm_, map_, grads_.data(), host); }
    void zero_gradients() { backend_.zero(grads_.data(), map_.held()); }
    void refresh_working_copy() {
        if constexpr (whole_working_copy) backend_.convert(params_.data(), working_->data(), total_);
    }

    StateBytes bytes() const {
        StateBytes b;
        b.parameters = model::buffer_bytes(params_);
        if constexpr (ShardWeights)
            for (const auto& slot : slots_) b.parameters += model::buffer_bytes(slot.buffer);
        if constexpr (whole_working_copy) b.parameters += model::buffer_bytes(*working_);
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
    std::optional<typename B::template Buffer<Act>> working_;  // Zero<2> on the GPU: whole bf16
    std::array<Slot, ShardWeights ? 2 : 0> slots_;
};

}  // namespace slm::parallel
