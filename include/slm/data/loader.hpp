#pragma once
// Batches of (tokens, targets) windows from token shards, for training and validation.
//
// Each shard holds val_fraction of its tokens out for validation, as up to validation_segments
// equal segments spread evenly through it (segment j ends where the j-th of K equal parts of the
// shard ends; with K = 1 it is the tail). Spreading matters: a corpus is not uniform (the last
// 5% of the Bible is Revelation), and validation should measure the same distribution training
// sees. Train and validation never share a token, windows never cross a segment, and adding a
// shard never moves another shard's split.
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
    int validation_segments = 10;  // at most; fewer when segments would hold < 8 windows
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
    int64_t train_tokens() const { return total_length(train_); }
    int64_t validation_tokens() const { return total_length(validation_); }
    const LoaderConfig& config() const { return config_; }

private:
    // A contiguous run of tokens [begin, begin + length) of one shard.
    struct Segment {
        size_t shard = 0;
        int64_t begin = 0, length = 0;
    };

    // Copies the window of seq + 1 tokens at `start` of shard `s` into row `row` of `out`.
    void fill_row(Batch& out, int64_t row, size_t s, int64_t start) const;
    static int64_t total_length(const std::vector<Segment>& segments) {
        int64_t total = 0;
        for (const Segment& g : segments) total += g.length;
        return total;
    }
    std::string too_short(const char* split_name, const std::vector<Segment>& segments) const;

    LoaderConfig config_;
    std::vector<ShardReader> shards_;
    std::vector<Segment> train_, validation_;
    std::vector<int64_t> train_starts_;  // prefix sums of valid window starts per train segment
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
    auto add_train = [&](Segment g) {
        train_.push_back(g);
        train_starts_.push_back(train_starts_.back() + std::max<int64_t>(0, g.length - config.seq));
    };
    auto add_validation = [&](Segment g) { validation_.push_back(g); };
    for (const auto& path : shards) {
        shards_.emplace_back(path);
        const ShardReader& shard = shards_.back();
        require(shard.vocab() == shards_.front().vocab(),
                "token shard '" + path.string() + "' has vocab " + std::to_string(shard.vocab()) +
                    " but '" + shards_.front().path().string() + "' has " +
                    std::to_string(shards_.front().vocab()) +
                    ": all shards must come from the same tokenizer");
        const int64_t n = shard.size();
        const size_t index = shards_.size() - 1;
        const auto held_out = static_cast<int64_t>(static_cast<double>(n) * config.val_fraction);
        const int64_t k = std::clamp<int64_t>(held_out / (8 * window), 1,
                                              std::max(1, config.validation_segments));
        int64_t at = 0;  // end of the previous validation segment
        for (int64_t j = 0; j < k; ++j) {
            const int64_t end = n * (j + 1) / k;
            const int64_t length = held_out * (j + 1) / k - held_out * j / k;
            add_train({index, at, end - length - at});
            add_validation({index, end - length, length});
            at = end;
        }
    }
    for (const Segment& g : validation_) {
        validation_windows_ += g.length >= window ? (g.length - 1) / config.seq : 0;
        validation_windows_before_.push_back(validation_windows_);
    }
    require(train_starts_.back() > 0, too_short("training", train_));
    require(config.val_fraction == 0 || validation_windows_ > 0,
            too_short("validation", validation_));
}

inline std::string Loader::too_short(const char* split_name,
                                     const std::vector<Segment>& segments) const {
    int64_t longest = 0;
    for (const Segment& g : segments) longest = std::max(longest, g.length);
    const std::string seq = std::to_string(config_.seq);
    return "seq " + seq + " needs at least " + std::to_string(config_.seq + 1) + " tokens; the " +
           split_name + " split has " + std::to_string(longest) +
           (segments.size() > 1 ? " (longest of " + std::to_string(segments.size()) + " segments)" : "") +
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
        const auto g = static_cast<size_t>(it - train_starts_.begin() - 1);
        fill_row(out, static_cast<int64_t>(i), train_[g].shard, train_[g].begin + k - train_starts_[g]);
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
        const auto g = static_cast<size_t>(it - validation_windows_before_.begin() - 1);
        const int64_t start =
            validation_[g].begin + (w - validation_windows_before_[g]) * config_.seq;
        fill_row(out, r, validation_[g].shard, start);
    }
    return out;
}

}  // namespace slm::data
