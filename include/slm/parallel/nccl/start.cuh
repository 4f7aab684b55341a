#pragma once
// Start-up of one process of a multi-GPU run, after from_environment(): the start-up config
// check, then the NCCL communicator, both over the same channel —
//   mpirun (and srun without MASTER_ADDR, which must then run MPI: srun --mpi=pmix): Mpi;
//   torchrun-style environment, or srun with MASTER_ADDR/MASTER_PORT: the TCP Rendezvous.
// Every rank either returns a working communicator or throws the same start-up error.
// Including this header needs MPI at link time (MPI::MPI_CXX); nccl.cuh alone does not.
#include <chrono>
#include <string>

#include "slm/core/error.hpp"
#include "slm/parallel/nccl/communicator.cuh"
#include "slm/parallel/transport/config_check.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/parallel/transport/mpi.hpp"
#include "slm/parallel/transport/rendezvous.hpp"

namespace slm::parallel {

struct StartTimeouts {
    std::chrono::milliseconds rendezvous = rendezvous_timeout();
    std::chrono::milliseconds collective = collective_timeout();
};

// Whether start-up data goes over MPI (true) or the TCP rendezvous (false) for this launch.
inline bool starts_over_mpi(const LaunchInfo& info) {
    return info.launcher == Launcher::openmpi ||
           (info.launcher == Launcher::slurm && info.master_addr.empty());
}

inline Nccl start_nccl(const LaunchInfo& info, const ConfigSummary& config,
                       StartTimeouts timeouts = {}) {
    if (info.alone()) return Nccl(info, timeouts.collective);
    if (starts_over_mpi(info)) {
        Mpi mpi(timeouts.collective);
        require(mpi.world_size() == info.world_size,
                std::string(launcher_name(info.launcher)) + " started " +
                    std::to_string(info.world_size) + " processes but MPI sees " +
                    std::to_string(mpi.world_size()) +
                    ": under srun add --mpi=pmix, or export MASTER_ADDR and MASTER_PORT to start "
                    "over the TCP rendezvous instead");
        check_same_config(mpi, config);
        return Nccl(info, mpi, timeouts.collective);
    }
    Rendezvous rendezvous(info, timeouts.rendezvous);
    check_same_config(rendezvous, config);
    return Nccl(info, rendezvous, timeouts.collective);
}

}  // namespace slm::parallel
