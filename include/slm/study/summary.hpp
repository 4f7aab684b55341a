#pragma once
// What the sweep concludes: loss per dollar for every measured and predicted configuration, the
// best configuration per (preset, GPU, count), and the check of the predictions made before
// their measurement.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "slm/cost/loss_curve.hpp"
#include "slm/study/grid.hpp"
#include "slm/study/records.hpp"

namespace slm::study {

struct Budget {
    double dollars = 0;      // loss reached for this much money
    double target_loss = 0;  // and money needed to reach this loss
};

struct FittedCurve {
    std::string preset;
    int64_t global_batch = 0;
    slm::cost::LossCurve curve;
    double last_loss = 0;  // the last measured validation loss
};

inline std::vector<slm::cost::LossPoint> curve_points(const Json& line) {
    std::vector<slm::cost::LossPoint> points;
    for (const auto& p : line.at("points")) points.push_back({p.at(0).get<double>(), p.at(1).get<double>()});
    return points;
}

inline std::vector<FittedCurve> fitted_curves(const Records& records) {
    std::vector<FittedCurve> curves;
    for (const auto& l : records.lines())
        if (l.value("kind", "") == "loss_curve")
            curves.push_back({l.at("preset").get<std::string>(), l.at("global_batch").get<int64_t>(),
                              slm::cost::fit_loss_curve(curve_points(l)), curve_points(l).back().loss});
    return curves;
}

// The preset's curve measured at the global batch nearest (in ratio) to this configuration's.
inline const FittedCurve* curve_for(const std::vector<FittedCurve>& curves, const std::string& preset,
                                    int64_t global_batch) {
    const FittedCurve* best = nullptr;
    double distance = 0;
    for (const auto& c : curves) {
        if (c.preset != preset) continue;
        const double d = std::abs(std::log(static_cast<double>(global_batch) / static_cast<double>(c.global_batch)));
        if (!best || d < distance) best = &c, distance = d;
    }
    return best;
}

inline Json loss_per_dollar(const Json& point, const FittedCurve& fc, const Budget& budget) {
    const double per_dollar = point.at("tokens_per_dollar").get<double>();
    Json line{{"kind", "loss_per_dollar"},
              {"key", point.at("key")},
              {"source", point.at("kind") == "measured" ? "measured" : "predicted"}};
    for (const char* f : {"gpu", "gpus", "preset", "attention", "parallel", "micro_batch", "global_batch"})
        line[f] = point.at(f);
    line["precision"] = precision_of(point);
    line["curve_global_batch"] = fc.global_batch;
    const auto spent = slm::cost::loss_for_budget(fc.curve, per_dollar, budget.dollars);
    line["budget_dollars"] = budget.dollars;
    line["loss_at_budget"] = spent.loss;
    line["budget_extrapolated"] = spent.extrapolated;
    line["target_loss"] = budget.target_loss;
    if (const auto needed = slm::cost::budget_for_loss(fc.curve, per_dollar, budget.target_loss)) {
        line["dollars_to_target"] = needed->dollars;
        line["target_extrapolated"] = needed->extrapolated;
    } else {
        line["dollars_to_target"] = nullptr;  // at or below the fitted floor E: never, by the fit
        line["target_extrapolated"] = true;
    }
    return line;
}

// Best per (source, preset, gpu, gpus): highest tokens/s, and lowest loss at the budget.
inline std::vector<Json> best_lines(const std::vector<Json>& points, const std::vector<Json>& losses) {
    using Group = std::tuple<std::string, std::string, std::string, int64_t>;
    std::map<Group, const Json*> fastest, cheapest;
    auto group = [](const Json& l, const std::string& source) {
        return Group{source, l.at("preset").get<std::string>(), l.at("gpu").get<std::string>(),
                     l.at("gpus").get<int64_t>()};
    };
    for (const auto& p : points) {
        if (!p.value("fits", true)) continue;
        const Group g = group(p, p.at("kind") == "measured" ? "measured" : "predicted");
        if (!fastest[g] || p.at("tokens_per_s").get<double>() > fastest[g]->at("tokens_per_s").get<double>())
            fastest[g] = &p;
    }
    for (const auto& l : losses) {
        const Group g = group(l, l.at("source").get<std::string>());
        if (!cheapest[g] || l.at("loss_at_budget").get<double>() < cheapest[g]->at("loss_at_budget").get<double>())
            cheapest[g] = &l;
    }
    std::vector<Json> lines;
    auto emit = [&](const std::map<Group, const Json*>& best, const char* by, const char* field) {
        for (const auto& [g, l] : best)
            lines.push_back(Json{{"kind", "best"},     {"by", by},
                                 {"source", std::get<0>(g)}, {"preset", std::get<1>(g)},
                                 {"gpu", std::get<2>(g)},    {"gpus", std::get<3>(g)},
                                 {"key", l->at("key")},      {"attention", l->at("attention")},
                                 {"parallel", l->at("parallel")}, {"micro_batch", l->at("micro_batch")},
                                 {"precision", precision_of(*l)},
                                 {"value", l->at(field)}});
    };
    emit(fastest, "tokens_per_s", "tokens_per_s");
    emit(cheapest, "loss_per_dollar", "loss_at_budget");
    return lines;
}

// Budget defaults, when not given: the money the fastest measured configuration of the median
// preset spends on that preset's curve (so the budget lies inside measured ranges), and the
// highest last measured loss among the curves (a loss every curve reached within its run; the
// fit's value there would inherit a poor fit's error).
inline Budget default_budget(const std::vector<FittedCurve>& curves, const std::vector<Json>& measured) {
    Budget b;
    std::vector<double> dollars;
    for (const auto& c : curves) {
        double best = 0;
        for (const auto& m : measured)
            if (m.at("preset") == c.preset && m.contains("tokens_per_dollar"))
                best = std::max(best, m.at("tokens_per_dollar").get<double>());
        if (best > 0) dollars.push_back(c.curve.max_tokens / best);
        b.target_loss = std::max(b.target_loss, c.last_loss);
    }
    if (!dollars.empty()) {
        std::sort(dollars.begin(), dollars.end());
        b.dollars = dollars[dollars.size() / 2];
    }
    return b;
}

// One line per frozen prediction whose point has since been measured: predicted vs measured.
inline void print_prediction_check(const Records& records) {
    bool header = false;
    for (const auto& p : records.lines()) {
        if (p.value("kind", "") != "predicted" || !p.value("before_measurement", false)) continue;
        for (const auto& m : records.lines()) {
            if (m.value("kind", "") != "measured" || m.value("key", "") != p.value("check_key", "")) continue;
            if (!header) std::printf("\nprediction made before measurement vs measurement (tokens/s):\n");
            header = true;
            const double pred = p.at("tokens_per_s").get<double>(), got = m.at("tokens_per_s").get<double>();
            std::printf("  %-44s predicted %10.0f  measured %10.0f  error %+6.1f%%\n",
                        m.at("key").get<std::string>().c_str(), pred, got, 100.0 * (pred - got) / got);
        }
    }
    // The current model on the measured presets it was not calibrated on (predict.hpp).
    double worst = 0;
    int count = 0;
    std::string calibrated;
    for (const auto& p : records.lines()) {
        if (!p.value("out_of_sample", false)) continue;
        for (const auto& m : records.lines())
            if (m.value("kind", "") == "measured" && m.value("key", "") == p.value("check_key", "")) {
                const double got = m.at("tokens_per_s").get<double>();
                worst = std::max(worst, std::abs(p.at("tokens_per_s").get<double>() - got) / got * 100.0);
                ++count;
            }
        if (calibrated.empty())
            for (const auto& c : p.value("calibrated_on", Json::array())) calibrated += (calibrated.empty() ? "" : ",") + c.get<std::string>();
    }
    if (count > 0)
        std::printf("\nthe model now (calibrated on %s) on %d measured points of other presets: largest "
                    "tokens/s error %.1f%%\n", calibrated.c_str(), count, worst);
}

inline void print_best(const std::vector<Json>& best) {
    std::printf("\nbest measured configuration per preset (by tokens/s):\n");
    for (const auto& b : best)
        if (b.at("source") == "measured" && b.at("by") == "tokens_per_s")
            std::printf("  %-11s on %d x %-10s %s, %s, micro-batch %lld: %.0f tokens/s\n",
                        b.at("preset").get<std::string>().c_str(), b.at("gpus").get<int>(),
                        b.at("gpu").get<std::string>().c_str(), b.at("attention").get<std::string>().c_str(),
                        b.at("parallel").get<std::string>().c_str(),
                        static_cast<long long>(b.at("micro_batch").get<int64_t>()), b.at("value").get<double>());
}

}  // namespace slm::study
