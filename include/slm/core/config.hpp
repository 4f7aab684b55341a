#pragma once
// ModelConfig holds a LLaMA's dimensions as runtime values; kernels are templated only on what
// they need. validate() names the offending field and the rule it breaks, because a config is
// usually typed by a person and the first error they see should tell them what to change.
#include <cstdint>
#include <string>

#include "slm/core/error.hpp"

namespace slm {

struct ModelConfig {
    std::string name = "custom";
    int64_t vocab = 32000;
    int64_t hidden = 768;
    int64_t layers = 12;
    int64_t heads = 12;
    int64_t kv_heads = 12;   // < heads is grouped-query attention; 1 is multi-query
    int64_t ffn = 2048;      // SwiGLU inner width
    int64_t max_seq = 2048;
    double rope_theta = 10000.0;
    double norm_eps = 1e-5;
    bool tied_embeddings = false;

    int64_t head_dim() const { return hidden / heads; }
    int64_t q_width() const { return heads * head_dim(); }
    int64_t kv_width() const { return kv_heads * head_dim(); }
    // The fused projection writes q, k and v side by side in one row per token.
    int64_t qkv_width() const { return q_width() + 2 * kv_width(); }

    void validate() const {
        auto positive = [](int64_t v, const char* field) {
            require(v > 0, std::string("ModelConfig.") + field + " must be > 0, got " +
                               std::to_string(v));
        };
        positive(vocab, "vocab");
        positive(hidden, "hidden");
        positive(layers, "layers");
        positive(heads, "heads");
        positive(kv_heads, "kv_heads");
        positive(ffn, "ffn");
        positive(max_seq, "max_seq");
        require(hidden % heads == 0,
                "ModelConfig.heads (" + std::to_string(heads) + ") must divide hidden (" +
                    std::to_string(hidden) + ")");
        require(heads % kv_heads == 0,
                "ModelConfig.kv_heads (" + std::to_string(kv_heads) + ") must divide heads (" +
                    std::to_string(heads) + ")");
        require(head_dim() % 2 == 0,
                "ModelConfig.head_dim = hidden / heads = " + std::to_string(head_dim()) +
                    " must be even for RoPE (it rotates pairs); change hidden or heads");
        require(rope_theta > 0, "ModelConfig.rope_theta must be > 0");
        require(norm_eps > 0, "ModelConfig.norm_eps must be > 0");
        require(vocab < (int64_t{1} << 31), "ModelConfig.vocab must fit in int32 token ids");
    }
};

}  // namespace slm
