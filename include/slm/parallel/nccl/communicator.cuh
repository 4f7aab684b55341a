#pragma once
// parallel::Nccl: the StreamCommunicator for device buffers, one process per GPU and one NCCL
// communicator per process. Operations are queued on the caller's stream, in place, with the
// buffer contracts of communicator.hpp; grouped() sends several buffers in one NCCL group.
//
// Creation: rank 0 makes the NCCL unique id and a BlobExchange hands it to every rank — Mpi
// when mpirun started the job, the TCP Rendezvous otherwise (nccl_start.cuh picks). At world
// size 1 no exchange is needed.
//
// A dead peer must end the run, not hang it. The communicator is non-blocking (NCCL's
// `blocking = 0` config), so no NCCL call can block forever inside NCCL; and wait(stream) — which
// callers use instead of cudaStreamSynchronize on a stream that carries NCCL work — polls the
// stream and ncclCommGetAsyncError. An error NCCL reports, or a wait past the timeout
// (SLM_COMM_TIMEOUT_S, default 600 s), aborts the communicator (ncclCommAbort also stops the
// kernels waiting on the peer) and throws slm::Error naming rank, GPU and what happened.
//
// Host scalars (all_reduce_sum_host: the loss, a squared gradient norm) go over the
// communicator's own side stream, made to wait for the stream of the last collective issued, so
// the scalar never overtakes gradient traffic still queued on the caller's stream.
#include <optional>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/stream.cuh"
#include "slm/parallel/nccl/check.cuh"
#include "slm/parallel/transport/communicator.hpp"
#include "slm/parallel/transport/launch.hpp"

namespace slm::parallel {

namespace nccl_detail {

template <class T>
constexpr ncclDataType_t datatype() {
    if constexpr (std::is_same_v<T, float>) return ncclFloat32;
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) return ncclBfloat16;
    else if constexpr (std::is_same_v<T, __half>) return ncclFloat16;
    else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
    else if constexpr (std::is_same_v<T, int32_t>) return ncclInt32;
    else if constexpr (std::is_same_v<T, int64_t>) return ncclInt64;
    else static_assert(!sizeof(T), "Nccl communicates float, bf16, fp16, double, int32 and int64");
}

// The BlobExchange of a job of one: nothing to exchange.
struct Alone {
    int rank() const { return 0; }
    int world_size() const { return 1; }
    std::string broadcast_blob(const std::string& b) const { return b; }
    std::vector<std::string> all_gather_blobs(const std::string& b) const { return {b}; }
};

}  // namespace nccl_detail

class Nccl {
public:
    using Stream = cudaStream_t;

    // A job of one process (world size 1): no exchange needed.
    explicit Nccl(const LaunchInfo& info, std::chrono::milliseconds timeout = collective_timeout())
        : Nccl(info, alone(info), timeout) {}

    // Uses GPU info.local_rank; `bootstrap` carries rank 0's unique id to the others.
    template <class Exchange>
        requires BlobExchange<Exchange>
    Nccl(const LaunchInfo& info, Exchange&& bootstrap,
         std::chrono::milliseconds timeout = collective_timeout())
        : rank_(info.rank), world_(info.world_size), timeout_(timeout) {
        require(bootstrap.rank() == info.rank && bootstrap.world_size() == info.world_size,
                "Nccl: the bootstrap sees rank " + std::to_string(bootstrap.rank()) + " of " +
                    std::to_string(bootstrap.world_size()) + " but the launcher said rank " +
                    std::to_string(info.rank) + " of " + std::to_string(info.world_size) +
                    " (srun: add --mpi=pmix, or export MASTER_ADDR/MASTER_PORT to use the TCP "
                    "rendezvous)");
        device_ = select_device(info.local_rank);
        ncclUniqueId id{};
        std::string blob;
        if (rank_ == 0) {
            settle(ncclGetUniqueId(&id), "ncclGetUniqueId");
            blob.assign(id.internal, sizeof id.internal);
        }
        blob = bootstrap.broadcast_blob(blob);
        require(blob.size() == sizeof id.internal,
                "Nccl: rank 0's unique id arrived with " + std::to_string(blob.size()) +
                    " bytes, not " + std::to_string(sizeof id.internal) +
                    " (is every rank the same build?)");
        std::memcpy(id.internal, blob.data(), blob.size());
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;  // calls return at once; settle() and wait() bound every wait
        settle(ncclCommInitRankConfig(&comm_, world_, id, rank_, &config), "ncclCommInitRankConfig");
        barrier_flag_ = cuda::DeviceBuffer<float>(1);
        SLM_CUDA_CHECK(cudaMemset(barrier_flag_.data(), 0, sizeof(float)));
        // Made here, after select_device: a member initialiser would put them on GPU 0.
        scalar_ = cuda::DeviceBuffer<double>(1);
        side_.emplace();
        order_.emplace(false);
    }

