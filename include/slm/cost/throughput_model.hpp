#pragma once
// A throughput model calibrated on measured training steps, for GPUs and GPU counts we do not
// have. A step's time is split the way the trainer's per-op profile splits it, and each class is
// scaled by the resource that bounds it:
//   GEMMs (matmul)          model FLOPs ÷ (bf16 peak × efficiency(hidden, rows per GEMM)); in
//                           FP8 (precision "fp8"), ÷ (FP8 peak × its own efficiency, fitted on
//                           the FP8 points alone: their casts and amax passes are in it)
//   LM head + loss          its FLOPs ÷ (bf16 peak × efficiency)
//   attention               Flash: FLOPs ÷ (peak × efficiency); Naive: bytes of probabilities ÷
//                           (HBM bandwidth × efficiency) — it is memory-bound; per head_dim
//   elementwise (embedding, norms, RoPE, SwiGLU)   bytes ÷ (HBM bandwidth × efficiency)
//   optimizer               bytes ÷ HBM bandwidth × factor
//   idle (launch gaps)      per layer and micro-batch
// plus the communication a data-parallel scheme cannot hide (communication.hpp). Calibration
// fits the efficiencies by least squares on measured points; the efficiencies are assumed to
// carry over to other GPUs unchanged — the assumption a measurement on another card tests.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "slm/core/accounting.hpp"
#include "slm/core/error.hpp"
#include "slm/core/op_profile.hpp"
#include "slm/cost/communication.hpp"
#include "slm/cost/least_squares.hpp"
#include "slm/names.hpp"

namespace slm::cost {

// What one GPU computes in one optimizer step.
struct Workload {
    ModelConfig model;
    std::string attention;  // a name in names::Attention
    int64_t micro_batch = 1, seq = 1, grad_accum = 1;
    int64_t ffn_stored = 0;  // the FFN width the GEMMs run at; 0: this tree's (ffn_padded)
    std::string precision = std::string(precision::Bf16::name);  // a name in names::Precisions

    bool fp8() const { return precision == precision::Fp8::name; }

