#pragma once
// parallel::Zero<Stage, Comm>: ZeRO data parallelism. Every parameter unit (the embedding,
// each block, the final norm, the LM head: model/parameter_units.hpp) is cut into one equal slice
// per rank (ShardMap); rank r's optimizer updates slice r of every unit and keeps AdamW state for
// those slices only.
//   Stage 1: gradients are all-reduced whole; after the update each unit's slices are
//            all-gathered into every rank's whole parameter buffer.
//   Stage 2: as the backward finishes a unit, its gradient is reduce-scattered: a rank keeps the
//            summed gradient of its slices only (ShardedParameters<Comm, false>). Parameters are
//            all-gathered after the update as in stage 1.
//   Stage 3: parameters are sharded too: a rank keeps only its master slices, and the model
//            all-gathers each unit just before the forward uses it and again before the backward,
//            into two reused gather buffers (ShardedParameters<Comm, true>; FSDP's scheme).
//            Nothing is gathered after the update.
// Per-rank bytes of model state (P parameters, W ranks, U the largest unit; fp32: m = g = 4,
// AdamW o = 8), checked against the buffers actually allocated (tests/mpi/zero_memory.cpp):
//   Stage 1: P·m + P·g + P/W·o
//   Stage 2: P·m + (P/W + U)·g + P/W·o
//   Stage 3: (P/W + 2U)·m + (P/W + U)·g + P/W·o
// (core/accounting.hpp's expected_state_bytes; docs/parallelism.md.)
//
// Checkpoints: gather_to_root brings the sharded state (and, at stage 3, the parameters) to rank
// 0, which writes the same file as Single; resume gives each rank its slices of it, so a
// checkpoint resumes at any world size and under any policy.
//
// Two kinds of buffers, one policy:
//   host buffers over Mpi (the CPU backend): sums, then divides by W on the host;
//   device buffers over Nccl (the CUDA backend; include slm/parallel/nccl/shards.cuh): the loss
//     gradient is pre-divided by W (backward_scale), so every sum over ranks is already the mean;
//     the collectives are queued on the backend's stream and timed as communication. Stage 1
//     all-reduces in buckets (buckets.hpp); stages 1 and 2 all-gather the fp32 masters after the
//     update and refresh the bf16 working copy from them; stage 3 gathers bf16 units converted
//     from the master shard (ShardMoves<Nccl>, nccl/shards.cuh).
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/model/parameter_units.hpp"
#include "slm/model/whole_parameters.hpp"
#include "slm/optim/update_plan.hpp"
#include "slm/parallel/buckets.hpp"
#include "slm/parallel/shard_map.hpp"
#include "slm/parallel/shard_moves.hpp"
#include "slm/parallel/sharded_parameters.hpp"
#include "slm/parallel/transport/communicator.hpp"

namespace slm::parallel {

template <int Stage, AnyCommunicator Comm>
class Zero {
    static_assert(Stage >= 1 && Stage <= 3, "ZeRO has stages 1, 2 and 3");

public:
    static constexpr std::string_view name =
        Stage == 1 ? "zero1" : Stage == 2 ? "zero2" : "zero3";
    static constexpr int stage = Stage;
    // Where the model keeps its parameters and gradients under this stage.
    using Parameters = std::conditional_t<Stage == 1, model::WholeParameters,
                                          ShardedParameters<Comm, Stage == 3>>;

    explicit Zero(Comm comm = {}, int64_t bucket_bytes = default_bucket_bytes)
        : comm_(std::move(comm)), bucket_bytes_(bucket_bytes) {}

    int rank() const { return comm_.rank(); }
    int world_size() const { return comm_.world_size(); }
    const Comm& communicator() const { return comm_; }
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

    // Cuts the model's units across the ranks and returns the storage the model is built with.
    // The trainer calls it once, before anything else needs the cut.
    Parameters model_parameters(const ModelConfig& config) {
        const ParameterLayout layout(config);
        map_.emplace(model::ParameterUnits(config, layout).all(), rank(), world_size());
        if constexpr (Stage == 1) return {};
        else return {&comm_, *map_};
    }
    const ShardMap& shard_map() const {
        require(map_.has_value(), "Zero: model_parameters() has not cut the model yet");
        return *map_;
    }

