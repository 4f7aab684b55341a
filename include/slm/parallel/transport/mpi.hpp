#pragma once
// parallel::Mpi: a Communicator over OpenMPI for host buffers — how the CPU backend trains
// data-parallel across processes, how CI runs every policy with real processes, and one of the
// two ways start-up data (the NCCL unique id, each rank's config) travels. Processes are started
// by mpirun (or srun); MPI is initialised on first use and finalised at exit.
//
// Every MPI call is checked: errors return codes (MPI_ERRORS_RETURN), which become slm::Error.
// A dead or stuck peer ends the run instead of hanging it: collectives are issued non-blocking
// and polled, and one that has not finished after the timeout (SLM_COMM_TIMEOUT_S, default
// 600 s) throws slm::Error naming the call and this rank. After such a failure the job is
// broken, and MPI_Finalize could wait forever for the dead peer, so the exit handler calls
// MPI_Abort instead: mpirun then stops every rank and exits non-zero. (When a rank is killed,
// mpirun usually notices first and ends the job itself, printing which rank died and how.)
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/parallel/transport/communicator.hpp"
#include "slm/parallel/transport/launch.hpp"

namespace slm::parallel {

namespace mpi_detail {

// Set once an MPI call failed or timed out: MPI_Finalize is then unsafe (see the top).
inline bool& job_broken() {
    static bool broken = false;
    return broken;
}

inline void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    job_broken() = true;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    fail(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(length)) +
         " (is every rank still alive? see the other ranks' output)");
}

// Initialises MPI once per process; at exit MPI_Finalize runs, or MPI_Abort after a failure.
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
        if (finalized) return;
        if (job_broken()) {
            std::fflush(stdout);
            std::fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Finalize();
    });
}

template <class T>
MPI_Datatype datatype() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, int64_t>) return MPI_INT64_T;
    else if constexpr (std::is_same_v<T, int32_t>) return MPI_INT32_T;
    else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
    else static_assert(!sizeof(T), "Mpi communicates float, double, int64_t, int32_t and char");
}

// MPI counts are int: larger buffers go in pieces of this many elements.
inline constexpr int64_t max_count = int64_t{1} << 30;

}  // namespace mpi_detail

