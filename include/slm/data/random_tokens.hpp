#pragma once
// Uniformly random tokens as a BatchSource: what throughput benchmarks train on (as the peer
// measurements in the study do), so a benchmark needs no corpus. Batches are a pure function of
// (seed, rank, position), so runs are repeatable and resumable like the real loader.
#include <cstdint>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/random.hpp"
#include "slm/data/loader.hpp"

namespace slm::data {

class RandomTokens {
public:
    RandomTokens(int64_t vocab, int64_t batch, int64_t seq, uint64_t seed = 0, int rank = 0)
        : vocab_(vocab), batch_(batch), seq_(seq), seed_(seed ^ splitmix64(static_cast<uint64_t>(rank))) {
        require(vocab > 0 && batch > 0 && seq > 0, "RandomTokens needs vocab, batch and seq > 0");
    }

    Batch next_train() { return make(position_++); }
    Batch validation(int64_t index) const { return make((uint64_t{1} << 62) + static_cast<uint64_t>(index)); }
    int64_t validation_batches() const { return 4; }
    uint64_t position() const { return position_; }
    void set_position(uint64_t p) { position_ = p; }

private:
    Batch make(uint64_t index) const {
        const int64_t n = batch_ * seq_;
        Batch b{std::vector<int32_t>(static_cast<size_t>(n)), std::vector<int32_t>(static_cast<size_t>(n)),
                batch_, seq_};
        const uint64_t stream = splitmix64(seed_ ^ splitmix64(index));
        for (int64_t r = 0; r < batch_; ++r)
            for (int64_t t = 0; t <= seq_; ++t) {
                const auto tok = static_cast<int32_t>(
                    splitmix64(stream + static_cast<uint64_t>(r * (seq_ + 1) + t)) %
                    static_cast<uint64_t>(vocab_));
                if (t < seq_) b.tokens[static_cast<size_t>(r * seq_ + t)] = tok;
                if (t > 0) b.targets[static_cast<size_t>(r * seq_ + t - 1)] = tok;
            }
        return b;
    }

    int64_t vocab_, batch_, seq_;
    uint64_t seed_;
    uint64_t position_ = 0;
};

}  // namespace slm::data
