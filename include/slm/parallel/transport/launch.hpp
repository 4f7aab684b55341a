#pragma once
// Who am I in this job? One process per GPU (or per CPU rank) is started by a launcher, which
// tells each process its rank through environment variables. from_environment() reads them, in
// this order, because a launcher may run inside another's allocation (mpirun inside a SLURM job
// sees SLURM_PROCID = 0 in every process, so OpenMPI's own variables must win):
//   1. OpenMPI's mpirun:  OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//   2. SLURM's srun:      SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
//   3. torchrun style:    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   none of them:         a single process (rank 0 of 1).
// MASTER_ADDR / MASTER_PORT are where rank 0 listens for the TCP rendezvous (rendezvous.hpp);
// torchrun-style launches need them, mpirun does not (start-up data goes over MPI), and srun
// launches need them when they use the rendezvous (rendezvous_endpoint() says so). The real
// torchrun hosts its own store on MASTER_PORT (it sets TORCHELASTIC_USE_AGENT_STORE=True), so
// there the rendezvous takes MASTER_PORT + 1; SLM_RENDEZVOUS_PORT overrides the port always.
//
// Inconsistent values are refused here, with the variable and the fix in the message: a rank
// that guesses would either hang at start-up or silently train on the wrong GPU.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "slm/core/error.hpp"

namespace slm::parallel {

// What to do when a program that needs MPI for its ranks was built without it.
inline constexpr const char* no_mpi_fix =
    "install OpenMPI (Debian: apt-get install libopenmpi-dev openmpi-bin) and reconfigure with "
    "CMake so train_llama links MPI";

enum class Launcher { none, openmpi, slurm, torchrun };

inline std::string_view launcher_name(Launcher l) {
    switch (l) {
        case Launcher::openmpi: return "mpirun (OpenMPI)";
        case Launcher::slurm: return "srun (SLURM)";
        case Launcher::torchrun: return "torchrun-style environment";
        default: return "no launcher";
    }
}

struct LaunchInfo {
    Launcher launcher = Launcher::none;
    int rank = 0;
    int world_size = 1;
    int local_rank = 0;       // index among this node's processes: the GPU this process uses
    std::string master_addr;  // "" when the launcher did not give one
    int master_port = 0;      // 0 when the launcher did not give one
    int rendezvous_port = 0;  // where the TCP rendezvous listens (see the top); 0: none given

    bool is_root() const { return rank == 0; }
    bool alone() const { return world_size == 1; }
};

namespace launch_detail {

inline std::optional<std::string> read(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
}

// A whole-string decimal integer in [min, max], or an slm::Error naming the variable.
inline int parse_int(const char* name, const std::string& value, int min, int max,
                     std::string_view meaning) {
    int x = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, x);
    if (value.empty() || ec != std::errc() || ptr != end || x < min || x > max)
        fail(std::string("environment variable ") + name + "='" + value + "' is not " +
             std::string(meaning) + " (an integer from " + std::to_string(min) + " to " +
             std::to_string(max) + "); fix or unset it");
    return x;
}

struct Names {
    Launcher launcher;
    const char* rank;
    const char* world;
    const char* local_rank;
    const char* how_to_fix;  // said when the variables are incomplete
};

inline constexpr Names openmpi{Launcher::openmpi, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                               "OMPI_COMM_WORLD_LOCAL_RANK",
                               "mpirun sets all three: start every rank with mpirun, or unset "
                               "the OMPI_COMM_WORLD_* variables"};
inline constexpr Names slurm{Launcher::slurm, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                             "srun sets all three: start the ranks with srun (not plain sbatch), "
                             "or unset SLURM_PROCID"};
inline constexpr Names torchrun{Launcher::torchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK",
                                "set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT "
                                "in every process (torchrun does), or unset RANK"};

inline LaunchInfo read_ranks(const Names& n) {
    const auto rank = read(n.rank), world = read(n.world), local = read(n.local_rank);
    auto missing = [&](const char* name) {
        fail(std::string(n.rank) + " is set but " + name + " is not (" +
             std::string(launcher_name(n.launcher)) + "): " + n.how_to_fix);
    };
    if (!world) missing(n.world);
    LaunchInfo info;
    info.launcher = n.launcher;
    info.world_size = parse_int(n.world, *world, 1, 1 << 20, "a world size");
    info.rank = parse_int(n.rank, *rank, 0, 1 << 20, "a rank");
    if (info.rank >= info.world_size)
        fail(std::string(n.rank) + "=" + *rank + " is not below " + n.world + "=" + *world +
             ": ranks run from 0 to " + std::to_string(info.world_size - 1) +
             "; give every process the same " + n.world + " and a distinct rank");
    // Without it two processes of one node would silently share GPU 0.
    if (!local && info.world_size > 1) missing(n.local_rank);
    info.local_rank =
        local ? parse_int(n.local_rank, *local, 0, info.world_size - 1, "a local rank") : 0;
    return info;
}

// MASTER_ADDR / MASTER_PORT, read whenever present; `required` for torchrun-style launches.
inline void read_master(LaunchInfo& info, bool required) {
    const auto addr = read("MASTER_ADDR"), port = read("MASTER_PORT");
    if (required && info.world_size > 1 && (!addr || addr->empty()))
        fail("RANK/WORLD_SIZE are set (torchrun style, world size " +
             std::to_string(info.world_size) +
             ") but MASTER_ADDR is not: set MASTER_ADDR to rank 0's host name or IP address and "
             "MASTER_PORT to a free TCP port, the same on every rank (e.g. MASTER_ADDR=127.0.0.1 "
             "MASTER_PORT=29500 on one node)");
    if (required && info.world_size > 1 && !port)
        fail("MASTER_ADDR is set but MASTER_PORT is not: set MASTER_PORT to a free TCP port "
             "(e.g. 29500), the same on every rank");
    if (addr) info.master_addr = *addr;
    if (port) info.master_port = parse_int("MASTER_PORT", *port, 1, 65535, "a TCP port");
    const auto own = read("SLM_RENDEZVOUS_PORT");
    if (own) info.rendezvous_port = parse_int("SLM_RENDEZVOUS_PORT", *own, 1, 65535, "a TCP port");
    else if (info.master_port != 0 && read("TORCHELASTIC_USE_AGENT_STORE") == "True")
        info.rendezvous_port = info.master_port == 65535 ? 65534 : info.master_port + 1;
    else info.rendezvous_port = info.master_port;
}

}  // namespace launch_detail