class Mpi {
public:
    // Not explicit: policies default-construct their communicator as `Communicator comm = {}`.
    Mpi() : Mpi(collective_timeout()) {}
    explicit Mpi(std::chrono::milliseconds timeout) : timeout_(timeout) {
        mpi_detail::ensure_initialized();
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &world_);
    }

    int rank() const { return rank_; }
    int world_size() const { return world_; }
    std::chrono::milliseconds timeout() const { return timeout_; }

    // In place: data[i] becomes Σ over ranks. data: host (n).
    template <class T>
    void all_reduce_sum(T* data, int64_t n) const {
        for (int64_t done = 0; done < n;) {
            const int count = static_cast<int>(std::min(n - done, mpi_detail::max_count));
            MPI_Request request;
            mpi_detail::check(MPI_Iallreduce(MPI_IN_PLACE, data + done, count,
                                             mpi_detail::datatype<T>(), MPI_SUM, MPI_COMM_WORLD,
                                             &request),
                              "MPI_Iallreduce");
            wait(request, "MPI_Iallreduce");
            done += count;
        }
    }

    // In place: every rank receives root's data. data: host (n).
    template <class T>
    void broadcast(T* data, int64_t n, int root = 0) const {
        for (int64_t done = 0; done < n;) {
            const int count = static_cast<int>(std::min(n - done, mpi_detail::max_count));
            MPI_Request request;
            mpi_detail::check(MPI_Ibcast(data + done, count, mpi_detail::datatype<T>(), root,
                                         MPI_COMM_WORLD, &request),
                              "MPI_Ibcast");
            wait(request, "MPI_Ibcast");
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
        MPI_Request request;
        mpi_detail::check(MPI_Ireduce_scatter(data, mine.data(), counts.data(),
                                              mpi_detail::datatype<T>(), MPI_SUM, MPI_COMM_WORLD,
                                              &request),
                          "MPI_Ireduce_scatter");
        wait(request, "MPI_Ireduce_scatter");
        std::copy(mine.begin(), mine.end(), data + static_cast<int64_t>(rank_) * slice);
    }

    // data: host (n) in slices as above; every rank's slice is sent to all, in place.
    template <class T>
    void all_gather(T* data, int64_t n, int64_t slice) const {
        std::vector<int> counts = slice_counts(n, slice), offsets(counts.size());
        for (size_t r = 0; r < counts.size(); ++r) offsets[r] = static_cast<int>(r * slice);
        MPI_Request request;
        mpi_detail::check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(),
                                          offsets.data(), mpi_detail::datatype<T>(),
                                          MPI_COMM_WORLD, &request),
                          "MPI_Iallgatherv");
        wait(request, "MPI_Iallgatherv");
    }

    void barrier() const {
        MPI_Request request;
        mpi_detail::check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
        wait(request, "MPI_Ibarrier");
    }

    // ---- start-up blobs (BlobExchange) -----------------------------------------------------
    std::string broadcast_blob(const std::string& blob) const {
        int64_t size = static_cast<int64_t>(blob.size());
        broadcast(&size, 1, 0);
        std::string out = rank_ == 0 ? blob : std::string(static_cast<size_t>(size), '\0');
        broadcast(out.data(), size, 0);
        return out;
    }

    std::vector<std::string> all_gather_blobs(const std::string& blob) const {
        std::vector<int64_t> sizes(static_cast<size_t>(world_));
        sizes[static_cast<size_t>(rank_)] = static_cast<int64_t>(blob.size());
        all_gather(sizes.data(), world_, 1);
        std::vector<int> counts(sizes.size()), offsets(sizes.size());
        int64_t total = 0;
        for (size_t r = 0; r < sizes.size(); ++r) {
            offsets[r] = static_cast<int>(total);
            counts[r] = static_cast<int>(sizes[r]);
            total += sizes[r];
        }
        require(total < mpi_detail::max_count, "Mpi::all_gather_blobs: " + std::to_string(total) +
                                                   " bytes in all is more than one call carries");
        std::string all(static_cast<size_t>(total), '\0');
        std::copy(blob.begin(), blob.end(), all.begin() + offsets[static_cast<size_t>(rank_)]);
        MPI_Request request;
        mpi_detail::check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all.data(),
                                          counts.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD,
                                          &request),
                          "MPI_Iallgatherv");
        wait(request, "MPI_Iallgatherv");
        std::vector<std::string> out(sizes.size());
        for (size_t r = 0; r < sizes.size(); ++r) out[r] = all.substr(offsets[r], counts[r]);
        return out;
    }

private:
    // Polls until the request completes, the MPI library reports an error, or the timeout
    // passes. Polling never sleeps: OpenMPI moves non-blocking collectives forward only inside
    // MPI calls, and its blocking collectives spin the same way.
    void wait(MPI_Request& request, const char* call) const {
        const auto start = std::chrono::steady_clock::now();
        for (unsigned polls = 1;; ++polls) {
            int done = 0;
            mpi_detail::check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), call);
            if (done) return;
            if (polls % 1024 == 0 && std::chrono::steady_clock::now() - start > timeout_) {
                mpi_detail::job_broken() = true;
                const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout_);
                fail(std::string(call) + " on rank " + std::to_string(rank_) + " of " +
                     std::to_string(world_) + " did not complete within " +
                     std::to_string(seconds.count()) +
                     " s: another rank died, hangs, or stopped calling the same collectives "
                     "(look for its error in the output); the job will be aborted. "
                     "SLM_COMM_TIMEOUT_S sets this limit");
            }
        }
    }

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
    std::chrono::milliseconds timeout_;
};

static_assert(Communicator<Mpi>);
static_assert(BlobExchange<Mpi>);

}  // namespace slm::parallel
