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
#include <vector>
#include <algorithm>

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

    // data: host (n), cut into world_size() consecutive slices of `slice` elements (the last may
    // be shorter). Afterwards this rank's slice holds Σ over ranks of that slice; the rest of
    // data is left as it was.
    template <class T>
    void reduce_scatter_sum(T* data, int64_t n, int64_t slice) const {
        std::vector<int> counts = slice_counts(n, slice);
        std::vector<T> mine(static_cast<size_t>(counts[static_cast<size_t>(rank_)]));
        mpi_detail::check(MPI_Reduce_scatter(data, mine.data(), counts.data(),
                                             mpi_detail::datatype<T>(), MPI_SUM, MPI_COMM_WORLD),
                          "MPI_Reduce_scatter");
        std::copy(mine.begin(), mine.end(), data + static_cast<int64_t>(rank_) * slice);
    }

    // data: host (n) in slices as above; every rank's slice is sent to all, in place.
    template <class T>
    void all_gather(T* data, int64_t n, int64_t slice) const {
        std::vector<int> counts = slice_counts(n, slice), offsets(counts.size());
        for (size_t r = 0; r < counts.size(); ++r) offsets[r] = static_cast<int>(r * slice);
        mpi_detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(),
                                         offsets.data(), mpi_detail::datatype<T>(), MPI_COMM_WORLD),
                          "MPI_Allgatherv");
    }

    void barrier() const { mpi_detail::check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

private:
    std::vector<int> slice_counts(int64_t n, int64_t slice) const {
        require(n < (int64_t{1} << 31) && slice * world_ >= n,
                "Mpi: " + std::to_string(n) + " elements do not fit " + std::to_string(world_) +
                    " int-sized slices of " + std::to_string(slice));
        std::vector<int> counts(static_cast<size_t>(world_));
        for (int r = 0; r < world_; ++r)
            counts[static_cast<size_t>(r)] = static_cast<int>(
                std::clamp<int64_t>(n - static_cast<int64_t>(r) * slice, 0, slice));
        return counts;
    }

    int rank_ = 0, world_ = 1;
};

}  // namespace slm::parallel
