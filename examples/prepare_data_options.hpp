#pragma once
// prepare_data's command line: the inputs in order, the output and the tokenizer settings, read
// from argv and from `--config FILE` (TOML or INI, as every program's; an input key may hold a
// list: `text = ["a.txt", "b.txt"]`), and written back as DIR/config.toml so that
// `prepare_data --config DIR/config.toml` makes the same shards again. prepare_data's inputs
// repeat and keep their order, which cli::Flags (one value per flag) does not model; the file
// format and its reader are shared with the other programs (config_file.hpp).
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config_file.hpp"
#include "slm/core/file_io.hpp"
#include "slm/data/jsonl_text.hpp"

namespace slm::prepare {

enum class Kind { Text, Jsonl, RawUint16, Llmc };
struct Input {
    Kind kind;
    std::filesystem::path path;
};

// The input flags, in Kind order.
inline const std::vector<std::string> input_flags = {"--text", "--jsonl", "--raw-uint16", "--llmc"};

struct Options {
    std::vector<Input> inputs;  // in command-line order (a config file's first)
    std::filesystem::path out;
    std::optional<int> vocab;
    std::filesystem::path tokenizer;  // empty: train one
    std::optional<std::string> field;
    bool has(Kind k) const {
        return std::any_of(inputs.begin(), inputs.end(), [k](const Input& i) { return i.kind == k; });
    }
    bool tokens_in() const { return has(Kind::RawUint16) || has(Kind::Llmc); }
};

inline int usage(const std::string& problem) {
    std::cerr << "prepare_data: " << problem << "\n"
              << "usage: prepare_data INPUT [INPUT ...] --out DIR [options]; each input flag may repeat\n"
                 "  text in (a SentencePiece tokenizer is trained on it, or --tokenizer reused):\n"
                 "    --text FILE        a text file: one document\n"
              << "    --jsonl FILE       JSON Lines, plain or gzip (" << (slm::data::have_zlib ? ".gz" : "not in this build: no zlib")
              << "): each line an\n"
                 "                       object whose --field string is one document\n"
                 "    --field NAME       the --jsonl field holding the text (default text)\n"
                 "    --vocab N          pieces of the trained tokenizer (default 4096)\n"
                 "    --tokenizer MODEL  encode with this SentencePiece model instead of training one\n"
                 "  tokens in (converted as they are; DIR gets no tokenizer.model):\n"
                 "    --raw-uint16 FILE  nanoGPT-style raw little-endian uint16 tokens (needs --vocab)\n"
                 "    --llmc FILE        an llm.c shard (header magic 20240520, version 1, uint16 tokens)\n"
                 "    --vocab N          the tokens' vocabulary (--llmc alone: default 50257, GPT-2's)\n"
                 "  --config FILE        TOML or INI of these flags without '--' (an input key may be a\n"
                 "                       list); a flag on the command line replaces the file's. DIR gets\n"
                 "                       config.toml: --config DIR/config.toml makes the same shards again\n"
                 "  text and tokens do not mix in one call. Exit 2: usage; 1: bad data (DIR unchanged).\n";
    return 2;
}

// Returns false (exit_code set, usage printed) on a bad command line or --help.
inline bool parse(int argc, char** argv, Options& o, int& exit_code) {
    const auto refuse = [&](const std::string& problem) {
        exit_code = usage(problem);
        return false;
    };
    static const std::vector<std::string> known = {"--text", "--jsonl", "--raw-uint16", "--llmc", "--field",
                                                   "--out", "--tokenizer", "--vocab"};
    std::vector<std::pair<std::string, std::string>> line;  // (flag, value) in order
    std::string config;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            usage("converts text or other pipelines' token files into token shards");
            exit_code = 0;
            return false;
        }
        if (flag != "--config" && std::find(known.begin(), known.end(), flag) == known.end())
            return refuse("unknown flag '" + flag + "'");
        if (i + 1 >= argc) return refuse(flag + " needs a value");
        if (flag == "--config") config = argv[++i];
        else line.emplace_back(flag, argv[++i]);
    }
    // The file's values first, for the keys the command line does not give.
    std::vector<std::pair<std::string, std::string>> settings;
    if (!config.empty()) {
        std::vector<std::pair<std::string, std::vector<std::string>>> items;
        try {
            items = slm::cli::read_config_lists(config);
        } catch (const std::runtime_error& e) {
            return refuse(e.what());
        }
        for (const auto& [key, values] : items) {
            const std::string flag = "--" + key;
            if (std::find(known.begin(), known.end(), flag) == known.end())
                return refuse("--config '" + config + "': '" + key + "' is not a flag of prepare_data");
            const bool repeats = std::find(input_flags.begin(), input_flags.end(), flag) != input_flags.end();
            if (!repeats && values.size() != 1)
                return refuse("--config '" + config + "': '" + key + "' takes one value, not a list");
            const bool on_line = std::any_of(line.begin(), line.end(), [&](const auto& s) { return s.first == flag; });
            if (on_line) continue;  // the command line wins
            for (const auto& v : values) settings.emplace_back(flag, v);
        }
    }
    settings.insert(settings.end(), line.begin(), line.end());

    for (const auto& [flag, value] : settings) {
        if (flag == "--text") o.inputs.push_back({Kind::Text, value});
        else if (flag == "--jsonl") o.inputs.push_back({Kind::Jsonl, value});
        else if (flag == "--raw-uint16") o.inputs.push_back({Kind::RawUint16, value});
        else if (flag == "--llmc") o.inputs.push_back({Kind::Llmc, value});
        else if (flag == "--field") o.field = value;
        else if (flag == "--out") o.out = value;
        else if (flag == "--tokenizer") o.tokenizer = value;
        else {  // --vocab
            try {
                size_t used = 0;
                o.vocab = std::stoi(value, &used);
                if (used != value.size() || *o.vocab <= 0) throw std::invalid_argument(value);
            } catch (const std::exception&) {
                return refuse("--vocab '" + value + "' is not a positive integer");
            }
        }
    }
    if (o.inputs.empty()) return refuse("no input given (--text is required, or --jsonl, --raw-uint16, --llmc)");
    if (o.out.empty()) return refuse("--out is required");
    if (o.field && o.field->empty()) return refuse("--field needs a field name");
    if (o.field && !o.has(Kind::Jsonl)) return refuse("--field applies to --jsonl inputs, and there are none");
    if (!o.tokens_in()) return true;
    if (o.has(Kind::Text) || o.has(Kind::Jsonl))
        return refuse("--text/--jsonl (text) and --raw-uint16/--llmc (tokens) do not mix in one call");
    if (!o.tokenizer.empty()) return refuse("--tokenizer applies to text input; token files are already tokenized");
    if (o.has(Kind::RawUint16) && !o.vocab)
        return refuse("--raw-uint16 needs --vocab N: a raw token file does not say its vocabulary");
    return true;
}

