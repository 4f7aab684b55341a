#pragma once
// The GPUs the study compares: dense bf16 peak, memory, HBM and link bandwidths, and on-demand
// $/GPU-hour (the average of public list prices read in 2026; sources in docs/sources.md).
// MFU in slm is always measured against `bf16_tflops` of the GPU we run on. Users pay their own
// prices and own their own networks: catalog_json.hpp overrides any field from a JSON file.
#include <string>
#include <string_view>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::cost {

struct GpuSpec {
    std::string name;            // catalog key, e.g. "H100-80GB"
    std::string match;           // substring of the CUDA device name that identifies it
    double bf16_tflops = 0;      // dense, no sparsity
    double memory_gb = 0;        // 10^9 bytes, as sold
    double hbm_tb_per_s = 0;
    double nvlink_gb_per_s = 0;  // total per GPU, as sold
    // What a ring all-reduce achieves inside one node (nccl-tests "bus bandwidth"), and what one
    // GPU's share of the inter-node network carries. The collective model (communication.hpp)
    // divides bytes by these, not by the datasheet numbers above.
    double node_busbw_gb_per_s = 0;
    double network_gb_per_s = 0;
    int gpus_per_node = 8;
    double dollars_per_hour = 0;
    double fp8_tflops = 0;  // dense FP8 tensor-core peak; 0: no FP8 tensor cores (A100)
};

// Link rates: H100's 370 GB/s ring bus bandwidth and ~46 GB/s per 400 Gb/s NIC are the
// references in docs/sources.md. For the A100 we have no measurement: we assume the same ring
// efficiency relative to NVLink (370/900 of 600 GB/s ≈ 247) and one 200 Gb/s HDR NIC per GPU (≈ 23 GB/s at the
// same efficiency as 400 Gb/s → 46 GB/s). Prices: average on-demand $/GPU-hour over AWS, Azure,
// GCP, Lambda, RunPod and CoreWeave where listed (read 2026-11; docs/sources.md has the table).
inline std::vector<GpuSpec> default_catalog() {
    return {
        {"A100-40GB", "A100-SXM4-40GB", 312, 40, 1.555, 600, 247, 23, 8, 2.28, 0},
        {"A100-80GB", "A100-SXM4-80GB", 312, 80, 2.039, 600, 247, 23, 8, 3.27, 0},
        {"H100-80GB", "H100", 989, 80, 3.35, 900, 370, 46, 8, 7.39, 1979},
        {"H200", "H200", 989, 141, 4.8, 900, 370, 46, 8, 7.27, 1979},
    };
}

// The catalog entry whose `match` occurs in a CUDA device name ("NVIDIA H100 80GB HBM3").
inline const GpuSpec* find_by_device_name(const std::vector<GpuSpec>& catalog,
                                          std::string_view device_name) {
    for (const auto& g : catalog)
        if (device_name.find(g.match) != std::string_view::npos) return &g;
    return nullptr;
}

inline std::string catalog_names(const std::vector<GpuSpec>& catalog) {
    std::string known;
    for (const auto& g : catalog) known += (known.empty() ? "" : ", ") + g.name;
    return known;
}

inline const GpuSpec& find_by_name(const std::vector<GpuSpec>& catalog, std::string_view name) {
    for (const auto& g : catalog)
        if (g.name == name) return g;
    fail("unknown GPU '" + std::string(name) + "'; the catalog has: " + catalog_names(catalog) +
         " (add it with --catalog FILE.json)");
}

}  // namespace slm::cost
