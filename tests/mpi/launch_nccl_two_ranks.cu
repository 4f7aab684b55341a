// Nccl with 2 to 16 processes, one GPU each (ctest runs 2 on one node). Needs 2 GPUs on this
// machine; elsewhere every process prints "skipped: ..." and exits 0 (ctest skips it).
//
//   mpirun -np 2 launch_nccl_two_ranks collectives      (or any launcher: README's examples)
//     start_nccl (config check, unique id over MPI or the TCP rendezvous): all-reduce (float,
//     bf16), reduce-scatter and all-gather (equal and uneven slices), broadcast from rank 1, a
//     group of two buffers, a barrier, each against values computed on the host; under mpirun
//     with every rank on one node, then a second communicator bootstrapped over TCP on
//     127.0.0.1.
//   RANK=r WORLD_SIZE=2 LOCAL_RANK=r MASTER_ADDR=127.0.0.1 MASTER_PORT=p \
//       launch_nccl_two_ranks sigkill|hang          (launch_nccl_dead_peer.sh starts both)
//     all-reduces in a loop; after 20 of them rank 1 raises SIGKILL or stops calling them. Rank 0
//     must throw within SLM_COMM_TIMEOUT_S and exit 1; finishing 90 s of all-reduces is FAILED.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cpu/parallel/free_port.hpp"
#include "slm/core/presets.hpp"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/stream.cuh"
#include "slm/parallel/nccl/start.cuh"
#include "slm/train/run_summary.hpp"

namespace {

using bf16 = __nv_bfloat16;
using slm::parallel::Nccl;

int gpu_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return count;
}

// ±1 or ±2 times scale, never zero. Every sum the collectives form over up to 16 ranks (scales
// r + 1, partial sums up to 136, times 2) has at most 8 significant bits: exact in bf16, so any
// reduction order gives the same result and the comparison can be exact.
float known(int64_t i, int scale) {
    return static_cast<float>((i % 4 < 2 ? -1 : 1) * (1 + i % 2) * scale);
}

template <class T>
T as(float x) {
    if constexpr (std::is_same_v<T, bf16>) return __float2bfloat16_rn(x);
    else return x;
}
template <class T>
float value(T x) {
    if constexpr (std::is_same_v<T, bf16>) return __bfloat162float(x);
    else return x;
}

struct Checker {
    int rank = 0, failures = 0;
    void operator()(bool ok, const std::string& what) {
        std::printf("rank %d: %s: %s\n", rank, ok ? "ok" : "FAILED", what.c_str());
        std::fflush(stdout);
        failures += !ok;
    }
};

