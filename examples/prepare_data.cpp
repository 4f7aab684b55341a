// prepare_data: a corpus → DIR/tokens.bin (or tokens_000.bin, … past 100M tokens), ready for the
// loader; text input also gives DIR/tokenizer.model.
//
//   prepare_data --text FILE | --jsonl FILE [...] [--field text] --out DIR [--vocab N] [--tokenizer M]
//   prepare_data --raw-uint16 FILE --vocab N | --llmc FILE [--vocab N] [...] --out DIR
//
// Text: each --text file is one document and so is each --jsonl line's --field string: <s>, its
// tokens, </s>, in command-line order. Text is read and encoded in chunks of whole lines, so a
// corpus larger than memory only costs one shard's worth of tokens. Tokens (nanoGPT's raw uint16
// files, llm.c's shards) are converted as they are, checked against the vocabulary; DIR then
// holds no tokenizer (train_llama needs none; their own tokenizer decodes them). DIR/config.toml
// records the call's settings: `--config DIR/config.toml` repeats it (prepare_data_options.hpp).
// The files of one call appear in DIR together or not at all (data::OutputSet): a killed or
// failed call leaves DIR's previous set as it was.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "prepare_data_options.hpp"
#include "slm/core/error.hpp"
#include "slm/core/presets.hpp"
#include "slm/data/document_encoder.hpp"
#include "slm/data/jsonl_text.hpp"
#include "slm/data/output_set.hpp"
#include "slm/data/pretokenized.hpp"
#include "slm/data/shard_writer.hpp"
#include "slm/data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

// SentencePiece trains on a sample of 2M sentences anyway; the JSONL text it may draw from is
// copied to a file (it reads files only), and this much of it is plenty and keeps the copy small.
constexpr uintmax_t tokenizer_jsonl_bytes = uintmax_t{1} << 30;

using slm::prepare::Input;
using slm::prepare::Kind;
using slm::prepare::Options;

bool progress_open = false;  // a progress line is on stderr without its '\n' (an error ends it)

// One line on stderr, rewritten in place as the percentage grows.
class Progress {
public:
    Progress(const char* what, uintmax_t total) : what_(what), total_(total) {}
    void update(uintmax_t done, size_t tokens) {
        const int percent = done >= total_ ? 100 : static_cast<int>(100 * done / total_);
        if (percent == shown_) return;
        shown_ = percent;
        const int filled = percent / 4;
        std::fprintf(stderr, "\r%s [%s%s] %3d%%  %zu tokens", what_, std::string(filled, '#').c_str(),
                     std::string(25 - filled, '.').c_str(), percent, tokens);
        if (percent == 100) std::fputc('\n', stderr);
        progress_open = percent < 100;
        std::fflush(stderr);
    }

private:
    const char* what_;
    uintmax_t total_;
    int shown_ = -1;
};

uintmax_t size_of(const fs::path& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    slm::require(!ec, "cannot read input file '" + path.string() + "': " + ec.message());
    return size;
}

// The JSONL documents SentencePiece may train on, one after another in one text file.
void write_jsonl_text(const Options& o, const fs::path& file) {
    std::ofstream out(file, std::ios::binary);
    uintmax_t written = 0;
    std::string text;
    for (const auto& input : o.inputs) {
        if (input.kind != Kind::Jsonl) continue;
        slm::data::JsonlTexts docs(input.path, o.field.value_or("text"));
        while (written < tokenizer_jsonl_bytes && docs.next(text)) {
            out << text << '\n';
            written += text.size() + 1;
        }
    }
    slm::require(out.flush().good(), "cannot write '" + file.string() + "' (disk full?)");
    if (written >= tokenizer_jsonl_bytes)
        std::cerr << "the tokenizer trains on the first " << (tokenizer_jsonl_bytes >> 20)
                  << " MiB of the JSONL text\n";
}

// What one call staged, for the summary printed once it is committed.
struct Made {
    std::vector<fs::path> shards;
    size_t tokens = 0;
    int64_t vocab = 0;
    uint64_t text_bytes = 0;  // text input only
    double tokenizer_s = 0;
};

