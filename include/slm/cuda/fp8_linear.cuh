#pragma once
// LinearKernel<Fp8, cuda::Backend>: the blocks' linear layers in FP8 on Hopper, the GPU side of
// cpu/fp8_linear.hpp (same casts, same formats, same scales, same counts). Per-tensor scales,
// computed on the device so that nothing waits for the host: x and dY with delayed scaling (a
// history of amaxes per site and operand, precision/delayed_scaling.hpp; their amax is taken
// in the cast itself), W with current scaling (its own amax, once per change). Every GEMM is
// cuBLASLt's TN FP8 GEMM (fp8_gemm.cuh), so the backward casts its operands transposed:
//   forward  y  (n, out) = x (n, in) · W (out, in)ᵀ        x, W: E4M3; fast accumulation
//   dgrad    dx (n, in)  = dy (n, out) · [Wᵀ (in, out)]ᵀ   dy: E5M2, W: E4M3
//   wgrad    dW (out, in) += [dyᵀ (out, n)] · [xᵀ (in, n)]ᵀ, accumulated in fp32
// (fast accumulation only in the forward, as Transformer Engine does: the gradients' GEMMs keep
// full fp32 partial sums.)
//
// A GEMM whose shape the FP8 GEMMs do not take (n or k not a multiple of 16, an unaligned
// operand) runs in bf16 instead, and is counted (LinearCastReport::fallback_gemms): never silent.
// Scratch: FP8 operand buffers, grown to the largest GEMM seen (the GEMMs of one stream run one
// after another, so forward, dgrad and wgrad share them), and the counters.
//
// Weights are cast once per change, not once per call: each site keeps W's codes and Wᵀ's
// (written by one pass over W, from one amax) until weights_changed(), which the model calls
// whenever its parameters may have changed (an optimizer step, a load). Micro-batches, their
// backward and evaluation reuse them: the same codes a recast would give, since current scaling
// depends only on the tensor. A call with another W pointer than the codes were made from casts
// again (a sharded storage's gather buffer, a test's second weight). Cost: 2 bytes per weight.
//
// Passes over the activations, one read each: the forward casts x (and takes its amax) and keeps
// its scale; the backward casts dY once into its codes as they are for dgrad and transposed for
// wgrad, and x once more, transposed, with the forward's scale (the same codes). The first call
// of a site and operand has no history yet and reads its tensor once more for the amax.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/check.cuh"
#include "slm/cuda/fp8_cast.cuh"
#include "slm/cuda/fp8_gemm.cuh"
#include "slm/cuda/linear.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/precision/delayed_scaling.hpp"
#include "slm/precision/policy.hpp"

namespace slm::precision {

template <>
struct LinearKernel<Fp8, cuda::Backend> {
    using B = cuda::Backend;
    using Act = B::Act;
    using Grad = B::Grad;
    static constexpr Fp8Format e4m3 = Fp8Format::e4m3, e5m2 = Fp8Format::e5m2;

    LinearKernel(B& b, int64_t layers)
        : backend_(&b),
          sites_(layers * projection_count),
          counts_(sites_ * 3),  // x, W, dy per site
          // dY's scale, a spare, amax scratch, a spare; each site's x scale, its W scale
          scales_(4 + 2 * sites_),
          host_(static_cast<size_t>(sites_)),
          x_scaled_(static_cast<size_t>(sites_), false),
          weights_(static_cast<size_t>(sites_)),
          history_(sites_ * 2 * precision::amax_history_length),  // x's and dY's per site
          clocks_(static_cast<size_t>(sites_ * 2)) {
        SLM_CUDA_CHECK(cudaMemsetAsync(history_.data(), 0, static_cast<size_t>(history_.bytes()), b.stream()));
        for (int64_t i = 0; i < sites_; ++i)
            host_[static_cast<size_t>(i)].site =
                LinearSite{i / projection_count, static_cast<Projection>(i % projection_count)}.name();
        SLM_CUDA_CHECK(cudaMemsetAsync(counts_.data(), 0, static_cast<size_t>(counts_.bytes()), b.stream()));
    }

    void forward(B& b, LinearSite site, const Act* x, const Act* w, Act* y, int64_t n, int64_t in, int64_t out) {
        const auto timed = b.op_scope(Op::matmul);
        const int64_t s = index(site);
        if (!cuda::Fp8Gemm::takes(out, in, {x, w, y})) {
            ++host_[static_cast<size_t>(s)].fallback_gemms;
            cuda::linear_forward(b.gemm(), x, w, y, n, in, out, b.stream());
            return;
        }
        reserve(n * in, 0, 0);
        cast(b, x, n, in, false, e4m3, a_.data(), x_scale(s), s, 0, Scale::delayed);  // kept for xᵀ
        x_scaled_[static_cast<size_t>(s)] = true;
        const WeightCodes& wq = weight_codes(b, s, w, out, in);
        gemm_(b.stream(), a_.data(), e4m3, x_scale(s), wq.w.data(), e4m3, w_scale(s), y, n, out, in,
              /*fast_accumulation=*/true);
    }