    ~Nccl() { close(); }
    Nccl(Nccl&& o) noexcept
        : comm_(std::exchange(o.comm_, nullptr)), rank_(o.rank_), world_(o.world_),
          device_(o.device_), timeout_(o.timeout_), barrier_flag_(std::move(o.barrier_flag_)),
          scalar_(std::move(o.scalar_)), side_(std::move(o.side_)), order_(std::move(o.order_)),
          last_stream_(std::exchange(o.last_stream_, nullptr)) {}
    Nccl& operator=(Nccl&& o) noexcept {
        if (this != &o) {
            close();
            comm_ = std::exchange(o.comm_, nullptr);
            rank_ = o.rank_, world_ = o.world_, device_ = o.device_, timeout_ = o.timeout_;
            barrier_flag_ = std::move(o.barrier_flag_);
            scalar_ = std::move(o.scalar_);
            side_ = std::move(o.side_);
            order_ = std::move(o.order_);
            last_stream_ = std::exchange(o.last_stream_, nullptr);
        }
        return *this;
    }
    Nccl(const Nccl&) = delete;
    Nccl& operator=(const Nccl&) = delete;

    int rank() const { return rank_; }
    int world_size() const { return world_; }
    int device() const { return device_; }
    std::chrono::milliseconds timeout() const { return timeout_; }

    // In place: data[i] becomes Σ over ranks. data: device (n).
    template <class T>
    void all_reduce_sum(T* data, int64_t n, cudaStream_t stream) const {
        last_stream_ = stream;
        settle(ncclAllReduce(data, data, static_cast<size_t>(n), nccl_detail::datatype<T>(),
                             ncclSum, live(), stream),
               "ncclAllReduce");
    }

    // In place: every rank receives root's data. data: device (n).
    template <class T>
    void broadcast(T* data, int64_t n, int root, cudaStream_t stream) const {
        last_stream_ = stream;
        settle(ncclBroadcast(data, data, static_cast<size_t>(n), nccl_detail::datatype<T>(), root,
                             live(), stream),
               "ncclBroadcast");
    }

    // data: device (n) as world_size() slices of `slice` (the last may be shorter); afterwards
    // this rank's slice holds the sum over ranks. Equal slices (n == slice·world) take NCCL's
    // reduce-scatter; otherwise one grouped ncclReduce per slice, rooted at its owner (correct,
    // but slower: pad the buffer to slice·world to get the fast path).
    template <class T>
    void reduce_scatter_sum(T* data, int64_t n, int64_t slice, cudaStream_t stream) const {
        check_slices(n, slice);
        last_stream_ = stream;
        if (n == slice * world_) {
            settle(ncclReduceScatter(data, data + rank_ * slice, static_cast<size_t>(slice),
                                     nccl_detail::datatype<T>(), ncclSum, live(), stream),
                   "ncclReduceScatter");
            return;
        }
        grouped([&] {
            for (int r = 0; r < world_; ++r)
                if (const int64_t count = slice_count(n, slice, r); count > 0)
                    settle(ncclReduce(data + r * slice, data + r * slice, static_cast<size_t>(count),
                                      nccl_detail::datatype<T>(), ncclSum, r, live(), stream),
                           "ncclReduce");
        });
    }

