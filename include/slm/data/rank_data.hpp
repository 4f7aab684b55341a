#pragma once
// data::RankData: each rank's share of a Loader's data (Trainer::fit and evaluate wrap a Loader
// in one), so that a run over W ranks at micro-batch B per rank trains and validates on what one
// process does at micro-batch W·B (the same global batch):
//   training: the Loader's own rank/world split (row i of batch p on rank r is global sample
//     (p·B + i)·W + r), so the W ranks' rows together are global batch p, reordered;
//   validation: global validation batch k (W·B windows) is cut into W slices of B windows and
//     rank r evaluates slice r, which is the Loader's validation batch k·W + r. The trainer
//     averages the ranks' means: the global batch's mean. So the validation loss does not
//     depend on the world size, and no rank repeats another's work.
// Only whole global batches are offered (a short last one would weigh its rows unlike one
// process does), except that a single rank whose split is shorter than one batch still gets
// the short batch, as the Loader gives it.
#include <cstdint>
#include <string>

#include "slm/core/error.hpp"
#include "slm/data/loader.hpp"

namespace slm::data {

class RankData {
public:
    // `loader` was made with LoaderConfig{batch B, ..., rank, world}.
    explicit RankData(Loader& loader) : loader_(loader) {
        const auto& c = loader.config();
        world_ = c.world;
        rank_ = c.rank;
        const int64_t batches = loader.validation_batches();
        const int64_t windows =
            batches == 0 ? 0 : (batches - 1) * c.batch + loader.validation(batches - 1).batch;
        whole_ = windows / (c.batch * world_);
        if (whole_ == 0 && world_ == 1) whole_ = batches;
        require(whole_ > 0 || c.val_fraction == 0,
                "the validation split holds " + std::to_string(windows) + " windows of seq " +
                    std::to_string(c.seq) + ", fewer than one global batch of " +
                    std::to_string(c.batch * world_) + " (--batch " + std::to_string(c.batch) +
                    " x " + std::to_string(world_) +
                    " ranks): lower --batch or --seq, or give more data");
    }

    Batch next_train() { return loader_.next_train(); }
    Batch validation(int64_t index) const { return loader_.validation(index * world_ + rank_); }
    int64_t validation_batches() const { return whole_; }
    uint64_t position() const { return loader_.position(); }
    void set_position(uint64_t position) { loader_.set_position(position); }

private:
    Loader& loader_;
    int rank_ = 0, world_ = 1;
    int64_t whole_ = 0;  // whole global validation batches
};

}  // namespace slm::data
