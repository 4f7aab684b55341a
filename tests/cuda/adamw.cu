// include/slm/cuda/adamw.cuh vs cpu/adamw.hpp in double from the same fp32 starting values:
// params, m and v within 1e-5 (fp32 math) after three steps, the bf16 working copy equal bit for
// bit to the rounded new params; vector and scalar (misaligned) paths; weight decay and the clip
// factor applied. sum_of_squares: double accumulation, within 1e-12, identical on every run.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

TEST_CASE("AdamW update matches the CPU reference and writes the bf16 working copy") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (int64_t n : {1001, 4096, 3}) {
        for (int64_t offset : {0, 1}) {
            for (bool with_working : {true, false}) {
                CAPTURE(n);
                CAPTURE(offset);
                CAPTURE(with_working);
                const auto p0 = to_float(random_vector<double>(n + offset, 1, 0.5));
                std::vector<double> p = to_double(p0), m(n + offset, 0.0), v(n + offset, 0.0);
                auto dp = to_device(backend, p0);
                auto dm = backend.allocate<float>(n + offset);
                auto dv = backend.allocate<float>(n + offset);
                auto working = backend.allocate<bf16>(n + offset);
                for (int step = 1; step <= 3; ++step) {
                    const auto g = to_float(random_vector<double>(n + offset, 10 + step));
                    slm::optim::AdamWStep s;
                    s.lr = 1e-2;
                    s.weight_decay = 0.1;
                    s.grad_scale = 0.5;
                    s.bias_correction1 = 1 - std::pow(s.beta1, step);
                    s.bias_correction2 = 1 - std::pow(s.beta2, step);
                    const auto gd = to_double(g);
                    slm::cpu::adamw_update(p.data() + offset, gd.data() + offset, m.data() + offset,
                                           v.data() + offset, n, s);
                    auto dg = to_device(backend, g);
                    backend.adamw_update(dp.data() + offset, dg.data() + offset, dm.data() + offset,
                                         dv.data() + offset,
                                         with_working ? working.data() + offset : nullptr, n, s);
                }
                const auto p_got = to_host(backend, dp);
                CHECK(relative_error(to_double(p_got), p) < 1e-5);
                CHECK(relative_error(to_double(to_host(backend, dm)), m) < 1e-5);
                CHECK(relative_error(to_double(to_host(backend, dv)), v) < 1e-5);
                if (offset) CHECK(p_got[0] == p0[0]);  // outside the range: untouched
                const auto w = to_host(backend, working);
                for (int64_t i = offset; i < n + offset; ++i)
                    REQUIRE(bits(w[i]) == (with_working ? bits(__float2bfloat16_rn(p_got[i])) : 0));
            }
        }
    }
}

TEST_CASE("sum_of_squares: double accumulation, deterministic") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (int64_t n : {1, 37, 1000003}) {
        for (int64_t offset : {0, 1}) {
            CAPTURE(n);
            CAPTURE(offset);
            const auto x = to_float(random_vector<double>(n + offset, 5, 3.0));
            double expected = 0;
            for (int64_t i = offset; i < n + offset; ++i)
                expected += static_cast<double>(x[i]) * x[i];
            auto d = to_device(backend, x);
            const double a = backend.sum_of_squares(d.data() + offset, n);
            const double b = backend.sum_of_squares(d.data() + offset, n);
            CHECK(std::abs(a - expected) / expected < 1e-12);
            CHECK(a == b);
        }
    }
}
