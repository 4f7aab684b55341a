#pragma once
// An in-memory BatchSource for trainer tests: batches are a pure function of (seed, position),
// with a repeating pattern so a model can learn it, and a fixed validation set.
#include <cstdint>
#include <vector>

#include "slm/core/random.hpp"

namespace slm::test {

struct SyntheticBatch {
    std::vector<int32_t> tokens, targets;
    int64_t batch = 0, seq = 0;
};

class SyntheticData {
public:
    SyntheticData(int64_t vocab, int64_t batch, int64_t seq, uint64_t seed = 1)
        : vocab_(vocab), batch_(batch), seq_(seq), seed_(seed) {}

    SyntheticBatch next_train() { return make(position_++); }
    SyntheticBatch validation(int64_t i) const { return make(1'000'000 + static_cast<uint64_t>(i)); }
    int64_t validation_batches() const { return 4; }
    uint64_t position() const { return position_; }
    void set_position(uint64_t p) { position_ = p; }

private:
    // Each sequence counts up by a random stride from a random start: learnable, not constant.
    SyntheticBatch make(uint64_t index) const {
        SyntheticBatch b{std::vector<int32_t>(batch_ * seq_), std::vector<int32_t>(batch_ * seq_),
                         batch_, seq_};
        for (int64_t r = 0; r < batch_; ++r) {
            const uint64_t h = splitmix64(seed_ ^ splitmix64(index * 1000 + r));
            const int64_t start = static_cast<int64_t>(h % vocab_), stride = 1 + (h >> 32) % 3;
            for (int64_t t = 0; t < seq_; ++t) {
                b.tokens[r * seq_ + t] = static_cast<int32_t>((start + stride * t) % vocab_);
                b.targets[r * seq_ + t] = static_cast<int32_t>((start + stride * (t + 1)) % vocab_);
            }
        }
        return b;
    }
    int64_t vocab_, batch_, seq_;
    uint64_t seed_;
    uint64_t position_ = 0;
};

}  // namespace slm::test
