#pragma once
// parallel::ShardMoves<Comm>: the four collectives ZeRO's store (sharded_parameters.hpp) makes
// with one unit of a ShardMap, for one kind of communicator. The store is written once over
// them; what differs between host buffers over Mpi (here) and device buffers over Nccl
// (parallel/nccl/shards.cuh) is only how a unit moves:
//   gather_unit(backend, comm, map, unit, held, buffer)
//       Zero<3>: every rank ends with the unit's weights whole in `buffer` (the element at flat
//       offset segment.begin + i at buffer[i]), built from each rank's master slice in `held`.
//   begin_gradients(backend, comm, map, unit, held, buffer)
//       readies `buffer` (a unit) for the backward to add the unit's gradient into.
//   end_gradients(backend, comm, map, unit, buffer, held)
//       after the backward: this rank's held gradient slice gains the sum over ranks of buffer.
//   gather_whole(backend, comm, map, held, whole)
//       collective: the whole flat buffer into `whole` on ranks that pass one (others only
//       contribute), one unit at a time.
//   gather_to_root(comm, map, held, whole)
//       the same without a backend at hand (a checkpoint of the optimizer state).
// Host version: the store's buffers are host arrays; sums are added into the held slice, and the
// policy divides by W afterwards (Zero::reduce_gradients).
#include <cstdint>
#include <type_traits>

#include "slm/core/op_profile.hpp"
#include "slm/parallel/shard_map.hpp"
#include "slm/parallel/transport/communicator.hpp"

namespace slm::parallel {

template <class Comm>
struct ShardMoves {
    static_assert(sizeof(Comm) == 0,
                  "ZeRO over a stream communicator: include slm/parallel/nccl/shards.cuh (Nccl)");
};

template <Communicator Comm>
struct ShardMoves<Comm> {
    template <class B, class Master, class Act>
    static void gather_unit(B& backend, const Comm& comm, const ShardMap& map, int64_t unit,
                            const Master* held, Act* buffer) {
        static_assert(std::is_same_v<Master, Act>, "host shards gather the masters themselves");
        const auto timed = backend.op_scope(Op::communication);
        gather_segment(comm, map, unit, held, buffer);
    }
    template <class B, class Grad>
    static void begin_gradients(B& backend, const Comm&, const ShardMap& map, int64_t unit,
                                const Grad*, Grad* buffer) {
        backend.zero(buffer, map.segment(unit).size());
    }
    template <class B, class Grad>
    static void end_gradients(B& backend, const Comm& comm, const ShardMap& map, int64_t unit,
                              Grad* buffer, Grad* held) {
        const auto timed = backend.op_scope(Op::communication);
        reduce_scatter_segment(comm, map, unit, buffer, held);
    }
    template <class B, class T>
    static void gather_whole(B&, const Comm& comm, const ShardMap& map, const T* held, T* whole) {
        parallel::gather_whole(comm, map, held, whole);
    }
    template <class T>
    static void gather_to_root(const Comm& comm, const ShardMap& map, const T* held, T* whole) {
        parallel::gather_whole(comm, map, held, whole);
    }
};

}  // namespace slm::parallel
