// The sweep's conclusions from its lines: predictions frozen before measurement carry the key
// they predict, predictions cover every catalog GPU × count × scheme with a memory verdict, loss
// per dollar follows tokens per dollar through the fitted curve, and the best lines pick the
// fastest and the cheapest configuration.
#include <doctest/doctest.h>

#include "common/temp_dir.hpp"
#include "slm/cpu/attention/flash.hpp"
#include "slm/cpu/backend.hpp"
#include "slm/model/llama.hpp"
#include "slm/study/predict.hpp"
#include "slm/study/summary.hpp"

namespace sweep = slm::study;

namespace {

using sweep::Json;

// A measured line as sweep writes it, with a made-up but self-consistent profile.
Json measured(const std::string& preset, int64_t mb, double matmul_ms) {
    const sweep::Point p{preset, "flash", "single", mb, 2048};
    sweep::Device d;
    d.gpu = "H100-80GB";
    d.device_name = "NVIDIA H100 80GB HBM3";
    Json l = Json{{"kind", "measured"}};
    l.update(sweep::identity(d, p, slm::presets::by_name(preset)));
    const Json ops{{"embedding", 0.1}, {"norm", 1.0},      {"matmul", matmul_ms}, {"rope", 0.5},
                   {"swiglu", 0.5},    {"attention", 10.0}, {"loss", 5.0},         {"optimizer", 2.0},
                   {"idle", 0.4}};
    double step = 0;
    for (const auto& [k, v] : ops.items()) step += v.get<double>();
    l["ops_ms"] = ops;
    l["step_ms"] = step;
    l["tokens_per_s"] = static_cast<double>(mb * 2048) / (step * 1e-3);
    sweep::add_cost(l, l["tokens_per_s"].get<double>(), 1, 7.39);
    return l;
}

sweep::Predictor predictor(const std::vector<slm::cost::MeasuredStep>& points) {
    using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
    return {slm::cost::ThroughputModel::calibrate(points),
            [](const slm::ModelConfig& m, const std::string&, int64_t mb, int64_t seq) {
                return slm::estimate_memory<Model>(m, mb, seq);
            },
            slm::Precision{4, 2, 4, 8, 2, 4}};
}

}  // namespace

