#pragma once
// attention::Naive materialises the (T × T) probabilities of every head and keeps them for the
// backward pass: the memory cost FlashAttention removes, kept on purpose so the study can
// measure it. The tag only: the CPU kernels are in cpu/attention/naive.hpp, the GPU ones in
// cuda/attention/naive.cuh.
#include <cstdint>
#include <string_view>

namespace slm::attention {

struct Naive {
    static constexpr std::string_view name = "naive";
    static constexpr bool supports_head_dim(int64_t d) { return d > 0; }
    static constexpr bool keeps_probabilities = true;
};

}  // namespace slm::attention
