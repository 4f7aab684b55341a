// DocumentEncoder: every document becomes <s>, its tokens, </s>, in order, across chunk cuts and
// parallel rounds; a document's tokens do not depend on its neighbours; and ShardWriter names a
// lone shard tokens.bin and numbers full ones.
#include <doctest/doctest.h>

#include "common/temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/random.hpp"
#include "slm/data/document_encoder.hpp"
#include "slm/data/shard.hpp"
#include "slm/data/shard_writer.hpp"
#include "slm/data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

using slm::test::TempDir;

// `bytes` of sentences from a small vocabulary, seeded.
std::string sentences(size_t bytes, uint64_t seed) {
    const std::vector<std::string> words = {"the", "model", "learns", "from", "tokens", "and", "small",
                                            "data", "loss", "falls", "when", "training", "runs", "long"};
    std::string text;
    for (uint64_t k = 0; text.size() < bytes; ++k) {
        text += words[static_cast<size_t>(slm::uniform_open(seed, k) * words.size())];
        text += k % 9 == 8 ? ".\n" : " ";
    }
    text.resize(bytes);
    return text;
}

std::vector<int32_t> all_tokens(const std::vector<fs::path>& shards) {
    std::vector<int32_t> out;
    for (const auto& path : shards) {
        const slm::data::ShardReader reader(path);
        const size_t at = out.size();
        out.resize(at + static_cast<size_t>(reader.size()));
        reader.copy(0, reader.size(), out.data() + at);
    }
    return out;
}

// The tokens of `docs` encoded one after another into shards of `shard_tokens`.
std::vector<int32_t> encoded(const slm::data::Tokenizer& tokenizer, const std::vector<std::string>& docs,
                             const fs::path& dir, size_t shard_tokens = slm::data::default_shard_tokens) {
    fs::create_directories(dir);
    slm::data::ShardWriter shards(dir, tokenizer.vocab_size(), shard_tokens);
    slm::data::DocumentEncoder encoder(tokenizer, shards);
    for (const auto& doc : docs) encoder.add_document(doc);
    encoder.flush();
    CHECK(encoder.text_bytes() == [&] {
        size_t n = 0;
        for (const auto& d : docs) n += d.size();
        return n;
    }());
    return all_tokens(shards.finish());
}

}  // namespace

TEST_CASE("document encoder: <s> tokens </s> per document, in order, across chunks and rounds") {
    TempDir dir("document-encoder");
    std::ofstream(dir.path / "corpus.txt") << sentences(60'000, 1);
    slm::data::Tokenizer::train({dir.path / "corpus.txt"}, dir.path / "tok", 400);
    const slm::data::Tokenizer tokenizer(dir.path / "tok.model");
    REQUIRE(tokenizer.bos() >= 0);
    REQUIRE(tokenizer.eos() >= 0);

    // 700 documents (more than one round of 512 chunks), among them an empty one, one without
    // line breaks longer than a chunk, and one of many chunks.
    std::vector<std::string> docs;
    for (uint64_t d = 0; d < 700; ++d) docs.push_back(sentences(1 + (d * 37) % 300, 10 + d));
    docs[5].clear();
    docs[100] = std::string(20'000, 'x');
    docs[400] = sentences(100'000, 99);
    const auto tokens = encoded(tokenizer, docs, dir.path / "all", 50'000);  // several shards

    size_t at = 0;
    for (size_t d = 0; d < docs.size(); ++d) {
        CAPTURE(d);
        REQUIRE(at < tokens.size());
        REQUIRE(tokens[at] == tokenizer.bos());
        size_t end = at + 1;
        while (end < tokens.size() && tokens[end] != tokenizer.eos()) ++end;
        REQUIRE(end < tokens.size());
        CHECK(tokenizer.decode({tokens.begin() + static_cast<std::ptrdiff_t>(at + 1),
                                tokens.begin() + static_cast<std::ptrdiff_t>(end)}) == docs[d]);
        at = end + 1;
    }
    CHECK(at == tokens.size());

    // A document encodes to the same tokens alone as among the others.
    const auto alone = encoded(tokenizer, {docs[400]}, dir.path / "alone");
    const auto among = encoded(tokenizer, {docs[3], docs[400], docs[7]}, dir.path / "among");
    const auto first = encoded(tokenizer, {docs[3]}, dir.path / "first");
    REQUIRE(among.size() > first.size() + alone.size());
    CHECK(std::vector<int32_t>(among.begin() + static_cast<std::ptrdiff_t>(first.size()),
                               among.begin() + static_cast<std::ptrdiff_t>(first.size() + alone.size())) == alone);
}

TEST_CASE("shard writer: one shard is tokens.bin, more are numbered and each at most shard_tokens") {
    TempDir dir("shard-writer");
    const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7};
    for (size_t limit : {size_t{7}, size_t{100}, size_t{3}, size_t{1}}) {
        CAPTURE(limit);
        const fs::path out = dir.path / std::to_string(limit);
        fs::create_directories(out);
        slm::data::ShardWriter writer(out, 10, limit);
        writer.add({1, 2});
        writer.add({3, 4, 5, 6, 7});
        CHECK(writer.total() == 7);
        const auto paths = writer.finish();
        CHECK(paths.size() == (7 + limit - 1) / limit);
        for (const auto& path : paths) CHECK(slm::data::ShardReader(path).size() <= static_cast<int64_t>(limit));
        CHECK(paths.front().filename() == (paths.size() == 1 ? "tokens.bin" : "tokens_000.bin"));
        CHECK(all_tokens(paths) == tokens);
    }
}
