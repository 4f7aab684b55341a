// include/slm/cuda/memory.cuh, transfer.cuh and the Backend's memory interface: zero-filled
// allocation, move-only buffers, uploads whose host array may be reused at once (staged and
// direct paths), downloads, zero.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"

using namespace slm::test;

TEST_CASE("Backend::allocate zero-fills, DeviceBuffer moves and never copies") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    auto a = backend.allocate<float>(1001);
    const auto host = to_host(backend, a);
    for (float x : host) REQUIRE(x == 0.0f);
    float* raw = a.data();
    slm::cuda::DeviceBuffer<float> b(std::move(a));
    CHECK(b.data() == raw);
    CHECK(b.size() == 1001);
    CHECK(a.data() == nullptr);
    CHECK(a.size() == 0);
    auto empty = backend.allocate<int32_t>(0);
    CHECK(empty.data() == nullptr);
    static_assert(!std::is_copy_constructible_v<slm::cuda::DeviceBuffer<float>>);
}

TEST_CASE("upload: the host array may be reused as soon as the call returns") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    // Small uploads go through pinned staging slots, asynchronously: many in a row, each from the
    // same host array overwritten right after the call, must all land intact.
    const int copies = 40;
    const int64_t n = 3001;
    std::vector<slm::cuda::DeviceBuffer<int32_t>> buffers;
    std::vector<int32_t> host(n);
    for (int c = 0; c < copies; ++c) {
        buffers.push_back(backend.allocate<int32_t>(n));
        for (int64_t i = 0; i < n; ++i) host[i] = c * 100000 + static_cast<int32_t>(i);
        backend.upload(buffers.back().data(), host.data(), n);
        std::fill(host.begin(), host.end(), -1);
    }
    for (int c = 0; c < copies; ++c) {
        const auto got = to_host(backend, buffers[c]);
        for (int64_t i = 0; i < n; ++i) REQUIRE(got[i] == c * 100000 + static_cast<int32_t>(i));
    }
    // A large upload (past the staging limit) takes the direct path.
    const int64_t big = (slm::cuda::UploadStaging::max_staged_bytes / 4) + 12345;
    std::vector<float> large(big);
    for (int64_t i = 0; i < big; ++i) large[i] = static_cast<float>(i % 1000);
    auto device = backend.allocate<float>(big);
    backend.upload(device.data(), large.data(), big);
    std::fill(large.begin(), large.end(), -1.0f);
    const auto back = to_host(backend, device);
    for (int64_t i = 0; i < big; ++i) REQUIRE(back[i] == static_cast<float>(i % 1000));
}

TEST_CASE("Backend::zero clears a range and nothing else") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    std::vector<float> host(100, 3.0f);
    auto d = to_device(backend, host);
    backend.zero(d.data() + 10, 37);
    const auto got = to_host(backend, d);
    for (int64_t i = 0; i < 100; ++i) REQUIRE(got[i] == (i >= 10 && i < 47 ? 0.0f : 3.0f));
}

TEST_CASE("Backend reports its precision and bounds the loss chunk to about 512 MB") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const auto p = backend.precision();
    CHECK(p.master == 4);
    CHECK(p.working == 2);
    CHECK(p.gradient == 4);
    CHECK(p.optimizer == 8);
    CHECK(p.activation == 2);
    CHECK(p.statistic == 4);
    CHECK(backend.loss_chunk_rows(16384, 32000) * 32000 * 2 <= (int64_t{512} << 20));
    CHECK(backend.loss_chunk_rows(16384, 32000) > 8000);
    CHECK(backend.loss_chunk_rows(10, 32000) == 10);
    CHECK(backend.loss_chunk_rows(100, int64_t{1} << 30) == 1);
}
