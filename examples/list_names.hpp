#pragma once
// train_llama --list-names: names.hpp's table as one JSON object (presets with their shapes and
// parameter counts, attention, precision and parallel policies), so tools (the Python peer, the report's
// test fixture) read the presets from a program instead of keeping copies.
#include <string>

#include <nlohmann/json.hpp>

#include "slm/core/accounting.hpp"
#include "slm/names.hpp"

namespace slm::cli {

std::string names_json() {
    nlohmann::json presets = nlohmann::json::array();
    for (const auto& p : slm::presets::table) {
        const slm::ModelConfig c = p.config();
        presets.push_back({{"name", p.name},
                           {"vocab", c.vocab},
                           {"layers", c.layers},
                           {"hidden", c.hidden},
                           {"heads", c.heads},
                           {"kv_heads", c.kv_heads},
                           {"ffn", c.ffn},
                           {"max_seq", c.max_seq},
                           {"rope_theta", c.rope_theta},
                           {"norm_eps", c.norm_eps},
                           {"tied_embeddings", c.tied_embeddings},
                           {"parameters", slm::parameter_count(c)},
                           {"about", p.about}});
    }
    const nlohmann::json names = {{"presets", presets},
                                  {"attention", slm::names::attention_names()},
                                  {"precision", slm::names::precision_names()},
                                  {"parallel", slm::names::parallel_names()}};
    return names.dump(1);
}

}  // namespace slm::cli
