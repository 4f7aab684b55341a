// A dead or stuck peer must end the job with a message, never hang it. Started by kill_rank.sh
// under mpirun; every rank loops over small all-reduces, and the victim rank either
//   sigkill: raises SIGKILL after 20 of them (a crash, an OOM kill), or
//   hang:    stops calling collectives (a deadlock, a stuck GPU) and sleeps.
// The survivors must not finish: mpirun ends the job when a rank is killed, and a survivor whose
// collective outlives SLM_COMM_TIMEOUT_S throws, prints the error and exits non-zero (its exit
// handler aborts the job, which stops the sleeping victim). A survivor that gets through 90 s of
// all-reduces reports FAILED and exits 0, which kill_rank.sh counts as a failure.
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "slm/parallel/transport/mpi.hpp"

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    const int victim = argc > 2 ? std::atoi(argv[2]) : 1;
    if (mode != "sigkill" && mode != "hang") {
        std::fprintf(stderr, "usage: kill_rank sigkill|hang VICTIM_RANK\n");
        return 2;
    }
    try {
        slm::parallel::Mpi comm;
        const int rank = comm.rank();
        std::vector<float> data(1024);
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; std::chrono::steady_clock::now() - start < std::chrono::seconds(90); ++i) {
            if (rank == victim && i == 20) {
                std::printf("rank %d: %s after %d all-reduces (on purpose, for the test)\n", rank,
                            mode == "sigkill" ? "raising SIGKILL" : "stops calling collectives",
                            i);
                std::fflush(stdout);
                if (mode == "sigkill") std::raise(SIGKILL);
                std::this_thread::sleep_for(std::chrono::seconds(120));
                return 3;
            }
            for (auto& x : data) x = 1.0f;
            comm.all_reduce_sum(data.data(), static_cast<int64_t>(data.size()));
        }
        std::printf("rank %d: FAILED: 90 s of all-reduces went on without rank %d\n", rank, victim);
        return 0;
    } catch (const slm::Error& e) {
        std::fprintf(stderr, "kill_rank: error: %s\n", e.what());
        return 1;
    }
}