    // This rank's slice of every unit; parameters and gradients at their flat offsets when held
    // whole, at their held offsets when sharded; the optimizer state always packed.
    optim::UpdatePlan update_plan() const {
        const ShardMap& map = shard_map();
        optim::UpdatePlan plan{{}, map.held()};
        for (int64_t s = 0; s < static_cast<int64_t>(map.segments().size()); ++s) {
            const int64_t flat = map.mine_begin(s), held = map.segment(s).held_at;
            if (map.mine_count(s) == 0) continue;
            plan.ranges.push_back({flat, map.mine_count(s), Stage == 3 ? held : flat,
                                   Stage == 1 ? flat : held, held});
        }
        return plan;
    }

    // After backward: stage 1 sums the whole gradient over ranks; stages 2 and 3 already hold
    // the sum of their slices (reduce-scattered unit by unit). Host: then divide by the world
    // size (gradients of each rank's mean loss → the mean over ranks, the global batch's mean
    // loss). Device: the gradients were pre-divided, the sum is the mean.
    // grads: what the model holds (n elements: whole, or this rank's shard).
    template <class Backend, class Grad>
    void reduce_gradients(Backend& backend, Grad* grads, int64_t n) {
        if constexpr (Backend::host_memory) {
            static_assert(Communicator<Comm>, "Zero: host gradients need a host communicator (Mpi)");
            if constexpr (Stage == 1) {
                const auto timed = backend.op_scope(Op::communication);
                comm_.all_reduce_sum(grads, n);
            }
            const Grad inv = Grad(1) / static_cast<Grad>(world_size());
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; ++i) grads[i] *= inv;
        } else {
            static_assert(StreamCommunicator<Comm>,
                          "Zero: device gradients need a stream communicator (Nccl)");
            if constexpr (Stage == 1) all_reduce_in_buckets(comm_, backend, grads, n, bucket_bytes_);
        }
    }

    // Σ g² over the whole reduced gradient: stage 1 holds it all; stages 2 and 3 add the ranks'
    // shards (their padding is zero).
    template <class Backend, class Grad>
    double gradient_square_sum(Backend& b, Grad* grads, int64_t n) {
        if constexpr (Stage == 1) return b.sum_of_squares(grads, n);
        else return sum_across_ranks(b.sum_of_squares(grads, n));
    }

    // After the update: stages 1 and 2 hold the parameters whole, of which this rank updated its
    // slices; all-gather them unit by unit (in place). Stage 3 gathers before use instead.
    // working: the bf16 copy the GEMMs read (null without one), rebuilt from the gathered
    // masters: gathering fp32 keeps every rank's masters whole (checkpoints read them).
    template <class Backend, class Master, class Act>
    void gather_parameters(Backend& backend, Master* params, Act* working, int64_t n) {
        if constexpr (Stage < 3) {
            const ShardMap& map = shard_map();
            require(n == map.segments().back().end, "Zero: gather_parameters needs the whole buffer");
            if constexpr (Backend::host_memory) {
                const auto timed = backend.op_scope(Op::communication);
                for (const auto& g : map.segments()) comm_.all_gather(params + g.begin, g.size(), g.slice);
            } else {
                {
                    const auto timed = backend.op_scope(Op::communication);
                    // A unit is rarely a multiple of W·64 elements: the last slice is short, and
                    // padding it in place would overwrite the next unit (Nccl then broadcasts
                    // each slice from its owner, in one group).
                    for (const auto& g : map.segments())
                        comm_.all_gather(params + g.begin, g.size(), g.slice, backend.stream());
                }
                if (working) backend.convert(params, working, n);
            }
        }
    }

    // Collective: a whole flat buffer on rank 0 (`whole`; other ranks pass nullptr) from every
    // rank's held buffer cut as shard_map() says — the optimizer state, or stage 3's parameters.
    template <class T>
    void gather_to_root(const T* held, T* whole) const {
        ShardMoves<Comm>::gather_to_root(comm_, shard_map(), held, whole);
    }

    // The ParallelPolicy concept asks for one contiguous slice per rank; ZeRO here slices every
    // unit instead (update_plan()). Declared so the concept holds; calling them does not compile.
    int64_t shard_begin(int64_t) const { static_assert(Stage < 0, "Zero: use update_plan()"); return 0; }
    int64_t shard_end(int64_t) const { static_assert(Stage < 0, "Zero: use update_plan()"); return 0; }

private:
    Comm comm_;
    int64_t bucket_bytes_;
    std::optional<ShardMap> map_;
};

}  // namespace slm::parallel