// Trains a tokenizer in `stage` (or copies --tokenizer there) and encodes the text inputs.
Made encode_text(const Options& o, const fs::path& stage, uintmax_t input_bytes) {
    Made made;
    const auto started = std::chrono::steady_clock::now();
    const fs::path model = stage / "tokenizer.model";
    if (o.tokenizer.empty()) {
        std::vector<fs::path> training;
        for (const auto& input : o.inputs)
            if (input.kind == Kind::Text) training.push_back(input.path);
        const fs::path jsonl_text = stage / "jsonl_text.tmp";
        if (o.has(Kind::Jsonl)) {
            write_jsonl_text(o, jsonl_text);
            training.push_back(jsonl_text);
        }
        uintmax_t bytes = 0;
        for (const auto& file : training) bytes += size_of(file);
        std::cerr << "training a " << o.vocab.value_or(4096) << "-piece BPE tokenizer on "
                  << static_cast<double>(bytes) / 1e6 << " MB of text...\n";
        slm::data::Tokenizer::train(training, stage / "tokenizer", o.vocab.value_or(4096));
        fs::remove(jsonl_text);  // only the set's own files may be committed
    } else {
        slm::data::Tokenizer check(o.tokenizer);  // fail on a bad model before copying it
        fs::copy_file(o.tokenizer, model, fs::copy_options::overwrite_existing);
    }
    const slm::data::Tokenizer tokenizer(model);
    made.tokenizer_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    slm::data::ShardWriter shards(stage, tokenizer.vocab_size());
    slm::data::DocumentEncoder encoder(tokenizer, shards);
    Progress progress("encoding", input_bytes);
    uintmax_t finished = 0;  // input bytes of the files done
    uint64_t shown_rounds = 0;
    const auto show = [&](uintmax_t done) {  // after each encoded round
        if (encoder.rounds() == shown_rounds) return;
        shown_rounds = encoder.rounds();
        progress.update(done, shards.total());
    };
    std::string line;
    for (const auto& input : o.inputs) {
        if (input.kind == Kind::Text) {
            std::ifstream in(input.path, std::ios::binary);
            slm::require(in.good(), "cannot open text file '" + input.path.string() + "'");
            uintmax_t done = 0;
            encoder.begin_document();
            while (std::getline(in, line)) {
                if (!in.eof()) line += '\n';  // kept where the file has it
                encoder.add(line);
                done += line.size();
                show(finished + done);
            }
            slm::require(in.eof(), "reading text file '" + input.path.string() + "' failed");
            encoder.end_document();
        } else {
            slm::data::JsonlTexts docs(input.path, o.field.value_or("text"));
            while (docs.next(line)) {
                encoder.add_document(line);
                show(finished + docs.consumed());
            }
        }
        finished += size_of(input.path);
    }
    encoder.flush();
    progress.update(input_bytes, shards.total());
    made.text_bytes = encoder.text_bytes();
    made.vocab = tokenizer.vocab_size();
    made.tokens = shards.total();
    made.shards = shards.finish();
    return made;
}

// Converts --raw-uint16 and --llmc files into shards, each token checked against the vocabulary.
Made convert_tokens(const Options& o, const fs::path& stage) {
    const int64_t vocab = o.vocab ? *o.vocab : slm::data::gpt2_vocab;
    std::cerr << "vocabulary " << vocab
              << (o.vocab ? " (--vocab)" : " (GPT-2's, which llm.c uses; --vocab N to change)") << "\n";
    int64_t largest_preset = 0;
    for (const auto& p : slm::presets::table) largest_preset = std::max(largest_preset, p.vocab);
    if (vocab > largest_preset)
        std::cerr << "note: no preset has a vocabulary of " << vocab << " (the largest is "
                  << largest_preset << "): train_llama refuses these shards until one does\n";
    // Every header and size is checked before anything is converted.
    std::vector<slm::data::TokenFile> files;
    uintmax_t token_bytes = 0;
    for (const auto& input : o.inputs) {
        files.push_back(input.kind == Kind::Llmc ? slm::data::llmc_file(input.path)
                                                 : slm::data::raw_uint16_file(input.path));
        token_bytes += 2 * files.back().count;
    }
    slm::data::ShardWriter shards(stage, vocab);
    Progress progress("converting", token_bytes);
    for (const auto& file : files) {
        slm::data::read_tokens(file, vocab, [&](const std::vector<int32_t>& tokens) {
            shards.add(tokens);
            progress.update(2 * shards.total(), shards.total());
        });
    }
    progress.update(token_bytes, shards.total());
    Made made;
    made.vocab = vocab;
    made.tokens = shards.total();
    made.shards = shards.finish();
    return made;
}

int run(const Options& o) {
    const auto started = std::chrono::steady_clock::now();
    uintmax_t input_bytes = 0;
    for (const auto& input : o.inputs) input_bytes += size_of(input.path);
    // What this program writes in --out; anything else there makes it refuse the directory.
    const std::regex ours(R"(tokenizer\.(model|vocab)|tokens(_\d{3,})?\.bin|config\.toml)");
    slm::data::OutputSet output(o.out, [&](const std::string& name) { return std::regex_match(name, ours); });

    const Made made = o.tokens_in() ? convert_tokens(o, output.staging())
                                    : encode_text(o, output.staging(), input_bytes);
    slm::prepare::write_config(o, made.vocab, output.staging() / "config.toml");
    output.commit();  // tokenizer and shards appear together
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (o.tokens_in())
        std::cerr << "tokenizer  none: these tokens came from another pipeline's tokenizer (vocab "
                  << made.vocab << "); train_llama needs only the shards\n";
    else
        std::cerr << "tokenizer  " << (o.out / "tokenizer.model").string() << " (vocab " << made.vocab << ")\n";
    for (const auto& path : made.shards) std::cerr << "shard      " << (o.out / path.filename()).string() << "\n";
    if (o.tokens_in()) {
        std::fprintf(stderr, "tokens     %zu from %zu file(s)\ntime       %.1f s\n", made.tokens,
                     o.inputs.size(), total_s);
        return 0;
    }
    std::fprintf(stderr,
                 "tokens     %zu from %.2f MB of text: %.2f bytes/token\n"
                 "time       %.1f s (tokenizer %.1f s, encoding %.1f s)\n",
                 made.tokens, static_cast<double>(made.text_bytes) / 1e6,
                 made.tokens ? static_cast<double>(made.text_bytes) / static_cast<double>(made.tokens) : 0.0,
                 total_s, made.tokenizer_s, total_s - made.tokenizer_s);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    int exit_code = 0;
    if (!slm::prepare::parse(argc, argv, options, exit_code)) return exit_code;
    try {
        return run(options);
    } catch (const slm::Error& e) {
        std::cerr << (progress_open ? "\n" : "") << "prepare_data: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {  // filesystem errors, out of memory
        std::cerr << (progress_open ? "\n" : "") << "prepare_data: " << e.what() << "\n";
        return 1;
    }
}
