// The sweep's loss per dollar from the scaling law: one configuration's dollars and hours to 20
// tokens per parameter, the law's loss there and at each budget, the optimal-batch flag, and the
// best configuration per preset (the answer line) by dollars to the target.
#include <doctest/doctest.h>

#include <cmath>

#include "slm/core/presets.hpp"
#include "slm/study/law_cost.hpp"

namespace sweep = slm::study;
using sweep::Json;

namespace {

// A measured line with what law_cost reads: paper_1b (970,458,240 parameters) at seq 1024.
Json point(const std::string& gpu, int64_t gpus, int64_t global_batch, double tokens_per_s, double price) {
    return Json{{"kind", "measured"}, {"key", gpu + "/" + std::to_string(gpus) + "/" + std::to_string(global_batch)},
                {"gpu", gpu}, {"gpus", gpus}, {"preset", "paper_1b"}, {"params", 970458240},
                {"attention", "flash"}, {"parallel", "ddp"}, {"micro_batch", global_batch / gpus},
                {"global_batch", global_batch}, {"seq", 1024}, {"tokens_per_s", tokens_per_s},
                {"dollars_per_gpu_hour", price}, {"tokens_per_dollar", tokens_per_s * 3600 / (price * gpus)}};
}

}  // namespace

TEST_CASE("law cost: dollars, hours and the law's loss to 20 tokens per parameter, and at budgets") {
    const auto config = slm::presets::by_name("paper_1b");
    sweep::LawCostOptions o;  // besiroglu2024, 20 tokens per parameter, $10/$100/$1000
    // 4 GPUs at $2.50 per GPU-hour = $10 per hour, 100,000 tokens/s.
    const Json l = sweep::law_cost(point("H100-80GB", 4, 64, 100000, 2.5), config, o);
    CHECK(l.at("law") == "besiroglu2024");
    CHECK(l.at("law_fit").at("beta").get<double>() == 0.3658);  // the numbers used travel with it
    CHECK(l.at("law_fit").at("source").get<std::string>().find("2404.10102") != std::string::npos);
    // 20 x 970,458,240 = 19,409,164,800 tokens; / 1e5 / 3600 = 53.9143466667 h; x $10 = $539.143466667.
    CHECK(l.at("target_tokens").get<double>() == doctest::Approx(19409164800.0).epsilon(1e-12));
    CHECK(l.at("hours_to_target").get<double>() == doctest::Approx(53.9143466666667).epsilon(1e-12));
    CHECK(l.at("dollars_to_target").get<double>() == doctest::Approx(539.143466666667).epsilon(1e-12));
    // 1.82 + 482.01 / N^0.3478 + 2085.43 / D^0.3658 (tests/cpu/cost/scaling_law.cpp has the terms).
    CHECK(l.at("loss_at_target").get<double>() == doctest::Approx(2.54051791959038).epsilon(1e-12));
    // $100 buys 10 h = 3.6e9 tokens: loss 1.82 + 0.360898850934 + 2085.43 / 3.6e9^0.3658.
    const auto& b = l.at("budgets");
    REQUIRE(b.size() == 3);
    CHECK(b[1].at("dollars").get<double>() == 100);
    CHECK(b[1].at("tokens").get<double>() == doctest::Approx(3.6e9).epsilon(1e-12));
    const double want = 1.82 + 482.01 / std::pow(970458240.0, 0.3478) + 2085.43 / std::pow(3.6e9, 0.3658);
    CHECK(b[1].at("loss").get<double>() == doctest::Approx(want).epsilon(1e-12));
    // More money, lower loss.
    CHECK(b[0].at("loss").get<double>() > b[1].at("loss").get<double>());
    CHECK(b[1].at("loss").get<double>() > b[2].at("loss").get<double>());
}

TEST_CASE("law cost: the optimal-batch flag at DeepSeek's B_opt = 0.2920 C^0.3271") {
    const auto config = slm::presets::by_name("paper_1b");
    sweep::LawCostOptions o;
    // M = 72 x 19 x 1920^2 + 12 x 19 x 1920 x 1024 = 5,042,995,200 + 448,266,240 = 5,491,261,440
    // FLOPs per token; C = M x 19,409,164,800 = 1.0658e20; B_opt = 0.2920 C^0.3271 = 1,038,572 tokens.
    const double C = 5491261440.0 * 19409164800.0;
    const double b_opt = 0.2920 * std::pow(C, 0.3271);
    const Json small = sweep::law_cost(point("H100-80GB", 8, 512, 1e6, 2.5), config, o);
    const Json large = sweep::law_cost(point("H100-80GB", 8, 2048, 1e6, 2.5), config, o);
    CHECK(small.at("optimal_batch_tokens").get<double>() == doctest::Approx(b_opt).epsilon(1e-12));
    CHECK(b_opt == doctest::Approx(1038572.0772084561).epsilon(1e-9));
    CHECK(b_opt > 512.0 * 1024);   // 512 sequences of 1024 are below it
    CHECK(b_opt < 2048.0 * 1024);  // and 2048 are beyond it
    CHECK(small.at("global_batch_tokens").get<double>() == 512.0 * 1024);
    CHECK_FALSE(small.at("batch_beyond_optimal").get<bool>());
    CHECK(large.at("batch_beyond_optimal").get<bool>());
}

TEST_CASE("law cost: the answer per preset is the fewest dollars to the target over every GPU and count") {
    const auto config = slm::presets::by_name("paper_1b");
    sweep::LawCostOptions o;
    // An A100 at $2/h and 40k tokens/s, 8 H100s at $3/h each and 400k tokens/s, one H100 at $3/h
    // and 55k tokens/s.
    std::vector<Json> lines{sweep::law_cost(point("A100-80GB", 1, 16, 40000, 2.0), config, o),
                            sweep::law_cost(point("H100-80GB", 8, 128, 400000, 3.0), config, o),
                            sweep::law_cost(point("H100-80GB", 1, 16, 55000, 3.0), config, o)};
    const auto best = sweep::best_by_law(lines);
    const Json* answer = nullptr;
    int per_group = 0;
    for (const auto& b : best) {
        if (b.at("by") == "law_answer") answer = &b;
        if (b.at("by") == "law_dollars_to_target") ++per_group;
    }
    CHECK(per_group == 3);  // (A100, 1), (H100, 8), (H100, 1)
    REQUIRE(answer != nullptr);
    // $/hour over tokens/s: A100 2 / 40,000 = 5.0e-5, 8 x H100 24 / 400,000 = 6.0e-5, one H100
    // 3 / 55,000 = 5.45e-5: the A100 is the cheapest way to the target, though the slowest.
    CHECK(answer->at("gpu") == "A100-80GB");
    CHECK(answer->at("value").get<double>() == doctest::Approx(lines[0].at("dollars_to_target").get<double>()));
    CHECK(answer->at("hours_to_target").get<double>() == doctest::Approx(19409164800.0 / 40000 / 3600).epsilon(1e-12));
}
