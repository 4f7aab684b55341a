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

    // The SwiGLU width the parameter layout stores and the kernels compute with: ffn rounded up
    // to a multiple of 8. cuBLASLt's fast kernels need 16-byte (8 bf16) aligned leading
    // dimensions; the paper's FFN = floor(2.7 hidden) is not (4147 at 500M, 6739 at 2B) and ran
    // at half speed (78K against 152K tokens/s at 4152 on one H100). The extra units' weights
    // start at zero and stay there: their gate and up outputs are 0 and SwiGLU(0, 0) = 0, so
    // every gradient reaching them is exactly 0, and AdamW (decay included) keeps a zero weight
    // with zero gradients at zero. The model computes exactly the function of width ffn;
    // parameter counts, FLOPs and the Hugging Face export use ffn.
    static constexpr int64_t ffn_multiple = 8;
    int64_t ffn_padded() const { return (ffn + ffn_multiple - 1) / ffn_multiple * ffn_multiple; }

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
