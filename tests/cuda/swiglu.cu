// include/slm/cuda/swiglu.cuh vs cpu/swiglu.hpp in double on the same bf16 inputs; bf16 outputs
// within 1e-2 (fp32 math, one rounding to bf16), vector (f % 8 == 0) and scalar paths.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

TEST_CASE("SwiGLU forward and backward match the CPU reference") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (int64_t n : {37, 1}) {
        for (int64_t f : {200, 37, 344}) {
            CAPTURE(n);
            CAPTURE(f);
            const auto gate_up = to_double(to_bf16(random_vector<double>(n * 2 * f, 1, 4.0)));
            const auto dout = to_double(to_bf16(random_vector<double>(n * f, 2)));
            std::vector<double> out_ref(n * f), d_ref(n * 2 * f);
            slm::cpu::swiglu_forward(gate_up.data(), out_ref.data(), n, f);
            slm::cpu::swiglu_backward(gate_up.data(), dout.data(), d_ref.data(), n, f);

            auto dgu = to_device(backend, to_bf16(gate_up));
            auto ddout = to_device(backend, to_bf16(dout));
            auto out = backend.allocate<bf16>(n * f);
            auto dgrad = to_device(backend, to_bf16(std::vector<double>(n * 2 * f, 9.0)));
            backend.swiglu_forward(dgu.data(), out.data(), n, f);
            backend.swiglu_backward(dgu.data(), ddout.data(), dgrad.data(), n, f);
            CHECK(relative_error(to_double(to_host(backend, out)), out_ref) < 1e-2);
            const auto d_got = to_double(to_host(backend, dgrad));  // overwritten, not added
            CHECK(relative_error(d_got, d_ref) < 1e-2);
            CHECK(relative_error(slice(d_got, 0, f), slice(d_ref, 0, f)) < 1e-2);  // gate part
        }
    }
}

// The recomputing backward must give the plain backward's gradient and the forward's output, bit
// for bit: the model without the saved output is then the same model.
TEST_CASE("SwiGLU backward with the output recomputed: the plain backward's and forward's bits") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (int64_t n : {37, 1}) {
        for (int64_t f : {200, 37, 344}) {
            CAPTURE(n);
            CAPTURE(f);
            const auto gate_up = to_bf16(random_vector<double>(n * 2 * f, 3, 4.0));
            const auto dout = to_bf16(random_vector<double>(n * f, 4));
            auto dgu = to_device(backend, gate_up);
            auto ddout = to_device(backend, dout);
            auto out = backend.allocate<bf16>(n * f);
            auto d_plain = to_device(backend, to_bf16(std::vector<double>(n * 2 * f, 9.0)));
            auto d_recomputed = to_device(backend, to_bf16(std::vector<double>(n * 2 * f, -7.0)));
            backend.swiglu_forward(dgu.data(), out.data(), n, f);
            backend.swiglu_backward(dgu.data(), ddout.data(), d_plain.data(), n, f);
            backend.swiglu_backward_recompute(dgu.data(), ddout.data(), d_recomputed.data(), n, f);
            CHECK(bits_of(to_host(backend, d_recomputed)) == bits_of(to_host(backend, d_plain)));
            CHECK(bits_of(to_host(backend, ddout)) == bits_of(to_host(backend, out)));
        }
    }
}
