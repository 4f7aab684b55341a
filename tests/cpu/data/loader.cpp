// Loader: shifted targets, determinism per seed, disjoint rank streams, fixed validation batches
// from their own split, exact resume from a saved position, and the errors for bad settings.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "slm/data/loader.hpp"

namespace fs = std::filesystem;
using slm::data::Batch;
using slm::data::Loader;
using slm::data::LoaderConfig;

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

// Token i of the shard is first + i: a window's values tell where it was read from.
fs::path counting_shard(const fs::path& dir, const std::string& name, int32_t first, int64_t n) {
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = first + static_cast<int32_t>(i);
    slm::data::write_shard(dir / name, tokens, 65536);
    return dir / name;
}

bool same(const Batch& a, const Batch& b) {
    return a.tokens == b.tokens && a.targets == b.targets && a.batch == b.batch && a.seq == b.seq;
}

// Each row reads consecutive values (one contiguous window of one shard) and targets = tokens + 1.
void check_rows(const Batch& b) {
    REQUIRE(b.tokens.size() == static_cast<size_t>(b.batch * b.seq));
    REQUIRE(b.targets.size() == b.tokens.size());
    for (int64_t r = 0; r < b.batch; ++r)
        for (int64_t j = 0; j < b.seq; ++j) {
            const auto at = static_cast<size_t>(r * b.seq + j);
            CHECK(b.targets[at] == b.tokens[at] + 1);
            if (j > 0) CHECK(b.tokens[at] == b.tokens[at - 1] + 1);
        }
}

}  // namespace

