// include/slm/cuda/linear.cuh vs cpu/linear.hpp in double on the same bf16 inputs: y and dx are
// bf16 (tolerance 1e-2: one rounding is 2^-9 ≈ 2e-3 relative); dw is accumulated in fp32
// (tolerance 1e-5) onto a nonzero initial value, so accumulation (beta = 1) is checked too.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

TEST_CASE("linear forward and backward match the CPU reference, aligned and odd sizes") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    struct Size {
        int64_t n, in, out;
    };
    for (const Size s :
         {Size{37, 200, 72}, Size{5, 37, 13}, Size{64, 128, 344}, Size{1, 128, 512}}) {
        CAPTURE(s.n);
        CAPTURE(s.in);
        CAPTURE(s.out);
        const auto x = to_double(to_bf16(random_vector<double>(s.n * s.in, 1)));
        const auto w = to_double(to_bf16(random_vector<double>(s.out * s.in, 2, 0.2)));
        const auto dy = to_double(to_bf16(random_vector<double>(s.n * s.out, 3)));
        const auto dw0 = to_double(to_float(random_vector<double>(s.out * s.in, 4)));

        std::vector<double> y_ref(s.n * s.out), dx_ref(s.n * s.in), dw_ref = dw0;
        slm::cpu::linear_forward(x.data(), w.data(), y_ref.data(), s.n, s.in, s.out);
        slm::cpu::linear_backward(x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), s.n,
                                  s.in, s.out);

        auto dx_ = to_device(backend, to_bf16(x));
        auto dw_ = to_device(backend, to_bf16(w));
        auto ddy = to_device(backend, to_bf16(dy));
        auto y = backend.allocate<bf16>(s.n * s.out);
        auto dx = backend.allocate<bf16>(s.n * s.in);
        auto dw = to_device(backend, to_float(dw0));
        backend.linear_forward(dx_.data(), dw_.data(), y.data(), s.n, s.in, s.out);
        backend.linear_backward(dx_.data(), dw_.data(), ddy.data(), dx.data(), dw.data(), s.n, s.in,
                                s.out);
        CHECK(relative_error(to_double(to_host(backend, y)), y_ref) < 1e-2);
        CHECK(relative_error(to_double(to_host(backend, dx)), dx_ref) < 1e-2);
        CHECK(relative_error(to_double(to_host(backend, dw)), dw_ref) < 1e-5);

        // dx == nullptr: only dw accumulates (a second time).
        slm::cpu::linear_backward(x.data(), w.data(), dy.data(), static_cast<double*>(nullptr),
                                  dw_ref.data(), s.n, s.in, s.out);
        backend.linear_backward(dx_.data(), dw_.data(), ddy.data(), nullptr, dw.data(), s.n, s.in,
                                s.out);
        CHECK(relative_error(to_double(to_host(backend, dw)), dw_ref) < 1e-5);
    }
}
