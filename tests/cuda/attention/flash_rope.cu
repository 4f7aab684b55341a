// FlashCudaKernel<Mode>::backward_through_rope (include/slm/cuda/attention/flash.cuh): the
// gradient of attention taken back through RoPE in one call. Where dQ goes through the fp32
// accumulator (the atomic modes; deterministic on a Hopper) the inverse rotation of dQ is fused
// into the dQ conversion and dK goes through cuda::rope_backward_k; deterministic_mma_sync runs
// backward() and cuda::rope_backward. Each mode is checked against
//   - the fp64 truth: naive attention backward in double on the same bf16 inputs, then the CPU
//     rope_backward in double (within 1e-2 normwise per part, as the flash tests), and
//   - the unfused GPU path, backward() then cuda::rope_backward (within 5e-3: the unfused path
//     rounds dQ to bf16 once more, before rotating). dV is unchanged by RoPE: the same bits as
//     backward()'s.
// MHA and GQA, head_dim 32 to 256 (the mma.sync modes to 128), sequences that fill no tile, batch > 1 (positions restart
// in each sequence), a large theta and a small one (fast and slow angles).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cpu/rope.hpp"
#include "slm/cuda/attention/flash.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/rope.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

namespace {

using slm::AttentionShape;
using slm::attention::FlashBackward;
using slm::attention::FlashCudaKernel;

struct Gradients {
    std::vector<double> fused, unfused;
};

template <FlashBackward Mode>
Gradients run_both(slm::cuda::Backend& backend, const AttentionShape& s, double theta,
                   const std::vector<double>& qkv_in, const std::vector<double>& d_out_in) {
    using Kernel = FlashCudaKernel<Mode>;
    const auto footprint = Kernel::footprint(s);
    auto qkv = to_device(backend, to_bf16(qkv_in));
    auto d_out = to_device(backend, to_bf16(d_out_in));
    auto out = backend.allocate<bf16>(s.tokens() * s.out_stride());
    auto saved = backend.allocate<std::byte>(footprint.saved_bytes_per_layer);
    auto scratch = backend.allocate<std::byte>(footprint.scratch_bytes);
    auto fused = backend.allocate<bf16>(s.tokens() * s.qkv_stride());
    auto unfused = backend.allocate<bf16>(s.tokens() * s.qkv_stride());
    Kernel::forward(backend, s, qkv.data(), out.data(), saved.data());
    Kernel::backward_through_rope(backend, s, theta, qkv.data(), out.data(), d_out.data(),
                                  saved.data(), scratch.data(), fused.data());
    Kernel::backward(backend, s, qkv.data(), out.data(), d_out.data(), saved.data(),
                     scratch.data(), unfused.data());
    slm::cuda::rope_backward(unfused.data(), s, theta, backend.stream());
    return {to_double(to_host(backend, fused)), to_double(to_host(backend, unfused))};
}

std::vector<double> part(const std::vector<double>& v, const AttentionShape& s, int64_t begin,
                         int64_t end) {
    std::vector<double> out;
    for (int64_t r = 0; r < s.tokens(); ++r)
        for (int64_t c = begin; c < end; ++c) out.push_back(v[r * s.qkv_stride() + c]);
    return out;
}

template <FlashBackward Mode>
void check_mode(const char* name, slm::cuda::Backend& backend, const AttentionShape& s,
                double theta, const std::vector<double>& qkv, const std::vector<double>& d_out,
                const std::vector<double>& truth) {
    CAPTURE(name);
    const Gradients g = run_both<Mode>(backend, s, theta, qkv, d_out);
    const int64_t k = s.k_offset(), v = s.v_offset(), end = s.qkv_stride();
    for (const auto& [what, begin, stop] :
         {std::tuple{"dQ", int64_t{0}, k}, std::tuple{"dK", k, v}, std::tuple{"dV", v, end}}) {
        CAPTURE(what);
        const double e_truth = relative_error(part(g.fused, s, begin, stop), part(truth, s, begin, stop));
        const double e_unfused =
            relative_error(part(g.fused, s, begin, stop), part(g.unfused, s, begin, stop));
        CAPTURE(e_truth);
        CAPTURE(e_unfused);
        CHECK(e_truth < 1e-2);
        CHECK(e_unfused < 5e-3);
    }
    CHECK(part(g.fused, s, v, end) == part(g.unfused, s, v, end));
}

}  // namespace

TEST_CASE("flash backward through RoPE: fused and unfused agree with fp64, every mode") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (const AttentionShape s : {AttentionShape{2, 300, 8, 2, 64}, AttentionShape{1, 1000, 4, 4, 64},
                                   AttentionShape{3, 129, 4, 1, 128}, AttentionShape{1, 700, 4, 2, 128},
                                   AttentionShape{2, 300, 9, 3, 96}, AttentionShape{1, 129, 4, 2, 80},
                                   AttentionShape{1, 100, 4, 4, 48}, AttentionShape{2, 65, 4, 2, 32},
                                   AttentionShape{1, 300, 4, 2, 256}}) {
        for (double theta : {10000.0, 50.0}) {
            CAPTURE(s.batch);
            CAPTURE(s.seq);
            CAPTURE(s.heads);
            CAPTURE(s.kv_heads);
            CAPTURE(s.head_dim);
            CAPTURE(theta);
            const auto qkv = to_double(to_bf16(random_vector<double>(s.tokens() * s.qkv_stride(), 5, 2.0)));
            const auto d_out = to_double(to_bf16(random_vector<double>(s.tokens() * s.out_stride(), 6)));
            std::vector<double> out(d_out.size()), truth(qkv.size());
            std::vector<double> probs(static_cast<size_t>(s.batch * s.heads * s.seq * s.seq));
            slm::attention::naive_attention_forward(s, qkv.data(), out.data(), probs.data());
            slm::attention::naive_attention_backward(s, qkv.data(), d_out.data(), probs.data(),
                                                     truth.data());
            slm::cpu::rope_backward(truth.data(), s, theta);
            check_mode<FlashBackward::atomic>("atomic (warpgroup MMAs on a Hopper)", backend, s,
                                              theta, qkv, d_out, truth);
            check_mode<FlashBackward::deterministic>("deterministic (turns on a Hopper)", backend,
                                                     s, theta, qkv, d_out, truth);
            check_mode<FlashBackward::deterministic_tile_0_up>(
                "deterministic, turns from key tile 0 up", backend, s, theta, qkv, d_out, truth);
            if (s.head_dim > 128) continue;  // the mma.sync kernels stop at 128
            check_mode<FlashBackward::atomic_mma_sync>("atomic, mma.sync", backend, s, theta, qkv,
                                                       d_out, truth);
            check_mode<FlashBackward::deterministic_mma_sync>("deterministic, mma.sync (unfused)",
                                                              backend, s, theta, qkv, d_out, truth);
        }
    }
}

TEST_CASE("flash backward through RoPE: theta must be positive") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const AttentionShape s{1, 16, 2, 2, 64};
    auto buffer = backend.allocate<bf16>(s.tokens() * s.qkv_stride());
    auto saved = backend.allocate<std::byte>(1 << 16);
    CHECK(throws_error_containing(
        [&] {
            FlashCudaKernel<FlashBackward::atomic>::backward_through_rope(
                backend, s, 0.0, buffer.data(), buffer.data(), buffer.data(), saved.data(),
                saved.data(), buffer.data());
        },
        "RoPE theta must be > 0"));
}
