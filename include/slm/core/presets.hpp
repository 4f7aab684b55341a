#pragma once
// The model presets: one row each in `table`, the only place a preset is named. The study's
// sizes (vocab 32000, untied embeddings, MHA, RMSNorm eps 1e-5, RoPE theta 10000; the parameter
// counts are checked in tests/cpu/core/config.cpp) and `tiny`, a CPU demo that learns visibly in
// minutes on two cores. names.hpp lists them with the other names a user types.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"

namespace slm::presets {

struct Preset {
    std::string_view name;
    int64_t vocab, layers, hidden, heads, kv_heads, ffn, max_seq;
    std::string_view about;  // one line for --list-presets and help texts

    ModelConfig config() const {
        ModelConfig c;
        c.name = std::string(name);
        c.vocab = vocab;
        c.layers = layers;
        c.hidden = hidden;
        c.heads = heads;
        c.kv_heads = kv_heads;
        c.ffn = ffn;
        c.max_seq = max_seq;
        return c;
    }
};

// name, vocab, layers, hidden, heads, kv_heads, ffn, max_seq, about
inline constexpr std::array<Preset, 5> table = {{
    // Grouped-query (2 kv heads for 4 query heads) so the demo exercises that path too.
    {"tiny", 4096, 4, 256, 4, 2, 688, 256, "CPU demo, 5M parameters, grouped-query attention"},
    {"llama_100m", 32000, 12, 768, 12, 12, 2048, 2048, "the study's 100M size (134M with embeddings)"},
    {"llama_500m", 32000, 24, 1280, 20, 20, 3456, 2048, "the study's 500M size"},
    {"llama_1b", 32000, 24, 2048, 16, 16, 5504, 2048, "the study's 1B size"},
    {"llama_2b", 32000, 24, 2560, 20, 20, 6912, 2048, "the study's 2B size"},
}};

// "a, b, c": the preset names, for messages.
inline std::string known_names() {
    std::string known;
    for (const auto& p : table) known += (known.empty() ? "" : ", ") + std::string(p.name);
    return known;
}

// The preset called `name`; an unknown name is an error listing the known ones.
inline ModelConfig by_name(std::string_view name) {
    for (const auto& p : table)
        if (p.name == name) return p.config();
    fail("unknown preset '" + std::string(name) + "'; choose one of: " + known_names());
}

// Shorthands for code and tests that name a preset directly.
inline ModelConfig tiny() { return by_name("tiny"); }
inline ModelConfig llama_100m() { return by_name("llama_100m"); }
inline ModelConfig llama_500m() { return by_name("llama_500m"); }
inline ModelConfig llama_1b() { return by_name("llama_1b"); }
inline ModelConfig llama_2b() { return by_name("llama_2b"); }

}  // namespace slm::presets
