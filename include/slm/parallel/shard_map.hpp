#pragma once
// ShardMap: how ZeRO cuts the flat buffers across ranks. Each parameter unit (the embedding, each
// block, the final norm, the LM head) is cut into world_size equal slices — so gathering a unit
// or reduce-scattering its gradient is one equal-count collective, as NCCL requires — and rank r
// keeps slice r of every unit, packed one after another in its "held" buffers (its parameter
// shard under Zero<3>, its gradient shard under Zero<2/3>, its optimizer state under every stage).
// Slices are rounded up to 64 elements, so every held slice starts 256-byte aligned; the tail of a
// short slice is padding that stays zero.
//
// The helpers below move host buffers through a communicator that offers all_gather and
// reduce_scatter_sum over equal slices (parallel::Mpi).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/model/parameter_units.hpp"

namespace slm::parallel {

class ShardMap {
public:
    struct Segment {
        int64_t begin = 0, end = 0;  // the unit's flat range
        int64_t slice = 0;           // elements of each rank's slice (world · slice ≥ end − begin)
        int64_t held_at = 0;         // where this rank's slice starts in its held buffers
        int64_t size() const { return end - begin; }
    };

    ShardMap(const std::vector<model::ParameterUnit>& units, int rank, int world)
        : rank_(rank), world_(world) {
        require(world >= 1 && rank >= 0 && rank < world, "ShardMap: rank outside the world");
        for (const auto& u : units) {
            const int64_t per = (u.size() + world - 1) / world;
            const int64_t slice = (per + ParameterLayout::alignment - 1) /
                                  ParameterLayout::alignment * ParameterLayout::alignment;
            segments_.push_back({u.begin, u.end, slice, held_});
            held_ += slice;
        }
    }

    int rank() const { return rank_; }
    int world() const { return world_; }
    const std::vector<Segment>& segments() const { return segments_; }
    const Segment& segment(int64_t s) const { return segments_[static_cast<size_t>(s)]; }
    // Elements of each held buffer on this rank (every rank's is the same size).
    int64_t held() const { return held_; }

    // This rank's slice of segment s: flat elements [mine_begin, mine_begin + mine_count).
    int64_t mine_begin(int64_t s) const {
        const Segment& g = segment(s);
        return std::min(g.end, g.begin + rank_ * g.slice);
    }
    int64_t mine_count(int64_t s) const {
        const Segment& g = segment(s);
        return std::min(g.end, g.begin + (rank_ + 1) * g.slice) - mine_begin(s);
    }
    // Elements a buffer needs to hold any one segment whole with every rank's slice in place.
    int64_t largest_gather() const {
        int64_t most = 0;
        for (const auto& g : segments_) most = std::max(most, g.slice * world_);
        return most;
    }

private:
    int rank_, world_;
    std::vector<Segment> segments_;
    int64_t held_ = 0;
};

// Collective: every rank ends with segment s whole in `buffer` (≥ largest_gather() elements),
// flat element begin + i at buffer[i], built from each rank's held slice.
template <class Communicator, class T>
void gather_segment(const Communicator& comm, const ShardMap& map, int64_t s, const T* held,
                    T* buffer) {
    const auto& g = map.segment(s);
    std::copy_n(held + g.held_at, map.mine_count(s), buffer + (map.mine_begin(s) - g.begin));
    comm.all_gather(buffer, g.size(), g.slice);
}

// Collective: `buffer` holds each rank's own contribution to segment s (flat element begin + i at
// buffer[i]); the sum over ranks of this rank's slice is added into its held slice. The rest of
// buffer is left as the communicator leaves it.
template <class Communicator, class T>
void reduce_scatter_segment(const Communicator& comm, const ShardMap& map, int64_t s, T* buffer,
                            T* held) {
    const auto& g = map.segment(s);
    comm.reduce_scatter_sum(buffer, g.size(), g.slice);
    const T* mine = buffer + (map.mine_begin(s) - g.begin);
    T* into = held + g.held_at;
    const int64_t count = map.mine_count(s);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; ++i) into[i] += mine[i];
}

// Collective: the whole flat buffer (layout total elements) from every rank's held buffer, into
// `whole` on the ranks that pass one; ranks passing nullptr only contribute. Moves one unit at a
// time, so a rank that wants nothing needs only one unit's scratch.
template <class Communicator, class T>
void gather_whole(const Communicator& comm, const ShardMap& map, const T* held, T* whole) {
    std::vector<T> buffer(static_cast<size_t>(map.largest_gather()));
    for (int64_t s = 0; s < static_cast<int64_t>(map.segments().size()); ++s) {
        gather_segment(comm, map, s, held, buffer.data());
        if (whole) std::copy_n(buffer.data(), map.segment(s).size(), whole + map.segment(s).begin);
    }
}

// This rank's slices of a whole flat buffer into its held buffer (no communication: every rank
// has the whole, e.g. read from a checkpoint). Padding in held stays as it was (zero).
template <class T>
void take_held(const ShardMap& map, const T* whole, T* held) {
    for (int64_t s = 0; s < static_cast<int64_t>(map.segments().size()); ++s)
        std::copy_n(whole + map.mine_begin(s), map.mine_count(s), held + map.segment(s).held_at);
}

}  // namespace slm::parallel
