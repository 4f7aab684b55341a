// include/slm/cuda/convert.cuh: fp32 → bf16 is round-to-nearest-even, bit for bit the host's
// __float2bfloat16_rn, on the vector path and the scalar path (misaligned pointers), all lengths.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"

using namespace slm::test;

TEST_CASE("convert: fp32 master to bf16 working copy, exact round-to-nearest-even") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (int64_t n : {1, 3, 7, 37, 1001, 4099}) {
        for (int64_t offset : {0, 1}) {  // offset 1 breaks 16-byte alignment: scalar path
            CAPTURE(n);
            CAPTURE(offset);
            auto host = to_float(random_vector<double>(n + offset, 40 + n, 3.0));
            host[offset] = 1.00390625f;                 // 1 + 2^-8: a tie, rounds to even (1.0)
            if (n > 1) host[offset + 1] = 1.01171875f;  // 1 + 3·2^-8: a tie, rounds up to 1 + 2^-6
            auto master = to_device(backend, host);
            auto working = backend.allocate<bf16>(n + offset);
            backend.convert(master.data() + offset, working.data() + offset, n);
            const auto got = to_host(backend, working);
            for (int64_t i = 0; i < n; ++i)
                REQUIRE(bits(got[offset + i]) == bits(__float2bfloat16_rn(host[offset + i])));
            CHECK(__bfloat162float(got[offset]) == 1.0f);
            if (n > 1) CHECK(__bfloat162float(got[offset + 1]) == 1.015625f);
            if (offset) CHECK(bits(got[0]) == 0);  // outside the range: untouched
        }
    }
}
