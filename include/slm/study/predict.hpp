#pragma once
// Predicted points: the throughput model calibrated on measured lines, applied to configurations
// not measured — first, before they run, to this GPU's remaining grid points (frozen, so the
// error against the later measurement is honest), then to every GPU type and count in the catalog.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "slm/core/presets.hpp"
#include "slm/cost/gpu_catalog.hpp"
#include "slm/cost/memory_model.hpp"
#include "slm/cost/throughput_model.hpp"
#include "slm/study/grid.hpp"
#include "slm/study/measure.hpp"
#include "slm/study/records.hpp"

namespace slm::study {

// One-process memory of (preset, attention, micro-batch, seq) with the GPU backend's precision.
using MemoryEstimator =
    std::function<slm::MemoryEstimate(const slm::ModelConfig&, const std::string&, int64_t, int64_t)>;

struct Predictor {
    slm::cost::ThroughputModel model;
    MemoryEstimator estimate;
    slm::Precision precision;
};

inline slm::cost::MeasuredStep measured_step(const Json& line,
                                             const std::vector<slm::cost::GpuSpec>& catalog) {
    auto model = slm::presets::by_name(line.at("preset").get<std::string>());
    const int64_t seq = line.at("seq").get<int64_t>();
    model.max_seq = std::max(model.max_seq, seq);
    slm::cost::MeasuredStep s{{model, line.at("attention").get<std::string>(),
                               line.at("micro_batch").get<int64_t>(), seq,
                               line.value("grad_accum", int64_t{1})},
                              slm::cost::find_by_name(catalog, line.at("gpu").get<std::string>())};
    s.work.ffn_stored = line.value("ffn_stored", model.ffn);  // absent: a tree before the padding
    s.work.precision = precision_of(line);
    const auto& ops = line.at("ops_ms");
    for (int i = 0; i < slm::op_count; ++i)
        s.op_ms[static_cast<size_t>(i)] = ops.value(std::string(slm::op_names[static_cast<size_t>(i)]), 0.0);
    s.idle_ms = ops.value("idle", 0.0);
    s.step_ms = line.at("step_ms").get<double>();
    return s;
}

inline bool in_catalog(const std::vector<slm::cost::GpuSpec>& catalog, const std::string& name) {
    for (const auto& g : catalog)
        if (g.name == name) return true;
    return false;
}

// The single-GPU measured lines of `presets` on catalog GPUs, as calibration points (may be
// empty). Data-parallel lines calibrate nothing: their idle time includes waiting for peers, and
// they are what the model is checked against.
inline std::vector<slm::cost::MeasuredStep> calibration_points(
    const Records& records, const std::vector<std::string>& presets,
    const std::vector<slm::cost::GpuSpec>& catalog) {
    std::vector<slm::cost::MeasuredStep> points;
    for (const auto& l : records.lines()) {
        if (l.value("kind", "") != "measured" || !l.contains("ops_ms")) continue;
        if (l.value("gpus", 1) != 1 || l.value("parallel", std::string(parallel::Single::name)) != parallel::Single::name) continue;
        if (!in_catalog(catalog, l.value("gpu", ""))) continue;  // a CPU run, say
        for (const auto& p : presets)
            if (l.value("preset", "") == p) points.push_back(measured_step(l, catalog));
    }
    return points;
}

// Whether the model prices point p on `gpu`: every bf16 point; an fp8 one once FP8 points were
// measured (the model learns the FP8 GEMM rate from them) and only on a GPU with FP8 tensor cores.
inline bool predictable(const Predictor& pr, const slm::cost::GpuSpec& gpu, const Point& p) {
    return p.precision == precision::Bf16::name || (pr.model.has_fp8() && gpu.fp8_tflops > 0);
}

inline Json predicted_line(const Predictor& pr, const slm::cost::GpuSpec& gpu, int gpus,
                           slm::cost::Scheme scheme, const Point& p) {
    auto model = slm::presets::by_name(p.preset);
    model.max_seq = std::max(model.max_seq, p.seq);
    slm::cost::Workload work{model, p.attention, p.micro_batch, p.seq, 1};
    work.precision = p.precision;
    const auto step = pr.model.predict(work, gpu, gpus, scheme);
    const double per_gpu = work.tokens() / step.step_s();
    const auto one = pr.estimate(model, p.attention, p.micro_batch, p.seq);
    const int64_t memory = slm::cost::memory_per_gpu(one, model, pr.precision, scheme, gpus);
    const int64_t limit = static_cast<int64_t>(gpu.memory_gb * 0.97 * 1024 * 1024 * 1024);
    Point named = p;
    named.parallel = std::string(slm::cost::scheme_name(scheme));
    Json line{{"kind", "predicted"},
              {"key", key(gpu.name, gpus, named)},
              {"gpu", gpu.name},
              {"gpus", gpus},
              {"preset", p.preset},
              {"params", slm::parameter_count(model)},
              {"attention", p.attention},
              {"parallel", named.parallel},
              {"precision", p.precision},
              {"micro_batch", p.micro_batch},
              {"seq", p.seq},
              {"grad_accum", 1},
              {"global_batch", p.micro_batch * gpus},
              {"step_ms", step.step_s() * 1e3},
              {"tokens_per_s", per_gpu * gpus},
              {"tokens_per_s_per_gpu", per_gpu},
              {"mfu_pct", 100.0 * per_gpu * slm::flops_per_token(model, p.seq) / (gpu.bf16_tflops * 1e12)},
              {"memory_gib", gib(memory)},
              {"memory_limit_gib", gib(limit)},
              {"fits", memory <= limit},
              {"calibrated_on", pr.model.calibrated_on()}};
    add_cost(line, per_gpu * gpus, gpus, gpu.dollars_per_hour);
    line["ops_ms"] = Json{{"matmul", step.gemm_s * 1e3},         {"loss", step.loss_s * 1e3},
                          {"attention", step.attention_s * 1e3}, {"elementwise", step.elementwise_s * 1e3},
                          {"optimizer", step.optimizer_s * 1e3}, {"idle", step.idle_s * 1e3},
                          {"communication", step.communication.exposed_seconds * 1e3}};
    return line;
}

// This GPU's grid points that have no measurement yet, predicted now and kept: the check of the
// model against the measurement that follows. At `gpus` GPUs each point is predicted under its
// own p.parallel scheme; the line's check_key is the key the measured line will carry.
inline std::vector<Json> predictions_before_measurement(const Predictor& pr, const Records& records,
                                                        const slm::cost::GpuSpec& gpu,
                                                        const std::string& device_gpu,
                                                        const std::vector<Point>& grid, int gpus = 1) {
    std::vector<Json> lines;
    for (const auto& p : grid) {
        const std::string k = key(device_gpu, gpus, p);
        if (!predictable(pr, gpu, p)) continue;
        if (records.has_measurement(k) || records.has("predicted", "before/" + k)) continue;
        Json line = predicted_line(pr, gpu, gpus, slm::cost::scheme_by_name(p.parallel), p);
        slm::require(line.at("key") == k, "sweep: the prediction's key " + line.at("key").get<std::string>() +
                                              " differs from the measured point's " + k);
        line["key"] = "before/" + k;
        line["check_key"] = k;
        line["before_measurement"] = true;
        lines.push_back(std::move(line));
    }
    return lines;
}

// Whether this preset's kernels have no variant for `attention` (a point of it skipped as
// "unsupported", GPU Flash at head_dim 96 say): the same code runs on every GPU, so predicting
// it elsewhere would price a configuration nobody can train.
// unsupported_kernels: every such (preset, attention) of the file, read once for many queries.
inline std::set<std::pair<std::string, std::string>> unsupported_kernels(const Records& records) {
    std::set<std::pair<std::string, std::string>> out;
    for (const auto& l : records.lines())
        if (l.value("kind", "") == "skipped" && l.value("reason", "").starts_with("unsupported"))
            out.emplace(l.value("preset", ""), l.value("attention", ""));
    return out;
}
inline bool unsupported(const Records& records, const std::string& preset, const std::string& attention) {
    return unsupported_kernels(records).contains({preset, attention});
}

// The current model's predictions of the measured single-GPU points of presets it was not
// calibrated on: its out-of-sample error, recomputed at every derivation (the frozen
// before-measurement lines check the model of the moment they were made, which a later
// --calibrate-on replaces). Keyed "check/<key>", check_key naming the measured point.
inline std::vector<Json> out_of_sample_checks(const Predictor& pr, const Records& records,
                                              const std::vector<slm::cost::GpuSpec>& catalog) {
    const auto& calibrated = pr.model.calibrated_on();
    std::vector<Json> lines;
    for (const auto& m : records.lines()) {
        if (m.value("kind", "") != "measured" || m.value("gpus", 0) != 1 || !m.contains("ops_ms")) continue;
        if (precision_of(m) != precision::Bf16::name && !pr.model.has_fp8()) continue;
        const std::string preset = m.at("preset").get<std::string>(), gpu = m.at("gpu").get<std::string>();
        if (std::find(calibrated.begin(), calibrated.end(), preset) != calibrated.end() || !in_catalog(catalog, gpu))
            continue;
        const Point p{preset, m.at("attention").get<std::string>(), m.at("parallel").get<std::string>(),
                      m.at("micro_batch").get<int64_t>(), m.at("seq").get<int64_t>()};
        if (p.parallel != parallel::Single::name) continue;
        Json line = predicted_line(pr, slm::cost::find_by_name(catalog, gpu), 1, slm::cost::Scheme::single, p);
        line["check_key"] = line.at("key");
        line["key"] = "check/" + line.at("key").get<std::string>();
        line["out_of_sample"] = true;
        lines.push_back(std::move(line));
    }
    return lines;
}

// Every catalog GPU × count × scheme for the presets and micro-batches of the grid: Flash only
// past one GPU (attention choice does not change with the count), both kinds at one.
inline std::vector<Json> predictions_everywhere(const Predictor& pr,
                                                const std::vector<slm::cost::GpuSpec>& catalog,
                                                const std::vector<int64_t>& counts,
                                                const std::vector<Point>& grid) {
    using slm::cost::Scheme;
    std::vector<Json> lines;
    for (const auto& gpu : catalog)
        for (int64_t gpus : counts)
            for (const auto& p : grid) {
                if (gpus > 1 && p.attention != attention::Flash::name) continue;
                if (!predictable(pr, gpu, p)) continue;
                if (gpus == 1) {
                    lines.push_back(predicted_line(pr, gpu, 1, Scheme::single, p));
                    continue;
                }
                for (Scheme s : {Scheme::ddp, Scheme::zero1, Scheme::zero2, Scheme::zero3})
                    lines.push_back(predicted_line(pr, gpu, static_cast<int>(gpus), s, p));
            }
    return lines;
}

}  // namespace slm::study
