#pragma once
// UpdatePlan: which parts of the flat parameter buffer an optimizer updates on this rank, and
// where those values live. Alone (and under Ddp) that is the whole buffer, in place. Under ZeRO it
// is one slice per parameter unit, and the parameters and gradients may be held whole (at their
// flat offsets) or as this rank's packed shard (at its held offsets) — the plan says which, so
// the optimizer needs no knowledge of the parallel policy.
#include <cstdint>
#include <vector>

namespace slm::optim {

struct UpdateRange {
    int64_t flat = 0;      // first element in the flat layout (decides the weight decay)
    int64_t size = 0;
    int64_t param_at = 0;  // first element in the parameter buffer update() receives
    int64_t grad_at = 0;   // first element in the gradient buffer update() receives
    int64_t state_at = 0;  // first element in the optimizer's own state buffers
};

struct UpdatePlan {
    std::vector<UpdateRange> ranges;
    int64_t state_size = 0;  // elements of each state buffer (ranges may leave padding between)

    // One contiguous slice [begin, end) of whole, in-place buffers; state holds just the slice.
    static UpdatePlan slice(int64_t begin, int64_t end) {
        return {{{begin, end - begin, begin, begin, 0}}, end - begin};
    }
};

}  // namespace slm::optim