    double tokens() const { return static_cast<double>(micro_batch * seq * grad_accum); }
    double rows_per_gemm() const { return static_cast<double>(micro_batch * seq); }
    // A GEMM dimension that is not a multiple of 8 bf16 (16 bytes) leaves cuBLASLt only its
    // unaligned kernels: FFN 4147 (the paper's 500M, hidden 1536) ran 78K tokens/s against 152K
    // at FFN 4152 on one H100 (2026-12-07). The model learns the penalty where it has such points
    // (measured before the FFN was padded, ModelConfig::ffn_padded; today only an odd hidden).
    bool misaligned_gemm() const {
        const int64_t ffn = ffn_stored > 0 ? ffn_stored : model.ffn_padded();
        return model.hidden % 8 != 0 || ffn % 8 != 0;
    }
    double layer_gemm_flops() const {
        return 6.0 * static_cast<double>(matmul_parameter_count(model) - model.vocab * model.hidden) *
               tokens();
    }
    double lm_head_flops() const {
        return 6.0 * static_cast<double>(model.vocab * model.hidden) * tokens();
    }
    double attention_flops() const {
        return (flops_per_token(model, seq) - 6.0 * static_cast<double>(matmul_parameter_count(model))) *
               tokens();
    }
    // Naive attention writes and reads B·H·T² bf16 probabilities per layer, several times.
    double attention_probability_bytes() const {
        return 2.0 * static_cast<double>(model.layers * model.heads * micro_batch * grad_accum) *
               static_cast<double>(seq) * static_cast<double>(seq);
    }
    double elementwise_bytes() const {
        return 2.0 * static_cast<double>(model.layers * (model.hidden + model.ffn)) * tokens();
    }
    double optimizer_bytes() const { return 4.0 * static_cast<double>(parameter_count(model)); }
};

// A measured step: the per-op milliseconds from the trainer's profile.
struct MeasuredStep {
    Workload work;
    GpuSpec gpu;
    std::array<double, op_count> op_ms{};
    double idle_ms = 0;
    double step_ms = 0;
    double ms(Op op) const { return op_ms[static_cast<size_t>(op)]; }
    double elementwise_ms() const {
        return ms(Op::embedding) + ms(Op::norm) + ms(Op::rope) + ms(Op::swiglu);
    }
};

struct StepPrediction {
    double gemm_s = 0, loss_s = 0, attention_s = 0, elementwise_s = 0, optimizer_s = 0, idle_s = 0;
    CommunicationTime communication;
    double compute_s() const {
        return gemm_s + loss_s + attention_s + elementwise_s + optimizer_s + idle_s;
    }
    double step_s() const { return compute_s() + communication.exposed_seconds; }
};

class ThroughputModel {
public:
    // Fits the efficiencies to `points` (at least one per attention kind that will be predicted).
    // FP8 points fit the FP8 GEMM efficiency alone; every other class is fitted on bf16 points.
    static ThroughputModel calibrate(const std::vector<MeasuredStep>& all) {
        std::vector<MeasuredStep> points, fp8;
        for (const auto& p : all) (p.work.fp8() ? fp8 : points).push_back(p);
        require(!points.empty(), "the throughput model needs at least one measured bf16 point");
        ThroughputModel m;
        m.fit_fp8(fp8);
        std::vector<std::array<double, 4>> gemm_rows;
        std::vector<double> gemm_eff;
        double loss_num = 0, loss_den = 0, elem_num = 0, elem_den = 0, opt_num = 0, opt_den = 0;
        double idle_num = 0, idle_den = 0;
        std::map<std::pair<std::string, int64_t>, std::pair<double, double>> attention;
        for (const auto& p : points) {
            const auto& w = p.work;
            require(p.ms(Op::matmul) > 0, "measured point for '" + w.model.name +
                                              "' has no matmul time: was it profiled?");
            const double peak = p.gpu.bf16_tflops * 1e12, hbm = p.gpu.hbm_tb_per_s * 1e12;
            gemm_rows.push_back({1.0, std::log(static_cast<double>(w.model.hidden)),
                                 std::log(w.rows_per_gemm()), w.misaligned_gemm() ? 1.0 : 0.0});
            gemm_eff.push_back(w.layer_gemm_flops() / (peak * p.ms(Op::matmul) * 1e-3));
            // Ratios of sums: each class's efficiency weighted by how much time it takes.
            loss_num += w.lm_head_flops() / peak;
            loss_den += p.ms(Op::loss) * 1e-3;
            elem_num += p.elementwise_ms() * 1e-3 * hbm;
            elem_den += w.elementwise_bytes();
            opt_num += p.ms(Op::optimizer) * 1e-3 * hbm;
            opt_den += w.optimizer_bytes();
            idle_num += p.idle_ms * 1e-3;
            idle_den += static_cast<double>(w.model.layers * w.grad_accum);
            auto& a = attention[{w.attention, w.model.head_dim()}];
            a.first += attention_work(w, p.gpu);
            a.second += p.ms(Op::attention) * 1e-3;
            if (std::find(m.calibrated_on_.begin(), m.calibrated_on_.end(), w.model.name) ==
                m.calibrated_on_.end())
                m.calibrated_on_.push_back(w.model.name);
        }
        m.gemm_ = fit_linear(gemm_rows, gemm_eff);
        m.loss_efficiency_ = loss_den > 0 ? loss_num / loss_den : 0;
        m.elementwise_factor_ = elem_den > 0 ? elem_num / elem_den : 0;
        m.optimizer_factor_ = opt_den > 0 ? opt_num / opt_den : 0;
        m.idle_per_layer_s_ = idle_den > 0 ? idle_num / idle_den : 0;
        for (const auto& [key, sums] : attention)
            m.attention_efficiency_[key] = sums.second > 0 ? sums.first / sums.second : 0;
        return m;
    }

    // The step of `w` on `gpus` GPUs of type `gpu` under `scheme` (w is one GPU's share).
    StepPrediction predict(const Workload& w, const GpuSpec& gpu, int gpus = 1,
                           Scheme scheme = Scheme::single) const {
        const double peak = gpu.bf16_tflops * 1e12, hbm = gpu.hbm_tb_per_s * 1e12;
        require(peak > 0 && hbm > 0, "GPU '" + gpu.name + "' lacks bf16_tflops or hbm_tb_per_s");
        StepPrediction p;
        if (w.fp8()) {
            require(gpu.fp8_tflops > 0, "GPU '" + gpu.name + "' has no FP8 tensor cores (its catalog "
                                        "fp8_tflops is 0): an fp8 step cannot run there");
            require(has_fp8(), "the throughput model has no measured fp8 point to learn the FP8 GEMM rate from");
            p.gemm_s = w.layer_gemm_flops() / (gpu.fp8_tflops * 1e12 * fp8_gemm_efficiency(w));
        } else {
            p.gemm_s = w.layer_gemm_flops() / (peak * gemm_efficiency(w));
        }
        p.loss_s = loss_efficiency_ > 0 ? w.lm_head_flops() / (peak * loss_efficiency_) : 0;
        p.attention_s = attention_work(w, gpu) / attention_efficiency(w);
        p.elementwise_s = elementwise_factor_ * w.elementwise_bytes() / hbm;
        p.optimizer_s = optimizer_factor_ * w.optimizer_bytes() / hbm;
        p.idle_s = idle_per_layer_s_ * static_cast<double>(w.model.layers * w.grad_accum);
        // The backward does two thirds of a step's math: the window Ddp/ZeRO hide traffic in.
        const double math = p.gemm_s + p.loss_s + p.attention_s + p.elementwise_s;
        const ComputePhases phases{math / 3, 2 * math / 3, static_cast<int>(w.model.layers)};
        p.communication = step_communication(scheme, parameter_count(w.model), gpus, gpu, phases);
        return p;
    }