// The call's settings as `--config` reads them: each input kind one list, in the order the kinds
// first appear, then the other flags as resolved (`vocab` the vocabulary used). A file keeps the
// inputs of one kind together, so a command line that interleaved kinds (text, jsonl, text) is
// repeated with the documents grouped by kind, which the file says.
inline std::string config_text(const Options& o, int64_t vocab_used) {
    std::string text = "# prepare_data: the settings of this call (command line, --config and defaults); "
                       "repeat it with prepare_data --config FILE\n";
    std::vector<Kind> order;
    bool interleaved = false;
    for (size_t i = 0; i < o.inputs.size(); ++i) {
        const Kind k = o.inputs[i].kind;
        if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
        else if (o.inputs[i - 1].kind != k) interleaved = true;
    }
    if (interleaved)
        text += "# the command line interleaved input kinds; this file lists each kind's inputs together\n";
    for (const Kind k : order) {
        std::string list;
        for (const auto& input : o.inputs)
            if (input.kind == k) list += (list.empty() ? "" : ", ") + slm::cli::toml_string(input.path.string());
        text += input_flags[static_cast<size_t>(k)].substr(2) + " = [" + list + "]\n";
    }
    text += "out = " + slm::cli::toml_string(o.out.string()) + "\n";
    if (o.has(Kind::Jsonl)) text += "field = " + slm::cli::toml_string(o.field.value_or("text")) + "\n";
    if (!o.tokenizer.empty()) text += "tokenizer = " + slm::cli::toml_string(o.tokenizer.string()) + "\n";
    else text += "vocab = \"" + std::to_string(vocab_used) + "\"\n";
    return text;
}

inline void write_config(const Options& o, int64_t vocab_used, const std::filesystem::path& path) {
    const std::string text = config_text(o, vocab_used);
    slm::AtomicFile file(path);
    file.write(text.data(), text.size());
    file.commit();
}

}  // namespace slm::prepare