    // x must be the forward's x (the saved activation, or its bit-identical recomputation): its
    // transposed cast reuses the scale the forward took from it instead of another amax pass.
    void backward(B& b, LinearSite site, const Act* x, const Act* w, const Act* dy, Act* dx, Grad* dw, int64_t n,
                  int64_t in, int64_t out) {
        if (!dx && !dw) return;
        const auto timed = b.op_scope(Op::matmul);
        const int64_t s = index(site);
        auto& r = host_[static_cast<size_t>(s)];
        const bool fp8_dx = dx && cuda::Fp8Gemm::takes(in, out, {dy, w, dx});
        const bool fp8_dw = dw && cuda::Fp8Gemm::takes(in, n, {dy, x, dw});
        if (dx && !fp8_dx) {
            ++r.fallback_gemms;
            cuda::linear_backward(b.gemm(), nullptr, w, dy, dx, nullptr, n, in, out, b.stream());
        }
        if (dw && !fp8_dw) {
            ++r.fallback_gemms;
            cuda::linear_backward(b.gemm(), x, nullptr, dy, nullptr, dw, n, in, out, b.stream());
        }
        if (!fp8_dx && !fp8_dw) return;
        // dY's codes, read once: as they are for dgrad (a_), transposed for wgrad (c_), or both
        // from one pass, with the delayed scale; counted once per backward, as on the CPU.
        reserve(fp8_dx ? n * out : 0, fp8_dw ? in * n : 0, fp8_dw ? out * n : 0);
        if (fp8_dw)
            cast(b, dy, n, out, true, e5m2, c_.data(), scale_a(), s, 2, Scale::delayed, fp8_dx ? a_.data() : nullptr);
        else
            cast(b, dy, n, out, false, e5m2, a_.data(), scale_a(), s, 2, Scale::delayed);
        if (fp8_dx) {
            const WeightCodes& wq = weight_codes(b, s, w, out, in);  // Wᵀ (in, out)
            gemm_(b.stream(), a_.data(), e5m2, scale_a(), wq.wt.data(), e4m3, w_scale(s), dx, n, in, out);
        }
        if (fp8_dw) {
            const bool have_scale = x_scaled_[static_cast<size_t>(s)];
            cast(b, x, n, in, true, e4m3, b_.data(), x_scale(s), s, 0, have_scale ? Scale::given : Scale::own);  // xᵀ
            gemm_(b.stream(), c_.data(), e5m2, scale_a(), b_.data(), e4m3, x_scale(s), dw, out, in, n,
                  /*fast_accumulation=*/false, /*accumulate=*/true);
        }
    }

    // Bytes it allocates for a model whose micro-batches have `rows` tokens: every site's W and
    // Wᵀ codes, the three operand buffers at their largest GEMM and the GEMM's workspace (the
    // scales, histories and counters, a few hundred bytes per site, left out).
    static int64_t footprint(const ModelConfig& c, int64_t rows) {
        int64_t weights = 0, a = 0, b = 0, t = 0;
        for (const auto& p : precision::projection_shapes(c)) {
            weights += 2 * p.in * p.out;
            a = std::max({a, rows * p.in, rows * p.out});  // the forward's x, the dgrad's dY
            b = std::max(b, rows * p.in);                  // xᵀ
            t = std::max(t, rows * p.out);                 // dYᵀ
        }
        return c.layers * weights + a + b + t + cuda::Fp8Gemm::workspace_bytes;
    }

    // Every history starts again: the next cast of each site and operand scales by its own amax.
    void restart_scaling() { std::fill(clocks_.begin(), clocks_.end(), precision::HistoryClock{}); }

    // The weights may have changed: every site's cached codes are stale.
    void weights_changed() {
        for (auto& c : weights_) c.from = nullptr;
    }

    // What the casts lost so far, one entry per site (layers × projections, in layer order).
    // Waits for the device (it reads the counters): call it at the end of a run, not per step.
    std::vector<LinearCastReport> cast_report() const {
        std::vector<cuda::Fp8CastCounts> device(static_cast<size_t>(counts_.size()));
        backend_->synchronize();
        SLM_CUDA_CHECK(cudaMemcpy(device.data(), counts_.data(), static_cast<size_t>(counts_.bytes()),
                                  cudaMemcpyDeviceToHost));
        std::vector<LinearCastReport> out = host_;
        for (size_t i = 0; i < out.size(); ++i) {
            CastStats* operand[3] = {&out[i].x, &out[i].w, &out[i].dy};
            for (size_t o = 0; o < 3; ++o) {
                const auto& c = device[i * 3 + o];
                operand[o]->overflow = static_cast<int64_t>(c.overflow);
                operand[o]->underflow = static_cast<int64_t>(c.underflow);
                operand[o]->nan = static_cast<int64_t>(c.nan);
            }
        }
        return out;
    }

private:
    int64_t index(LinearSite site) const {
        const int64_t i = site.index();
        require(i >= 0 && i < sites_, "fp8 linear: site " + site.name() + " is outside the model's layers");
        return i;
    }
    float* scale_a() { return scales_.data(); }
    float* x_scale(int64_t s) { return scales_.data() + 4 + s; }  // the forward's scale of site s's x
    float* w_scale(int64_t s) { return scales_.data() + 4 + sites_ + s; }  // its W codes' scale

