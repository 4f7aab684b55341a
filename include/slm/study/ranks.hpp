#pragma once
// The sweep's ranks: how the W processes of a data-parallel sweep agree between points. Rank 0
// alone reads and writes the output file and prints; it decides what happens next (measure this
// point, skip it, stop at the time limit, or fail) and broadcasts that decision, so every rank
// runs the same points in the same order. After a point each rank's numbers (step times, memory)
// are gathered to all.
//
// The channel is the one the ranks started over: MPI under mpirun (or srun --mpi=pmix), the TCP
// rendezvous for GPU ranks started torchrun-style (or by --nproc). It carries a few bytes per
// point; the training traffic goes over the policy's communicator (Mpi on the CPU, Nccl on GPUs).
// Ranks is itself a BlobExchange, so GPU ranks bootstrap each point's NCCL communicator over it.
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/parallel/transport/communicator.hpp"
#include "slm/parallel/transport/launch.hpp"

namespace slm::study {

// What the other ranks throw when rank 0 failed: rank 0 prints the reason, they exit quietly.
struct RankZeroFailed : slm::Error {
    using slm::Error::Error;
};

class Ranks {
public:
    // One process: no exchange at all.
    Ranks() = default;

    // Over a started BlobExchange (Mpi, Rendezvous), shared by the copies of this object.
    template <class Exchange>
        requires slm::parallel::BlobExchange<Exchange>
    Ranks(std::shared_ptr<Exchange> exchange, slm::parallel::LaunchInfo launch)
        : launch_(std::move(launch)), rank_(exchange->rank()), world_(exchange->world_size()) {
        broadcast_ = [exchange](const std::string& blob) { return exchange->broadcast_blob(blob); };
        gather_ = [exchange](const std::string& blob) { return exchange->all_gather_blobs(blob); };
    }

    int rank() const { return rank_; }
    int world_size() const { return world_; }
    bool lead() const { return rank_ == 0; }
    const slm::parallel::LaunchInfo& launch() const { return launch_; }

    // BlobExchange: rank 0's blob on every rank; every rank's blob, by rank, on every rank.
    std::string broadcast_blob(const std::string& blob) { return broadcast_ ? broadcast_(blob) : blob; }
    std::vector<std::string> all_gather_blobs(const std::string& blob) {
        return gather_ ? gather_(blob) : std::vector<std::string>{blob};
    }

    // Rank 0 runs `decide` and every rank returns its result. When it throws on rank 0, rank 0
    // rethrows it and the others throw RankZeroFailed, so no rank waits for a decision that
    // never comes.
    template <class Decide>
    std::string decided_by_rank0(Decide&& decide) {
        if (!lead()) {
            const std::string d = broadcast_blob("");
            if (!d.empty() && d[0] == '!') throw RankZeroFailed("rank 0 stopped: " + d.substr(1));
            return d.empty() ? d : d.substr(1);
        }
        std::string d;
        try {
            d = decide();
        } catch (const std::exception& e) {
            broadcast_blob(std::string("!") + e.what());
            throw;
        }
        broadcast_blob("=" + d);
        return d;
    }

private:
    slm::parallel::LaunchInfo launch_;
    int rank_ = 0, world_ = 1;
    std::function<std::string(const std::string&)> broadcast_;
    std::function<std::vector<std::string>(const std::string&)> gather_;
};

static_assert(slm::parallel::BlobExchange<Ranks>);

}  // namespace slm::study
