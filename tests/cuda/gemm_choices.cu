// cuda::Gemm's timed picks kept and replayed (gemm.cuh choices/use_choices; the file format's
// own tests are in tests/cpu/core/gemm_choices.cpp): a Gemm that replays another's picks runs
// the same algorithms and so gives the same bits, whatever its own candidate count; picks made
// elsewhere, or of an algorithm this cuBLASLt does not offer, are errors; a trainer that
// replays a tuned run's file repeats its losses and weights exactly, and one given another
// GPU's file refuses it, or (the --resume case) drops it and times anew.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "common/error_text.hpp"
#include "common/synthetic_data.hpp"
#include "common/temp_dir.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

using namespace slm::test;
using slm::cuda::Trans;

namespace {

// Shapes of the kind a training step runs (a projection, its transposed input gradient, an fp32
// weight gradient accumulated with beta = 1), large enough that cuBLASLt offers several
// candidates; the outputs' bits, in call order.
std::vector<std::vector<uint16_t>> run_shapes(slm::cuda::Backend& backend) {
    struct Shape {
        Trans ta, tb;
        int64_t m, n, k;
        bool fp32_accumulate;
    };
    const Shape shapes[] = {{Trans::N, Trans::T, 2048, 768, 768, false},
                            {Trans::N, Trans::N, 2048, 768, 2048, false},
                            {Trans::T, Trans::N, 768, 2048, 4096, true}};
    std::vector<std::vector<uint16_t>> out;
    uint64_t seed = 11;
    for (const Shape& s : shapes) {
        const int64_t lda = s.ta == Trans::N ? s.k : s.m, ldb = s.tb == Trans::N ? s.n : s.k;
        auto a = to_device(backend, to_bf16(random_vector<double>(s.m * s.k, seed++)));
        auto b = to_device(backend, to_bf16(random_vector<double>(s.k * s.n, seed++)));
        if (s.fp32_accumulate) {
            auto c = to_device(backend, to_float(random_vector<double>(s.m * s.n, seed++)));
            backend.gemm()(backend.stream(), s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda,
                           b.data(), ldb, 1.0f, c.data(), s.n);
            std::vector<uint16_t> words;
            for (const float x : to_host(backend, c)) {
                uint32_t u;
                std::memcpy(&u, &x, sizeof u);
                words.push_back(static_cast<uint16_t>(u));
                words.push_back(static_cast<uint16_t>(u >> 16));
            }
            out.push_back(words);
        } else {
            auto c = backend.allocate<bf16>(s.m * s.n);
            backend.gemm()(backend.stream(), s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda,
                           b.data(), ldb, 0.0f, c.data(), s.n);
            out.push_back(bits_of(to_host(backend, c)));
        }
    }
    return out;
}

using TinyModel = slm::Llama<slm::cuda::Backend, slm::attention::Naive>;

// The tiny preset trained with 8 timed GEMM candidates per shape into out_dir, picks kept in
// `picks` (Naive attention: no atomics, so a repeated run can give the same bits).
slm::RunConfig tuned_tiny_run(int64_t batch, int64_t seq, int64_t steps,
                              const std::filesystem::path& out_dir,
                              const std::filesystem::path& picks) {
    slm::RunConfig run;
    run.batch = batch;
    run.seq = seq;
    run.steps = steps;
    run.warmup = 1;
    run.lr = 1e-3;
    run.eval_batches = 1;
    run.log_interval = 100;
    run.backend.gemm_candidates = 8;
    run.out_dir = out_dir;
    run.backend.gemm_choices_write = picks;
    return run;
}

}  // namespace

TEST_CASE("GEMM choices: a Gemm replaying another's timed picks runs them, to the same bits") {
    if (!gpu_available()) return;
    slm::cuda::Backend tuned;
    tuned.gemm().set_timed_candidates(8);
    const auto tuned_bits = run_shapes(tuned);
    const slm::cuda::GemmChoices picks = tuned.gemm().choices();
    std::printf("%zu timed picks on %s\n", picks.picks.size(), picks.identity.c_str());
    // A shape the heuristic offers one candidate for is not timed, so it has no pick.
    REQUIRE(!picks.picks.empty());
    CHECK(picks.picks.size() <= 3);
    CHECK(picks.identity == tuned.gemm().identity());
    for (const auto& p : picks.picks) CHECK(p.requested == 8);

    for (const int own_candidates : {1, 8}) {
        CAPTURE(own_candidates);
        slm::cuda::Backend replaying;
        replaying.gemm().set_timed_candidates(own_candidates);
        replaying.gemm().use_choices(picks, "the tuned Gemm");
        CHECK(run_shapes(replaying) == tuned_bits);
        CHECK(replaying.gemm().choices() == picks);
    }

    // The untimed heuristic records nothing: its choice is the same on every run already.
    slm::cuda::Backend heuristic;
    run_shapes(heuristic);
    CHECK(heuristic.gemm().choices().picks.empty());
}

