#pragma once
// Which model train_llama builds, and from which weights: a preset by name (--preset), a Hugging
// Face LLaMA config.json (--model FILE or a directory holding one), or the config.json of the
// directory whose weights start the run (--init-from DIR, continued pretraining). Presets are
// names for the same ModelConfig a config.json gives.
#include <cstdio>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "cli.hpp"
#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/core/presets.hpp"
#include "slm/data/hf_config.hpp"
#include "slm/data/hf_weights.hpp"

namespace slm::cli {

struct ModelChoice {
    ModelConfig config;
    std::filesystem::path init_from;  // empty: the model's own initialisation
    std::string source;               // for the first progress line: where the shape came from
};

// A config.json path, or a directory that holds one.
inline std::filesystem::path config_json_in(const std::filesystem::path& given) {
    return std::filesystem::is_directory(given) ? given / "config.json" : given;
}

// The model's name from a config.json's location: its directory's name (runs/<name> by default),
// so `--model models/smollm-135m` trains into runs/smollm-135m.
inline std::string name_from(const std::filesystem::path& config_json) {
    const auto dir = std::filesystem::absolute(config_json).parent_path().filename().string();
    return dir.empty() ? "hf" : dir;
}

// Reads --preset, --model and --init-from. Usage mistakes throw UsageError; a file that cannot
// be read or describes a model slm does not build throws slm::Error naming it (exit 1). lead:
// this process prints the notes.
inline ModelChoice choose_model(const Flags& flags, bool lead) {
    ModelChoice c;
    if (flags.given("--init-from")) {
        c.init_from = flags.text("--init-from");
        if (!std::filesystem::is_directory(c.init_from))
            throw UsageError("--init-from '" + c.init_from.string() +
                             "' is not a directory: give a Hugging Face model directory (config.json "
                             "and model.safetensors, or a sharded set with model.safetensors.index.json)");
        if (flags.on("--resume") && lead)
            std::fprintf(stderr, "--init-from %s: its weights are not read, --resume takes them from the "
                                 "checkpoint (its config.json still gives the model)\n", c.init_from.c_str());
    }
    if (flags.given("--model") && flags.given("--preset"))
        throw UsageError("--model and --preset both name the model: give one of them");
    std::filesystem::path config_json;
    if (flags.given("--model")) config_json = config_json_in(flags.text("--model"));
    else if (!c.init_from.empty() && !flags.given("--preset")) config_json = c.init_from / "config.json";
    if (!config_json.empty()) {
        c.config = data::read_hf_config(config_json);
        c.config.name = name_from(config_json);
        c.source = config_json.string();
        return c;
    }
    try {
        c.config = presets::by_name(flags.text("--preset"));
    } catch (const Error& e) {
        throw UsageError(std::string("--preset: ") + e.what());
    }
    c.source = "preset";
    return c;
}

// The weights in `dir` as the model's flat parameters (every tensor used, every shape checked).
template <class Master>
std::vector<Master> initial_weights(const std::filesystem::path& dir, const ModelConfig& config) {
    const ParameterLayout layout(config);
    std::vector<float> values(static_cast<size_t>(layout.total()));
    data::read_hf_weights(dir, layout, values.data());
    if constexpr (std::is_same_v<Master, float>) return values;  // no second copy of the weights
    else return std::vector<Master>(values.begin(), values.end());
}

}  // namespace slm::cli
