// The published scaling laws and the cost helpers built on them: the fits give the losses
// computed by hand from their formula, hours and dollars follow from tokens/s and the price, the
// inverse round-trips, DeepSeek's batch rule gives its literal, the break-even ratio decides which
// GPU is cheaper, and bad input or bad files name what is wrong. The literals were computed with
// python3 (double precision, the same formulas), shown next to each.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#include <cmath>
#include <fstream>
#include <string>

#include "slm/cost/scaling_law.hpp"

namespace {

using slm::test::contains;
using slm::test::error_of;

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
}

}  // namespace

TEST_CASE("scaling law: the published fits give their hand-computed losses") {
    CHECK(slm::cost::default_scaling_law_name() == "besiroglu2024");
    CHECK(slm::cost::published_scaling_laws().size() == 2);

    // besiroglu2024 at N = 970,458,240 and D = 20·N = 19,409,164,800:
    //   L = 1.82 + 482.01 / N^0.3478 + 2085.43 / D^0.3658
    //     = 1.82 + 0.360898850934     + 0.359619068656     = 2.54051791959038
    const auto besiroglu = slm::cost::scaling_law_by_name("besiroglu2024");
    CHECK(besiroglu.loss(970'458'240.0, 20 * 970'458'240.0) ==
          doctest::Approx(2.54051791959038).epsilon(1e-12));

    // hoffmann2022 at N = 130,569,920 and D = 2.6e9:
    //   L = 1.69 + 406.4 / N^0.34 + 410.7 / D^0.28
    //     = 1.69 + 0.707240353170 + 0.949144128344 = 3.34638448151393
    const auto hoffmann = slm::cost::scaling_law_by_name("hoffmann2022");
    CHECK(hoffmann.loss(130'569'920.0, 2.6e9) == doctest::Approx(3.34638448151393).epsilon(1e-12));
    CHECK(contains(hoffmann.source, "2203.15556"));
    CHECK(contains(besiroglu.source, "2404.10102"));

    CHECK(contains(error_of([&] { besiroglu.loss(0, 1e9); }), "parameters"));
    CHECK(contains(error_of([&] { besiroglu.loss(1e9, -1); }), "tokens"));
    CHECK(contains(error_of([&] { besiroglu.loss(1e9, INFINITY); }), "must be finite and > 0"));
}

TEST_CASE("scaling law: tokens_for inverts loss, and a loss at or below the floor is unreachable") {
    const auto law = slm::cost::scaling_law_by_name("besiroglu2024");
    const double N = 970'458'240.0;
    for (double D : {1e8, 2e10, 1e12, 1e15}) {
        const auto back = law.tokens_for(N, law.loss(N, D));
        REQUIRE(back.has_value());
        CHECK(*back == doctest::Approx(D).epsilon(1e-9));
    }
    // The floor at this N: E + A/N^alpha = 1.82 + 0.360898850934 = 2.180898850934; infinite
    // tokens only approach it.
    const double floor = law.E + law.A / std::pow(N, law.alpha);
    CHECK(floor == doctest::Approx(2.180898850934).epsilon(1e-12));
    CHECK_FALSE(law.tokens_for(N, floor).has_value());
    CHECK_FALSE(law.tokens_for(N, 2.0).has_value());
    CHECK(law.tokens_for(N, floor + 1e-3).has_value());  // reachable, with many tokens
}

