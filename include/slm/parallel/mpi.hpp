#pragma once
// parallel::Mpi: a Communicator over OpenMPI for host buffers — how the CPU backend trains
// data-parallel across processes, and how CI runs every policy with real processes. Processes
// are started by mpirun (or srun); MPI is initialised on first use and finalised at exit.
// Every MPI call is checked: errors return codes (MPI_ERRORS_RETURN), which become slm::Error.
#include <mpi.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "slm/core/error.hpp"

namespace slm::parallel {

namespace mpi_detail {
inline void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    fail(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(length)) +
         " (is every rank still alive? see the other ranks' output)");
}

// Initialises MPI once per process; MPI_Finalize runs at exit.
inline void ensure_initialized() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    });
}

template <class T>
MPI_Datatype datatype() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, int64_t>) return MPI_INT64_T;
    else static_assert(!sizeof(T), "Mpi communicates float, double and int64_t");
}
}  // namespace mpi_detail

class Mpi {
public:
    Mpi() {
        mpi_detail::ensure_initialized();
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &world_);
    }

    int rank() const { return rank_; }
    int world_size() const { return world_; }

    // In place: data[i] becomes Σ over ranks. data: host (n).
    template <class T>
    void all_reduce_sum(T* data, int64_t n) const {
        for (int64_t done = 0; done < n;) {  // MPI counts are int: large buffers go in pieces
            const int count = static_cast<int>(std::min<int64_t>(n - done, int64_t{1} << 30));
            mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, data + done, count,
                                            mpi_detail::datatype<T>(), MPI_SUM, MPI_COMM_WORLD),
                              "MPI_Allreduce");
            done += count;
        }
    }

    // In place: every rank receives root's data.
    template <class T>
    void broadcast(T* data, int64_t n, int root = 0) const {
        for (int64_t done = 0; done < n;) {
            const int count = static_cast<int>(std::min<int64_t>(n - done, int64_t{1} << 30));
            mpi_detail::check(MPI_Bcast(data + done, count, mpi_detail::datatype<T>(), root,
                                        MPI_COMM_WORLD),
                              "MPI_Bcast");
            done += count;
        }
    }

    void barrier() const { mpi_detail::check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

private:
    int rank_ = 0, world_ = 1;
};

}  // namespace slm::parallel
