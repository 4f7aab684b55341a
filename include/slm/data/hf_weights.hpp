#pragma once
// A Hugging Face LLaMA directory's weights: model.safetensors, or a sharded set described by
// model.safetensors.index.json ({"weight_map": {tensor name: shard file}}), as transformers'
// save_pretrained writes them. The index is checked against the shards before a byte is loaded:
// a missing shard, a tensor the index puts in a shard that does not hold it, or a shard the index
// does not name stop with the file's name; read_safetensors then checks every tensor is used and
// every shape fits the model.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/data/safetensors.hpp"

namespace slm::data {

inline constexpr const char* hf_weights_file = "model.safetensors";
inline constexpr const char* hf_index_file = "model.safetensors.index.json";

// The safetensors files of a HF directory, in the index's order (one file when unsharded).
inline std::vector<std::filesystem::path> hf_weight_files(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    const fs::path index = dir / hf_index_file, single = dir / hf_weights_file;
    if (!fs::exists(index)) {
        require(fs::exists(single), "'" + dir.string() + "' has neither " + hf_weights_file + " nor " +
                                        hf_index_file + ": not a Hugging Face model directory");
        return {single};
    }
    const std::string where = "'" + index.string() + "'";
    std::ifstream in(index);
    require(static_cast<bool>(in), "cannot open " + where);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        fail(where + " is not valid JSON (" + e.what() + ")");
    }
    require(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
            where + " has no \"weight_map\" object");
    std::vector<fs::path> files;
    std::map<std::string, std::set<std::string>> named;  // shard file -> tensors the index puts there
    for (const auto& [tensor, file] : j["weight_map"].items()) {
        require(file.is_string(), where + ": the shard of tensor '" + tensor + "' is not a file name");
        const std::string name = file.get<std::string>();
        require(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
                where + ": the shard of tensor '" + tensor + "' is '" + name +
                    "', not a file name in the same directory");
        if (named[name].empty()) files.push_back(dir / name);
        named[name].insert(tensor);
    }
    require(!files.empty(), where + ": \"weight_map\" is empty");
    for (const auto& file : files) {
        require(fs::exists(file), where + " names shard '" + file.filename().string() +
                                      "', which is missing from '" + dir.string() + "'");
        const auto header = read_safetensors_header(file);
        const auto& expected = named[file.filename().string()];
        for (const auto& tensor : expected)
            require(header.find(tensor) != nullptr,
                    where + " puts tensor '" + tensor + "' in '" + file.filename().string() +
                        "', which does not hold it");
        for (const auto& t : header.tensors)
            require(expected.contains(t.name), "shard '" + file.string() + "' holds tensor '" + t.name +
                                                   "', which " + where + " puts elsewhere or nowhere");
    }
    return files;
}

// Fills flat_params_out (layout.total() values) from the weights in `dir`.
inline void read_hf_weights(const std::filesystem::path& dir, const ParameterLayout& layout,
                            float* flat_params_out) {
    read_safetensors(hf_weight_files(dir), layout, flat_params_out);
}

}  // namespace slm::data
