#pragma once
// The config.json that sits beside model.safetensors: what transformers' LlamaForCausalLM needs to
// rebuild our model (write_hf_config), and the ModelConfig of a HF LLaMA checkpoint we can load
// (read_hf_config). Reading refuses what our Llama does not compute — biases, a non-SiLU
// activation, RoPE scaling, a head_dim other than hidden/heads — rather than load it and compute
// something else. Defaults for absent keys are LlamaConfig's.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/core/file_io.hpp"
#include "slm/data/safetensors.hpp"

namespace slm::data {

// torch_dtype: the dtype the weights were written in (what from_pretrained's dtype="auto" picks).
inline void write_hf_config(const std::filesystem::path& path, const ModelConfig& c,
                            Dtype torch_dtype = Dtype::F32) {
    c.validate();
    const char* dtype = torch_dtype == Dtype::F32 ? "float32" : "bfloat16";
    nlohmann::ordered_json j;
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["hidden_size"] = c.hidden;
    j["intermediate_size"] = c.ffn;
    j["num_hidden_layers"] = c.layers;
    j["num_attention_heads"] = c.heads;
    j["num_key_value_heads"] = c.kv_heads;
    j["head_dim"] = c.head_dim();
    j["vocab_size"] = c.vocab;
    j["max_position_embeddings"] = c.max_seq;
    j["rms_norm_eps"] = c.norm_eps;
    // transformers 4.x reads rope_theta; 5.x reads rope_parameters (and converts rope_theta).
    j["rope_theta"] = c.rope_theta;
    j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", c.rope_theta}};
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["hidden_act"] = "silu";
    j["attention_bias"] = false;
    j["attention_dropout"] = 0.0;
    j["mlp_bias"] = false;
    j["initializer_range"] = 0.02;
    j["torch_dtype"] = dtype;  // 4.x name; 5.x reads "dtype" and keeps it over torch_dtype
    j["dtype"] = dtype;
    j["bos_token_id"] = 1;
    j["eos_token_id"] = 2;
    j["use_cache"] = true;
    const std::string text = j.dump(2) + "\n";
    AtomicFile file(path);
    file.write(text.data(), text.size());
    file.commit();
}

namespace hf_config_detail {

// The keys read_hf_config reads (checking their values), and the keys that describe how a file
// was made rather than what the model computes. Any other key is refused by name: a LLaMA
// variant's new field (sliding_window, rope_scaling's successors, …) most likely changes the
// model, and training something else than the file describes without a word is the worst outcome.
inline constexpr std::array<std::string_view, 18> computed = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps",
    "tie_word_embeddings", "rope_theta", "rope_scaling", "rope_parameters", "head_dim",
    "model_type", "hidden_act", "attention_bias", "mlp_bias", "attention_dropout"};
inline constexpr std::array<std::string_view, 13> descriptive = {
    "architectures", "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "pad_token_id",
    "use_cache", "initializer_range", "transformers_version", "_name_or_path",
    // pretraining_tp > 1 splits the projections into slices whose sum is the same product.
    "pretraining_tp", "tokenizer_class", "output_attentions"};

inline bool known_key(std::string_view key) {
    return std::find(computed.begin(), computed.end(), key) != computed.end() ||
           std::find(descriptive.begin(), descriptive.end(), key) != descriptive.end();
}

}  // namespace hf_config_detail

inline ModelConfig read_hf_config(const std::filesystem::path& path) {
    const std::string where = "config.json '" + path.string() + "'";
    std::ifstream in(path);
    require(static_cast<bool>(in), "cannot open " + where + ": no such file or not readable");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        fail(where + " is not valid JSON (" + e.what() + ")");
    }
    require(j.is_object(), where + " is not a JSON object");
    auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
    auto integer = [&](const char* key, int64_t fallback, bool required) -> int64_t {
        if (!present(key)) {
            require(!required, where + " has no \"" + std::string(key) + "\"");
            return fallback;
        }
        require(j[key].is_number_integer(), where + ": \"" + key + "\" is not an integer");
        return j[key].get<int64_t>();
    };
    auto number = [&](const nlohmann::json& v, const char* key) {
        require(v.is_number(), where + ": \"" + key + "\" is not a number");
        return v.get<double>();
    };
    auto flag = [&](const char* key, bool fallback) {
        if (!present(key)) return fallback;
        require(j[key].is_boolean(), where + ": \"" + key + "\" is not true/false");
        return j[key].get<bool>();
    };
    auto text = [&](const char* key) { return j[key].is_string() ? j[key].get<std::string>() : j[key].dump(); };

    if (present("model_type"))
        require(text("model_type") == "llama", where + " has model_type '" + text("model_type") +
                                                   "'; only 'llama' checkpoints can be loaded");
    if (present("hidden_act"))
        require(text("hidden_act") == "silu", where + " has hidden_act '" + text("hidden_act") +
                                                  "'; slm's LLaMA computes SwiGLU with 'silu' only");
    for (const auto& item : j.items())
        require(hf_config_detail::known_key(item.key()),
                where + ": field \"" + item.key() + "\" is not one slm implements; slm builds only "
                        "the fields it knows (hidden_size, intermediate_size, num_hidden_layers, "
                        "num_attention_heads, num_key_value_heads, vocab_size, max_position_embeddings, "
                        "rope_theta, rms_norm_eps, tie_word_embeddings) and will not ignore one that "
                        "may change the model");
    require(!flag("attention_bias", false), where + ": attention_bias is true; slm has no biases");
    if (present("attention_dropout"))
        require(number(j["attention_dropout"], "attention_dropout") == 0.0,
                where + ": attention_dropout is " + text("attention_dropout") + "; slm has no dropout");
    require(!flag("mlp_bias", false), where + ": mlp_bias is true; slm has no biases");

    ModelConfig c;
    c.name = "hf";
    c.hidden = integer("hidden_size", 0, true);
    c.ffn = integer("intermediate_size", 0, true);
    c.layers = integer("num_hidden_layers", 0, true);
    c.heads = integer("num_attention_heads", 0, true);
    c.kv_heads = integer("num_key_value_heads", c.heads, false);
    c.vocab = integer("vocab_size", 0, true);
    c.max_seq = integer("max_position_embeddings", 2048, false);
    c.norm_eps = present("rms_norm_eps") ? number(j["rms_norm_eps"], "rms_norm_eps") : 1e-6;
    c.tied_embeddings = flag("tie_word_embeddings", false);
    c.rope_theta = present("rope_theta") ? number(j["rope_theta"], "rope_theta") : 10000.0;
    for (const char* key : {"rope_scaling", "rope_parameters"}) {
        if (!present(key)) continue;
        const auto& r = j[key];
        require(r.is_object(), where + ": \"" + key + "\" is not an object");
        const std::string type = r.contains("rope_type") ? r["rope_type"].dump()
                                 : r.contains("type")    ? r["type"].dump()
                                                         : "\"default\"";
        require(type == "\"default\"", where + ": " + key + " has rope_type " + type +
                                           "; slm implements only the default (unscaled) RoPE");
        if (r.contains("rope_theta")) c.rope_theta = number(r["rope_theta"], "rope_theta");
    }
    try {
        c.validate();
    } catch (const Error& e) {
        fail(where + " describes a model slm cannot build: " + e.what());
    }
    if (present("head_dim"))
        require(integer("head_dim", 0, true) == c.head_dim(),
                where + ": head_dim " + text("head_dim") + " is not hidden_size / num_attention_heads = " +
                    std::to_string(c.head_dim()) + "; slm derives head_dim from those");
    return c;
}

}  // namespace slm::data
