// include/slm/cuda/embedding.cuh: the forward gathers rows bit for bit; the backward adds rows in
// ascending position order per token (checked bit for bit against an fp32 host loop in that
// order, and within 1e-5 of the double reference), also when a token's positions span several
// 1024-position chunks, and gives identical bits on every run. Bad ids are reported.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/core/random.hpp"
#include "slm/cuda/backend.cuh"

using namespace slm::test;

TEST_CASE("embedding forward gathers exact rows (vector and scalar paths)") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const int64_t n = 1001, vocab = 512;
    for (int64_t d : {200, 37, 8}) {
        CAPTURE(d);
        const auto table = to_bf16(random_vector<double>(vocab * d, 1));
        std::vector<int32_t> tokens(n);
        for (int64_t i = 0; i < n; ++i)
            tokens[i] = static_cast<int32_t>(slm::splitmix64(i) % vocab);
        auto dt = to_device(backend, tokens);
        auto dtable = to_device(backend, table);
        auto out = backend.allocate<bf16>(n * d);
        backend.embedding_forward(dt.data(), dtable.data(), out.data(), n, d, vocab);
        const auto got = to_host(backend, out);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < d; ++j)
                REQUIRE(bits(got[i * d + j]) == bits(table[tokens[i] * d + j]));
    }
}

TEST_CASE("embedding forward: an id outside the vocabulary throws at the next synchronisation") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const int64_t n = 20, d = 16, vocab = 50;
    std::vector<int32_t> tokens(n, 4);
    tokens[10] = -7;
    tokens[3] = static_cast<int32_t>(vocab + 5);
    auto dt = to_device(backend, tokens);
    auto table = to_device(backend, to_bf16(random_vector<double>(vocab * d, 2)));
    auto out = backend.allocate<bf16>(n * d);
    backend.embedding_forward(dt.data(), table.data(), out.data(), n, d, vocab);
    std::string message;
    CHECK(throws_error_containing([&] { backend.synchronize(); }, "token id 55 at position 3",
                                  &message));
    CAPTURE(message);
    CHECK(message.find("[0, 50)") != std::string::npos);
    const auto got = to_host(backend, out);  // the report was cleared: no second throw
    for (int64_t j = 0; j < d; ++j) {
        CHECK(__bfloat162float(got[3 * d + j]) == 0.0f);
        CHECK(__bfloat162float(got[10 * d + j]) == 0.0f);
    }
    backend.synchronize();
}

TEST_CASE("embedding backward is deterministic and adds in position order across chunks") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const int64_t n = 2500, vocab = 300;  // three 1024-position chunks, the last one partial
    for (int64_t d : {200, 37}) {
        CAPTURE(d);
        std::vector<int32_t> tokens(n);
        for (int64_t i = 0; i < n; ++i)  // token 7 in every chunk (a long run), others scattered
            tokens[i] = i % 5 == 0 ? 7 : static_cast<int32_t>(slm::splitmix64(i + 99) % vocab);
        const auto dout_bf = to_bf16(random_vector<double>(n * d, 3));
        const auto dout = to_double(dout_bf);
        const auto table0 = to_float(random_vector<double>(vocab * d, 4));

        // What the kernel promises: per (token, column), an fp32 sum in ascending position order,
        // added to the table once.
        std::vector<float> acc(vocab * d, 0.0f);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < d; ++j)
                acc[tokens[i] * d + j] += static_cast<float>(dout[i * d + j]);
        std::vector<float> expected_bits = table0;
        for (int64_t k = 0; k < vocab * d; ++k) expected_bits[k] += acc[k];
        std::vector<double> reference = to_double(table0);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < d; ++j) reference[tokens[i] * d + j] += dout[i * d + j];

        auto dt = to_device(backend, tokens);
        auto ddout = to_device(backend, dout_bf);
        std::vector<std::vector<float>> runs;
        for (int run = 0; run < 2; ++run) {
            auto table = to_device(backend, table0);
            backend.embedding_backward(dt.data(), ddout.data(), table.data(), n, d);
            runs.push_back(to_host(backend, table));
        }
        CHECK(relative_error(runs[0], reference) < 1e-5);
        for (int64_t k = 0; k < vocab * d; ++k) {
            REQUIRE(runs[0][k] == expected_bits[k]);
            REQUIRE(runs[1][k] == runs[0][k]);
        }
    }
}
