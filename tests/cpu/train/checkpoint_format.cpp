// The checkpoint file, version 3: its payload in segments written by several threads gives the
// same bytes as one thread, loads back exactly, and a flipped byte anywhere (a segment, the
// table of segment sums, the header) is caught naming the file; version 2 files still load.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"
#include "slm/core/presets.hpp"
#include "slm/train/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using slm::test::contains;
using slm::test::error_of;

std::string bytes_of(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void put_bytes(const fs::path& p, const std::string& b) {
    std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

struct Fixture {
    slm::ModelConfig config = slm::presets::tiny();
    slm::CheckpointState state{7, 99, 1234, 7, 100};
    int64_t n = 1001;  // odd: segments do not fall on array boundaries
    std::vector<float> values = std::vector<float>(3 * 1001);
    Fixture() {
        for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.25f - 3.0f;
    }
    void save(const fs::path& p, uint64_t segment_bytes, int threads) const {
        slm::save_checkpoint(p, config, "settings", state,
                             slm::CheckpointPayload<float>{values.data(), n, segment_bytes}, threads);
    }
};

}  // namespace

TEST_CASE("checkpoint v3: threads write segments to the same bytes, and it loads back exactly") {
    slm::test::TempDir tmp("ckpt-format");
    const fs::path& dir = tmp.path;
    Fixture f;
    f.save(dir / "one.bin", 400, 1);   // 12,012 payload bytes: 31 segments, the last 12 bytes
    f.save(dir / "four.bin", 400, 4);
    f.save(dir / "many.bin", 400, 64);  // more threads than segments
    CHECK(bytes_of(dir / "one.bin") == bytes_of(dir / "four.bin"));
    CHECK(bytes_of(dir / "one.bin") == bytes_of(dir / "many.bin"));
    const auto c = slm::load_checkpoint<float>(dir / "four.bin");
    CHECK(c.settings == "settings");
    CHECK(c.state.step == 7);
    CHECK(c.state.schedule_steps == 100);
    CHECK(std::memcmp(c.params.data(), f.values.data(), 1001 * 4) == 0);
    CHECK(std::memcmp(c.first_moment.data(), f.values.data() + 1001, 1001 * 4) == 0);
    CHECK(std::memcmp(c.second_moment.data(), f.values.data() + 2002, 1001 * 4) == 0);
    // Another segment size: other bytes, the same content; one segment for the whole payload too.
    f.save(dir / "whole.bin", slm::default_segment_bytes, 4);
    CHECK(bytes_of(dir / "whole.bin") != bytes_of(dir / "one.bin"));
    CHECK(slm::load_checkpoint<float>(dir / "whole.bin").second_moment == c.second_moment);
    // A double build reads it, converting.
    CHECK(slm::load_checkpoint<double>(dir / "one.bin").params[5] == doctest::Approx(-1.75));
}

TEST_CASE("checkpoint v3: the plan of segments and shares") {
    const slm::CheckpointPlan plan(100, 3003, 4, 402);  // 402 rounds down to 400 bytes
    CHECK(plan.segment_bytes == 400);
    CHECK(plan.segments == 31);
    CHECK(plan.bytes(30) == 12012 - 30 * 400);
    CHECK(plan.offset(1) == 500);
    CHECK(plan.file_bytes() == 100 + 12012 + 31 * 8 + 8);
    // Shares of 31 segments among 4 writers: contiguous, covering all, sizes 7 or 8.
    uint64_t next = 0;
    for (int r = 0; r < 4; ++r) {
        const auto [a, b] = plan.share(r, 4);
        CHECK(a == next);
        CHECK(b - a >= 7);
        next = b;
    }
    CHECK(next == 31);
    CHECK(contains(error_of([] { slm::CheckpointPlan(10, 5, 8, 4); }), "smaller than one value"));
}

TEST_CASE("checkpoint v3: a flipped byte in a segment, the sums or the header names the file") {
    slm::test::TempDir tmp("ckpt-format");
    const fs::path& dir = tmp.path;
    Fixture f;
    f.save(dir / "good.bin", 400, 3);
    const std::string good = bytes_of(dir / "good.bin");
    const auto header = good.size() - 12012 - 31 * 8 - 8;
    auto flipped = [&](size_t at) {
        std::string b = good;
        b[at] = static_cast<char>(b[at] ^ 0x10);
        put_bytes(dir / "bad.bin", b);
        return error_of([&] { slm::load_checkpoint<float>(dir / "bad.bin"); });
    };
    const std::string in_segment = flipped(header + 5 * 400 + 17);
    CHECK(contains(in_segment, "bad.bin"));
    CHECK(contains(in_segment, "segment 5 of 31"));
    CHECK(contains(flipped(header + 12012 + 3 * 8 + 1), "fails its checksum"));  // the sums table
    CHECK(contains(flipped(good.size() - 3), "fails its checksum"));               // the closing sum
    CHECK(contains(flipped(40), "bad.bin"));                                        // the config text
    put_bytes(dir / "short.bin", good.substr(0, good.size() - 9));
    CHECK(contains(error_of([&] { slm::load_checkpoint<float>(dir / "short.bin"); }), "truncated"));
    put_bytes(dir / "long.bin", good + "x");
    CHECK(contains(error_of([&] { slm::load_checkpoint<float>(dir / "long.bin"); }), "appended"));
}

TEST_CASE("checkpoint: a version-2 file (one XXH3 over everything) still loads") {
    slm::test::TempDir tmp("ckpt-format");
    const fs::path& dir = tmp.path;
    Fixture f;
    // Version 2 by hand: the v3 header without the segment size, the payload, one XXH3.
    std::string b(slm::checkpoint_detail::magic, 8);
    auto put = [&](const auto& v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(uint32_t{2});
    put(uint32_t{4});
    const std::string text = slm::to_text(f.config);
    put(static_cast<uint64_t>(text.size()));
    b += text;
    put(uint64_t{8});
    b += "settings";
    put(f.state.step);
    put(f.state.loader_position);
    put(f.state.seed);
    put(f.state.optimizer_steps);
    put(f.state.schedule_steps);
    put(static_cast<uint64_t>(f.n));
    b.append(reinterpret_cast<const char*>(f.values.data()), f.values.size() * 4);
    put(static_cast<uint64_t>(XXH3_64bits(b.data(), b.size())));
    put_bytes(dir / "v2.bin", b);
    const auto c = slm::load_checkpoint<float>(dir / "v2.bin");
    CHECK(c.state.loader_position == 99);
    CHECK(c.second_moment[1000] == f.values[3002]);
    b[b.size() - 20] ^= 1;
    put_bytes(dir / "v2bad.bin", b);
    CHECK(contains(error_of([&] { slm::load_checkpoint<float>(dir / "v2bad.bin"); }), "fails its checksum"));
}
