#pragma once
// Overrides for the GPU catalog from a JSON file, because prices and networks are the user's:
//
//   {"H100-80GB": {"dollars_per_hour": 2.49, "network_gb_per_s": 23},
//    "L40S": {"match": "L40S", "bf16_tflops": 362, "memory_gb": 48, "hbm_tb_per_s": 0.864,
//             "dollars_per_hour": 1.1}}
//
// A known name changes only the fields given; a new name adds a GPU (it then needs at least
// bf16_tflops, memory_gb, hbm_tb_per_s and dollars_per_hour). Unknown fields are errors, so a
// typo does not silently leave the default in place.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/cost/gpu_catalog.hpp"

namespace slm::cost {

inline void apply_catalog_overrides(std::vector<GpuSpec>& catalog, const nlohmann::json& j,
                                    const std::string& source) {
    require(j.is_object(), source + ": the catalog override must be a JSON object of GPU names");
    for (const auto& [name, fields] : j.items()) {
        const std::string where = source + ": GPU '" + name + "'";
        require(fields.is_object(), where + " must map to an object of fields");
        GpuSpec* spec = nullptr;
        for (auto& g : catalog)
            if (g.name == name) spec = &g;
        const bool added = spec == nullptr;
        if (added) {
            catalog.push_back(GpuSpec{name, name});
            spec = &catalog.back();
        }
        for (const auto& [field, value] : fields.items()) {
            auto number = [&]() {
                require(value.is_number() && value.get<double>() >= 0,
                        where + ": '" + field + "' must be a non-negative number");
                return value.get<double>();
            };
            if (field == "match") {
                require(value.is_string(), where + ": 'match' must be a string");
                spec->match = value.get<std::string>();
            } else if (field == "bf16_tflops") spec->bf16_tflops = number();
            else if (field == "memory_gb") spec->memory_gb = number();
            else if (field == "hbm_tb_per_s") spec->hbm_tb_per_s = number();
            else if (field == "nvlink_gb_per_s") spec->nvlink_gb_per_s = number();
            else if (field == "node_busbw_gb_per_s") spec->node_busbw_gb_per_s = number();
            else if (field == "network_gb_per_s") spec->network_gb_per_s = number();
            else if (field == "gpus_per_node") spec->gpus_per_node = static_cast<int>(number());
            else if (field == "dollars_per_hour") spec->dollars_per_hour = number();
            else if (field == "fp8_tflops") spec->fp8_tflops = number();
            else
                fail(where + ": unknown field '" + field +
                     "' (known: match, bf16_tflops, memory_gb, hbm_tb_per_s, nvlink_gb_per_s, "
                     "node_busbw_gb_per_s, network_gb_per_s, gpus_per_node, dollars_per_hour, fp8_tflops)");
        }
        if (added)
            require(spec->bf16_tflops > 0 && spec->memory_gb > 0 && spec->hbm_tb_per_s > 0 &&
                        spec->dollars_per_hour > 0,
                    where + " is new: give at least bf16_tflops, memory_gb, hbm_tb_per_s and "
                            "dollars_per_hour");
        require(spec->gpus_per_node >= 1, where + ": gpus_per_node must be at least 1");
    }
}

// The default catalog with the overrides in `path` applied.
inline std::vector<GpuSpec> load_catalog(const std::filesystem::path& path) {
    auto catalog = default_catalog();
    if (path.empty()) return catalog;
    std::ifstream in(path);
    require(in.good(), "cannot read GPU catalog override '" + path.string() + "'");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
        fail("GPU catalog override '" + path.string() + "' is not valid JSON: " + e.what());
    }
    apply_catalog_overrides(catalog, j, path.string());
    return catalog;
}

}  // namespace slm::cost
