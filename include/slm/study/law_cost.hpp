#pragma once
// Loss per dollar as the paper defines it (arXiv 2410.19456: Loss/$ = Loss/Token × Token/s ×
// 1/($/s), with the loss "from scaling laws"): for each measured or predicted configuration, the
// scaling law (cost/scaling_law.hpp) turns the configuration's tokens/s and $/hour into
//   - the hours and dollars to train to `tokens_per_parameter` (20: Chinchilla's ratio) and the
//     law's loss there,
//   - the loss each budget (e.g. $10, $100, $1,000) buys,
//   - whether its global batch exceeds the compute-optimal batch for that training compute
//     (DeepSeek LLM 2024): the law assumes a well-tuned batch, so above it the law's loss is
//     optimistic.
// Short measured loss curves never feed these numbers; they only check the law's slope.
// The best configuration per preset is the one with the fewest dollars to the target.
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "slm/core/config.hpp"
#include "slm/cost/scaling_law.hpp"
#include "slm/study/grid.hpp"
#include "slm/study/records.hpp"

namespace slm::study {

struct LawCostOptions {
    cost::ScalingLaw law = cost::scaling_law_by_name(cost::default_scaling_law_name());
    double tokens_per_parameter = 20;
    std::vector<double> budgets = {10, 100, 1000};  // dollars
};

// The law_cost line of one configuration (a measured or a current predicted line that has
// tokens/s and a price). `config`: the preset's model (for DeepSeek's FLOPs per token).
inline Json law_cost(const Json& point, const ModelConfig& config, const LawCostOptions& o) {
    const double params = point.at("params").get<double>();
    const double tokens_per_s = point.at("tokens_per_s").get<double>();
    const double per_hour = point.at("dollars_per_gpu_hour").get<double>() * point.at("gpus").get<double>();
    const int64_t seq = point.at("seq").get<int64_t>();
    Json line{{"kind", "law_cost"},
              {"key", point.at("key")},
              {"source", point.at("kind") == "measured" ? "measured" : "predicted"}};
    for (const char* f : {"gpu", "gpus", "preset", "params", "attention", "parallel", "micro_batch",
                          "global_batch", "seq", "tokens_per_s"})
        line[f] = point.at(f);
    line["precision"] = precision_of(point);
    line["law"] = o.law.name;
    // The fit itself, so a report cites and uses the numbers that made this line.
    line["law_fit"] = Json{{"E", o.law.E}, {"A", o.law.A}, {"B", o.law.B}, {"alpha", o.law.alpha},
                           {"beta", o.law.beta}, {"source", o.law.source}};
    line["dollars_per_hour"] = per_hour;
    const auto target = cost::cost_to_tokens_per_parameter(o.law, params, o.tokens_per_parameter,
                                                           tokens_per_s, per_hour);
    line["tokens_per_parameter"] = o.tokens_per_parameter;
    line["target_tokens"] = target.tokens;
    line["hours_to_target"] = target.hours;
    line["dollars_to_target"] = target.dollars;
    line["loss_at_target"] = target.loss;
    Json budgets = Json::array();
    for (const double dollars : o.budgets) {
        const auto b = cost::cost_for_budget(o.law, params, dollars, tokens_per_s, per_hour);
        budgets.push_back(Json{{"dollars", dollars}, {"tokens", b.tokens}, {"hours", b.hours}, {"loss", b.loss}});
    }
    line["budgets"] = budgets;
    const double batch_tokens = point.at("global_batch").get<double>() * static_cast<double>(seq);
    const double compute = cost::deepseek_flops_per_token(config.layers, config.hidden, seq) * target.tokens;
    line["global_batch_tokens"] = batch_tokens;
    line["optimal_batch_tokens"] = cost::optimal_batch_tokens(compute);
    line["batch_beyond_optimal"] = cost::batch_beyond_optimal(batch_tokens, compute);
    return line;
}

// Best by the law: per (source, preset, GPU, count) and per (source, preset) over every GPU and
// count (the answer a user came for), the configuration with the fewest dollars to the target.
inline std::vector<Json> best_by_law(const std::vector<Json>& law_lines) {
    using Group = std::tuple<std::string, std::string, std::string, int64_t>;
    std::map<Group, const Json*> best;
    auto consider = [&](const Group& g, const Json& l) {
        const auto it = best.find(g);
        if (it == best.end() || l.at("dollars_to_target").get<double>() < it->second->at("dollars_to_target").get<double>())
            best[g] = &l;
    };
    for (const auto& l : law_lines) {
        const auto source = l.at("source").get<std::string>(), preset = l.at("preset").get<std::string>();
        consider({source, preset, l.at("gpu").get<std::string>(), l.at("gpus").get<int64_t>()}, l);
        consider({source, preset, "", 0}, l);  // any GPU, any count
    }
    std::vector<Json> lines;
    for (const auto& [g, l] : best) {
        Json b{{"kind", "best"}, {"by", std::get<2>(g).empty() ? "law_answer" : "law_dollars_to_target"},
               {"source", std::get<0>(g)}, {"preset", std::get<1>(g)}, {"key", l->at("key")}};
        for (const char* f : {"gpu", "gpus", "attention", "parallel", "micro_batch", "global_batch", "law",
                              "hours_to_target", "loss_at_target", "batch_beyond_optimal"})
            b[f] = l->at(f);
        b["precision"] = precision_of(*l);
        b["value"] = l->at("dollars_to_target");
        lines.push_back(std::move(b));
    }
    return lines;
}

}  // namespace slm::study
