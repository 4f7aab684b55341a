#pragma once
// Benchmark inputs: n bf16 values uniform in [-scale, scale) from a xorshift stream started at
// `state` (never zeros: timing on zeros would flatter the kernels).
#include <cuda_bf16.h>

#include <cstdint>
#include <vector>

namespace slm::bench {

inline std::vector<__nv_bfloat16> random_bf16(int64_t n, uint64_t state, float scale = 1.0f) {
    std::vector<__nv_bfloat16> values(static_cast<size_t>(n));
    for (auto& v : values) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v = __float2bfloat16_rn(
            scale * (static_cast<float>(state >> 40) / static_cast<float>(1 << 23) - 1.0f));
    }
    return values;
}

}  // namespace slm::bench
