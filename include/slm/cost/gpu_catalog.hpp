#pragma once
// The GPUs the study compares: dense bf16 peak, memory, HBM and NVLink bandwidth, and on-demand
// $/GPU-hour (the average of public list prices read in 2026; sources in ../shared/ANCHORS.md).
// MFU in slm is always measured against `bf16_tflops` of the GPU we run on.
#include <string>
#include <string_view>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::cost {

struct GpuSpec {
    std::string name;           // catalog key, e.g. "H100-80GB"
    std::string match;          // substring of the CUDA device name that identifies it
    double bf16_tflops = 0;     // dense, no sparsity
    double memory_gb = 0;
    double hbm_tb_per_s = 0;
    double nvlink_gb_per_s = 0; // total per GPU
    double dollars_per_hour = 0;
};

// Prices: average on-demand $/GPU-hour over AWS, Azure, GCP, Lambda, RunPod and CoreWeave where
// listed (read 2026-11; ANCHORS.md has the per-provider table).
inline std::vector<GpuSpec> default_catalog() {
    return {
        {"A100-40GB", "A100-SXM4-40GB", 312, 40, 1.555, 600, 2.28},
        {"A100-80GB", "A100-SXM4-80GB", 312, 80, 2.039, 600, 3.27},
        {"H100-80GB", "H100", 989, 80, 3.35, 900, 7.39},
        {"H200", "H200", 989, 141, 4.8, 900, 7.27},
    };
}

// The catalog entry whose `match` occurs in a CUDA device name ("NVIDIA H100 80GB HBM3").
inline const GpuSpec* find_by_device_name(const std::vector<GpuSpec>& catalog,
                                          std::string_view device_name) {
    for (const auto& g : catalog)
        if (device_name.find(g.match) != std::string_view::npos) return &g;
    return nullptr;
}

inline const GpuSpec& find_by_name(const std::vector<GpuSpec>& catalog, std::string_view name) {
    std::string known;
    for (const auto& g : catalog) {
        if (g.name == name) return g;
        known += (known.empty() ? "" : ", ") + g.name;
    }
    fail("unknown GPU '" + std::string(name) + "'; the catalog has: " + known);
}

}  // namespace slm::cost