TEST_CASE("sweep: predictions before measurement, everywhere, loss per dollar and the best lines") {
    slm::test::TempDir dir("sweep-derive");
    sweep::Records records(dir.path / "sweep.jsonl");
    for (int64_t mb : {4, 8}) {
        records.append(measured("llama_100m", mb, 20.0 * static_cast<double>(mb) / 4));
        records.append(measured("llama_1b", mb, 150.0 * static_cast<double>(mb) / 4));
    }
    const auto catalog = slm::cost::default_catalog();
    const auto points = sweep::calibration_points(records, {"llama_100m", "llama_1b"}, catalog);
    REQUIRE(points.size() == 4);
    const auto pr = predictor(points);

    const auto grid = sweep::grid_points({"llama_100m", "llama_500m"}, {"llama_100m"}, {"flash"}, {4, 8}, 2048);
    const auto before = sweep::predictions_before_measurement(pr, records, catalog[2], "H100-80GB", grid);
    REQUIRE(before.size() == 2);  // llama_500m at 4 and 8; llama_100m is measured
    CHECK(before[0].at("check_key") == "H100-80GB/1/llama_500m/flash/single/4/2048");
    CHECK(before[0].at("before_measurement") == true);
    CHECK(sweep::is_primary(before[0]));

    const auto everywhere = sweep::predictions_everywhere(pr, catalog, {1, 2, 16}, grid);
    // 4 GPUs × (1 scheme at 1 GPU + 4 schemes at 2 and at 16) × 4 grid points.
    CHECK(everywhere.size() == 4 * (1 + 4 + 4) * 4);
    for (const auto& l : everywhere) {
        CHECK(l.at("tokens_per_s").get<double>() > 0);
        CHECK(!sweep::is_primary(l));
        if (l.at("gpus") == 1) CHECK(l.at("ops_ms").at("communication") == 0.0);
    }
    // Past one node the network, not NVLink, carries the gradients: more exposed communication.
    auto comm = [&](int gpus) {
        for (const auto& l : everywhere)
            if (l.at("gpu") == "H100-80GB" && l.at("gpus") == gpus && l.at("parallel") == "zero2" &&
                l.at("preset") == "llama_500m" && l.at("micro_batch") == 4)
                return l.at("ops_ms").at("communication").get<double>();
        return -1.0;
    };
    CHECK(comm(16) > comm(2));

    // Loss per dollar through a curve L = 2 + 100·t^-0.5, measured up to 1e6 tokens.
    Json curve{{"kind", "loss_curve"}, {"preset", "llama_100m"}, {"global_batch", 8}, {"seq", 2048},
               {"points", Json::array({Json::array({1e4, 3.0}), Json::array({1e5, 2.0 + 100 / std::sqrt(1e5)}),
                                       Json::array({1e6, 2.1})})}};
    records.append(curve);
    const auto curves = sweep::fitted_curves(records);
    REQUIRE(curves.size() == 1);
    const Json& fast = records.lines()[2];  // llama_100m mb 8
    const double per_dollar = fast.at("tokens_per_dollar").get<double>();
    const sweep::Budget budget{1e5 / per_dollar, 2.5};
    const Json lpd = sweep::loss_per_dollar(fast, curves[0], budget);
    CHECK(lpd.at("loss_at_budget").get<double>() == doctest::Approx(curves[0].curve.loss_at(1e5)));
    CHECK(lpd.at("budget_extrapolated") == false);
    CHECK(lpd.at("dollars_to_target").get<double>() ==
          doctest::Approx(*curves[0].curve.tokens_for(2.5) / per_dollar));

    std::vector<Json> rated = {records.lines()[0], records.lines()[2]};
    const auto best = sweep::best_lines(rated, {lpd});
    bool found = false;
    for (const auto& b : best)
        if (b.at("by") == "tokens_per_s" && b.at("preset") == "llama_100m") {
            found = true;
            const double a = records.lines()[0].at("tokens_per_s"), c = records.lines()[2].at("tokens_per_s");
            CHECK(b.at("micro_batch") == (a > c ? 4 : 8));
        }
    CHECK(found);

    // Rewriting keeps measurements and frozen predictions, replaces derived lines.
    for (const auto& l : before) records.append(l);
    records.rewrite(everywhere);
    records.rewrite({});
    sweep::Records reread(dir.path / "sweep.jsonl");
    CHECK(reread.lines().size() == 4 + 1 + 2);
}

TEST_CASE("sweep: out-of-sample checks predict the measured presets the model was not calibrated on, and "
          "an unsupported kernel is known as such") {
    slm::test::TempDir dir("sweep-oos");
    sweep::Records records(dir.path / "sweep.jsonl");
    for (int64_t mb : {4, 8}) {
        records.append(measured("llama_100m", mb, 20.0 * static_cast<double>(mb) / 4));
        records.append(measured("llama_500m", mb, 60.0 * static_cast<double>(mb) / 4));
    }
    const auto catalog = slm::cost::default_catalog();
    const auto pr = predictor(sweep::calibration_points(records, {"llama_100m"}, catalog));
    const auto checks = sweep::out_of_sample_checks(pr, records, catalog);
    REQUIRE(checks.size() == 2);  // llama_500m at 4 and 8; llama_100m is in the calibration
    for (const auto& c : checks) {
        CHECK(c.at("preset") == "llama_500m");
        CHECK(c.at("out_of_sample") == true);
        CHECK(c.at("key") == "check/" + c.at("check_key").get<std::string>());
        CHECK(records.has_measurement(c.at("check_key").get<std::string>()));
        CHECK(!sweep::is_primary(c));  // recomputed at every derivation
    }
    CHECK(!sweep::unsupported(records, "llama_500m", "flash"));
    records.append(Json{{"kind", "skipped"}, {"preset", "paper_100m"}, {"attention", "flash"},
                        {"reason", "unsupported: Flash attention on the GPU supports head_dim 64 and 128"}});
    records.append(Json{{"kind", "skipped"}, {"preset", "llama_2b"}, {"attention", "naive"},
                        {"reason", "does not fit"}});
    CHECK(sweep::unsupported(records, "paper_100m", "flash"));
    CHECK(!sweep::unsupported(records, "paper_100m", "naive"));
    CHECK(!sweep::unsupported(records, "llama_2b", "naive"));  // out of memory is not unsupported
}

