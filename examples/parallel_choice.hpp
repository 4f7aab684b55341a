#pragma once
// How train_llama runs data-parallel: the policy that --parallel names, over the communicator of
// the backend it trains on —
//   CPU backend: Mpi, so its ranks are started by mpirun (or srun --mpi=pmix, or --nproc, which
//     runs mpirun); the start-up config check goes over MPI too.
//   GPU backend: Nccl on GPU LOCAL_RANK, started by parallel::start_nccl (config check and the
//     NCCL id over MPI under mpirun, over the TCP rendezvous otherwise: any launcher).
// MPI is optional at build time (SLM_EXAMPLES_HAVE_MPI, set by examples/CMakeLists.txt when CMake
// finds it): without it the CPU backend trains alone only, and GPU ranks start over the TCP
// rendezvous only; asking for more says what is missing.
#include <string>
#include <utility>

#include "slm/core/error.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/transport/config_check.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/parallel/zero.hpp"
#if SLM_EXAMPLES_HAVE_MPI
#include "slm/parallel/transport/mpi.hpp"
#endif
#if defined(__CUDACC__)
#include "slm/parallel/nccl/buckets.cuh"  // Ddp<Nccl>'s overlapped buckets
#include "slm/parallel/nccl/communicator.cuh"
#include "slm/parallel/nccl/shards.cuh"   // Zero<k, Nccl>'s shards
#if SLM_EXAMPLES_HAVE_MPI
#include "slm/parallel/nccl/start.cuh"
#else
#include "slm/parallel/transport/rendezvous.hpp"
#endif
#endif

namespace slm::cli {


constexpr bool built_with_mpi() {
#if SLM_EXAMPLES_HAVE_MPI
    return true;
#else
    return false;
#endif
}

#if SLM_EXAMPLES_HAVE_MPI
// The CPU backend's ranks: MPI, checked against the launcher's count, and the start-up config
// check over it.
inline parallel::Mpi start_cpu_ranks(const parallel::LaunchInfo& launch,
                                     const parallel::ConfigSummary& config) {
    using parallel::Launcher;
    require(launch.alone() || launch.launcher == Launcher::openmpi ||
                launch.launcher == Launcher::slurm,
            "the CPU backend's ranks talk over MPI, but rank " + std::to_string(launch.rank) +
                " of " + std::to_string(launch.world_size) + " was started by a " +
                std::string(parallel::launcher_name(launch.launcher)) +
                ": start the ranks with mpirun -np " + std::to_string(launch.world_size) +
                " (or train_llama --nproc " + std::to_string(launch.world_size) +
                ", which runs mpirun), or train on GPUs (--device cuda)");
    parallel::Mpi mpi;
    require(mpi.world_size() == launch.world_size,
            std::string(parallel::launcher_name(launch.launcher)) + " started " +
                std::to_string(launch.world_size) + " processes but MPI sees " +
                std::to_string(mpi.world_size()) +
                ": under srun add --mpi=pmix; otherwise start the ranks with mpirun");
    parallel::check_same_config(mpi, config);
    return mpi;
}
#endif

// After an error on one rank the others may wait in a collective for it; under MPI, exiting
// through MPI_Finalize could then wait for them too. Marks the job broken so the exit handler
// calls MPI_Abort (mpi.hpp), which ends every rank.
inline void end_every_rank_at_exit() {
#if SLM_EXAMPLES_HAVE_MPI
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    int world = 1;
    if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world > 1) parallel::mpi_detail::job_broken() = true;
#endif
}

#if defined(__CUDACC__)
// The GPU backend's ranks: NCCL on GPU LOCAL_RANK, after the start-up config check.
inline parallel::Nccl start_gpu_ranks(const parallel::LaunchInfo& launch,
                                      const parallel::ConfigSummary& config) {
#if SLM_EXAMPLES_HAVE_MPI
    return parallel::start_nccl(launch, config);
#else
    if (launch.alone()) return parallel::Nccl(launch);
    require(!launch.master_addr.empty(),
            "this train_llama was built without MPI, so its GPU ranks start over the TCP "
            "rendezvous only, which needs MASTER_ADDR and MASTER_PORT: export them (the same on "
            "every rank), or use torchrun or --nproc; or " + std::string(parallel::no_mpi_fix));
    parallel::Rendezvous rendezvous(launch, parallel::rendezvous_timeout());
    parallel::check_same_config(rendezvous, config);
    return parallel::Nccl(launch, rendezvous);
#endif
}
#endif

}  // namespace slm::cli
