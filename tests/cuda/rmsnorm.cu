// include/slm/cuda/rmsnorm.cuh vs cpu/rmsnorm.hpp in double on the same bf16 inputs.
// Forward: resid_out (bf16) and normed (bf16) within 1e-2; rstd (fp32) within 1e-5 of the
// reference computed from the stored residual (the GPU takes statistics over the residual as
// stored in bf16, which is what backward reads). Backward: d_resid (bf16, accumulated) within
// 1e-2, dw (fp32, accumulated) within 1e-5. Without delta, and in place (resid_out = resid_in).
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

TEST_CASE("add_rmsnorm_forward: residual add, norm and rstd, without delta, in place") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const double eps = 1e-5;
    for (int64_t n : {37, 300}) {
        for (int64_t d : {200, 37, 8}) {
            for (int mode = 0; mode < 3; ++mode) {  // 0: with delta, 1: no delta, 2: in place
                CAPTURE(n);
                CAPTURE(d);
                CAPTURE(mode);
                const auto in = to_double(to_bf16(random_vector<double>(n * d, 1, 2.0)));
                const auto delta = to_double(to_bf16(random_vector<double>(n * d, 2)));
                const auto w = to_double(to_bf16(random_vector<double>(d, 3, 1.5)));
                std::vector<double> resid_ref = in;
                if (mode != 1)
                    for (int64_t k = 0; k < n * d; ++k) resid_ref[k] += delta[k];

                auto din = to_device(backend, to_bf16(in));
                auto ddelta = to_device(backend, to_bf16(delta));
                auto dw = to_device(backend, to_bf16(w));
                auto out = backend.allocate<bf16>(n * d);
                auto normed = backend.allocate<bf16>(n * d);
                auto rstd = backend.allocate<float>(n);
                bf16* resid_out = mode == 2 ? din.data() : out.data();
                backend.add_rmsnorm_forward(din.data(), mode == 1 ? nullptr : ddelta.data(),
                                            resid_out, dw.data(), normed.data(), rstd.data(), n, d,
                                            eps);
                const auto resid_gpu = to_double(to_host(backend, resid_out, n * d));
                CHECK(relative_error(resid_gpu, resid_ref) < 1e-2);

                std::vector<double> tmp(n * d), normed_ref(n * d), rstd_ref(n);
                slm::cpu::add_rmsnorm_forward(resid_gpu.data(), static_cast<const double*>(nullptr),
                                              tmp.data(), w.data(), normed_ref.data(),
                                              rstd_ref.data(), n, d, eps);
                CHECK(relative_error(to_double(to_host(backend, normed)), normed_ref) < 1e-2);
                CHECK(relative_error(to_double(to_host(backend, rstd)), rstd_ref) < 1e-5);
            }
        }
    }
}

TEST_CASE("rmsnorm_backward: d_resid and dw accumulate, match the CPU reference") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (int64_t n : {37, 300}) {  // 300 rows: several 64-row partial sums for dw
        // Widths: one, two and three 8-column vectors per thread in the fused pass (200, 8;
        // 2560; 5000), and the scalar path (37).
        for (int64_t d : {200, 37, 8, 2560, 5000}) {
            CAPTURE(n);
            CAPTURE(d);
            const auto x = to_double(to_bf16(random_vector<double>(n * d, 5, 2.0)));
            const auto w = to_double(to_bf16(random_vector<double>(d, 6, 1.5)));
            const auto dy = to_double(to_bf16(random_vector<double>(n * d, 7)));
            const auto d_resid0 = to_double(to_bf16(random_vector<double>(n * d, 8)));
            const auto dw0 = to_double(to_float(random_vector<double>(d, 9)));
            std::vector<double> tmp(n * d), normed(n * d), rstd_d(n);
            slm::cpu::add_rmsnorm_forward(x.data(), static_cast<const double*>(nullptr), tmp.data(),
                                          w.data(), normed.data(), rstd_d.data(), n, d, 1e-5);
            const auto rstd = to_double(to_float(rstd_d));  // both sides use the same fp32 rstd

            std::vector<double> d_resid_ref = d_resid0, dw_ref = dw0;
            slm::cpu::rmsnorm_backward(x.data(), w.data(), rstd.data(), dy.data(),
                                       d_resid_ref.data(), dw_ref.data(), n, d);

            auto dx = to_device(backend, to_bf16(x));
            auto dwt = to_device(backend, to_bf16(w));
            auto drstd = to_device(backend, to_float(rstd));
            auto ddy = to_device(backend, to_bf16(dy));
            auto d_resid = to_device(backend, to_bf16(d_resid0));
            auto dw = to_device(backend, to_float(dw0));
            backend.rmsnorm_backward(dx.data(), dwt.data(), drstd.data(), ddy.data(),
                                     d_resid.data(), dw.data(), n, d);
            CHECK(relative_error(to_double(to_host(backend, d_resid)), d_resid_ref) < 1e-2);
            CHECK(relative_error(to_double(to_host(backend, dw)), dw_ref) < 1e-5);
        }
    }
}