    // Efficiency of the layers' GEMMs for this workload, clamped to what cuBLAS reaches on an
    // ideal shape (788 of 989 TFLOP/s measured: docs/sources.md).
    double gemm_efficiency(const Workload& w) const {
        // Without a misaligned calibration point gemm_[3] is 0: such shapes are predicted aligned.
        const double e = gemm_[0] + gemm_[1] * std::log(static_cast<double>(w.model.hidden)) +
                         gemm_[2] * std::log(w.rows_per_gemm()) + gemm_[3] * (w.misaligned_gemm() ? 1.0 : 0.0);
        return std::clamp(e, 0.05, 0.80);
    }

    // The FP8 GEMMs' efficiency against the FP8 peak, the same regression on the FP8 points
    // (with fewer distinct shapes than terms, the terms that do not vary stay 0).
    double fp8_gemm_efficiency(const Workload& w) const {
        const double e = fp8_gemm_[0] + fp8_gemm_[1] * std::log(static_cast<double>(w.model.hidden)) +
                         fp8_gemm_[2] * std::log(w.rows_per_gemm());
        return std::clamp(e, 0.02, 0.80);
    }
    // Whether FP8 points were measured: only then are FP8 steps predicted.
    bool has_fp8() const { return has_fp8_; }

    const std::vector<std::string>& calibrated_on() const { return calibrated_on_; }

private:
    void fit_fp8(const std::vector<MeasuredStep>& fp8) {
        std::vector<std::array<double, 3>> rows;
        std::vector<double> eff;
        for (const auto& p : fp8) {
            const auto& w = p.work;
            require(p.gpu.fp8_tflops > 0, "measured fp8 point for '" + w.model.name + "' on GPU '" +
                                              p.gpu.name + "', whose catalog fp8_tflops is 0");
            require(p.ms(Op::matmul) > 0, "measured fp8 point for '" + w.model.name + "' has no matmul time");
            rows.push_back({1.0, std::log(static_cast<double>(w.model.hidden)), std::log(w.rows_per_gemm())});
            eff.push_back(w.layer_gemm_flops() / (p.gpu.fp8_tflops * 1e12 * p.ms(Op::matmul) * 1e-3));
        }
        has_fp8_ = !fp8.empty();
        if (has_fp8_) fp8_gemm_ = fit_linear(rows, eff);
    }

    // Flash is bounded by tensor-core math, Naive by memory traffic: each in its own unit of
    // capacity-seconds, so a GPU with more of that resource runs it proportionally faster.
    static double attention_work(const Workload& w, const GpuSpec& gpu) {
        const bool keeps_probabilities = names::with_attention(
            w.attention, [](auto tag) { return decltype(tag)::type::keeps_probabilities; });
        if (keeps_probabilities)
            return w.attention_probability_bytes() / (gpu.hbm_tb_per_s * 1e12);
        return w.attention_flops() / (gpu.bf16_tflops * 1e12);
    }

    // The calibrated efficiency for this attention kind at the nearest head_dim measured.
    double attention_efficiency(const Workload& w) const {
        double best = 0;
        int64_t best_distance = -1;
        for (const auto& [key, eff] : attention_efficiency_) {
            if (key.first != w.attention) continue;
            const int64_t distance = std::abs(key.second - w.model.head_dim());
            if (best_distance < 0 || distance < best_distance) best = eff, best_distance = distance;
        }
        require(best > 0, "the throughput model has no measured point with attention '" +
                              w.attention + "' to calibrate on");
        return best;
    }

    std::array<double, 4> gemm_{};
    std::array<double, 3> fp8_gemm_{};
    bool has_fp8_ = false;
    double loss_efficiency_ = 0, elementwise_factor_ = 0, optimizer_factor_ = 0;
    double idle_per_layer_s_ = 0;
    std::map<std::pair<std::string, int64_t>, double> attention_efficiency_;
    std::vector<std::string> calibrated_on_;
};

}  // namespace slm::cost
