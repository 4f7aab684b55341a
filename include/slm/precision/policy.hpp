#pragma once
// Precision policies: what the linear layers' GEMMs multiply in. Empty tag types, like the
// attention policies; the work is done by LinearKernel<Policy, Backend>, specialised once per
// (policy, backend) pair next to that backend's code.
//
//   Bf16  the backend's own GEMM operand type: bf16 on the GPU (fp32 accumulation), and the
//         CPU reference's T (fp32) on the CPU, which has no bf16 path. What every run did
//         before precision was a policy.
//   Fp8   the four projections of every block (qkv, o, gate_up, down) in FP8 with per-tensor
//         scales: E4M3 activations and weights, E5M2 gradients (why: precision/fp8_linear.hpp);
//         activations and gradients scaled from a history of their amaxes (delayed scaling,
//         precision/delayed_scaling.hpp), weights from their own; fp32 accumulation. The LM
//         head, attention, norms, the loss and the optimizer (fp32 master weights) stay as they
//         are. Every cast's overflows, underflows and NaNs are counted per layer and operand
//         (cast_report()).
//
// Contract of a LinearKernel specialisation (all pointers the backend's memory):
//   LinearKernel(Backend&, int64_t layers)
//   void forward(Backend&, LinearSite, const Act* x, const Act* w, Act* y, n, in, out)
//   void backward(Backend&, LinearSite, const Act* x, const Act* w, const Act* dy, Act* dx,
//                 Grad* dw, n, in, out)
//       the same contracts as the backend's linear_forward / linear_backward (cpu/linear.hpp):
//       y = x·Wᵀ; dx overwritten, dw accumulated, each skipped when null.
//   void weights_changed()
//       the weights behind the w pointers may have changed since the last call: a kernel that
//       keeps anything made from them (FP8 keeps W's codes) must make it again. The model calls
//       it whenever its parameters can change.
//   void restart_scaling()
//       forget what earlier calls left for later ones (FP8's amax histories): the next calls
//       scale as a fresh kernel's would. The trainer calls it after each checkpoint and resume,
//       so that a resumed run repeats the uninterrupted one bit for bit.
// Optional, read by the programs when present:
//   std::vector<LinearCastReport> cast_report()   what the casts lost so far, per site.
//   static int64_t footprint(const ModelConfig&, int64_t rows)
//       the bytes it allocates for a model whose micro-batches have `rows` tokens, for the
//       memory estimate (train/memory_estimate.hpp); absent: nothing.
#include <array>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

#include "slm/core/config.hpp"
#include "slm/precision/scaling.hpp"

namespace slm::precision {

template <class Policy>
concept PrecisionPolicy = requires {
    { Policy::name } -> std::convertible_to<std::string_view>;
};

struct Bf16 {
    static constexpr std::string_view name = "bf16";
};

struct Fp8 {
    static constexpr std::string_view name = "fp8";
};

// Which of a block's linear layers a call is.
enum class Projection { qkv, o, gate_up, down };
inline constexpr int projection_count = 4;
inline constexpr std::array<const char*, projection_count> projection_names = {"qkv_proj", "o_proj",
                                                                                "gate_up_proj", "down_proj"};

struct LinearSite {
    int64_t layer = 0;
    Projection projection = Projection::qkv;
    int64_t index() const { return layer * projection_count + static_cast<int64_t>(projection); }
    std::string name() const {
        return "layers." + std::to_string(layer) + "." + projection_names[static_cast<size_t>(projection)];
    }
};

// A block's projections as the model calls them: (in, out) of each, in Projection's order.
struct ProjectionShape {
    int64_t in = 0, out = 0;
};
inline std::array<ProjectionShape, projection_count> projection_shapes(const ModelConfig& c) {
    const int64_t d = c.hidden, f = c.ffn_padded();
    return {{{d, c.qkv_width()}, {c.q_width(), d}, {d, 2 * f}, {f, d}}};
}

// What one site's casts lost, per operand, and how many of its GEMMs could not run in FP8
// (shapes the FP8 GEMMs do not take; they ran in the backend's own precision instead).
struct LinearCastReport {
    std::string site;
    CastStats x, w, dy;
    int64_t fallback_gemms = 0;
    bool clean() const { return x.clean() && w.clean() && dy.clean(); }
};

template <class>
inline constexpr bool no_linear_kernel = false;

template <class Policy, class Backend>
struct LinearKernel {
    static_assert(no_linear_kernel<Policy>,
                  "this precision policy has no linear layers for this backend: include its header "
                  "for the backend (slm/cpu/fp8_linear.hpp or slm/cuda/fp8_linear.cuh) or pick "
                  "another precision");
};

// Bf16: the backend's own GEMMs, whatever the backend.
template <class Backend>
struct LinearKernel<Bf16, Backend> {
    using Act = typename Backend::Act;
    using Grad = typename Backend::Grad;
    LinearKernel(Backend&, int64_t) {}
    void forward(Backend& b, LinearSite, const Act* x, const Act* w, Act* y, int64_t n, int64_t in,
                 int64_t out) {
        b.linear_forward(x, w, y, n, in, out);
    }
    void backward(Backend& b, LinearSite, const Act* x, const Act* w, const Act* dy, Act* dx, Grad* dw,
                  int64_t n, int64_t in, int64_t out) {
        b.linear_backward(x, w, dy, dx, dw, n, in, out);
    }
    void weights_changed() {}  // nothing is kept from the weights
    void restart_scaling() {}  // nor from earlier calls
};

}  // namespace slm::precision
