// include/slm/parallel/nccl/communicator.cuh at world size 1, on one GPU: every collective leaves a known
// buffer as it was (a sum over one rank, a gather of one slice), for float and bf16, on both the
// equal-slice and the uneven-slice paths and inside a group; and a wait that outlives the
// timeout aborts the communicator and throws instead of hanging. The two-rank program is
// tests/mpi/launch_nccl_two_ranks.cu.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "common/error_text.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/stream.cuh"
#include "slm/parallel/nccl/communicator.cuh"

namespace {

using namespace std::chrono_literals;
using slm::parallel::LaunchInfo;
using slm::parallel::Nccl;
using slm::test::bf16;
using slm::test::contains;
using slm::test::error_of;

// Values that are exact in bf16 and not zero: (i mod 97 − 48) / 8.
template <class T>
std::vector<T> known(int64_t n) {
    std::vector<T> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const float x = static_cast<float>(i % 97 - 48) / 8.0f;
        if constexpr (std::is_same_v<T, bf16>) v[static_cast<size_t>(i)] = __float2bfloat16_rn(x);
        else v[static_cast<size_t>(i)] = x;
    }
    return v;
}

template <class T>
slm::cuda::DeviceBuffer<T> upload(const std::vector<T>& host) {
    slm::cuda::DeviceBuffer<T> d(static_cast<int64_t>(host.size()));
    SLM_CUDA_CHECK(cudaMemcpy(d.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <class T>
std::vector<T> download(const Nccl& nccl, const slm::cuda::Stream& stream, const T* d, int64_t n) {
    nccl.wait(stream.get());
    std::vector<T> host(static_cast<size_t>(n));
    SLM_CUDA_CHECK(cudaMemcpy(host.data(), d, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
void every_collective_is_a_copy(const Nccl& nccl, const slm::cuda::Stream& stream, int64_t n) {
    const auto host = known<T>(n);
    auto d = upload(host);
    const cudaStream_t s = stream.get();
    nccl.all_reduce_sum(d.data(), n, s);
    CHECK(same_bits(download(nccl, stream, d.data(), n), host));
    nccl.broadcast(d.data(), n, 0, s);
    CHECK(same_bits(download(nccl, stream, d.data(), n), host));
    // Equal slices (n == slice · 1): NCCL's reduce-scatter and all-gather.
    nccl.reduce_scatter_sum(d.data(), n, n, s);
    CHECK(same_bits(download(nccl, stream, d.data(), n), host));
    nccl.all_gather(d.data(), n, n, s);
    CHECK(same_bits(download(nccl, stream, d.data(), n), host));
    // A padded slice (n < slice): the grouped reduce / broadcast path.
    nccl.reduce_scatter_sum(d.data(), n, n + 64, s);
    CHECK(same_bits(download(nccl, stream, d.data(), n), host));
    nccl.all_gather(d.data(), n, n + 64, s);
    CHECK(same_bits(download(nccl, stream, d.data(), n), host));
}

}  // namespace

TEST_CASE("nccl: world size 1 collectives leave a known buffer as it was (float, bf16)") {
    if (!slm::test::gpu_available()) return;
    const Nccl nccl(LaunchInfo{}, 60s);
    CHECK(nccl.rank() == 0);
    CHECK(nccl.world_size() == 1);
    slm::cuda::Stream stream;
    for (int64_t n : {1, 97, 4096, 1000003}) {
        CAPTURE(n);
        every_collective_is_a_copy<float>(nccl, stream, n);
        every_collective_is_a_copy<bf16>(nccl, stream, n);
    }
}

TEST_CASE("nccl: a group of several buffers, and a barrier") {
    if (!slm::test::gpu_available()) return;
    const Nccl nccl(LaunchInfo{}, 60s);
    slm::cuda::Stream stream;
    const auto a = known<float>(3000);
    const auto b = known<bf16>(5000);
    auto da = upload(a);
    auto db = upload(b);
    nccl.grouped([&] {
        nccl.all_reduce_sum(da.data(), 3000, stream.get());
        nccl.all_reduce_sum(db.data(), 5000, stream.get());
    });
    CHECK(same_bits(download(nccl, stream, da.data(), 3000), a));
    CHECK(same_bits(download(nccl, stream, db.data(), 5000), b));
    nccl.barrier(stream.get());
}

TEST_CASE("nccl: a wait past the timeout aborts the communicator and says why") {
    if (!slm::test::gpu_available()) return;
    Nccl nccl(LaunchInfo{}, 1s);
    slm::cuda::Stream stream;
    auto d = upload(known<float>(256));
    nccl.all_reduce_sum(d.data(), 256, stream.get());
    nccl.wait(stream.get());
    // A stream held up for 3 s stands in for a collective whose peer never comes. (No NCCL work
    // is queued behind it: aborting a communicator whose kernel has not started yet is not what
    // this checks.) The abort itself may wait for the held-up stream: cudaFree synchronises.
    SLM_CUDA_CHECK(cudaLaunchHostFunc(
        stream.get(), [](void*) { std::this_thread::sleep_for(3s); }, nullptr));
    const auto start = std::chrono::steady_clock::now();
    const std::string e = error_of([&] { nccl.wait(stream.get()); });
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(contains(e, "did not complete within 1 s"));
    CHECK(contains(e, "the communicator was aborted"));
    CHECK(took >= 0.9);
    CHECK(took < 5.0);
    CHECK(contains(error_of([&] { nccl.all_reduce_sum(d.data(), 256, stream.get()); }),
                   "the communicator was aborted after an earlier failure"));
    (void)cudaStreamSynchronize(stream.get());  // let the held-up work drain before teardown
    (void)cudaGetLastError();
}

TEST_CASE("nccl: start-up errors name the fix") {
    // No GPU needed: the launch is refused before any device is touched.
    LaunchInfo two;
    two.world_size = 2;
    CHECK(contains(error_of([&] { Nccl nccl(two); }), "needs start_nccl"));
    if (!slm::test::gpu_available()) return;
    int count = 0;
    SLM_CUDA_CHECK(cudaGetDeviceCount(&count));
    LaunchInfo beyond;
    beyond.local_rank = count;  // one past the last visible GPU
    CHECK(contains(error_of([&] { Nccl nccl(beyond); }), "start at most one rank per GPU"));
}
