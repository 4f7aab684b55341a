#pragma once
// ShardMoves<Nccl>: how ZeRO's store (parallel/sharded_parameters.hpp) moves a unit on device
// buffers (the CUDA backend), by NCCL on the backend's stream, so the collectives are ordered
// with the kernels around them without host waits. Include it to train Zero<2> and Zero<3> (and
// to checkpoint any Zero<k>) over Nccl; it brings Ddp's device storage (buckets.cuh) too, so this
// one header makes every policy work over Nccl.
//
// On the device the store holds, besides the shards, Zero<2>'s bf16 working copy whole (the
// GEMMs read it) and Zero<3>'s two bf16 gather buffers; gather_unit converts this rank's master
// slice to bf16 in place in a gather buffer and all-gathers the unit in bf16 (half the bytes of
// the masters). Every collective uses the unit's padded extent (slice · W elements, within the
// unit-sized buffers), so it is one equal-slice NCCL reduce-scatter or all-gather.
//
// Gradients accumulate without an add kernel: begin_gradients zeroes the reduce buffer and
// copies this rank's held sum into its own slice; the backward adds the unit's gradient on top;
// the reduce-scatter then sums every rank's contribution onto the held sum, and end_gradients
// copies the slice back. The gradients were pre-divided by W (Zero::backward_scale), so the held
// shard is the mean over ranks with no division afterwards.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "slm/core/op_profile.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/convert.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/stream.cuh"
#include "slm/parallel/nccl/buckets.cuh"
#include "slm/parallel/nccl/communicator.cuh"
#include "slm/parallel/shard_map.hpp"
#include "slm/parallel/shard_moves.hpp"
#include "slm/parallel/sharded_parameters.hpp"

namespace slm::parallel {

template <>
struct ShardMoves<Nccl> {
    template <class B, class Master, class Act>
    static void gather_unit(B& backend, const Nccl& comm, const ShardMap& map, int64_t unit,
                            const Master* held, Act* buffer) {
        static_assert(std::is_same_v<Master, float> && std::is_same_v<Act, __nv_bfloat16>,
                      "ShardMoves<Nccl> gathers bf16 weights from fp32 masters (cuda::Backend)");
        const auto& g = map.segment(unit);
        const auto timed = backend.op_scope(Op::communication);
        cuda::convert(held + g.held_at, buffer + mine(map, g), g.slice, backend.stream());
        comm.all_gather(buffer, padded(map, g), g.slice, backend.stream());
    }

    // The reduce buffer: zero, except this rank's slice, which starts at the sum held so far.
    template <class B, class Grad>
    static void begin_gradients(B& backend, const Nccl&, const ShardMap& map, int64_t unit,
                                const Grad* held, Grad* buffer) {
        const auto& g = map.segment(unit);
        const auto timed = backend.op_scope(Op::communication);
        backend.zero(buffer, padded(map, g));
        copy(buffer + mine(map, g), held + g.held_at, g.slice, backend.stream());
    }
    template <class B, class Grad>
    static void end_gradients(B& backend, const Nccl& comm, const ShardMap& map, int64_t unit,
                              Grad* buffer, Grad* held) {
        const auto& g = map.segment(unit);
        const auto timed = backend.op_scope(Op::communication);
        comm.reduce_scatter_sum(buffer, padded(map, g), g.slice, backend.stream());
        copy(held + g.held_at, buffer + mine(map, g), g.slice, backend.stream());
    }

    // Collective: the whole flat buffer (layout total elements) from every rank's held device
    // buffer, into host `whole` on the ranks that pass one (others only contribute). One unit at
    // a time through one unit of device scratch, queued on the backend's stream after what is
    // there.
    template <class B, class T>
    static void gather_whole(B& backend, const Nccl& comm, const ShardMap& map, const T* held, T* whole) {
        gather_whole_on(comm, map, held, whole, backend.stream());
    }

    // Zero::gather_to_root's form (checkpoints: the optimizer state): the state was written on
    // the backend's stream, which is not at hand here, so wait for the device first.
    template <class T>
    static void gather_to_root(const Nccl& comm, const ShardMap& map, const T* held, T* whole) {
        SLM_CUDA_CHECK(cudaDeviceSynchronize());
        const cuda::Stream stream;
        gather_whole_on(comm, map, held, whole, stream.get());
    }

private:
    // Where this rank's slice of a unit starts in a unit-sized buffer, and the unit's padded size.
    static int64_t mine(const ShardMap& map, const ShardMap::Segment& g) { return map.rank() * g.slice; }
    static int64_t padded(const ShardMap& map, const ShardMap::Segment& g) { return map.world() * g.slice; }

    template <class T>
    static void copy(T* dst, const T* src, int64_t n, cudaStream_t stream) {
        SLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(T),
                                       cudaMemcpyDeviceToDevice, stream));
    }

    template <class T>
    static void gather_whole_on(const Nccl& comm, const ShardMap& map, const T* held, T* whole,
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
};

}  // namespace slm::parallel
