#pragma once
// LinearKernel<Fp8, cpu::Backend<float>>: the FP8 linear layers on the CPU, numerically what the
// GPU's do (cuda/fp8_linear.cuh). x is cast to E4M3 and dy to E5M2 with delayed scaling
// (precision/delayed_scaling.hpp: a history of amaxes per site and operand), W to E4M3 with
// current scaling (its own amax, precision/scaling.hpp); the GEMM multiplies the decoded codes in
// fp32 (each product is exact in float: at most 4 × 4 significant bits) and divides by both
// scales at the end, as cuBLASLt does with its scale pointers. precision/fp8_linear.hpp is the
// double-accumulating reference this is tested against (tests/cpu/precision/fp8_model.cpp).
//
// Every cast is counted per site and operand, backward re-casts included: x is cast again there
// with the forward's scale (the same codes) rather than kept. W is cast once per change, as on the
// GPU: each site keeps its decoded W until weights_changed() or a call with another W pointer, so
// the two count the same casts.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/cpu/backend.hpp"
#include "slm/cpu/linear.hpp"
#include "slm/precision/delayed_scaling.hpp"
#include "slm/precision/fp8_linear.hpp"
#include "slm/precision/policy.hpp"

namespace slm::precision {

template <>
struct LinearKernel<Fp8, cpu::Backend<float>> {
    using B = cpu::Backend<float>;

    LinearKernel(B&, int64_t layers)
        : reports_(static_cast<size_t>(layers * projection_count)),
          weights_(reports_.size()),
          x_history_(reports_.size()),
          dy_history_(reports_.size()),
          x_scale_(reports_.size(), 0.0f) {
        for (int64_t i = 0; i < static_cast<int64_t>(reports_.size()); ++i)
            reports_[static_cast<size_t>(i)].site =
                LinearSite{i / projection_count, static_cast<Projection>(i % projection_count)}.name();
    }

    void forward(B& b, LinearSite site, const float* x, const float* w, float* y, int64_t n, int64_t in,
                 int64_t out) {
        const auto timed = b.op_scope(Op::matmul);
        LinearCastReport& r = report(site);
        const auto i = static_cast<size_t>(site.index());
        const Fp8Format f = formats_.activations;
        x_scale_[i] = x_history_[i].next_scale(amax_of(x, n * in), f);  // kept for the backward's x
        const Decoded xq = decode(x, n * in, f, r.x, x_scale_[i]);
        const Decoded& wq = weight(site, w, out * in);
        cpu::MatrixView<float> y_m(y, n, out);
        y_m.noalias() = cpu::ConstMatrixView<float>(xq.values.data(), n, in) *
                        cpu::ConstMatrixView<float>(wq.values.data(), out, in).transpose();
        y_m *= xq.inverse * wq.inverse;
    }

    void backward(B& b, LinearSite site, const float* x, const float* w, const float* dy, float* dx, float* dw,
                  int64_t n, int64_t in, int64_t out) {
        if (!dx && !dw) return;
        const auto timed = b.op_scope(Op::matmul);
        LinearCastReport& r = report(site);
        const auto i = static_cast<size_t>(site.index());
        const Fp8Format fg = formats_.gradients;
        const Decoded g = decode(dy, n * out, fg, r.dy, dy_history_[i].next_scale(amax_of(dy, n * out), fg));
        const cpu::ConstMatrixView<float> g_m(g.values.data(), n, out);
        if (dx) {
            const Decoded& wq = weight(site, w, out * in);
            cpu::MatrixView<float> dx_m(dx, n, in);
            dx_m.noalias() = g_m * cpu::ConstMatrixView<float>(wq.values.data(), out, in);
            dx_m *= g.inverse * wq.inverse;
        }
        if (dw) {
            // The forward's scale (the same codes); without a forward, x's own (current).
            const Fp8Format f = formats_.activations;
            const float scale = x_scale_[i] > 0.0f ? x_scale_[i] : scale_for(amax_of(x, n * in), f);
            const Decoded xq = decode(x, n * in, f, r.x, scale);
            // Scaled before it is added: dw accumulates over micro-batches in the true scale.
            cpu::MatrixView<float>(dw, out, in).noalias() +=
                (g_m.transpose() * cpu::ConstMatrixView<float>(xq.values.data(), n, in)) *
                (g.inverse * xq.inverse);
        }
    }

