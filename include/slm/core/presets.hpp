#pragma once
// The study's model sizes (../shared ANCHORS: vocab 32000, untied embeddings, MHA, RMSNorm eps
// 1e-5, RoPE theta 10000) and `tiny`, a CPU demo that learns visibly in minutes on two cores.
#include <array>
#include <string>
#include <string_view>

#include "slm/core/config.hpp"

namespace slm::presets {

inline ModelConfig make(std::string name, int64_t vocab, int64_t layers, int64_t hidden,
                        int64_t heads, int64_t kv_heads, int64_t ffn, int64_t max_seq) {
    ModelConfig c;
    c.name = std::move(name);
    c.vocab = vocab;
    c.layers = layers;
    c.hidden = hidden;
    c.heads = heads;
    c.kv_heads = kv_heads;
    c.ffn = ffn;
    c.max_seq = max_seq;
    return c;
}

// Grouped-query (2 kv heads for 4 query heads) so the demo exercises that path too.
inline ModelConfig tiny() { return make("tiny", 4096, 4, 256, 4, 2, 688, 256); }
inline ModelConfig llama_100m() { return make("llama_100m", 32000, 12, 768, 12, 12, 2048, 2048); }
inline ModelConfig llama_500m() { return make("llama_500m", 32000, 24, 1280, 20, 20, 3456, 2048); }
inline ModelConfig llama_1b() { return make("llama_1b", 32000, 24, 2048, 16, 16, 5504, 2048); }
inline ModelConfig llama_2b() { return make("llama_2b", 32000, 24, 2560, 20, 20, 6912, 2048); }

inline constexpr std::array<std::string_view, 5> names = {"tiny", "llama_100m", "llama_500m",
                                                          "llama_1b", "llama_2b"};

inline ModelConfig by_name(std::string_view name) {
    if (name == "tiny") return tiny();
    if (name == "llama_100m") return llama_100m();
    if (name == "llama_500m") return llama_500m();
    if (name == "llama_1b") return llama_1b();
    if (name == "llama_2b") return llama_2b();
    std::string known;
    for (auto n : names) known += (known.empty() ? "" : ", ") + std::string(n);
    fail("unknown preset '" + std::string(name) + "'; choose one of: " + known);
}

}  // namespace slm::presets