    // data: device (n) in slices as above; every rank's slice is sent to all, in place.
    template <class T>
    void all_gather(T* data, int64_t n, int64_t slice, cudaStream_t stream) const {
        check_slices(n, slice);
        last_stream_ = stream;
        if (n == slice * world_) {
            settle(ncclAllGather(data + rank_ * slice, data, static_cast<size_t>(slice),
                                 nccl_detail::datatype<T>(), live(), stream),
                   "ncclAllGather");
            return;
        }
        grouped([&] {
            for (int r = 0; r < world_; ++r)
                if (const int64_t count = slice_count(n, slice, r); count > 0)
                    broadcast(data + r * slice, count, r, stream);
        });
    }

    // Runs body (which issues several operations, e.g. one all-reduce per gradient bucket) as
    // one NCCL group: NCCL launches them together instead of one kernel after another.
    template <class F>
    void grouped(F&& body) const {
        settle(ncclGroupStart(), "ncclGroupStart");
        try {
            body();
        } catch (...) {
            (void)ncclGroupEnd();
            throw;
        }
        settle(ncclGroupEnd(), "ncclGroupEnd");
    }

    // Returns once every rank has reached it and the stream's work before it is done.
    void barrier(cudaStream_t stream) const {
        all_reduce_sum(barrier_flag_.data(), 1, stream);
        wait(stream);
    }

    // Σ over ranks of a host value, blocking (within the timeout). Ordered after every collective
    // issued before it, on whatever stream: those may still be queued behind the caller's kernels.
    double all_reduce_sum_host(double x) const {
        const cudaStream_t own = side_->get();
        if (last_stream_ && last_stream_ != own) {
            order_->record(last_stream_);
            SLM_CUDA_CHECK(cudaStreamWaitEvent(own, order_->get(), 0));
        }
        SLM_CUDA_CHECK(cudaMemcpyAsync(scalar_.data(), &x, sizeof x, cudaMemcpyHostToDevice, own));
        all_reduce_sum(scalar_.data(), 1, own);
        wait(own);  // bounded: a dead peer throws here instead of hanging in the copy below
        SLM_CUDA_CHECK(cudaMemcpy(&x, scalar_.data(), sizeof x, cudaMemcpyDeviceToHost));
        return x;
    }

    // Blocks until the stream's queued work is done; throws (after aborting the communicator)
    // when NCCL reports an error or the timeout passes first.
    void wait(cudaStream_t stream) const {
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            const cudaError_t e = cudaStreamQuery(stream);
            if (e == cudaSuccess) return;
            if (e != cudaErrorNotReady) SLM_CUDA_CHECK(e);
            (void)cudaGetLastError();  // "not ready" is an answer, not an error
            check_async("waiting for the stream");
            if (std::chrono::steady_clock::now() - start > timeout_) abort_and_throw_timeout("the stream's collectives");
            std::this_thread::yield();
        }
    }