    // Bytes it allocates for a model whose micro-batches have `rows` tokens: every site's
    // decoded W, and the decoded dY and x a backward holds at once (its largest projection).
    static int64_t footprint(const ModelConfig& c, int64_t rows) {
        int64_t weights = 0, transient = 0;
        for (const auto& p : projection_shapes(c)) {
            weights += p.in * p.out;
            transient = std::max(transient, rows * (p.in + p.out));
        }
        return static_cast<int64_t>(sizeof(float)) * (c.layers * weights + transient);
    }

    // Every history starts again: the next cast of each site and operand scales by its own amax.
    void restart_scaling() {
        for (auto* histories : {&x_history_, &dy_history_})
            for (auto& h : *histories) h = AmaxHistory{};
    }

    // The weights may have changed: every site's decoded W is stale.
    void weights_changed() {
        for (auto& c : weights_) c.from = nullptr;
    }

    // What the casts lost so far, one entry per site (layers × projections, in layer order).
    const std::vector<LinearCastReport>& cast_report() const { return reports_; }

private:
    // A tensor's codes decoded to float (exact), and 1 / its scale.
    struct Decoded {
        std::vector<float> values;
        float inverse = 1.0f;
    };

    struct CachedWeight {
        Decoded decoded;
        const float* from = nullptr;  // the W it was decoded from; null: none, or stale
    };

    // Site s's decoded W, cast now when it is stale or was made from another pointer.
    const Decoded& weight(LinearSite site, const float* w, int64_t count) {
        CachedWeight& c = weights_[static_cast<size_t>(site.index())];
        if (c.from != w || static_cast<int64_t>(c.decoded.values.size()) != count) {
            c.decoded = decode(w, count, formats_.weights, report(site).w, scale_for(amax_of(w, count), formats_.weights));
            c.from = w;
        }
        return c.decoded;
    }

    LinearCastReport& report(LinearSite site) {
        const int64_t i = site.index();
        require(i >= 0 && i < static_cast<int64_t>(reports_.size()),
                "fp8 linear: site " + site.name() + " is outside the model's layers");
        return reports_[static_cast<size_t>(i)];
    }

    // Cast and decoded in chunks over the threads (each counts its own, summed after), so the
    // result and the counts do not depend on the thread count.
    static float amax_of(const float* t, int64_t count) { return amax(std::span<const float>(t, static_cast<size_t>(count))); }

    static Decoded decode(const float* t, int64_t count, Fp8Format format, CastStats& stats, float scale) {
        const std::span<const float> in(t, static_cast<size_t>(count));
        float table[256];
        for (int code = 0; code < 256; ++code) table[code] = from_fp8(static_cast<uint8_t>(code), format);
        Decoded d{std::vector<float>(in.size()), 1.0f / scale};
        constexpr int64_t chunk = int64_t{1} << 16;
        const int64_t chunks = (count + chunk - 1) / chunk;
        std::vector<CastStats> per_chunk(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < chunks; ++c) {
            const int64_t begin = c * chunk, size = std::min(chunk, count - begin);
            uint8_t codes[chunk];
            quantize_into(in.subspan(static_cast<size_t>(begin), static_cast<size_t>(size)), scale, format,
                          std::span<uint8_t>(codes, static_cast<size_t>(size)), per_chunk[static_cast<size_t>(c)]);
            for (int64_t i = 0; i < size; ++i) d.values[static_cast<size_t>(begin + i)] = table[codes[i]];
        }
        for (const auto& c : per_chunk) stats += c;
        return d;
    }

    Fp8LinearFormats formats_;
    std::vector<LinearCastReport> reports_;
    std::vector<CachedWeight> weights_;
    std::vector<AmaxHistory> x_history_, dy_history_;  // per site
    std::vector<float> x_scale_;                       // per site: its last forward's x scale, 0 before one
};

}  // namespace slm::precision
