// Token shards: round trips at both token widths, and a clear error for every kind of damage.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/data/shard.hpp"

namespace fs = std::filesystem;

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

std::vector<int32_t> ramp(int64_t n, int64_t vocab) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % vocab);
    return t;
}

// Overwrites `bytes` at `offset` of an existing file.
void patch(const fs::path& path, size_t offset, const void* bytes, size_t n) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
}

std::string open_error(const fs::path& path) {
    return error_of([&] { slm::data::ShardReader reader(path); });
}

}  // namespace

TEST_CASE("shards round-trip at 2- and 4-byte widths") {
    TempDir dir("shard");
    for (int64_t vocab : {int64_t{1000}, int64_t{65536}, int64_t{100'000}}) {
        CAPTURE(vocab);
        const auto tokens = ramp(5000, vocab);
        const fs::path path = dir.path / ("v" + std::to_string(vocab) + ".bin");
        slm::data::write_shard(path, tokens, vocab);

        const int width = vocab <= 65536 ? 2 : 4;
        CHECK(fs::file_size(path) == slm::data::shard_header_bytes + tokens.size() * width);
        const slm::data::ShardReader reader(path);
        CHECK(reader.size() == 5000);
        CHECK(reader.vocab() == vocab);
        CHECK(reader.width() == width);
        std::vector<int32_t> back(tokens.size());
        reader.copy(0, reader.size(), back.data());
        CHECK(back == tokens);
        CHECK(reader[4999] == tokens[4999]);
        CHECK_THROWS_AS(reader[5000], slm::Error);
        CHECK_THROWS_AS(reader.copy(4990, 11, back.data()), slm::Error);
    }
    // An empty shard is a valid file; it is the loader that refuses to train on it.
    slm::data::write_shard(dir.path / "empty.bin", {}, 10);
    CHECK(slm::data::ShardReader(dir.path / "empty.bin").size() == 0);
}

TEST_CASE("write_shard rejects tokens outside the vocab and leaves no file") {
    TempDir dir("shard-write");
    const fs::path path = dir.path / "bad.bin";
    const std::string high = error_of([&] { slm::data::write_shard(path, {1, 2, 10}, 10); });
    CHECK(contains(high, "token 10 at index 2"));
    CHECK(contains(high, "outside the vocabulary [0, 10)"));
    CHECK(contains(error_of([&] { slm::data::write_shard(path, {-1}, 10); }), "token -1"));
    CHECK(contains(error_of([&] { slm::data::write_shard(path, {0}, 0); }), "vocab 0"));
    CHECK_FALSE(fs::exists(path));
    CHECK(fs::is_empty(dir.path));  // no temporary left behind either
}

TEST_CASE("every kind of shard damage has its own message") {
    TempDir dir("shard-damage");
    const fs::path good = dir.path / "good.bin";
    slm::data::write_shard(good, ramp(1000, 1000), 1000);
    const auto fresh = [&](const std::string& name) {
        const fs::path p = dir.path / name;
        fs::copy_file(good, p);
        return p;
    };
    const auto check = [](const fs::path& p, const std::string& what) {
        const std::string e = open_error(p);
        CAPTURE(e);
        CHECK(contains(e, p.string()));
        CHECK(contains(e, what));
        CHECK(contains(e, "re-run prepare_data"));
    };

    const fs::path missing = dir.path / "missing.bin";
    CHECK(contains(open_error(missing), "cannot open token shard '" + missing.string()));

    const fs::path tiny = fresh("tiny.bin");
    fs::resize_file(tiny, 12);
    check(tiny, "too short");

    const fs::path truncated = fresh("truncated.bin");
    fs::resize_file(truncated, fs::file_size(good) - 1);
    check(truncated, "truncated");

    const fs::path flipped = fresh("flipped.bin");
    const char x = 0x5A;
    patch(flipped, slm::data::shard_header_bytes + 301, &x, 1);
    check(flipped, "checksum");

    const fs::path magic = fresh("magic.bin");
    patch(magic, 0, "SLMTOKX", 7);
    check(magic, "bad magic");

    const fs::path version = fresh("version.bin");
    const uint32_t v2 = 2;
    patch(version, 8, &v2, 4);
    check(version, "unsupported version 2");

    const fs::path width = fresh("width.bin");
    const uint32_t w3 = 3;
    patch(width, 12, &w3, 4);
    check(width, "token width 3");

    // The checksum covers the tokens, not the header: a shrunken vocab is caught by the scan.
    const fs::path vocab = fresh("vocab.bin");
    const uint64_t v500 = 500;
    patch(vocab, 16, &v500, 8);
    check(vocab, "outside its vocab 500");
}
