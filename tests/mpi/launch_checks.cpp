// Start-up under a real mpirun (ctest runs it with -np 2): from_environment() reads OpenMPI's
// variables and agrees with MPI; blobs go over Mpi; the start-up config check passes for equal
// configs and, when rank 1 is given seq 128 against rank 0's 256, fails on every rank naming
// rank, field and values — over Mpi and over the TCP rendezvous (rank 0 picks a free port on
// 127.0.0.1 and sends it over MPI). Exit status 0 on every rank when all holds.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/error_text.hpp"
#include "cpu/parallel/free_port.hpp"
#include "slm/core/presets.hpp"
#include "slm/parallel/transport/config_check.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/parallel/transport/mpi.hpp"
#include "slm/parallel/transport/rendezvous.hpp"
#include "slm/train/run_summary.hpp"

namespace {

using slm::test::contains;
using slm::test::error_of;

slm::parallel::ConfigSummary config(int64_t seq) {
    slm::RunConfig run;
    run.seq = seq;
    return slm::run_summary(slm::presets::tiny(), run, "2 shard(s), 800 bytes");
}

// Equal configs pass; rank 1's seq 128 against rank 0's 256 fails on every rank.
template <class Exchange>
void check_configs(Exchange& exchange, int rank, const std::string& over,
                   const std::function<void(bool, const std::string&)>& check) {
    const std::string same = error_of([&] { slm::parallel::check_same_config(exchange, config(256)); });
    check(same.empty(), over + ": equal configs pass" + (same.empty() ? "" : " (got: " + same + ")"));
    const std::string differ = error_of(
        [&] { slm::parallel::check_same_config(exchange, config(rank == 1 ? 128 : 256)); });
    check(contains(differ, "rank 1: seq 128 vs rank 0: 256"),
          over + ": a different seq on rank 1 is named on every rank: " + differ);
}

}  // namespace

int main() {
    slm::parallel::Mpi comm;
    const int rank = comm.rank(), world = comm.world_size();
    int failures = 0;
    auto check = [&](bool ok, const std::string& what) {
        std::printf("rank %d: %s: %s\n", rank, ok ? "ok" : "FAILED", what.c_str());
        std::fflush(stdout);
        failures += !ok;
    };
    try {
        check(world >= 2, "at least 2 ranks (mpirun -np 2)");
        const auto info = slm::parallel::from_environment();
        check(info.launcher == slm::parallel::Launcher::openmpi && info.rank == rank &&
                  info.world_size == world && info.local_rank == rank,
              "from_environment() reads mpirun's rank " + std::to_string(info.rank) + " of " +
                  std::to_string(info.world_size) + ", local rank " +
                  std::to_string(info.local_rank));

        const std::string id = std::string("nccl\0id", 7) + std::string(121, '\x01');
        check(comm.broadcast_blob(rank == 0 ? id : "") == id, "Mpi broadcasts rank 0's blob");
        const auto blobs = comm.all_gather_blobs(std::string(static_cast<size_t>(rank) + 1, 'a' + char(rank)));
        bool gathered = static_cast<int>(blobs.size()) == world;
        for (int r = 0; gathered && r < world; ++r)
            gathered = blobs[static_cast<size_t>(r)] == std::string(static_cast<size_t>(r) + 1, 'a' + char(r));
        check(gathered, "Mpi all-gathers one blob per rank");
        comm.barrier();

        check_configs(comm, rank, "over Mpi", check);

        int64_t port = rank == 0 ? slm::test::free_local_port() : 0;
        comm.broadcast(&port, 1, 0);
        slm::parallel::Rendezvous rendezvous({"127.0.0.1", static_cast<int>(port)}, rank, world,
                                             std::chrono::seconds(30));
        check_configs(rendezvous, rank, "over the TCP rendezvous", check);
    } catch (const slm::Error& e) {
        std::printf("rank %d: FAILED with error: %s\n", rank, e.what());
        failures += 1;
    }
    return failures == 0 ? 0 : 1;
}
