// The whole model on the GPU against the CPU reference (slm's correctness ladder, rung 2):
//   1. Llama<cuda::Backend, Naive> vs Llama<cpu::Backend<double>, Naive> from the same weights
//      (the CPU model is given the GPU's bf16 working copy, i.e. exactly what the GPU's GEMMs
//      read): loss within 1e-2 relative, every gradient tensor within 3e-2 normwise. Why 3e-2:
//      the GPU stores every activation in bf16 (2^-9 ≈ 2e-3 relative per rounding) and a
//      gradient passes through ~20 such roundings in 2 layers (forward and backward), plus bf16
//      logits and probabilities; measured on a CPU emulation of those roundings the worst
//      tensor is well under 1e-2, and a wrong gradient is off by O(1). Forward and backward are
//      also deterministic: a second pass gives the same bits.
//   2. 200 AdamW steps on a fixed synthetic token stream, GPU vs cpu::Backend<float>: the loss
//      curves agree within 2% at every 20th step, and the loss falls (so agreeing means
//      something).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"
#include "slm/train/memory_estimate.hpp"

using namespace slm::test;

namespace {

// The demo preset itself (4 layers, GQA 4/2 heads, vocab 4096), as the issue asks: the GPU must
// match the CPU on the model users first train.
slm::ModelConfig small_config() { return slm::presets::tiny(); }

// A fixed token stream with something to learn: mostly a deterministic successor of the previous
// token, one token in eight random.
std::vector<int32_t> synthetic_stream(int64_t length, int64_t vocab) {
    std::vector<int32_t> s(static_cast<size_t>(length));
    s[0] = 1;
    for (int64_t i = 1; i < length; ++i)
        s[i] = slm::splitmix64(i) % 8 == 0
                   ? static_cast<int32_t>(slm::splitmix64(i + 1000000) % vocab)
                   : static_cast<int32_t>((s[i - 1] * 37 + 11) % vocab);
    return s;
}

// Sequence b of a batch: a window of the stream starting at a position that moves with step.
void batch_at(const std::vector<int32_t>& stream, int64_t step, int64_t batch, int64_t seq,
              std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
    const int64_t span = static_cast<int64_t>(stream.size()) - seq - 1;
    for (int64_t b = 0; b < batch; ++b) {
        const int64_t start = (step * 977 + b * 4099) % span;
        for (int64_t t = 0; t < seq; ++t) {
            tokens[b * seq + t] = stream[start + t];
            targets[b * seq + t] = stream[start + t + 1];
        }
    }
}

using GpuModel = slm::Llama<slm::cuda::Backend, slm::attention::Naive>;
// The same model with its residual stream in fp32 (model/llama.hpp).
using GpuModelFp32Residual = slm::Llama<slm::cuda::Backend, slm::attention::Naive,
                                        slm::model::WholeParameters, float>;

// Loss and every gradient tensor of Model on the GPU against the fp64 CPU model from the GPU's
// bf16 working copy; prints the mean of the gradient errors (the fp32 residual should be below
// the bf16 one) and checks determinism.
template <class Model>
void match_fp64(const char* what) {
    CAPTURE(what);
    const auto c = small_config();
    const int64_t batch = 2, seq = 64, n = batch * seq;
    slm::cuda::Backend gpu_backend;
    Model gpu(c, gpu_backend, 11);
    const int64_t total = gpu.layout().total();
    std::vector<bf16> working(total);
    gpu_backend.download(working.data(), gpu.weights(), total);
    const auto weights = to_double(working);

    slm::cpu::Backend<double> cpu_backend;
    slm::Llama<slm::cpu::Backend<double>, slm::attention::Naive> cpu(c, cpu_backend, 11);
    cpu.set_parameters(weights.data());

    std::vector<int32_t> tokens(n), targets(n);
    batch_at(synthetic_stream(4096, c.vocab), 3, batch, seq, tokens, targets);
    targets[5] = targets[70] = slm::ignore_index;
    const double grad_scale = 0.5;
    const auto g = gpu.forward_backward(tokens.data(), targets.data(), batch, seq, grad_scale);
    const auto r = cpu.forward_backward(tokens.data(), targets.data(), batch, seq, grad_scale);
    MESSAGE(what << ": loss gpu " << g.mean << ", cpu fp64 " << r.mean);
    CHECK(g.counted == r.counted);
    CHECK(std::abs(g.mean - r.mean) / r.mean < 1e-2);

    std::vector<float> gpu_grads(total);
    std::vector<double> cpu_grads(total);
    gpu.get_gradients(gpu_grads.data());
    cpu.get_gradients(cpu_grads.data());
    double err_sum = 0;
    for (const auto& t : gpu.layout().tensors()) {
        CAPTURE(t.name);
        const double err =
            relative_error(slice(gpu_grads, t.offset, t.size), slice(cpu_grads, t.offset, t.size));
        CAPTURE(err);
        CHECK(err < 3e-2);
        err_sum += err;
    }
    MESSAGE(what << ": mean gradient error "
                 << err_sum / static_cast<double>(gpu.layout().tensors().size()));

    // Deterministic: the loss again (evaluate) and the gradients again, bit for bit.
    CHECK(gpu.evaluate(tokens.data(), targets.data(), batch, seq).mean == g.mean);
    gpu.zero_gradients();
    gpu.forward_backward(tokens.data(), targets.data(), batch, seq, grad_scale);
    std::vector<float> again(total);
    gpu.get_gradients(again.data());
    CHECK(again == gpu_grads);
}

}  // namespace

