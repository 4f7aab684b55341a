// prepare_data: text files → DIR/tokenizer.model and DIR/tokens.bin (or tokens_000.bin, … past
// 100M tokens), ready for the loader.
//
//   prepare_data --text FILE [--text FILE ...] --out DIR [--vocab N] [--tokenizer EXISTING.model]
//
// Each text file is one document: <s>, its tokens, </s>. Files are read and encoded in chunks of
// whole lines, so a corpus larger than memory only costs one shard's worth of tokens. The
// tokenizer and the shards of one call appear in DIR together or not at all (data::OutputSet):
// a killed or failed call leaves DIR's previous set as it was.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/data/output_set.hpp"
#include "slm/data/shard.hpp"
#include "slm/data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

constexpr size_t shard_tokens = 100'000'000;  // ~200 MB at 2 bytes a token
// SentencePiece's BPE encode slows down superlinearly on long inputs (1 MB calls run 2.5x
// slower than 8 KB ones on the KJV text), so text goes in small chunks, many at once in parallel.
constexpr size_t chunk_bytes = 8 << 10;
constexpr size_t chunks_per_round = 512;

struct Options {
    std::vector<fs::path> texts;
    fs::path out;
    int vocab = 4096;
    fs::path tokenizer;  // empty: train one
};

int usage(const std::string& problem) {
    std::cerr << "prepare_data: " << problem << "\n"
              << "usage: prepare_data --text FILE [--text FILE ...] --out DIR [--vocab N (default "
                 "4096)] [--tokenizer EXISTING.model]\n";
    return 2;
}

// Returns false (after printing usage) on a bad command line.
bool parse(int argc, char** argv, Options& o, int& exit_code) {
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            usage("converts text files into a tokenizer and token shards");
            exit_code = 0;
            return false;
        }
        if (i + 1 >= argc) {
            exit_code = usage(flag + " needs a value");
            return false;
        }
        const std::string value = argv[++i];
        if (flag == "--text") {
            o.texts.emplace_back(value);
        } else if (flag == "--out") {
            o.out = value;
        } else if (flag == "--tokenizer") {
            o.tokenizer = value;
        } else if (flag == "--vocab") {
            try {
                size_t used = 0;
                o.vocab = std::stoi(value, &used);
                if (used != value.size() || o.vocab <= 0) throw std::invalid_argument(value);
            } catch (const std::exception&) {
                exit_code = usage("--vocab '" + value + "' is not a positive integer");
                return false;
            }
        } else {
            exit_code = usage("unknown flag '" + flag + "'");
            return false;
        }
    }
    if (o.texts.empty()) exit_code = usage("--text is required");
    else if (o.out.empty()) exit_code = usage("--out is required");
    else return true;
    return false;
}

// One line on stderr, rewritten in place as the percentage grows.
class Progress {
public:
    explicit Progress(uintmax_t total) : total_(total) {}
    void update(uintmax_t done, size_t tokens) {
        const int percent = done >= total_ ? 100 : static_cast<int>(100 * done / total_);
        if (percent == shown_) return;
        shown_ = percent;
        const int filled = percent / 4;
        std::fprintf(stderr, "\rencoding [%s%s] %3d%%  %zu tokens", std::string(filled, '#').c_str(),
                     std::string(25 - filled, '.').c_str(), percent, tokens);
        if (percent == 100) std::fputc('\n', stderr);
        std::fflush(stderr);
    }

private:
    uintmax_t total_;
    int shown_ = -1;
};

// Collects tokens and writes a shard each time 100M are held. Until the end it cannot know
// whether one file will do, so the first full shard is tokens_000.bin and a single partial
// one becomes tokens.bin.
class ShardWriter {
public:
    ShardWriter(fs::path dir, int64_t vocab) : dir_(std::move(dir)), vocab_(vocab) {}

    void add(const std::vector<int32_t>& tokens) {
        buffer_.insert(buffer_.end(), tokens.begin(), tokens.end());
        while (buffer_.size() > shard_tokens) {
            std::vector<int32_t> rest(buffer_.begin() + shard_tokens, buffer_.end());
            buffer_.resize(shard_tokens);
            flush(numbered(written_.size()));
            buffer_ = std::move(rest);
        }
    }
    // Writes the last shard (into the staging directory: nothing of an earlier run is there).
    std::vector<fs::path> finish() {
        flush(written_.empty() ? dir_ / "tokens.bin" : numbered(written_.size()));
        return written_;
    }
    size_t total() const { return total_ + buffer_.size(); }

private:
    fs::path numbered(size_t k) const {
        char name[32];
        std::snprintf(name, sizeof(name), "tokens_%03zu.bin", k);
        return dir_ / name;
    }
    void flush(const fs::path& path) {
        slm::data::write_shard(path, buffer_, vocab_);
        written_.push_back(path);
        total_ += buffer_.size();
        buffer_.clear();
    }

