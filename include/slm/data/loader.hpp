#pragma once
// Batches of (tokens, targets) windows from token shards, for training and validation.
//
// Each shard splits at one point: its first (1 − val_fraction) tokens train, the rest validate,
// so the two never share a token and adding a shard never moves another shard's split.
//
// Training windows start at random positions drawn from a counter-based generator: row i of
// train batch p on rank r is sample g = (p·batch + i)·world + r, and its start depends only on
// (seed, g). So ranks draw disjoint sample streams, a checkpoint needs only p, and the global
// batch (all ranks' rows together) is the same for any world size at the same global batch.
//
// Validation windows walk the validation splits in order with stride seq: every validation
// token is predicted exactly once, and batch k is the same on every call and every rank.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/random.hpp"
#include "slm/data/shard.hpp"

namespace slm::data {

struct LoaderConfig {
    int64_t batch = 1;  // rows per batch on this rank
    int64_t seq = 1;    // tokens per row; each row reads seq + 1 tokens
    uint64_t seed = 0;
    int rank = 0;
    int world = 1;
    double val_fraction = 0.05;
};

struct Batch {
    std::vector<int32_t> tokens;   // (batch, seq)
    std::vector<int32_t> targets;  // (batch, seq): tokens shifted left by one
    int64_t batch = 0, seq = 0;
};

class Loader {
public:
    Loader(std::vector<std::filesystem::path> shards, LoaderConfig config);

    Batch next_train();
    Batch validation(int64_t index) const;
    int64_t validation_batches() const {
        return (validation_windows_ + config_.batch - 1) / config_.batch;
    }

    // Train batches drawn so far on this rank; a checkpoint stores it and set_position resumes.
    uint64_t position() const { return position_; }
    void set_position(uint64_t position) { position_ = position; }

    int64_t vocab() const { return shards_.front().vocab(); }
    int64_t train_tokens() const { return sum_of(&Split::train); }
    int64_t validation_tokens() const { return sum_of(&Split::validation); }
    const LoaderConfig& config() const { return config_; }

private:
    struct Split {
        int64_t train = 0;       // tokens [0, train) of the shard
        int64_t validation = 0;  // tokens [train, train + validation)
    };

    // Copies the window of seq + 1 tokens at `start` of shard `s` into row `row` of `out`.
    void fill_row(Batch& out, int64_t row, size_t s, int64_t start) const;
    int64_t sum_of(int64_t Split::*field) const {
        int64_t total = 0;
        for (const Split& split : splits_) total += split.*field;
        return total;
    }
    std::string too_short(const char* split_name, int64_t Split::*field) const;

