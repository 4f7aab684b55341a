#pragma once
// Starting the sweep's ranks: the channel they agree over (ranks.hpp), chosen like train_llama's
// (examples/parallel_choice.hpp), and the start-up check that every rank got the same flags.
//   CPU ranks: MPI (mpirun, srun --mpi=pmix, or --nproc, which runs mpirun).
//   GPU ranks: MPI under mpirun; the TCP rendezvous when started torchrun-style or by --nproc.
#include <memory>
#include <string>

#include "../parallel_choice.hpp"
#include "slm/parallel/transport/config_check.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/parallel/transport/rendezvous.hpp"
#include "slm/study/ranks.hpp"

namespace sweep {
using namespace slm::study;

inline Ranks start_ranks(const slm::parallel::LaunchInfo& launch, bool on_gpu,
                         const slm::parallel::ConfigSummary& config) {
    using slm::parallel::Launcher;
    if (launch.alone()) return Ranks();
    const bool over_mpi = launch.launcher == Launcher::openmpi ||
                          (launch.launcher == Launcher::slurm && launch.master_addr.empty());
    if (!on_gpu || over_mpi) {
#if SLM_EXAMPLES_HAVE_MPI
        if (!on_gpu)  // checks the launcher, MPI's world size and the config
            return Ranks(std::make_shared<slm::parallel::Mpi>(slm::cli::start_cpu_ranks(launch, config)),
                         launch);
        auto mpi = std::make_shared<slm::parallel::Mpi>();
        slm::require(mpi->world_size() == launch.world_size,
                     std::string(slm::parallel::launcher_name(launch.launcher)) + " started " +
                         std::to_string(launch.world_size) + " processes but MPI sees " +
                         std::to_string(mpi->world_size()) +
                         ": under srun add --mpi=pmix, or export MASTER_ADDR and MASTER_PORT");
        slm::parallel::check_same_config(*mpi, config);
        return Ranks(mpi, launch);
#else
        slm::fail(std::string("sweep --parallel over ranks started by ") +
                  std::string(slm::parallel::launcher_name(launch.launcher)) +
                  " needs MPI, and this sweep was built without it: " + slm::parallel::no_mpi_fix +
                  (on_gpu ? "; or start the GPU ranks with sweep --nproc N (TCP rendezvous)" : ""));
#endif
    }
    slm::require(!launch.master_addr.empty(),
                 "GPU ranks started without mpirun meet over the TCP rendezvous, which needs "
                 "MASTER_ADDR and MASTER_PORT: export them (the same on every rank), or use "
                 "torchrun, mpirun or sweep --nproc N");
    auto rendezvous = std::make_shared<slm::parallel::Rendezvous>(launch);
    slm::parallel::check_same_config(*rendezvous, config);
    return Ranks(rendezvous, launch);
}

}  // namespace sweep