    fs::path dir_;
    int64_t vocab_;
    std::vector<int32_t> buffer_;
    std::vector<fs::path> written_;
    size_t total_ = 0;
};

// Encodes chunks in parallel and appends their tokens in order. Encode is const and
// thread-safe; an exception must not leave an OpenMP region, so the first one is rethrown here.
void encode_in_order(const slm::data::Tokenizer& tokenizer, const std::vector<std::string>& chunks,
                     ShardWriter& shards) {
    std::vector<std::vector<int32_t>> encoded(chunks.size());
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < static_cast<int64_t>(chunks.size()); ++i) {
        try {
            encoded[static_cast<size_t>(i)] = tokenizer.encode(chunks[static_cast<size_t>(i)]);
        } catch (...) {
#pragma omp critical
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
    for (const auto& tokens : encoded) shards.add(tokens);
}

int run(const Options& o) {
    const auto started = std::chrono::steady_clock::now();
    uintmax_t text_bytes = 0;
    for (const auto& text : o.texts) {
        std::error_code ec;
        const auto size = fs::file_size(text, ec);
        slm::require(!ec, "cannot read text file '" + text.string() + "': " + ec.message());
        text_bytes += size;
    }
    // What this program writes in --out; anything else there makes it refuse the directory.
    const std::regex ours(R"(tokenizer\.(model|vocab)|tokens(_\d{3,})?\.bin)");
    slm::data::OutputSet output(o.out, [&](const std::string& name) { return std::regex_match(name, ours); });
    const fs::path stage = output.staging();

    const fs::path model = stage / "tokenizer.model";
    if (o.tokenizer.empty()) {
        std::cerr << "training a " << o.vocab << "-piece BPE tokenizer on "
                  << text_bytes / 1e6 << " MB of text...\n";
        slm::data::Tokenizer::train(o.texts, stage / "tokenizer", o.vocab);
    } else {
        slm::data::Tokenizer check(o.tokenizer);  // fail on a bad model before copying it
        fs::copy_file(o.tokenizer, model, fs::copy_options::overwrite_existing);
    }
    const slm::data::Tokenizer tokenizer(model);
    const double trained_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    ShardWriter shards(stage, tokenizer.vocab_size());
    Progress progress(text_bytes);
    uintmax_t done = 0;
    for (const auto& text : o.texts) {
        std::ifstream in(text, std::ios::binary);
        slm::require(in.good(), "cannot open text file '" + text.string() + "'");
        if (tokenizer.bos() >= 0) shards.add({tokenizer.bos()});
        std::vector<std::string> chunks(1);
        std::string line;
        const auto encode_round = [&] {
            encode_in_order(tokenizer, chunks, shards);
            for (const auto& c : chunks) done += c.size();
            chunks.assign(1, std::string());
            progress.update(done, shards.total());
        };
        // Chunks end at a line break, so no word is cut in two between encode calls.
        while (std::getline(in, line)) {
            chunks.back() += line;
            if (!in.eof()) chunks.back() += '\n';
            if (chunks.back().size() < chunk_bytes) continue;
            if (chunks.size() == chunks_per_round) encode_round();
            else chunks.emplace_back();
        }
        slm::require(in.eof(), "reading text file '" + text.string() + "' failed");
        encode_round();
        if (tokenizer.eos() >= 0) shards.add({tokenizer.eos()});
        progress.update(done, shards.total());
    }
    progress.update(text_bytes, shards.total());
    const size_t tokens = shards.total();
    const auto staged = shards.finish();
    output.commit();  // tokenizer and shards appear together
    std::vector<fs::path> written;
    for (const auto& path : staged) written.push_back(o.out / path.filename());
    const double total_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    std::cerr << "tokenizer  " << (o.out / "tokenizer.model").string() << " (vocab " << tokenizer.vocab_size() << ")\n";
    for (const auto& path : written) std::cerr << "shard      " << path.string() << "\n";
    std::fprintf(stderr,
                 "tokens     %zu from %.2f MB of text: %.2f bytes/token\n"
                 "time       %.1f s (tokenizer %.1f s, encoding %.1f s)\n",
                 tokens, static_cast<double>(text_bytes) / 1e6,
                 tokens ? static_cast<double>(text_bytes) / static_cast<double>(tokens) : 0.0,
                 total_s, trained_s, total_s - trained_s);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    int exit_code = 0;
    if (!parse(argc, argv, options, exit_code)) return exit_code;
    try {
        return run(options);
    } catch (const slm::Error& e) {
        std::cerr << "prepare_data: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {  // filesystem errors, out of memory
        std::cerr << "prepare_data: " << e.what() << "\n";
        return 1;
    }
}
