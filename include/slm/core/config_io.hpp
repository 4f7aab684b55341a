#pragma once
// ModelConfig as "key=value" lines (stored in checkpoints), and the difference between two
// configs in words, so "checkpoint from another config" says which field differs.
#include <sstream>
#include <string>

#include "slm/core/config.hpp"

namespace slm {

inline std::string to_text(const ModelConfig& c) {
    std::ostringstream s;
    s.precision(17);
    s << "name=" << c.name << "\nvocab=" << c.vocab << "\nhidden=" << c.hidden
      << "\nlayers=" << c.layers << "\nheads=" << c.heads << "\nkv_heads=" << c.kv_heads
      << "\nffn=" << c.ffn << "\nmax_seq=" << c.max_seq << "\nrope_theta=" << c.rope_theta
      << "\nnorm_eps=" << c.norm_eps << "\ntied_embeddings=" << (c.tied_embeddings ? 1 : 0)
      << "\n";
    return s.str();
}

inline ModelConfig config_from_text(const std::string& text) {
    ModelConfig c;
    std::istringstream in(text);
    std::string line;
    int seen = 0;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        require(eq != std::string::npos, "malformed config line '" + line + "'");
        const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
        try {
            if (key == "name") c.name = value;
            else if (key == "vocab") c.vocab = std::stoll(value);
            else if (key == "hidden") c.hidden = std::stoll(value);
            else if (key == "layers") c.layers = std::stoll(value);
            else if (key == "heads") c.heads = std::stoll(value);
            else if (key == "kv_heads") c.kv_heads = std::stoll(value);
            else if (key == "ffn") c.ffn = std::stoll(value);
            else if (key == "max_seq") c.max_seq = std::stoll(value);
            else if (key == "rope_theta") c.rope_theta = std::stod(value);
            else if (key == "norm_eps") c.norm_eps = std::stod(value);
            else if (key == "tied_embeddings") c.tied_embeddings = value == "1";
            else fail("unknown config key '" + key + "'");
        } catch (const std::logic_error&) {
            fail("config value '" + value + "' for '" + key + "' is not a number");
        }
        ++seen;
    }
    require(seen == 11, "config text has " + std::to_string(seen) + " of 11 fields");
    c.validate();
    return c;
}

// "" when the shapes agree; otherwise the first differing field, e.g. "hidden: 256 vs 512".
// The name is not compared: a renamed config with the same shapes loads fine.
inline std::string config_difference(const ModelConfig& a, const ModelConfig& b) {
    auto field = [](const char* n, auto x, auto y) {
        std::ostringstream s;
        s << n << ": " << x << " vs " << y;
        return s.str();
    };
    if (a.vocab != b.vocab) return field("vocab", a.vocab, b.vocab);
    if (a.hidden != b.hidden) return field("hidden", a.hidden, b.hidden);
    if (a.layers != b.layers) return field("layers", a.layers, b.layers);
    if (a.heads != b.heads) return field("heads", a.heads, b.heads);
    if (a.kv_heads != b.kv_heads) return field("kv_heads", a.kv_heads, b.kv_heads);
    if (a.ffn != b.ffn) return field("ffn", a.ffn, b.ffn);
    if (a.max_seq != b.max_seq) return field("max_seq", a.max_seq, b.max_seq);
    if (a.rope_theta != b.rope_theta) return field("rope_theta", a.rope_theta, b.rope_theta);
    if (a.norm_eps != b.norm_eps) return field("norm_eps", a.norm_eps, b.norm_eps);
    if (a.tied_embeddings != b.tied_embeddings)
        return field("tied_embeddings", a.tied_embeddings, b.tied_embeddings);
    return "";
}

}  // namespace slm
