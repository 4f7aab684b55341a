#pragma once
// attention::Flash: tiled causal attention with an online softmax. Forward keeps only the output
// and one log-sum-exp per (row, head); backward recomputes the probabilities tile by tile from
// Q, K and that log-sum-exp. Tiles wholly above the diagonal are skipped. The tags only: the CPU
// kernels are in cpu/attention/flash.hpp, the GPU ones in cuda/attention/flash.cuh.
#include <cstdint>
#include <string_view>

namespace slm::attention {

struct Flash {
    static constexpr std::string_view name = "flash";
    static constexpr bool supports_head_dim(int64_t d) { return d > 0; }
    static constexpr bool keeps_probabilities = false;
};

// Flash whose backward gives the same bits on every run, for runs that must repeat exactly (a
// loss comparison of two builds, a bug hunt). On the GPU, Flash adds dQ up with fp32 atomics in
// whatever order the blocks finish; this one computes dQ in a second pass over the key tiles
// in a fixed order, which costs time and saves the fp32 dQ accumulator
// (cuda/attention/flash.cuh). The CPU Flash is deterministic already: here it is the same.
struct FlashDeterministic {
    static constexpr std::string_view name = "flash_deterministic";
    static constexpr bool supports_head_dim(int64_t d) { return d > 0; }
    static constexpr bool keeps_probabilities = false;
};

}  // namespace slm::attention