TEST_CASE("sweep: precision is a dimension: fp8 points have their own keys and lines, fp8 lines teach "
          "the model the FP8 GEMM rate, fp8 is predicted only on GPUs with FP8, and a best line names "
          "its precision") {
    slm::test::TempDir dir("sweep-precision");
    sweep::Records records(dir.path / "sweep.jsonl");
    const auto grid = sweep::with_precisions(
        sweep::grid_points({"llama_100m", "llama_500m"}, {"llama_100m"}, {"flash"}, {4, 8}, 2048), {"bf16", "fp8"});
    REQUIRE(grid.size() == 8);
    CHECK(grid[0].precision == "bf16");
    CHECK(grid[1].precision == "fp8");
    CHECK(grid[1].micro_batch == grid[0].micro_batch);
    // A bf16 key is what it was before precision was a dimension (old files resume); fp8 adds to it.
    CHECK(sweep::key("H100-80GB", 1, grid[0]) == "H100-80GB/1/llama_100m/flash/single/4/2048");
    CHECK(sweep::key("H100-80GB", 1, grid[1]) == "H100-80GB/1/llama_100m/flash/single/4/2048/fp8");

    for (int64_t mb : {4, 8}) {
        records.append(measured("llama_100m", mb, 20.0 * static_cast<double>(mb) / 4));
        Json fp8 = measured("llama_100m", mb, 12.0 * static_cast<double>(mb) / 4);  // faster GEMMs
        sweep::Point p{"llama_100m", "flash", "single", mb, 2048};
        p.precision = "fp8";
        fp8["key"] = sweep::key("H100-80GB", 1, p);
        fp8["precision"] = "fp8";
        records.append(fp8);
    }
    CHECK(sweep::precision_of(records.lines()[0]) == "bf16");
    CHECK(sweep::precision_of(records.lines()[1]) == "fp8");
    Json old = records.lines()[0];
    old.erase("precision");
    CHECK(sweep::precision_of(old) == "bf16");  // a line from before the dimension

    const auto catalog = slm::cost::default_catalog();
    auto points = sweep::calibration_points(records, {"llama_100m"}, catalog);
    REQUIRE(points.size() == 4);
    CHECK(points[1].work.precision == "fp8");
    const auto pr = predictor(points);
    CHECK(pr.model.has_fp8());
    const auto before = sweep::predictions_before_measurement(pr, records, catalog[2], "H100-80GB", grid);
    REQUIRE(before.size() == 4);  // llama_500m at 4 and 8, each in bf16 and fp8
    CHECK(before[1].at("check_key") == "H100-80GB/1/llama_500m/flash/single/4/2048/fp8");
    CHECK(before[1].at("precision") == "fp8");
    CHECK(before[1].at("tokens_per_s").get<double>() > before[0].at("tokens_per_s").get<double>());
    // On every GPU with FP8 tensor cores, not on the A100s; without fp8 points, nowhere.
    const auto everywhere = sweep::predictions_everywhere(pr, catalog, {1}, grid);
    int fp8_lines = 0;
    for (const auto& l : everywhere)
        if (l.at("precision") == "fp8") {
            ++fp8_lines;
            CHECK(l.at("gpu").get<std::string>().rfind("A100", 0) != 0);
        }
    CHECK(fp8_lines == 2 * 4);  // H100 and H200 × the 4 fp8 grid points
    points.erase(points.begin() + 1);
    points.erase(points.begin() + 2);
    REQUIRE(points.size() == 2);
    for (const auto& l : sweep::predictions_everywhere(predictor(points), catalog, {1}, grid))
        CHECK(l.at("precision") == "bf16");

    const auto best = sweep::best_lines(records.lines(), {});
    bool found = false;
    for (const auto& b : best)
        if (b.at("by") == "tokens_per_s" && b.at("preset") == "llama_100m") {
            found = true;
            CHECK(b.at("precision") == "fp8");  // the fastest measured point is an fp8 one
        }
    CHECK(found);
}
