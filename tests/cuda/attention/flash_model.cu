// The whole tiny model with GPU Flash attention (include/slm/cuda/attention/flash.cuh): against
// the same model with Naive attention on the GPU (loss and every gradient tensor), and
// FlashDeterministic's gradients the same bits twice. The kernels alone: flash.cu.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/attention/flash.cuh"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;
using slm::AttentionShape;
using bf16 = slm::cuda::bf16;

TEST_CASE("flash attention on the GPU in the tiny model: loss and gradients match Naive") {
    if (!gpu_available()) return;
    const auto c = slm::presets::tiny();  // head_dim 64, GQA 4/2
    REQUIRE(c.head_dim() == 64);
    const int64_t batch = 2, seq = 100, n = batch * seq;  // seq: a multiple of no tile
    slm::cuda::Backend backend;
    slm::Llama<slm::cuda::Backend, slm::attention::Flash> flash(c, backend, 17);
    slm::Llama<slm::cuda::Backend, slm::attention::Naive> naive(c, backend, 17);
    const int64_t total = flash.layout().total();
    std::vector<bf16> wf(total), wn(total);
    backend.download(wf.data(), flash.weights(), total);
    backend.download(wn.data(), naive.weights(), total);
    REQUIRE(std::memcmp(wf.data(), wn.data(), total * 2) == 0);  // same weights

    std::vector<int32_t> tokens(n), targets(n);
    for (int64_t i = 0; i < n; ++i) {
        tokens[i] = static_cast<int32_t>(slm::splitmix64(i) % c.vocab);
        targets[i] = static_cast<int32_t>(slm::splitmix64(i + 7919) % c.vocab);
    }
    const auto lf = flash.forward_backward(tokens.data(), targets.data(), batch, seq, 1.0);
    const auto ln = naive.forward_backward(tokens.data(), targets.data(), batch, seq, 1.0);
    MESSAGE("loss: flash " << lf.mean << ", naive " << ln.mean);
    CHECK(std::isfinite(lf.mean));
    CHECK(std::abs(lf.mean - ln.mean) / ln.mean < 1e-2);
    std::vector<float> gf(total), gn(total);
    flash.get_gradients(gf.data());
    naive.get_gradients(gn.data());
    // 3e-2 per tensor, as the GPU-vs-CPU model test: bf16 activations through 4 layers forward
    // and backward, two different roundings of the attention in between.
    for (const auto& t : flash.layout().tensors()) {
        CAPTURE(t.name);
        const double err =
            relative_error(slice(gf, t.offset, t.size), slice(gn, t.offset, t.size));
        CAPTURE(err);
        CHECK(err < 3e-2);
    }
}

TEST_CASE("FlashDeterministic in the tiny model: the same gradient bits twice, Flash's loss") {
    if (!gpu_available()) return;
    const auto c = slm::presets::tiny();
    const int64_t batch = 4, seq = 256, n = batch * seq;  // seq 256: four key tiles add into dQ
    slm::cuda::Backend backend;
    slm::Llama<slm::cuda::Backend, slm::attention::FlashDeterministic> exact(c, backend, 23);
    slm::Llama<slm::cuda::Backend, slm::attention::Flash> flash(c, backend, 23);
    std::vector<int32_t> tokens(n), targets(n);
    for (int64_t i = 0; i < n; ++i) {
        tokens[i] = static_cast<int32_t>(slm::splitmix64(i + 3) % c.vocab);
        targets[i] = static_cast<int32_t>(slm::splitmix64(i + 104729) % c.vocab);
    }
    const int64_t total = exact.layout().total();
    std::vector<float> g1(total), g2(total), gf(total);
    const auto l1 = exact.forward_backward(tokens.data(), targets.data(), batch, seq, 1.0);
    exact.get_gradients(g1.data());
    exact.zero_gradients();  // forward_backward adds to the gradients (micro-batches accumulate)
    const auto l2 = exact.forward_backward(tokens.data(), targets.data(), batch, seq, 1.0);
    exact.get_gradients(g2.data());
    const auto lf = flash.forward_backward(tokens.data(), targets.data(), batch, seq, 1.0);
    flash.get_gradients(gf.data());
    CHECK(l1.mean == l2.mean);
    CHECK(std::memcmp(g1.data(), g2.data(), total * sizeof(float)) == 0);
    CHECK(l1.mean == lf.mean);  // the forward is the same kernel in both modes
    // The same gradients up to the order of dQ's fp32 additions, then bf16 through the layers.
    for (const auto& t : exact.layout().tensors()) {
        CAPTURE(t.name);
        const double err = relative_error(slice(g1, t.offset, t.size), slice(gf, t.offset, t.size));
        CAPTURE(err);
        CHECK(err < 1e-2);
    }
    // The turns: one int per (sequence, head, 64 queries) above the default's scratch.
    const AttentionShape shape{batch, seq, c.heads, c.kv_heads, c.head_dim()};
    CHECK(slm::attention::AttentionKernel<slm::attention::FlashDeterministic,
                                          slm::cuda::Backend>::footprint(shape)
              .scratch_bytes ==
          slm::attention::AttentionKernel<slm::attention::Flash, slm::cuda::Backend>::footprint(
              shape)
                  .scratch_bytes +
              slm::cuda::aligned_bytes(batch * c.heads * (seq / 64) * 4));
}
