#pragma once
// ParameterStorage: where Llama's parameters and gradients live, and how a unit of them
// (model/parameter_units.hpp) reaches the ops. Llama asks for a unit's weights just before it
// uses them (gather), says when it is done (release), and likewise takes a unit's gradient buffer
// before the backward writes it and hands it back once the unit's gradient is complete.
//
// A storage policy is a small tag (it may carry a communicator) with a nested Store<Backend> that
// owns the buffers. model::WholeParameters keeps everything whole and every call is a no-op the
// compiler removes; parallel::ShardedParameters (Zero<2>, Zero<3>) keeps this rank's shards and
// communicates at those calls. The storage is a compile-time choice, so one does not pay for
// the other.
#include <concepts>
#include <cstdint>

#include "slm/core/accounting.hpp"
#include "slm/core/backend.hpp"
#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/model/parameter_units.hpp"

namespace slm::model {

// A window onto the flat layout: at(offset) is where flat element `offset` is, for the offsets of
// the unit the window was made for (the whole buffer, or one gathered unit).
template <class T>
struct FlatView {
    T* data = nullptr;
    int64_t first = 0;  // the flat offset data[0] holds
    T* at(int64_t offset) const { return data + (offset - first); }
};

// Bytes a backend buffer (std::vector or cuda::DeviceBuffer) holds.
inline int64_t buffer_bytes(const auto& buffer) {
    return static_cast<int64_t>(buffer.size()) * static_cast<int64_t>(sizeof(*buffer.data()));
}

template <class S>
concept ParameterStore = requires(S& s, int64_t unit, const typename S::Master* in,
                                  typename S::Master* out, typename S::Grad* grads_out) {
    { s.gather(unit) } -> std::same_as<FlatView<typename S::Act>>;
    { s.release(unit) };
    { s.gradients_for(unit) } -> std::same_as<FlatView<typename S::Grad>>;
    { s.gradients_done(unit) };
    // What this rank holds persistently: what the optimizer updates, in its own coordinates.
    { s.parameters() } -> std::same_as<typename S::Master*>;
    { s.gradients() } -> std::same_as<typename S::Grad*>;
    { s.working() } -> std::same_as<typename S::Act*>;  // null without a working copy
    { s.parameter_count() } -> std::same_as<int64_t>;
    { s.gradient_count() } -> std::same_as<int64_t>;
    // Whole flat host arrays in and out (a sharded store takes its slices, or gathers).
    { s.set_parameters(in) };
    { s.get_parameters(out) };
    { s.get_gradients(grads_out) };
    { s.zero_gradients() };
    { s.refresh_working_copy() };
    { s.bytes() } -> std::same_as<StateBytes>;
};

// A storage policy P for backend B: P::Store<B> is built from (backend, layout, units, policy).
template <class P, class B>
concept ParameterStorage = Backend<B> && ParameterStore<typename P::template Store<B>> &&
    std::constructible_from<typename P::template Store<B>, B&, const ParameterLayout&,
                            const ParameterUnits&, const P&>;

}  // namespace slm::model
