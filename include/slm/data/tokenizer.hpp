#pragma once
// Text ↔ token ids through SentencePiece. train() makes a LLaMA-style BPE model: byte fallback
// (every string encodes, no <unk> in practice), identity normalisation and kept whitespace, so
// decode(encode(s)) == s exactly and newlines survive as byte pieces. Tokenizer(path) loads any
// SentencePiece .model, LLaMA's included.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::data {

class Tokenizer {
public:
    // Writes `model_prefix`.model and `model_prefix`.vocab. Deterministic for the same input.
    static void train(const std::vector<std::filesystem::path>& text_files,
                      const std::filesystem::path& model_prefix, int vocab_size);

    explicit Tokenizer(const std::filesystem::path& model_file);

    std::vector<int32_t> encode(std::string_view text) const;
    std::string decode(const std::vector<int32_t>& ids) const;

    int vocab_size() const { return processor_.GetPieceSize(); }
    int bos() const { return processor_.bos_id(); }
    int eos() const { return processor_.eos_id(); }

private:
    std::filesystem::path path_;
    sentencepiece::SentencePieceProcessor processor_;
};

// ---------------------------------------------------------------------------------------------

inline void Tokenizer::train(const std::vector<std::filesystem::path>& text_files,
                             const std::filesystem::path& model_prefix, int vocab_size) {
    require(!text_files.empty(), "Tokenizer::train needs at least one text file");
    // 256 byte pieces + <unk>, <s>, </s> are always in the vocabulary, plus the characters seen.
    require(vocab_size > 259, "Tokenizer::train: vocab_size " + std::to_string(vocab_size) +
                                  " is too small: byte fallback alone takes 259 ids; use 300 or more");
    std::string inputs;
    for (const auto& file : text_files) {
        require(std::ifstream(file).good(),
                "cannot read text file '" + file.string() + "': check the path and permissions");
        // SentencePiece splits its `input` flag on commas.
        require(file.string().find(',') == std::string::npos,
                "text file '" + file.string() + "' has a comma in its path, which SentencePiece "
                "cannot take: rename or link it");
        inputs += (inputs.empty() ? "" : ",") + file.string();
    }
    const auto dir = model_prefix.has_parent_path() ? model_prefix.parent_path()
                                                    : std::filesystem::path(".");
    require(std::filesystem::is_directory(dir),
            "tokenizer output directory '" + dir.string() + "' does not exist: create it first");

    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    const std::unordered_map<std::string, std::string> args = {
        {"input", inputs},
        {"model_prefix", model_prefix.string()},
        {"vocab_size", std::to_string(vocab_size)},
        {"model_type", "bpe"},
        {"byte_fallback", "true"},
        {"character_coverage", "1.0"},
        // Keep the text as written: exact round trips, and chunks of lines encode the same as
        // the whole file (no dummy space before each chunk, no collapsed whitespace).
        {"normalization_rule_name", "identity"},
        {"remove_extra_whitespaces", "false"},
        {"add_dummy_prefix", "false"},
        {"allow_whitespace_only_pieces", "true"},
        {"split_digits", "true"},
        {"pad_id", "-1"},
        {"unk_id", "0"},
        {"bos_id", "1"},
        {"eos_id", "2"},
        // A bounded, shuffled sample keeps memory and time sane on a large corpus.
        {"input_sentence_size", "2000000"},
        {"shuffle_input_sentence", "true"},
        {"num_threads", std::to_string(threads)},
        {"minloglevel", "2"},  // warnings and errors only; training is otherwise chatty
    };
    sentencepiece::SetRandomGeneratorSeed(20241025u);  // fixed: same corpus, same tokenizer
    const auto status = sentencepiece::SentencePieceTrainer::Train(args);
    require(status.ok(), "training the tokenizer '" + model_prefix.string() +
                             ".model' failed: " + status.ToString() +
                             " (a vocab larger than the text supports needs more text or "
                             "a smaller --vocab)");
}

inline Tokenizer::Tokenizer(const std::filesystem::path& model_file) : path_(model_file) {
    require(std::filesystem::is_regular_file(model_file),
            "tokenizer model '" + model_file.string() +
                "' not found: run prepare_data to train one, or pass an existing .model file");
    const auto status = processor_.Load(model_file.string());
    require(status.ok(), "cannot read tokenizer model '" + model_file.string() + "': " +
                             status.ToString() + " (it must be a SentencePiece .model file)");
}

inline std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    require(status.ok(), "tokenizer '" + path_.string() + "' cannot encode text: " +
                             status.ToString());
    return {ids.begin(), ids.end()};
}

inline std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    const int n = vocab_size();
    for (int32_t id : ids)
        require(id >= 0 && id < n, "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                       std::to_string(n) + ") of tokenizer '" + path_.string() +
                                       "': the tokens were made with another tokenizer");
    std::string text;
    const auto status = processor_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    require(status.ok(), "tokenizer '" + path_.string() + "' cannot decode ids: " +
                             status.ToString());
    return text;
}

}  // namespace slm::data
