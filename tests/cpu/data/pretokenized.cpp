// Pretokenized files (nanoGPT's raw uint16, llm.c's shards): tokens converted into our shards
// and read back unchanged, and every bad file (odd size, token outside the vocabulary, wrong
// magic, version or size) refused with the file and the reason named.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "slm/data/pretokenized.hpp"
#include "slm/data/shard.hpp"
#include "slm/data/shard_writer.hpp"

namespace fs = std::filesystem;

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

std::vector<uint16_t> ramp(size_t n, uint32_t vocab) {
    std::vector<uint16_t> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint16_t>((i * 7919 + 3) % vocab);
    return t;
}

void write_raw(const fs::path& path, const std::vector<uint16_t>& tokens) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(2 * tokens.size()));
}

// An llm.c shard as llm.c's fineweb.py writes it; `count` may disagree with the tokens.
void write_llmc(const fs::path& path, const std::vector<uint16_t>& tokens, int32_t magic = 20240520,
                int32_t version = 1, std::optional<int32_t> count = std::nullopt) {
    int32_t header[256] = {};
    header[0] = magic;
    header[1] = version;
    header[2] = count.value_or(static_cast<int32_t>(tokens.size()));
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
    out.write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(2 * tokens.size()));
}

// The file's tokens through read_tokens and ShardWriter into shards of `shard_tokens`, and
// back through ShardReader.
std::vector<int32_t> through_shards(const slm::data::TokenFile& file, int64_t vocab, const fs::path& dir,
                                    size_t shard_tokens, size_t chunk, size_t* shard_count = nullptr) {
    fs::create_directories(dir);
    slm::data::ShardWriter writer(dir, vocab, shard_tokens);
    slm::data::read_tokens(file, vocab, [&](const std::vector<int32_t>& t) { writer.add(t); }, chunk);
    const auto paths = writer.finish();
    if (shard_count != nullptr) *shard_count = paths.size();
    std::vector<int32_t> back;
    for (const auto& path : paths) {
        const slm::data::ShardReader reader(path);
        CHECK(reader.vocab() == vocab);
        const size_t at = back.size();
        back.resize(at + static_cast<size_t>(reader.size()));
        reader.copy(0, reader.size(), back.data() + at);
    }
    return back;
}

std::vector<int32_t> widened(const std::vector<uint16_t>& t) { return {t.begin(), t.end()}; }

}  // namespace