TEST_CASE("scaling law: hours, dollars and loss for a token budget, and what a budget buys") {
    const auto law = slm::cost::scaling_law_by_name("besiroglu2024");
    // N = 526,550,016 at 20 tokens per parameter: D = 10,531,000,320 tokens. At 136,000 tokens/s
    //   hours   = 10,531,000,320 / 136,000 / 3600 = 21.5093960784314
    //   dollars = 21.5093960784314 × 7.27           = 156.373309490196
    const double N = 526'550'016.0;
    const auto c = slm::cost::cost_to_tokens_per_parameter(law, N, 20, 136'000, 7.27);
    CHECK(c.tokens == 10'531'000'320.0);
    CHECK(c.hours == doctest::Approx(21.5093960784314).epsilon(1e-12));
    CHECK(c.dollars == doctest::Approx(156.373309490196).epsilon(1e-12));
    CHECK(c.loss == doctest::Approx(law.loss(N, 10'531'000'320.0)).epsilon(1e-15));

    // $500 at $7.27/hour and 136,000 tokens/s: 500 / 7.27 × 3600 × 136,000 = 33,672,627,235.2132
    // tokens; training exactly those tokens costs the $500 back.
    const auto bought = slm::cost::cost_for_budget(law, N, 500, 136'000, 7.27);
    CHECK(bought.tokens == doctest::Approx(33'672'627'235.2132).epsilon(1e-12));
    CHECK(bought.hours == doctest::Approx(500 / 7.27).epsilon(1e-12));
    const auto back = slm::cost::cost_to_tokens(law, N, bought.tokens, 136'000, 7.27);
    CHECK(back.dollars == doctest::Approx(500).epsilon(1e-12));
    CHECK(back.hours == doctest::Approx(bought.hours).epsilon(1e-12));
    CHECK(back.loss == doctest::Approx(bought.loss).epsilon(1e-15));

    CHECK(contains(error_of([&] { slm::cost::cost_to_tokens(law, N, 1e9, 0, 7.27); }),
                   "cost_to_tokens: tokens/s"));
    CHECK(contains(error_of([&] { slm::cost::cost_to_tokens(law, N, 1e9, 1e5, NAN); }),
                   "$/hour"));
    CHECK(contains(error_of([&] { slm::cost::cost_to_tokens_per_parameter(law, N, -20, 1e5, 2); }),
                   "tokens per parameter"));
    CHECK(contains(error_of([&] { slm::cost::cost_for_budget(law, N, 0, 1e5, 2); }), "budget"));
}

TEST_CASE("scaling law: DeepSeek's optimal batch and a batch beyond it") {
    // llama_1b's shape (24 layers, d_model 2048, l_seq 2048):
    //   M = 72·24·2048² + 12·24·2048·2048 = 84·24·4,194,304 = 8,455,716,864 FLOPs per token.
    const double M = slm::cost::deepseek_flops_per_token(24, 2048, 2048);
    CHECK(M == 8'455'716'864.0);
    // C = 1e20: B_opt = 0.2920 · 10^(20·0.3271) = 0.2920 · 10^6.542 = 1,017,144.95990515 tokens.
    CHECK(slm::cost::optimal_batch_tokens(1e20) == doctest::Approx(1'017'144.95990515).epsilon(1e-12));
    // At D = 19,409,164,800 tokens: C = M·D = 1.641184021155152e20 FLOPs,
    //   B_opt = 0.2920 · C^0.3271 = 1,196,081.56773511 tokens.
    const double C = M * 19'409'164'800.0;
    CHECK(C == doctest::Approx(1.641184021155152e20).epsilon(1e-15));
    CHECK(slm::cost::optimal_batch_tokens(C) == doctest::Approx(1'196'081.56773511).epsilon(1e-12));
    // 512 sequences of 2048 (1,048,576 tokens) are within it, 1024 (2,097,152) beyond.
    CHECK_FALSE(slm::cost::batch_beyond_optimal(512 * 2048.0, C));
    CHECK(slm::cost::batch_beyond_optimal(1024 * 2048.0, C));

    CHECK(contains(error_of([] { slm::cost::deepseek_flops_per_token(0, 2048, 2048); }),
                   "layers 0"));
    CHECK(contains(error_of([] { slm::cost::optimal_batch_tokens(-1); }), "compute"));
    CHECK(contains(error_of([] { slm::cost::batch_beyond_optimal(0, 1e20); }), "global batch"));
}

TEST_CASE("scaling law: the break-even price ratio decides which GPU is cheaper per token") {
    const auto law = slm::cost::scaling_law_by_name("besiroglu2024");
    // GPU b: $2.00 per GPU-hour at 100,000 tokens/s. GPU a costs 2.53× as much ($5.06).
    const double price_b = 2.0, price_a = 2.53 * price_b, speed_b = 100'000;
    const auto dollars = [&](double price, double speed) {
        return slm::cost::cost_to_tokens(law, 1e8, 1e9, speed, price).dollars;
    };
    // 1e9 tokens on b: 1e9 / 100,000 / 3600 × 2.00 = $5.55555555555556.
    CHECK(dollars(price_b, speed_b) == doctest::Approx(5.55555555555556).epsilon(1e-12));

    // At 2.9× b's throughput the break-even ratio is 2.9 > 2.53: a is cheaper per token.
    //   1e9 / 290,000 / 3600 × 5.06 = $4.84674329501916 < $5.56
    CHECK(slm::cost::break_even_price_ratio(2.9 * speed_b, speed_b) == doctest::Approx(2.9));
    CHECK(2.53 < slm::cost::break_even_price_ratio(2.9 * speed_b, speed_b));
    CHECK(dollars(price_a, 2.9 * speed_b) == doctest::Approx(4.84674329501916).epsilon(1e-12));
    CHECK(dollars(price_a, 2.9 * speed_b) < dollars(price_b, speed_b));

    // At 2.2× the ratio is 2.2 < 2.53: a is dearer.
    //   1e9 / 220,000 / 3600 × 5.06 = $6.38888888888889 > $5.56
    CHECK_FALSE(2.53 < slm::cost::break_even_price_ratio(2.2 * speed_b, speed_b));
    CHECK(dollars(price_a, 2.2 * speed_b) == doctest::Approx(6.38888888888889).epsilon(1e-12));
    CHECK(dollars(price_a, 2.2 * speed_b) > dollars(price_b, speed_b));

    CHECK(contains(error_of([] { slm::cost::break_even_price_ratio(1e5, 0); }), "GPU b"));
    CHECK(contains(error_of([] { slm::cost::break_even_price_ratio(-1, 1e5); }), "GPU a"));
}

TEST_CASE("scaling law: JSON overrides, named laws and files, and their errors") {
    using nlohmann::json;
    const auto hoffmann = slm::cost::scaling_law_by_name("hoffmann2022");

    // One field changes; the rest stay, and the source says the numbers are no longer the paper's.
    const auto e = slm::cost::scaling_law_from_json(json{{"E", 1.7}}, hoffmann);
    CHECK(e.E == 1.7);
    CHECK(e.A == hoffmann.A);
    CHECK(e.B == hoffmann.B);
    CHECK(e.alpha == hoffmann.alpha);
    CHECK(e.beta == hoffmann.beta);
    CHECK(e.name == "hoffmann2022");
    CHECK(contains(e.source, "overridden: E"));
    const auto renamed =
        slm::cost::scaling_law_from_json(json{{"name", "mine"}, {"source", "our fit"}}, hoffmann);
    CHECK(renamed.name == "mine");
    CHECK(renamed.source == "our fit");

    const auto from = [&](const json& j) {
        return error_of([&] { slm::cost::scaling_law_from_json(j, hoffmann); });
    };
    CHECK(contains(from(json{{"Alpha", 0.3}}), "unknown field 'Alpha'"));
    CHECK(contains(from(json{{"alpha", -0.3}}), "'alpha'"));
    CHECK(contains(from(json{{"alpha", -0.3}}), "must be finite and > 0"));
    CHECK(contains(from(json{{"beta", 0}}), "'beta'"));
    CHECK(contains(from(json{{"A", "406"}}), "'A' must be a number"));
    CHECK(from(json{{"E", 0}, {"B", 0}}).empty());  // zero is allowed for E, A and B
    CHECK(contains(from(json::array()), "JSON object"));

    const std::string unknown = error_of([] { slm::cost::scaling_law_by_name("chinchilla"); });
    CHECK(contains(unknown, "'chinchilla'"));
    CHECK(contains(unknown, "besiroglu2024"));
    CHECK(contains(unknown, "hoffmann2022"));

    slm::test::TempDir dir("scaling-law");
    const auto named = dir.path / "named.json";
    write_file(named, R"({"law": "besiroglu2024"})");
    const auto read = slm::cost::read_scaling_law(named);
    CHECK(read.name == "besiroglu2024");
    CHECK(read.B == 2085.43);
    CHECK(contains(read.source, "2404.10102"));

    const auto overridden = dir.path / "overridden.json";
    write_file(overridden, R"({"law": "hoffmann2022", "E": 1.7})");
    const auto o = slm::cost::read_scaling_law(overridden);
    CHECK(o.E == 1.7);
    CHECK(o.A == 406.4);

    const auto read_error = [](const std::filesystem::path& p) {
        return error_of([&] { slm::cost::read_scaling_law(p); });
    };
    const auto missing = dir.path / "missing.json";
    CHECK(contains(read_error(missing), missing.string()));
    CHECK(contains(read_error(missing), "cannot read"));
    const auto broken = dir.path / "broken.json";
    write_file(broken, R"({"law": "hoffmann2022",)");
    CHECK(contains(read_error(broken), broken.string()));
    CHECK(contains(read_error(broken), "not valid JSON"));
    const auto no_law = dir.path / "no_law.json";
    write_file(no_law, R"({"E": 1.7})");
    CHECK(contains(read_error(no_law), "needs \"law\""));
    const auto bad_name = dir.path / "bad_name.json";
    write_file(bad_name, R"({"law": "kaplan2020"})");
    CHECK(contains(read_error(bad_name), bad_name.string()));
    CHECK(contains(read_error(bad_name), "besiroglu2024"));
    const auto bad_field = dir.path / "bad_field.json";
    write_file(bad_field, R"({"law": "hoffmann2022", "alpha": -1})");
    CHECK(contains(read_error(bad_field), bad_field.string()));
    CHECK(contains(read_error(bad_field), "'alpha'"));
}
