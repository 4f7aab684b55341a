#pragma once
// The data-parallel part of the sweep: every grid point under each policy of --parallel other
// than single, at gpus = W (the ranks this job has). Before each point rank 0 decides, and
// broadcasts, whether it is measured, already in the file (a resumed run measures nothing
// twice), ruled out by the per-rank memory pre-check ("skipped", as alone), or whether the sweep
// stops at --time-limit; all ranks then act on that one decision.
//
// Before the first point it measures, rank 0 freezes the throughput model's predictions for all
// the points still to be measured (the "before/" lines, each with the check_key of its measured
// line), calibrated on this GPU's single-GPU measurements of the --calibrate-on presets: those
// must be in the file already (the sweep without --parallel makes them; tools/study.sh with
// STUDY_GPUS=N runs both). Where the device is not in the catalog (a CPU, unless --catalog adds
// a "CPU" entry) nothing can be predicted, and it says so.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "slm/parallel/single.hpp"
#include "slm/study/predict.hpp"
#include "slm/study/ranks.hpp"
#include "slm/study/records.hpp"
#include "slm/study/target.hpp"

namespace slm::study {

// The grid's points under each listed policy except single: grid order, policies within a point.
inline std::vector<Point> ranked_points(const std::vector<Point>& grid, const std::vector<std::string>& policies) {
    std::vector<Point> points;
    for (const auto& p : grid)
        for (const auto& policy : policies) {
            if (policy == parallel::Single::name) continue;
            Point q = p;
            q.parallel = policy;
            points.push_back(q);
        }
    return points;
}

struct RankedSweep {
    Target& target;
    Ranks& ranks;
    Records* records;  // rank 0's; nullptr on the others
    const std::vector<slm::cost::GpuSpec>& catalog;
    Predictor predictor;
    std::vector<std::string> calibrate_on;
    std::vector<Point> grid;  // the single-GPU grid: its calibration points must be measured
    Timing timing;
    std::function<bool(double)> over_limit;  // rank 0's clock: would a point this long pass it?
};

namespace ranked_detail {

// Rank 0: the before/ lines for `points` at `gpus`, or an error saying what to run first.
inline std::vector<Json> frozen_predictions(const RankedSweep& s, const std::vector<Point>& points, int gpus) {
    const Device& d = s.target.device;
    std::vector<std::string> missing;
    for (const auto& p : s.grid)
        if (std::find(s.calibrate_on.begin(), s.calibrate_on.end(), p.preset) != s.calibrate_on.end() &&
            !s.records->has_measurement(key(d.gpu, 1, p)))
            missing.push_back(key(d.gpu, 1, p));
    const auto calibration = calibration_points(*s.records, s.calibrate_on, s.catalog);
    if (!missing.empty() || calibration.empty()) {
        std::string presets;
        for (const auto& c : s.calibrate_on) presets += (presets.empty() ? "" : ",") + c;
        slm::fail("--parallel at " + std::to_string(gpus) + " GPU(s): every point is predicted before it is " +
                  "measured, by the throughput model calibrated on this GPU's single-GPU measurements of the " +
                  "--calibrate-on presets (" + presets + "), and " + s.records->file().string() + " lacks " +
                  (missing.empty() ? std::string("them") : std::to_string(missing.size()) + " of them (" + missing[0] +
                                                               (missing.size() > 1 ? ", ..." : "") + ")") +
                  ": first run the same sweep on one GPU without --parallel and without a launcher (same --out, "
                  "--presets, --micro-batches, --attention, --seq; tools/study.sh with STUDY_GPUS=N does both), "
                  "or pass --calibrate-on presets that are measured");
    }
    Predictor pr = s.predictor;
    pr.model = slm::cost::ThroughputModel::calibrate(calibration);
    return predictions_before_measurement(pr, *s.records, slm::cost::find_by_name(s.catalog, d.gpu), d.gpu, points, gpus);
}

inline void print_point(int done, int todo, const Point& p, int gpus, const Json& line) {
    std::printf("[%d/%d] %s %s mb %lld, %s x %d: ", done, todo, p.preset.c_str(), p.attention.c_str(),
                static_cast<long long>(p.micro_batch), p.parallel.c_str(), gpus);
    if (line.at("kind") == "measured") {
        std::printf("%.0f tokens/s (%.0f per GPU), step %.1f ms, communication %.1f ms", line.at("tokens_per_s").get<double>(),
                    line.at("tokens_per_s_per_gpu").get<double>(), line.at("step_ms").get<double>(),
                    line.at("ops_ms").value("communication", 0.0));
        if (line.contains("memory_gib")) std::printf(", %.2f GiB on the fullest rank", line.at("memory_gib").get<double>());
        std::printf("\n");
    } else {
        std::printf("skipped, %s (estimate %.2f GiB per rank)\n", line.at("reason").get<std::string>().c_str(),
                    line.at("estimate_gib").get<double>());
    }
    std::fflush(stdout);
}

}  // namespace ranked_detail

// Every rank calls it with the same arguments. Returns true when stopped at the time limit.
inline bool run_ranked_points(RankedSweep& s, const std::vector<Point>& points) {
    const Device& d = s.target.device;
    const int gpus = s.ranks.world_size();
    const bool lead = s.ranks.lead();
    slm::require(static_cast<bool>(s.target.measure_ranked),
                 "--parallel on the CPU: its ranks talk over MPI, and this sweep was built without MPI: " +
                     std::string(slm::parallel::no_mpi_fix) + "; or leave --parallel at single");
    int todo = 0, done = 0;
    if (lead) {
        for (const auto& p : points) todo += !s.records->has_measurement(key(d.gpu, gpus, p));
        std::printf("sweep on %d x %s (%s), data-parallel: %zu points, %zu already in %s\n", gpus, d.gpu.c_str(),
                    d.device_name.c_str(), points.size(), points.size() - static_cast<size_t>(todo),
                    s.records->file().c_str());
        std::fflush(stdout);
    }
    bool frozen = false;
    double point_seconds = s.target.on_gpu ? 30 : 10;  // a guess until the first point is timed
    for (const auto& p : points) {
        const std::string k = key(d.gpu, gpus, p);
        auto model = slm::presets::by_name(p.preset);
        model.max_seq = std::max(model.max_seq, p.seq);
        int64_t estimate = 0;
        const std::string decision = s.ranks.decided_by_rank0([&]() -> std::string {
            if (s.records->has_measurement(k)) return "have";
            if (!frozen) {
                frozen = true;
                if (in_catalog(s.catalog, d.gpu)) {
                    const auto lines = ranked_detail::frozen_predictions(s, points, gpus);
                    if (!lines.empty())
                        std::printf("froze %zu predictions (before/...) of the points still to measure\n", lines.size());
                    for (auto l : lines) s.records->append(std::move(l));
                } else {
                    std::printf("note: '%s' is not in the GPU catalog, so nothing is predicted before these points "
                                "(--catalog can add it)\n", d.gpu.c_str());
                }
            }
            if (s.over_limit(point_seconds)) return "stop";
            estimate = per_rank_estimate(s.target.estimate(model, p.attention, p.micro_batch, p.seq), model,
                                         s.target.precision, p, gpus);
            if (d.memory_limit > 0 && estimate > d.memory_limit) {
                Json skipped = Json{{"kind", "skipped"}};
                skipped.update(identity(d, p, model, gpus));
                skipped["reason"] = "does not fit";
                skipped["estimate_gib"] = gib(estimate);
                skipped["memory_limit_gib"] = gib(d.memory_limit);
                ranked_detail::print_point(++done, todo, p, gpus, skipped);
                s.records->append(std::move(skipped));
                return "skip";
            }
            return "run";
        });
        if (decision == "stop") return true;
        if (decision != "run") continue;
        const auto t0 = std::chrono::steady_clock::now();
        Json line = s.target.measure_ranked(p, s.timing, s.ranks);
        if (!lead) continue;
        point_seconds = std::max(point_seconds * 0.5,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1.5);
        line["estimate_gib"] = gib(estimate);
        if (d.memory_limit > 0) line["memory_limit_gib"] = gib(d.memory_limit);
        ranked_detail::print_point(++done, todo, p, gpus, line);
        s.records->append(std::move(line));
    }
    return false;
}

}  // namespace slm::study