TEST_CASE("GEMM choices: unused picks are kept, and another GPU's picks or an unknown algorithm are errors") {
    if (!gpu_available()) return;
    slm::cuda::Backend tuned;
    tuned.gemm().set_timed_candidates(4);
    run_shapes(tuned);
    const slm::cuda::GemmChoices picks = tuned.gemm().choices();
    REQUIRE(!picks.picks.empty());

    slm::cuda::Backend idle;
    idle.gemm().use_choices(picks, "f");
    CHECK(idle.gemm().choices() == picks);  // a file rewritten from it loses nothing

    slm::cuda::GemmChoices elsewhere = picks;
    elsewhere.identity = "a GPU that is not this one";
    const std::string moved = error_of([&] { idle.gemm().use_choices(elsewhere, "old.txt"); });
    CHECK(contains(moved, "GEMM choices from 'old.txt' were made on 'a GPU that is not this one'"));
    CHECK(contains(moved, "delete the file"));

    slm::cuda::GemmChoices unknown = picks;
    for (auto& p : unknown.picks) p.algorithm[0] ^= 0x5a5a5a5a5a5a5a5aull;
    slm::cuda::Backend replaying;
    replaying.gemm().use_choices(unknown, "bad.txt");
    const std::string missing = error_of([&] { run_shapes(replaying); });
    CHECK(contains(missing, "GEMM choices from 'bad.txt': the algorithm picked for C("));
    CHECK(contains(missing, "cuBLASLt offers here; delete the file to time the GEMMs again"));
}

TEST_CASE("GEMM choices: a trainer replaying a tuned run's file repeats its losses and weights") {
    if (!gpu_available()) return;
    slm::test::TempDir dir("gemm-choices-trainer");
    const slm::ModelConfig config = slm::presets::by_name("tiny");
    const slm::RunConfig run = tuned_tiny_run(4, 64, 4, dir.path / "first", dir.path / "picks.txt");

    auto train = [&](const slm::RunConfig& r, std::vector<double>& losses) {
        slm::Trainer<TinyModel> trainer(config, r);
        slm::test::SyntheticData data(config.vocab, r.batch, r.seq);
        trainer.fit(data);  // writes the picks with its last checkpoint
        SyntheticData again(config.vocab, r.batch, r.seq);
        for (int i = 0; i < 2; ++i) losses.push_back(trainer.train_step(again).loss);
        std::vector<float> weights(static_cast<size_t>(trainer.model().layout().total()));
        trainer.model().get_parameters(weights.data());
        return weights;
    };
    std::vector<double> first_losses, replay_losses;
    const auto first = train(run, first_losses);
    REQUIRE(std::filesystem::exists(run.backend.gemm_choices_write));
    const auto written = slm::cuda::read_gemm_choices(run.backend.gemm_choices_write);
    std::printf("tuned tiny run kept %zu GEMM picks\n", written.picks.size());
    CHECK(!written.picks.empty());

    slm::RunConfig replay = run;
    replay.out_dir = dir.path / "replay";
    replay.backend.gemm_choices_read = run.backend.gemm_choices_write;
    const auto second = train(replay, replay_losses);
    CHECK(replay_losses == first_losses);
    CHECK(second == first);
    CHECK(slm::cuda::read_gemm_choices(run.backend.gemm_choices_write) == written);
}

TEST_CASE("GEMM choices: a trainer refuses another GPU's file, or drops it and times anew when told") {
    if (!gpu_available()) return;
    slm::test::TempDir dir("gemm-choices-elsewhere");
    const slm::ModelConfig config = slm::presets::by_name("tiny");
    slm::RunConfig run = tuned_tiny_run(2, 32, 1, dir.path / "run", dir.path / "picks.txt");
    run.backend.gemm_choices_read = run.backend.gemm_choices_write;
    slm::cuda::GemmChoice pick;
    pick.requested = 8;
    slm::cuda::write_gemm_choices(run.backend.gemm_choices_read, {"a GPU that is not this one", {pick}});

    const std::string refused = error_of([&] { slm::Trainer<TinyModel> trainer(config, run); });
    CHECK(contains(refused, "were made on 'a GPU that is not this one'"));

    run.backend.gemm_choices_other_gpu_ok = true;  // what --resume asks for
    slm::Trainer<TinyModel> trainer(config, run);
    slm::test::SyntheticData data(config.vocab, run.batch, run.seq);
    trainer.fit(data);
    const auto rewritten = slm::cuda::read_gemm_choices(run.backend.gemm_choices_write);
    CHECK(rewritten.identity == trainer.backend().gemm().identity());
    CHECK(std::find(rewritten.picks.begin(), rewritten.picks.end(), pick) == rewritten.picks.end());
}