// Fills a device buffer from f(i), runs op on it, and compares every element of [begin, end)
// with want(i) exactly.
template <class T>
bool round_trip(const Nccl& nccl, const slm::cuda::Stream& stream, int64_t n,
                const std::function<float(int64_t)>& f, const std::function<void(T*)>& op,
                int64_t begin, int64_t end, const std::function<float(int64_t)>& want) {
    std::vector<T> host(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) host[static_cast<size_t>(i)] = as<T>(f(i));
    slm::cuda::DeviceBuffer<T> d(n);
    SLM_CUDA_CHECK(cudaMemcpy(d.data(), host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    op(d.data());
    nccl.wait(stream.get());
    SLM_CUDA_CHECK(cudaMemcpy(host.data(), d.data(), n * sizeof(T), cudaMemcpyDeviceToHost));
    for (int64_t i = begin; i < end; ++i)
        if (value(host[static_cast<size_t>(i)]) != want(i)) return false;
    return true;
}

template <class T>
void collectives(const Nccl& nccl, Checker& check, const std::string& type) {
    const int r = nccl.rank(), w = nccl.world_size();
    slm::cuda::Stream stream;
    const cudaStream_t s = stream.get();
    const int64_t n = int64_t{1000000} / w * w;  // w equal slices
    // Rank r holds known(i, r + 1): the sum over ranks is known(i, w (w + 1) / 2).
    auto mine = [r](int64_t i) { return known(i, r + 1); };
    auto sum = [w](int64_t i) { return known(i, w * (w + 1) / 2); };
    check(round_trip<T>(nccl, stream, n, mine, [&](T* d) { nccl.all_reduce_sum(d, n, s); }, 0, n, sum),
          type + " all-reduce of " + std::to_string(n) + " elements");
    for (const int64_t size : {n, n - 37}) {  // equal slices, then a shorter last slice
        const int64_t slice = n / w;
        const int64_t begin = r * slice, end = std::min(size, begin + slice);
        const std::string what = size == w * slice ? " (equal slices)" : " (uneven slices)";
        check(round_trip<T>(nccl, stream, size, mine,
                            [&](T* d) { nccl.reduce_scatter_sum(d, size, slice, s); }, begin, end, sum),
              type + " reduce-scatter" + what);
        // Rank r's slice holds known(i, r + 1); afterwards every rank holds each owner's values.
        // Other slices start as something else (scale 7), which the gather must overwrite.
        auto owned = [slice](int64_t i) { return known(i, static_cast<int>(i / slice) + 1); };
        auto before = [slice, r](int64_t i) { return i / slice == r ? known(i, r + 1) : known(i, 7); };
        check(round_trip<T>(nccl, stream, size, before,
                            [&](T* d) { nccl.all_gather(d, size, slice, s); }, 0, size, owned),
              type + " all-gather" + what);
    }
    check(round_trip<T>(nccl, stream, 4099, mine, [&](T* d) { nccl.broadcast(d, 4099, 1, s); }, 0,
                        4099, [](int64_t i) { return known(i, 2); }),
          type + " broadcast from rank 1");
}

// Under any launcher; under mpirun also a second communicator bootstrapped over TCP.
int run_collectives() {
    const auto info = slm::parallel::from_environment();
    Checker check{info.rank};
    try {
        slm::RunConfig run;
        const auto config = slm::run_summary(slm::presets::tiny(), run, "none");
        const Nccl nccl = slm::parallel::start_nccl(info, config);
        const bool mpirun = slm::parallel::starts_over_mpi(info);
        check(nccl.world_size() == info.world_size && nccl.world_size() >= 2 &&
                  nccl.world_size() <= 16 && nccl.device() == info.local_rank,
              std::string("start_nccl over ") + (mpirun ? "MPI" : "the TCP rendezvous") +
                  ": rank " + std::to_string(nccl.rank()) + " of " +
                  std::to_string(nccl.world_size()) + " on GPU " + std::to_string(nccl.device()));
        collectives<float>(nccl, check, "float");
        collectives<bf16>(nccl, check, "bf16");

        slm::cuda::Stream stream;
        slm::cuda::DeviceBuffer<float> a(1000), b(3000);
        std::vector<float> ones(3000, 1.0f), host(3000);
        SLM_CUDA_CHECK(cudaMemcpy(a.data(), ones.data(), 1000 * sizeof(float), cudaMemcpyHostToDevice));
        SLM_CUDA_CHECK(cudaMemcpy(b.data(), ones.data(), 3000 * sizeof(float), cudaMemcpyHostToDevice));
        nccl.grouped([&] {
            nccl.all_reduce_sum(a.data(), 1000, stream.get());
            nccl.all_reduce_sum(b.data(), 3000, stream.get());
        });
        nccl.barrier(stream.get());
        SLM_CUDA_CHECK(cudaMemcpy(host.data(), b.data(), 3000 * sizeof(float), cudaMemcpyDeviceToHost));
        const float w = static_cast<float>(nccl.world_size());
        check(host[0] == w && host[2999] == w, "a group of two all-reduces, then a barrier");
        if (!mpirun) return check.failures == 0 ? 0 : 1;

        // The same start-up over the TCP rendezvous (what torchrun-style launches use), when
        // every rank is on this node: rank 0 listens on 127.0.0.1.
        slm::parallel::Mpi mpi;
        char host_name[256] = {};
        ::gethostname(host_name, sizeof host_name - 1);
        const auto hosts = mpi.all_gather_blobs(host_name);
        if (std::count(hosts.begin(), hosts.end(), hosts[0]) != static_cast<long>(hosts.size()))
            return check.failures == 0 ? 0 : 1;
        int64_t port = mpi.rank() == 0 ? slm::test::free_local_port() : 0;
        mpi.broadcast(&port, 1, 0);
        auto tcp = info;
        tcp.launcher = slm::parallel::Launcher::torchrun;
        tcp.master_addr = "127.0.0.1";
        tcp.master_port = tcp.rendezvous_port = static_cast<int>(port);
        const Nccl over_tcp = slm::parallel::start_nccl(tcp, config);
        collectives<float>(over_tcp, check, "float over a TCP-bootstrapped communicator:");
    } catch (const slm::Error& e) {
        check(false, std::string("error: ") + e.what());
    }
    return check.failures == 0 ? 0 : 1;
}

int run_dead_peer(const std::string& mode) {
    try {
        const auto info = slm::parallel::from_environment();
        slm::RunConfig run;
        const Nccl nccl = slm::parallel::start_nccl(
            info, slm::run_summary(slm::presets::tiny(), run, "none"));
        slm::cuda::Stream stream;
        slm::cuda::DeviceBuffer<float> d(1 << 20);
        SLM_CUDA_CHECK(cudaMemset(d.data(), 0, (1 << 20) * sizeof(float)));
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; std::chrono::steady_clock::now() - start < std::chrono::seconds(90); ++i) {
            if (nccl.rank() == 1 && i == 20) {
                std::printf("rank 1: %s after %d all-reduces (on purpose, for the test)\n",
                            mode == "sigkill" ? "raising SIGKILL" : "stops calling collectives", i);
                std::fflush(stdout);
                if (mode == "sigkill") std::raise(SIGKILL);
                std::this_thread::sleep_for(std::chrono::seconds(120));
                return 3;
            }
            nccl.all_reduce_sum(d.data(), 1 << 20, stream.get());
            nccl.wait(stream.get());
        }
        std::printf("rank %d: FAILED: 90 s of all-reduces went on without rank 1\n", nccl.rank());
        return 0;
    } catch (const slm::Error& e) {
        std::fprintf(stderr, "launch_nccl_two_ranks: error: %s\n", e.what());
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "collectives";
    if (mode != "collectives" && mode != "sigkill" && mode != "hang") {
        std::fprintf(stderr, "usage: launch_nccl_two_ranks collectives|sigkill|hang\n");
        return 2;
    }
    if (const int gpus = gpu_count(); gpus < 2) {
        std::printf("skipped: needs 2 GPUs, %d visible\n", gpus);
        return 0;
    }
    return mode == "collectives" ? run_collectives() : run_dead_peer(mode);
}