    LoaderConfig config_;
    std::vector<ShardReader> shards_;
    std::vector<Split> splits_;
    std::vector<int64_t> train_starts_;  // prefix sums of valid window starts per shard
    std::vector<int64_t> validation_windows_before_;
    int64_t validation_windows_ = 0;
    uint64_t position_ = 0;
};

// ---------------------------------------------------------------------------------------------

inline Loader::Loader(std::vector<std::filesystem::path> shards, LoaderConfig config)
    : config_(config) {
    require(!shards.empty(), "Loader needs at least one token shard: pass --data (made by prepare_data)");
    require(config.batch > 0, "Loader: batch " + std::to_string(config.batch) + " must be > 0");
    require(config.seq > 0, "Loader: seq " + std::to_string(config.seq) + " must be > 0");
    require(config.world >= 1 && config.rank >= 0 && config.rank < config.world,
            "Loader: rank " + std::to_string(config.rank) + " must be in [0, world " +
                std::to_string(config.world) + ")");
    require(config.val_fraction >= 0 && config.val_fraction < 1,
            "Loader: val_fraction " + std::to_string(config.val_fraction) + " must be in [0, 1)");

    const int64_t window = config.seq + 1;
    train_starts_.push_back(0);
    validation_windows_before_.push_back(0);
    for (const auto& path : shards) {
        shards_.emplace_back(path);
        const ShardReader& shard = shards_.back();
        require(shard.vocab() == shards_.front().vocab(),
                "token shard '" + path.string() + "' has vocab " + std::to_string(shard.vocab()) +
                    " but '" + shards_.front().path().string() + "' has " +
                    std::to_string(shards_.front().vocab()) +
                    ": all shards must come from the same tokenizer");
        const int64_t n = shard.size();
        const auto validation = static_cast<int64_t>(static_cast<double>(n) * config.val_fraction);
        splits_.push_back({n - validation, validation});
        train_starts_.push_back(train_starts_.back() + std::max<int64_t>(0, n - validation - config.seq));
        validation_windows_ += validation >= window ? (validation - 1) / config.seq : 0;
        validation_windows_before_.push_back(validation_windows_);
    }
    require(train_starts_.back() > 0, too_short("training", &Split::train));
    require(config.val_fraction == 0 || validation_windows_ > 0,
            too_short("validation", &Split::validation));
}

inline std::string Loader::too_short(const char* split_name, int64_t Split::*field) const {
    int64_t longest = 0;
    for (const Split& split : splits_) longest = std::max(longest, split.*field);
    const std::string seq = std::to_string(config_.seq);
    return "seq " + seq + " needs at least " + std::to_string(config_.seq + 1) + " tokens; the " +
           split_name + " split has " + std::to_string(longest) +
           (shards_.size() > 1 ? " (longest of " + std::to_string(shards_.size()) + " shards)" : "") +
           ": use a smaller --seq or more data";
}

inline void Loader::fill_row(Batch& out, int64_t row, size_t s, int64_t start) const {
    const int64_t seq = config_.seq;
    std::vector<int32_t> window(static_cast<size_t>(seq + 1));
    shards_[s].copy(start, seq + 1, window.data());
    std::copy(window.begin(), window.end() - 1, out.tokens.begin() + row * seq);
    std::copy(window.begin() + 1, window.end(), out.targets.begin() + row * seq);
}

inline Batch Loader::next_train() {
    Batch out{std::vector<int32_t>(static_cast<size_t>(config_.batch * config_.seq)),
              std::vector<int32_t>(static_cast<size_t>(config_.batch * config_.seq)),
              config_.batch, config_.seq};
    const int64_t starts = train_starts_.back();
    const auto batch = static_cast<uint64_t>(config_.batch);
    const auto world = static_cast<uint64_t>(config_.world);
    for (uint64_t i = 0; i < batch; ++i) {
        const uint64_t sample = (position_ * batch + i) * world + static_cast<uint64_t>(config_.rank);
        const double u = uniform_open(config_.seed, sample);
        const int64_t k = std::min(starts - 1, static_cast<int64_t>(u * static_cast<double>(starts)));
        // The shard whose range of starts holds k: the last prefix sum ≤ k.
        const auto it = std::upper_bound(train_starts_.begin(), train_starts_.end(), k);
        const auto s = static_cast<size_t>(it - train_starts_.begin() - 1);
        fill_row(out, static_cast<int64_t>(i), s, k - train_starts_[s]);
    }
    ++position_;
    return out;
}

inline Batch Loader::validation(int64_t index) const {
    require(validation_windows_ > 0,
            "Loader has no validation split (val_fraction is 0): set a val_fraction > 0");
    require(index >= 0 && index < validation_batches(),
            "validation batch " + std::to_string(index) + " does not exist: there are " +
                std::to_string(validation_batches()));
    const int64_t first = index * config_.batch;
    const int64_t rows = std::min(config_.batch, validation_windows_ - first);  // last may be short
    Batch out{std::vector<int32_t>(static_cast<size_t>(rows * config_.seq)),
              std::vector<int32_t>(static_cast<size_t>(rows * config_.seq)), rows, config_.seq};
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t w = first + r;
        const auto it = std::upper_bound(validation_windows_before_.begin(),
                                         validation_windows_before_.end(), w);
        const auto s = static_cast<size_t>(it - validation_windows_before_.begin() - 1);
        const int64_t start = splits_[s].train + (w - validation_windows_before_[s]) * config_.seq;
        fill_row(out, r, s, start);
    }
    return out;
}

}  // namespace slm::data