TEST_CASE("the CUDA model matches the fp64 CPU model: loss and every gradient tensor") {
    if (!gpu_available()) return;
    match_fp64<GpuModel>("bf16 residual stream");
}

TEST_CASE("the CUDA model with an fp32 residual stream matches the fp64 CPU model too") {
    if (!gpu_available()) return;
    match_fp64<GpuModelFp32Residual>("fp32 residual stream");
    // Its arena holds the 2L+1 residual buffers at 4 bytes instead of 2.
    const auto c = small_config();
    slm::cuda::Backend backend;
    GpuModel a(c, backend, 11);
    GpuModelFp32Residual b(c, backend, 11);
    CHECK(b.activation_bytes(2, 64) - a.activation_bytes(2, 64) ==
          (2 * c.layers + 1) * 2 * 64 * c.hidden * 2);
    CHECK(slm::estimate_memory<GpuModelFp32Residual>(c, 2, 64).activations ==
          b.activation_bytes(2, 64));
}

namespace {

// 200 AdamW steps of the same model on the GPU and on the fp32 CPU backend, fed the same
// batches; the curves are compared as means over windows of 20 steps (single-batch losses are
// noisy), each within 2%.
void compare_training(const slm::ModelConfig& c, const std::vector<int32_t>& stream,
                      const slm::optim::WarmupCosine& lr) {
    const int64_t batch = 2, seq = 64, n = batch * seq, steps = 200, window = 20;
    slm::cuda::Backend gpu_backend;
    GpuModel gpu(c, gpu_backend, 5);
    slm::cpu::Backend<float> cpu_backend;
    slm::Llama<slm::cpu::Backend<float>, slm::attention::Naive> cpu(c, cpu_backend, 5);
    const slm::optim::AdamWConfig oc;  // weight decay 0.1, clipping at norm 1
    slm::optim::AdamWState<slm::cuda::Backend> gpu_adam(gpu_backend, gpu.layout(), oc);
    slm::optim::AdamWState<slm::cpu::Backend<float>> cpu_adam(cpu_backend, cpu.layout(), oc);

    auto train_step = [&](auto& model, auto& backend, auto& adam, auto* working,
                          const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets,
                          int64_t step) {
        model.zero_gradients();
        const double loss = model.forward_backward(tokens.data(), targets.data(), batch, seq).mean;
        const double norm =
            std::sqrt(backend.sum_of_squares(model.gradients(), model.layout().total()));
        adam.update(model.parameters(), model.gradients(), working, lr(step),
                    slm::optim::clip_factor(norm, oc.max_grad_norm));
        return loss;
    };
    std::vector<int32_t> tokens(n), targets(n);
    double gpu_sum = 0, cpu_sum = 0, first = 0, last = 0;
    for (int64_t step = 0; step < steps; ++step) {
        batch_at(stream, step, batch, seq, tokens, targets);
        gpu_sum += train_step(gpu, gpu_backend, gpu_adam, gpu.weights(), tokens, targets, step);
        cpu_sum += train_step(cpu, cpu_backend, cpu_adam, static_cast<float*>(nullptr), tokens,
                              targets, step);
        if ((step + 1) % window == 0) {
            const double g = gpu_sum / window, r = cpu_sum / window;
            if (step + 1 == window) first = r;
            last = r;
            CAPTURE(step);
            MESSAGE("steps " << step + 1 - window << "-" << step << ": gpu " << g << ", cpu fp32 " << r);
            CHECK(std::abs(g - r) / r < 0.02);
            gpu_sum = cpu_sum = 0;
        }
    }
    CHECK(last < 0.7 * first);
}

}  // namespace

TEST_CASE("200 AdamW steps of the tiny preset: GPU and fp32 CPU loss curves within 2%") {
    if (!gpu_available()) return;
    // Ids below 256 only, so the tiny preset (vocab 4096) learns within 200 steps; a stream long
    // enough that no window is seen twice, and a moderate learning rate, so the loss falls
    // smoothly: at 2e-3 the sharp drop comes a few steps apart on the two backends and the
    // comparison measures that timing, not the arithmetic.
    compare_training(slm::presets::tiny(), synthetic_stream(262144, 256), {5e-4, 5e-5, 20, 200});
}

TEST_CASE("200 AdamW steps of a small GQA model: GPU and fp32 CPU loss curves within 2%") {
    if (!gpu_available()) return;
    slm::ModelConfig c;
    c.name = "cuda-check";
    c.vocab = 512;
    c.hidden = 128;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 344;
    c.max_seq = 64;
    compare_training(c, synthetic_stream(8192, c.vocab), {2e-3, 2e-4, 20, 200});
}
