#pragma once
// Shapes shared by the model and the attention policies.
#include <cstdint>

namespace slm {

// Attention over the fused projection output. For each token the row is
// [q (heads*head_dim) | k (kv_heads*head_dim) | v (kv_heads*head_dim)], so q, k and v are strided
// views of one buffer and nothing is transposed or copied. Query head h reads kv head
// h / (heads / kv_heads): grouped-query attention without repeating K and V.
struct AttentionShape {
    int64_t batch = 1, seq = 1, heads = 1, kv_heads = 1, head_dim = 1;

    int64_t group() const { return heads / kv_heads; }
    int64_t qkv_stride() const { return (heads + 2 * kv_heads) * head_dim; }
    int64_t k_offset() const { return heads * head_dim; }
    int64_t v_offset() const { return (heads + kv_heads) * head_dim; }
    int64_t out_stride() const { return heads * head_dim; }
    int64_t tokens() const { return batch * seq; }
};

// What an attention policy keeps between forward and backward, and the scratch it needs, in
// bytes. The memory estimate and the activation arena both read this, so they cannot disagree.
struct AttentionFootprint {
    int64_t saved_bytes_per_layer = 0;
    int64_t scratch_bytes = 0;
};

}  // namespace slm

namespace slm {

// Targets equal to this are not counted in the loss (padding, or a document boundary).
inline constexpr int32_t ignore_index = -100;

struct LossResult {
    double mean = 0;      // mean cross-entropy over counted targets (nats)
    int64_t counted = 0;  // targets that were not ignore_index
};

}  // namespace slm