// Reads the launcher's variables (see the top of this file); throws slm::Error when they are
// incomplete or contradict each other.
inline LaunchInfo from_environment() {
    using namespace launch_detail;
    LaunchInfo info;
    if (read(openmpi.rank)) {
        info = read_ranks(openmpi);
        read_master(info, false);
    } else if (read(slurm.rank)) {
        info = read_ranks(slurm);
        read_master(info, false);
    } else if (read(torchrun.rank)) {
        info = read_ranks(torchrun);
        read_master(info, true);
    } else if (read("WORLD_SIZE") || read("LOCAL_RANK")) {
        fail("WORLD_SIZE or LOCAL_RANK is set but RANK is not: " + std::string(torchrun.how_to_fix));
    }
    return info;
}

// Where rank 0 listens for the TCP rendezvous; throws with the fix when the launcher gave none.
struct Endpoint {
    std::string host;
    int port = 0;
};
inline Endpoint rendezvous_endpoint(const LaunchInfo& info) {
    if (info.master_addr.empty() || info.rendezvous_port == 0)
        fail("the TCP rendezvous needs MASTER_ADDR and MASTER_PORT (" +
             std::string(launcher_name(info.launcher)) + ", rank " + std::to_string(info.rank) +
             " of " + std::to_string(info.world_size) +
             "): export MASTER_ADDR=<rank 0's host> MASTER_PORT=<free port> before launching; "
             "under SLURM: MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n1)");
    return {info.master_addr, info.rendezvous_port};
}

// How long one collective may wait for the other ranks before the run gives up with an error (a
// dead or stuck peer must end the run, not hang it): SLM_COMM_TIMEOUT_S seconds, default 600 —
// long enough for a rank that is writing a checkpoint while the others wait.
inline std::chrono::milliseconds collective_timeout() {
    const auto v = launch_detail::read("SLM_COMM_TIMEOUT_S");
    const int seconds = v ? launch_detail::parse_int("SLM_COMM_TIMEOUT_S", *v, 1, 1 << 24,
                                                     "a timeout in seconds")
                          : 600;
    return std::chrono::seconds(seconds);
}

// How long ranks keep trying to reach rank 0 at start-up: SLM_RENDEZVOUS_TIMEOUT_S, default 60.
inline std::chrono::milliseconds rendezvous_timeout() {
    const auto v = launch_detail::read("SLM_RENDEZVOUS_TIMEOUT_S");
    const int seconds = v ? launch_detail::parse_int("SLM_RENDEZVOUS_TIMEOUT_S", *v, 1, 1 << 24,
                                                     "a timeout in seconds")
                          : 60;
    return std::chrono::seconds(seconds);
}

}  // namespace slm::parallel
