// Tokenizer: training on a small generated corpus, exact encode/decode round trips (newlines,
// repeated spaces, bytes outside the training alphabet) and the error for a missing model.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/random.hpp"
#include "slm/data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

// A fresh directory under the system temp dir, removed with everything in it.
// ~50 KB of sentences from a small vocabulary: enough repetition for BPE to find merges.
std::string generated_text() {
    const std::vector<std::string> words = {
        "the",  "model", "learns", "from", "tokens", "and",   "small", "data",  "loss",
        "falls", "when", "training", "runs", "long", "enough", "on",   "a",     "gpu",
        "cost", "per",  "step",   "is",   "measured", "by",   "time", "memory", "batch"};
    std::string text;
    uint64_t k = 0;
    while (text.size() < 50'000) {
        const int n = 5 + static_cast<int>(slm::uniform_open(7, k++) * 8);
        for (int w = 0; w < n; ++w) {
            text += words[static_cast<size_t>(slm::uniform_open(7, k++) * words.size())];
            text += w + 1 < n ? " " : ".\n";
        }
    }
    return text;
}

}  // namespace

TEST_CASE("a trained tokenizer round-trips text exactly") {
    TempDir dir("tokenizer");
    const std::string text = generated_text();
    std::ofstream(dir.path / "corpus.txt") << text;

    slm::data::Tokenizer::train({dir.path / "corpus.txt"}, dir.path / "tok", 400);
    REQUIRE(fs::exists(dir.path / "tok.model"));
    const slm::data::Tokenizer tok(dir.path / "tok.model");
    CHECK(tok.vocab_size() == 400);
    CHECK(tok.bos() == 1);
    CHECK(tok.eos() == 2);

    // BPE must compress its own training text well below a byte per token.
    const std::vector<int32_t> ids = tok.encode(text);
    CHECK(ids.size() * 3 < text.size());
    CHECK(tok.decode(ids) == text);

    // Byte fallback: characters never seen in training still encode, and nothing is normalised.
    for (const std::string s : {"the model learns", "  two  spaces\n\nand lines\n", "digits 12345",
                                "h\xC3\xA9llo \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC", "\ttab", ""}) {
        const auto encoded = tok.encode(s);
        for (int32_t id : encoded) CHECK((id >= 0 && id < tok.vocab_size()));
        CHECK(tok.decode(encoded) == s);
    }
    // Chunks of whole lines encode to the same text as the whole: no dummy prefix per chunk.
    std::vector<int32_t> chunked = tok.encode("the model.\n");
    const auto second = tok.encode("loss falls.\n");
    chunked.insert(chunked.end(), second.begin(), second.end());
    CHECK(tok.decode(chunked) == "the model.\nloss falls.\n");

    // Retraining the same corpus gives the same tokenizer.
    slm::data::Tokenizer::train({dir.path / "corpus.txt"}, dir.path / "again", 400);
    CHECK(slm::data::Tokenizer(dir.path / "again.model").encode(text) == ids);
}

TEST_CASE("tokenizer errors name the file") {
    TempDir dir("tokenizer-errors");
    const fs::path missing = dir.path / "missing.model";
    CHECK_THROWS_WITH_AS(slm::data::Tokenizer{missing},
                         doctest::Contains(missing.string().c_str()), slm::Error);

    std::ofstream(dir.path / "garbage.model") << "not a model";
    CHECK_THROWS_WITH_AS(slm::data::Tokenizer{dir.path / "garbage.model"},
                         doctest::Contains("garbage.model"), slm::Error);

    CHECK_THROWS_WITH_AS(slm::data::Tokenizer::train({dir.path / "none.txt"}, dir.path / "t", 300),
                         doctest::Contains("none.txt"), slm::Error);
    std::ofstream(dir.path / "a.txt") << "some text\n";
    CHECK_THROWS_WITH_AS(slm::data::Tokenizer::train({dir.path / "a.txt"}, dir.path / "t", 100),
                         doctest::Contains("too small"), slm::Error);
}