TEST_CASE("raw uint16: tokens round-trip into shards and back, in chunks and across shards") {
    TempDir dir("raw-uint16");
    for (uint32_t vocab : {50257u, 65536u, 300u}) {
        CAPTURE(vocab);
        const auto tokens = ramp(10'007, vocab);
        write_raw(dir.path / "train.bin", tokens);
        const auto file = slm::data::raw_uint16_file(dir.path / "train.bin");
        CHECK(file.offset == 0);
        CHECK(file.count == tokens.size());
        size_t shards = 0;
        const fs::path out = dir.path / ("v" + std::to_string(vocab));
        // Chunks of 333 tokens, shards of 4000: three shards, the last partial.
        CHECK(through_shards(file, vocab, out / "split", 4000, 333, &shards) == widened(tokens));
        CHECK(shards == 3);
        CHECK(fs::exists(out / "split" / "tokens_002.bin"));
        CHECK(through_shards(file, vocab, out / "one", 100'000, 1 << 20, &shards) == widened(tokens));
        CHECK(shards == 1);
        CHECK(fs::exists(out / "one" / "tokens.bin"));
    }
    // The largest uint16 token fits a 65536 vocabulary.
    write_raw(dir.path / "top.bin", {0, 65535, 1});
    CHECK(through_shards(slm::data::raw_uint16_file(dir.path / "top.bin"), 65536, dir.path / "top", 10, 2) ==
          std::vector<int32_t>{0, 65535, 1});
}

TEST_CASE("raw uint16: an odd size and a token outside the vocabulary are refused, named") {
    TempDir dir("raw-uint16-bad");
    std::ofstream(dir.path / "odd.bin", std::ios::binary).write("\x01\x00\x02", 3);
    const std::string odd = error_of([&] { slm::data::raw_uint16_file(dir.path / "odd.bin"); });
    CHECK(contains(odd, (dir.path / "odd.bin").string()));
    CHECK(contains(odd, "odd size (3 bytes)"));

    auto tokens = ramp(3000, 1000);
    tokens[2500] = 1000;  // = vocab: one past the last id
    write_raw(dir.path / "big.bin", tokens);
    const auto file = slm::data::raw_uint16_file(dir.path / "big.bin");
    const std::string big = error_of([&] {
        slm::data::read_tokens(file, 1000, [](const std::vector<int32_t>&) {}, 1024);
    });
    CHECK(contains(big, (dir.path / "big.bin").string()));
    CHECK(contains(big, "token 1000 at byte offset 5000 (token 2500)"));
    CHECK(contains(big, "not below the vocabulary 1000"));

    CHECK(contains(error_of([&] { slm::data::raw_uint16_file(dir.path / "missing.bin"); }), "missing.bin"));
}

TEST_CASE("llm.c: a shard's header is read and its tokens round-trip into our shards") {
    TempDir dir("llmc");
    const auto tokens = ramp(5001, static_cast<uint32_t>(slm::data::gpt2_vocab));
    write_llmc(dir.path / "fineweb_train_000001.bin", tokens);
    const auto file = slm::data::llmc_file(dir.path / "fineweb_train_000001.bin");
    CHECK(file.offset == 1024);
    CHECK(file.count == 5001);
    CHECK(through_shards(file, slm::data::gpt2_vocab, dir.path / "out", 2000, 777) == widened(tokens));

    // An empty shard is valid: a header and no tokens.
    write_llmc(dir.path / "empty.bin", {});
    CHECK(slm::data::llmc_file(dir.path / "empty.bin").count == 0);

    // GPT-2's vocabulary ends at 50256: 50257 is refused under the default.
    write_llmc(dir.path / "over.bin", {5, 50256, 50257});
    const std::string over = error_of([&] {
        slm::data::read_tokens(slm::data::llmc_file(dir.path / "over.bin"), slm::data::gpt2_vocab,
                               [](const std::vector<int32_t>&) {});
    });
    CHECK(contains(over, "over.bin' has token 50257 at byte offset 1028 (token 2)"));
}

TEST_CASE("llm.c: bad magic, version and size are refused with the file and the reason") {
    TempDir dir("llmc-bad");
    const auto tokens = ramp(100, 50257);
    const auto error = [&](const std::string& name) {
        return error_of([&] { slm::data::llmc_file(dir.path / name); });
    };

    write_llmc(dir.path / "magic.bin", tokens, 20240521);
    CHECK(contains(error("magic.bin"), "magic.bin' has magic 20240521, not 20240520 (not an llm.c shard)"));
    // A raw nanoGPT file given as --llmc: its first tokens are no magic.
    write_raw(dir.path / "raw.bin", ramp(1000, 50257));
    CHECK(contains(error("raw.bin"), "not an llm.c shard"));

    write_llmc(dir.path / "v2.bin", tokens, 20240520, 2);
    CHECK(contains(error("v2.bin"), "v2.bin' has version 2; only version 1 (uint16 tokens) is read"));
    write_llmc(dir.path / "v0.bin", tokens, 20240520, 0);
    CHECK(contains(error("v0.bin"), "has version 0"));

    write_llmc(dir.path / "short.bin", tokens, 20240520, 1, 101);  // header says one more
    CHECK(contains(error("short.bin"), "short.bin' is 1224 bytes, but its header's 101 tokens need 1226"));
    write_llmc(dir.path / "long.bin", tokens, 20240520, 1, 99);
    CHECK(contains(error("long.bin"), "long.bin' is 1224 bytes, but its header's 99 tokens need 1222"));
    write_llmc(dir.path / "negative.bin", tokens, 20240520, 1, -5);
    CHECK(contains(error("negative.bin"), "negative token count -5"));

    std::ofstream(dir.path / "stub.bin", std::ios::binary).write("\x28\xd6\x34\x01", 4);
    CHECK(contains(error("stub.bin"), "stub.bin' is 4 bytes, shorter than its 1024-byte header"));
}
