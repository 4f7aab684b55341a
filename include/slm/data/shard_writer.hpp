#pragma once
// A token stream cut into shards of at most `shard_tokens` tokens (100M by default, ~200 MB at 2
// bytes a token: small enough to map and checksum quickly, few enough files for a big corpus),
// named as find_shards.hpp expects: tokens.bin when one shard holds everything, else
// tokens_000.bin, tokens_001.bin, ... Until the stream ends it cannot be known whether one file
// will do, so full shards are numbered as they fill and a lone partial one becomes tokens.bin.
// Whatever made the tokens (a tokenizer, a converted token file), it holds one shard's worth in
// memory at most.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <utility>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/data/shard.hpp"

namespace slm::data {

inline constexpr size_t default_shard_tokens = 100'000'000;

class ShardWriter {
public:
    // Shards go into `dir` (a staging directory: nothing of an earlier run is there).
    ShardWriter(std::filesystem::path dir, int64_t vocab, size_t shard_tokens = default_shard_tokens)
        : dir_(std::move(dir)), vocab_(vocab), shard_tokens_(shard_tokens) {
        require(shard_tokens_ > 0, "ShardWriter: shard_tokens must be positive");
    }

    void add(const std::vector<int32_t>& tokens) {
        buffer_.insert(buffer_.end(), tokens.begin(), tokens.end());
        while (buffer_.size() > shard_tokens_) {
            std::vector<int32_t> rest(buffer_.begin() + static_cast<std::ptrdiff_t>(shard_tokens_),
                                      buffer_.end());
            buffer_.resize(shard_tokens_);
            flush(numbered(written_.size()));
            buffer_ = std::move(rest);
        }
    }

    // Writes the last shard; returns every shard's path, in order.
    std::vector<std::filesystem::path> finish() {
        flush(written_.empty() ? dir_ / "tokens.bin" : numbered(written_.size()));
        return written_;
    }

    size_t total() const { return total_ + buffer_.size(); }
    int64_t vocab() const { return vocab_; }

private:
    std::filesystem::path numbered(size_t k) const {
        char name[32];
        std::snprintf(name, sizeof(name), "tokens_%03zu.bin", k);
        return dir_ / name;
    }
    void flush(const std::filesystem::path& path) {
        write_shard(path, buffer_, vocab_);
        written_.push_back(path);
        total_ += buffer_.size();
        buffer_.clear();
    }

    std::filesystem::path dir_;
    int64_t vocab_;
    size_t shard_tokens_;
    std::vector<int32_t> buffer_;
    std::vector<std::filesystem::path> written_;
    size_t total_ = 0;
};

}  // namespace slm::data