private:
    static nccl_detail::Alone alone(const LaunchInfo& info) {
        require(info.world_size == 1,
                "Nccl(info) without a bootstrap is for a job of one; world size " +
                    std::to_string(info.world_size) +
                    " needs start_nccl(info, ...) from slm/parallel/nccl/start.cuh");
        return {};
    }

    static int select_device(int local_rank) {
        int count = 0;
        SLM_CUDA_CHECK(cudaGetDeviceCount(&count));
        require(local_rank < count,
                "Nccl: this process has local rank " + std::to_string(local_rank) + " but " +
                    std::to_string(count) +
                    " GPU(s) are visible: start at most one rank per GPU on each node (check the "
                    "launcher's processes per node and CUDA_VISIBLE_DEVICES)");
        SLM_CUDA_CHECK(cudaSetDevice(local_rank));
        return local_rank;
    }

    ncclComm_t live() const {
        require(comm_ != nullptr, "Nccl: the communicator was aborted after an earlier failure "
                                  "(see that error); the run cannot continue");
        return comm_;
    }

    void check_slices(int64_t n, int64_t slice) const {
        require(slice >= 0 && slice * world_ >= n,
                "Nccl: " + std::to_string(n) + " elements do not fit " + std::to_string(world_) +
                    " slices of " + std::to_string(slice));
    }
    static int64_t slice_count(int64_t n, int64_t slice, int r) {
        return std::clamp<int64_t>(n - static_cast<int64_t>(r) * slice, 0, slice);
    }

    // A call's result: ncclInProgress (non-blocking communicator) is polled until it settles,
    // within the timeout; an error aborts the communicator and throws.
    void settle(ncclResult_t r, const char* call) const {
        const auto start = std::chrono::steady_clock::now();
        while (r == ncclInProgress) {
            if (std::chrono::steady_clock::now() - start > timeout_) abort_and_throw_timeout(call);
            std::this_thread::yield();
            if (comm_) ncclCommGetAsyncError(comm_, &r);
        }
        if (r != ncclSuccess) abort_and_throw(r, call);
    }

    void check_async(const char* during) const {
        ncclResult_t r = ncclSuccess;
        if (comm_) ncclCommGetAsyncError(comm_, &r);
        if (r != ncclSuccess && r != ncclInProgress) abort_and_throw(r, during);
    }

    [[noreturn]] void abort_and_throw(ncclResult_t r, const std::string& call) const {
        const std::string text = nccl_detail::describe(r, call, rank_, device_, comm_);
        abort();
        fail(text + "; the communicator was aborted");
    }

    [[noreturn]] void abort_and_throw_timeout(const std::string& what) const {
        abort();
        fail("NCCL: " + what + " on rank " + std::to_string(rank_) + " of " +
             std::to_string(world_) + " (GPU " + std::to_string(device_) +
             ") did not complete within " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()) +
             " s: another rank died, hangs, or stopped calling the same collectives (look for "
             "its error in the output); the communicator was aborted. SLM_COMM_TIMEOUT_S sets "
             "this limit");
    }

    void abort() const {
        if (comm_) (void)ncclCommAbort(std::exchange(comm_, nullptr));
    }

    // A healthy communicator is finalized (flushing queued work) within the timeout, then
    // destroyed; one that does not finish in time is aborted instead. Never throws.
    void close() noexcept {
        if (!comm_) return;
        ncclResult_t r = ncclCommFinalize(comm_);
        const auto start = std::chrono::steady_clock::now();
        while (r == ncclInProgress && std::chrono::steady_clock::now() - start < timeout_) {
            std::this_thread::yield();
            ncclCommGetAsyncError(comm_, &r);
        }
        if (r == ncclSuccess) (void)ncclCommDestroy(std::exchange(comm_, nullptr));
        else abort();
    }

    // Cleared by abort() (also from const operations: a failed collective ends the communicator).
    mutable ncclComm_t comm_ = nullptr;
    int rank_ = 0, world_ = 1, device_ = 0;
    std::chrono::milliseconds timeout_;
    mutable cuda::DeviceBuffer<float> barrier_flag_;  // what barrier() all-reduces
    mutable cuda::DeviceBuffer<double> scalar_;       // what all_reduce_sum_host() sums
    std::optional<cuda::Stream> side_;                // all_reduce_sum_host()'s stream
    mutable std::optional<cuda::Event> order_;        // orders side_ after last_stream_
    mutable cudaStream_t last_stream_ = nullptr;      // where the last collective was queued
};

static_assert(StreamCommunicator<Nccl>);

}  // namespace slm::parallel