    // A site's weight codes: W (out, in) as it is and Wᵀ (in, out), with the scale at w_scale(s).
    struct WeightCodes {
        cuda::DeviceBuffer<uint8_t> w, wt;
        const Act* from = nullptr;  // the W they were cast from; null: none, or stale
    };

    // Site s's codes of w, cast now when they are stale or were made from another pointer.
    const WeightCodes& weight_codes(B& b, int64_t s, const Act* w, int64_t out, int64_t in) {
        WeightCodes& c = weights_[static_cast<size_t>(s)];
        if (c.from == w && c.w.size() == out * in) return c;
        if (c.w.size() != out * in) {
            c.w = cuda::DeviceBuffer<uint8_t>(out * in);
            c.wt = cuda::DeviceBuffer<uint8_t>(out * in);
        }
        cast(b, w, out, in, true, e4m3, c.wt.data(), w_scale(s), s, 1, Scale::own, c.w.data());
        c.from = w;
        return c;
    }

    void reserve(int64_t a_bytes, int64_t b_bytes, int64_t c_bytes) {
        if (a_.size() < a_bytes) a_ = cuda::DeviceBuffer<uint8_t>(a_bytes);
        if (b_.size() < b_bytes) b_ = cuda::DeviceBuffer<uint8_t>(b_bytes);
        if (c_.size() < c_bytes) c_ = cuda::DeviceBuffer<uint8_t>(c_bytes);
    }

    // How a cast gets its scale: from t's own amax (current scaling: one more pass), from the
    // site's history for the operand (delayed; t's amax recorded by the cast), or as given.
    enum class Scale { own, delayed, given };

    // t (rows, cols) → codes (or codes of tᵀ, and with `plain` its codes as they are too), with
    // *scale as `how` says; counted into site s's operand (0 x, 1 W, 2 dY).
    void cast(B& b, const Act* t, int64_t rows, int64_t cols, bool transposed, Fp8Format format, uint8_t* codes,
              float* scale, int64_t s, int operand, Scale how, uint8_t* plain = nullptr) {
        constexpr int length = precision::amax_history_length;
        float* own = how == Scale::own ? scales_.data() + 2 : nullptr;  // t's amax, by a pass of its own
        float* record = nullptr;  // where the cast maxes t's amax in
        if (how == Scale::delayed) {
            const int64_t h = s * 2 + (operand == 0 ? 0 : 1);
            float* history = history_.data() + h * length;
            precision::HistoryClock& clock = clocks_[static_cast<size_t>(h)];
            const int slot = clock.slot();
            if (clock.calls == 0) {  // no history yet: current scaling, its amax recorded
                own = history + slot;
            } else {
                cuda::fp8_delayed_scale(history, clock.window(), slot, format, scale, b.stream());
                record = history + slot;
            }
            ++clock.calls;
        }
        if (own) {
            cuda::fp8_amax(t, rows * cols, own, b.stream());
            cuda::fp8_scale(own, format, 0, scale, b.stream());
        }
        cuda::Fp8CastCounts* counts = counts_.data() + s * 3 + operand;
        if (transposed)
            cuda::fp8_cast_transpose(t, rows, cols, scale, format, codes, counts, b.stream(), plain, record);
        else
            cuda::fp8_cast(t, rows * cols, scale, format, codes, counts, b.stream(), record);
        auto& r = host_[static_cast<size_t>(s)];
        (operand == 0 ? r.x : operand == 1 ? r.w : r.dy).count += rows * cols;
    }

    B* backend_;
    int64_t sites_;
    cuda::DeviceBuffer<cuda::Fp8CastCounts> counts_;
    cuda::DeviceBuffer<float> scales_;
    cuda::DeviceBuffer<uint8_t> a_, b_, c_;
    cuda::Fp8Gemm gemm_;
    std::vector<LinearCastReport> host_;
    std::vector<bool> x_scaled_;  // whether a forward left site s's x scale (the backward reuses it)
    std::vector<WeightCodes> weights_;
    cuda::DeviceBuffer<float> history_;  // per site and operand (x, dY): amax_history_length amaxes
    std::vector<precision::HistoryClock> clocks_;  // per site and operand (x, dY): casts so far
};

}  // namespace slm::precision