TEST_CASE("training batches: shifted targets, deterministic per seed, train split only") {
    TempDir dir("loader");
    const fs::path shard = counting_shard(dir.path, "a.bin", 0, 10'000);
    const LoaderConfig config{.batch = 4, .seq = 16, .seed = 42, .validation_segments = 1};
    Loader a({shard}, config), b({shard}, config);
    Loader other({shard}, LoaderConfig{.batch = 4, .seq = 16, .seed = 43, .validation_segments = 1});
    CHECK(a.vocab() == 65536);
    CHECK(a.train_tokens() == 9500);
    CHECK(a.validation_tokens() == 500);

    for (int step = 0; step < 20; ++step) {
        const Batch x = a.next_train();
        check_rows(x);
        CHECK(same(x, b.next_train()));
        CHECK_FALSE(same(x, other.next_train()));
        // The last target of a row is at most the last training token, 9499.
        for (int32_t t : x.targets) CHECK(t < 9500);
    }
    CHECK(a.position() == 20);
}

TEST_CASE("data-parallel ranks draw disjoint streams that together make the global batch") {
    TempDir dir("loader-ranks");
    const fs::path shard = counting_shard(dir.path, "a.bin", 0, 50'000);
    Loader r0({shard}, LoaderConfig{.batch = 3, .seq = 8, .seed = 7, .rank = 0, .world = 2});
    Loader r1({shard}, LoaderConfig{.batch = 3, .seq = 8, .seed = 7, .rank = 1, .world = 2});
    Loader single({shard}, LoaderConfig{.batch = 6, .seq = 8, .seed = 7});
    for (int step = 0; step < 5; ++step) {
        const Batch b0 = r0.next_train(), b1 = r1.next_train(), all = single.next_train();
        std::set<int32_t> starts0, starts1;
        for (int64_t r = 0; r < 3; ++r) {
            starts0.insert(b0.tokens[static_cast<size_t>(r * 8)]);
            starts1.insert(b1.tokens[static_cast<size_t>(r * 8)]);
        }
        CHECK(starts0 != starts1);
        // Row i of rank r is row i·world + r of the one-process batch of world·batch rows.
        for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 8; ++j) {
                CHECK(b0.tokens[static_cast<size_t>(i * 8 + j)] == all.tokens[static_cast<size_t>((2 * i) * 8 + j)]);
                CHECK(b1.tokens[static_cast<size_t>(i * 8 + j)] == all.tokens[static_cast<size_t>((2 * i + 1) * 8 + j)]);
            }
    }
}

TEST_CASE("validation batches are fixed, walk the validation split and never touch training") {
    TempDir dir("loader-validation");
    const fs::path shard = counting_shard(dir.path, "a.bin", 0, 2'000);
    Loader loader({shard}, LoaderConfig{.batch = 4, .seq = 10, .seed = 1, .val_fraction = 0.1,
                                        .validation_segments = 1});
    // Split 1800 / 200: windows start at 1800, 1810, ..., each reads 11 tokens, so (200-1)/10 = 19
    // windows in 5 batches, the last one 3 rows.
    REQUIRE(loader.validation_batches() == 5);
    int32_t expected_start = 1800;
    for (int64_t k = 0; k < loader.validation_batches(); ++k) {
        const Batch v = loader.validation(k);
        check_rows(v);
        CHECK(v.batch == (k < 4 ? 4 : 3));
        CHECK(same(v, loader.validation(k)));
        loader.next_train();  // drawing training batches does not move validation
        CHECK(same(v, loader.validation(k)));
        for (int64_t r = 0; r < v.batch; ++r, expected_start += 10)
            CHECK(v.tokens[static_cast<size_t>(r * 10)] == expected_start);
        for (int32_t t : v.tokens) CHECK(t >= 1800);
    }
    CHECK_THROWS_AS(loader.validation(5), slm::Error);
    for (int i = 0; i < 50; ++i)
        for (int32_t t : loader.next_train().targets) CHECK(t < 1800);
}

TEST_CASE("validation segments are spread through the shard and training never reads them") {
    TempDir dir("loader-segments");
    const fs::path shard = counting_shard(dir.path, "a.bin", 0, 60'000);
    Loader loader({shard}, LoaderConfig{.batch = 8, .seq = 16, .seed = 3, .val_fraction = 0.05});
    // 3000 held out as 10 segments of 300, each ending where a tenth of the shard ends.
    CHECK(loader.validation_tokens() == 3'000);
    CHECK(loader.train_tokens() == 57'000);
    auto held_out = [](int32_t t) { return t % 6'000 >= 5'700; };
    int32_t lowest = 60'000, highest = 0;
    for (int64_t k = 0; k < loader.validation_batches(); ++k) {
        const Batch v = loader.validation(k);
        check_rows(v);
        for (int32_t t : v.targets) {
            CHECK(held_out(t));
            lowest = std::min(lowest, t);
            highest = std::max(highest, t);
        }
    }
    CHECK(lowest < 6'000);     // from the first tenth of the shard ...
    CHECK(highest >= 59'700);  // ... to the last
    for (int i = 0; i < 50; ++i) {
        const Batch x = loader.next_train();
        check_rows(x);  // consecutive: no window spans a held-out segment
        for (int32_t t : x.targets) CHECK_FALSE(held_out(t));
    }
}

TEST_CASE("resuming at a saved position gives the uninterrupted sequence") {
    TempDir dir("loader-resume");
    const fs::path shard = counting_shard(dir.path, "a.bin", 0, 5'000);
    const LoaderConfig config{.batch = 2, .seq = 32, .seed = 99, .rank = 1, .world = 4};
    Loader straight({shard}, config);
    std::vector<Batch> expected;
    for (int i = 0; i < 7; ++i) expected.push_back(straight.next_train());

    Loader resumed({shard}, config);
    resumed.set_position(3);
    CHECK(resumed.position() == 3);
    for (int i = 3; i < 7; ++i) CHECK(same(resumed.next_train(), expected[static_cast<size_t>(i)]));
    CHECK(resumed.position() == 7);
}

TEST_CASE("windows never cross shard boundaries and every shard is sampled") {
    TempDir dir("loader-shards");
    const fs::path a = counting_shard(dir.path, "a.bin", 0, 3'000);
    const fs::path b = counting_shard(dir.path, "b.bin", 40'000, 3'000);
    Loader loader({a, b}, LoaderConfig{.batch = 8, .seq = 64, .seed = 5, .validation_segments = 1});
    CHECK(loader.train_tokens() == 2 * 2850);
    bool saw_a = false, saw_b = false;
    for (int i = 0; i < 20; ++i) {
        const Batch x = loader.next_train();
        check_rows(x);  // consecutive values: a row that crossed into the other shard would jump
        for (int32_t t : x.targets) {
            saw_a |= t < 3'000;
            saw_b |= t >= 40'000;
            CHECK(((t < 2'850) || (t >= 40'000 && t < 42'850)));
        }
    }
    CHECK(saw_a);
    CHECK(saw_b);
    // Validation walks shard a's split, then shard b's.
    const Batch first = loader.validation(0);
    CHECK(first.tokens[0] == 2'850);
    const Batch last = loader.validation(loader.validation_batches() - 1);
    CHECK(last.tokens.back() >= 42'850);
}

TEST_CASE("loader errors say what is wrong and how to fix it") {
    TempDir dir("loader-errors");
    const fs::path shard = counting_shard(dir.path, "a.bin", 0, 100);  // split 95 / 5
    const auto make = [&](LoaderConfig c, std::vector<fs::path> shards) {
        return error_of([&] { Loader loader(shards, c); });
    };
    const std::string val = make({.batch = 1, .seq = 8}, {shard});
    CHECK(contains(val, "seq 8 needs at least 9 tokens; the validation split has 5"));
    CHECK(contains(val, "use a smaller --seq or more data"));
    CHECK(contains(make({.batch = 1, .seq = 200}, {shard}), "the training split has 95"));
    CHECK(make({.batch = 1, .seq = 4}, {shard}).empty());
    // Without a validation split only training needs a window.
    CHECK(make({.batch = 1, .seq = 50, .val_fraction = 0}, {shard}).empty());
    CHECK(contains(make({.batch = 0, .seq = 4}, {shard}), "batch 0 must be > 0"));
    CHECK(contains(make({.batch = 1, .seq = 0}, {shard}), "seq 0 must be > 0"));
    CHECK(contains(make({.batch = 1, .seq = 4, .rank = 2, .world = 2}, {shard}), "rank 2"));
    CHECK(contains(make({.batch = 1, .seq = 4}, {}), "at least one token shard"));
    CHECK(contains(make({.batch = 1, .seq = 4}, {dir.path / "nope.bin"}), "nope.bin"));

    slm::data::write_shard(dir.path / "other.bin", std::vector<int32_t>(100, 3), 1000);
    CHECK(contains(make({.batch = 1, .seq = 4}, {shard, dir.path / "other.bin"}),
                   "all shards must come from the same tokenizer"));
}
