// The sweep's data-parallel points (examples/sweep/ranked_sweep.hpp, measure_ranks.hpp): which
// points, in which order; the step time of several ranks; the frozen prediction of a W-GPU point
// carries the key its measured line will have; such lines never calibrate the model; one
// process decides alone. The points themselves are measured over MPI by tests/cli/sweep_parallel.sh.
#include <doctest/doctest.h>

#include "common/temp_dir.hpp"
#include "slm/cpu/attention/flash.hpp"
#include "slm/cpu/backend.hpp"
#include "slm/model/llama.hpp"
#include "slm/study/measure_ranks.hpp"
#include "slm/study/predict.hpp"
#include "slm/study/ranked_sweep.hpp"

namespace sweep = slm::study;

namespace {

using sweep::Json;

Json measured_line(const sweep::Point& p, int gpus) {
    sweep::Device d;
    d.gpu = "H100-80GB";
    Json l = Json{{"kind", "measured"}};
    l.update(sweep::identity(d, p, slm::presets::by_name(p.preset), gpus));
    l["ops_ms"] = Json{{"embedding", 0.1}, {"norm", 1.0}, {"matmul", 20.0}, {"rope", 0.5}, {"swiglu", 0.5},
                       {"attention", 10.0}, {"loss", 5.0}, {"optimizer", 2.0}, {"idle", 0.4}};
    l["step_ms"] = 39.5;
    return l;
}

}  // namespace

TEST_CASE("sweep: data-parallel points follow the grid, each policy but single within a point") {
    const auto grid = sweep::grid_points({"llama_100m"}, {"llama_100m"}, {"flash"}, {4, 8}, 2048);
    const auto points = sweep::ranked_points(grid, {"single", "ddp", "zero3"});
    REQUIRE(points.size() == 4);
    CHECK(points[0].parallel == "ddp");
    CHECK(points[1].parallel == "zero3");
    CHECK(points[1].micro_batch == 4);
    CHECK(points[2].micro_batch == 8);
    CHECK(sweep::ranked_points(grid, {"single"}).empty());
}

TEST_CASE("sweep: the step time of several ranks is the slowest rank's, step by step") {
    // Rank 1 is slow at step 0, rank 0 at step 2: per step 5, 2, 9.
    CHECK(sweep::slowest_rank({{1, 2, 9}, {5, 1, 3}}) == std::vector<double>{5, 2, 9});
    CHECK(sweep::slowest_rank({{4}}) == std::vector<double>{4});
    CHECK_THROWS_AS(sweep::slowest_rank({{1, 2}, {1}}), slm::Error);
}

TEST_CASE("sweep: a W-GPU point's frozen prediction carries its measured key, and W-GPU lines calibrate nothing") {
    slm::test::TempDir dir("sweep-ranked");
    sweep::Records records(dir.path / "sweep.jsonl");
    const auto grid = sweep::grid_points({"llama_100m"}, {"llama_100m"}, {"flash"}, {4}, 2048);
    records.append(measured_line(grid[0], 1));
    const auto catalog = slm::cost::default_catalog();
    const auto points = sweep::calibration_points(records, {"llama_100m"}, catalog);
    REQUIRE(points.size() == 1);

    const auto ranked = sweep::ranked_points(grid, {"ddp", "zero2", "zero3"});
    for (const auto& p : ranked) records.append(measured_line(p, 8));
    CHECK(sweep::calibration_points(records, {"llama_100m"}, catalog).size() == 1);

    using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
    const sweep::Predictor pr{slm::cost::ThroughputModel::calibrate(points),
                              [](const slm::ModelConfig& m, const std::string&, int64_t mb, int64_t seq) {
                                  return slm::estimate_memory<Model>(m, mb, seq);
                              },
                              slm::Precision{4, 2, 4, 8, 2, 4}};
    sweep::Records fresh(dir.path / "fresh.jsonl");
    const auto before = sweep::predictions_before_measurement(pr, fresh, catalog[2], "H100-80GB", ranked, 8);
    REQUIRE(before.size() == 3);
    for (size_t i = 0; i < before.size(); ++i) {
        sweep::Device d;
        d.gpu = "H100-80GB";
        const Json id = sweep::identity(d, ranked[i], slm::presets::by_name("llama_100m"), 8);
        CHECK(before[i].at("check_key") == id.at("key"));
        CHECK(before[i].at("key") == "before/" + id.at("key").get<std::string>());
        CHECK(before[i].at("gpus") == 8);
        CHECK(before[i].at("parallel") == ranked[i].parallel);
        CHECK(before[i].at("global_batch") == 32);
        CHECK(before[i].at("ops_ms").at("communication").get<double>() > 0);
    }
    // ZeRO-3 keeps less per GPU than Ddp.
    CHECK(before[2].at("memory_gib").get<double>() < before[0].at("memory_gib").get<double>());
}

TEST_CASE("sweep: one process decides alone") {
    sweep::Ranks alone;
    CHECK(alone.lead());
    CHECK(alone.world_size() == 1);
    CHECK(alone.decided_by_rank0([] { return std::string("run"); }) == "run");
    CHECK_THROWS_AS(alone.decided_by_rank0([]() -> std::string { slm::fail("no"); }), slm::Error);
    CHECK(alone.all_gather_blobs("x") == std::vector<std::string>{"x"});
}

TEST_CASE("sweep timing: repeats are windows of steps, each timed by its median step, then their mean and spread") {
    sweep::Timing t;
    t.steps = 3;
    t.repeats = 2;
    // Window 1: 1, 9, 2 s -> median 2 s -> 500 tokens/s at 1000 tokens a step; window 2: 4, 4, 5
    // -> 4 s -> 250 tokens/s. Mean 375, spread 250, the step of the mean 1000 / 375 s.
    const auto timed = sweep::time_windows({1, 9, 2, 4, 4, 5}, t, 1000);
    CHECK(timed.tokens_per_s == std::vector<double>{500, 250});
    CHECK(timed.mean == doctest::Approx(375));
    CHECK(timed.spread == doctest::Approx(250));
    CHECK(timed.step_seconds == doctest::Approx(1000.0 / 375));
    CHECK_THROWS_AS(sweep::time_windows({1, 2, 3}, t, 1000), slm::Error);
    t.repeats = 0;
    CHECK_THROWS_AS(t.validate(), slm::Error);
}
