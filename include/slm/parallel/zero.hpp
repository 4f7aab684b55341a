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
// This version reduces host buffers over Mpi (CPU backend); an NCCL one builds on the same hooks.
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/model/parameter_units.hpp"
#include "slm/model/whole_parameters.hpp"
#include "slm/optim/update_plan.hpp"
#include "slm/parallel/communicator.hpp"
#include "slm/parallel/shard_map.hpp"
#include "slm/parallel/sharded_parameters.hpp"

namespace slm::parallel {

template <int Stage, Communicator Comm>
class Zero {
    static_assert(Stage >= 1 && Stage <= 3, "ZeRO has stages 1, 2 and 3");

public:
    static constexpr std::string_view name =
        Stage == 1 ? "zero1" : Stage == 2 ? "zero2" : "zero3";
    static constexpr int stage = Stage;
    // Where the model keeps its parameters and gradients under this stage.
    using Parameters = std::conditional_t<Stage == 1, model::WholeParameters,
                                          ShardedParameters<Comm, Stage == 3>>;

    explicit Zero(Comm comm = {}) : comm_(std::move(comm)) {}

    int rank() const { return comm_.rank(); }
    int world_size() const { return comm_.world_size(); }
    const Comm& communicator() const { return comm_; }

    double sum_across_ranks(double x) const {
        comm_.all_reduce_sum(&x, 1);
        return x;
    }

    // Cuts the model's units across the ranks and returns the storage the model is built with.
    // The trainer calls it once, before anything else needs the cut.
    Parameters model_parameters(const ModelConfig& config) {
        const ParameterLayout layout(config);
        map_.emplace(model::ParameterUnits(config, layout).all(), rank(), world_size());
        if constexpr (Stage == 1) return {};
        else return {comm_, *map_};
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
    // the sum of their slices (reduce-scattered unit by unit). Then divide by the world size:
    // gradients of each rank's mean loss → the mean over ranks (the global batch's mean loss).
    // grads: what the model holds (n elements: whole, or this rank's shard).
    template <class Backend, class Grad>
    void reduce_gradients(Backend&, Grad* grads, int64_t n) {
        static_assert(Backend::host_memory,
                      "this Zero reduces host buffers over MPI; GPU backends need the NCCL "
                      "communicator");
        if constexpr (Stage == 1) comm_.all_reduce_sum(grads, n);
        const Grad inv = Grad(1) / static_cast<Grad>(world_size());
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) grads[i] *= inv;
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
    template <class Backend, class Master>
    void gather_parameters(Backend&, Master* params, int64_t n) {
        if constexpr (Stage < 3) {
            const ShardMap& map = shard_map();
            require(n == map.segments().back().end, "Zero: gather_parameters needs the whole buffer");
            for (const auto& g : map.segments()) comm_.all_gather(params + g.begin, g.size(), g.slice);
        }
    }

    // Collective: a whole flat buffer on rank 0 (`whole`; other ranks pass nullptr) from every
    // rank's held buffer cut as shard_map() says — the optimizer state, or stage 3's parameters.
    template <class T>
    void gather_to_root(const T* held, T* whole) const {
        gather_whole(comm_, shard_map(), held, whole);
    }

    // The ParallelPolicy concept asks for one contiguous slice per rank; ZeRO here slices every
    // unit instead (update_plan()). Declared so the concept holds; calling them does not compile.
    int64_t shard_begin(int64_t) const { static_assert(Stage < 0, "Zero: use update_plan()"); return 0; }
    int64_t shard_end(int64_t) const { static_assert(Stage < 0, "Zero: use update_plan()"); return 0; }

private:
    Comm comm_;
    std::optional<ShardMap> map_;
};

}  // namespace slm::parallel
