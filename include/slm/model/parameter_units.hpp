#pragma once
// The model's parameters cut into the groups that are used together: the embedding, each block,
// the final norm and (untied) the LM head. Each unit is a contiguous range of the flat buffer and
// together they cover it, alignment padding included. They are what ZeRO-3 gathers just before
// use and what ZeRO-2/3 reduce-scatter as soon as their gradients are complete (FSDP's "units").
#include <algorithm>
#include <cstdint>
#include <vector>

#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"

namespace slm::model {

struct ParameterUnit {
    int64_t begin = 0, end = 0;  // flat elements [begin, end)
    int64_t size() const { return end - begin; }
};

class ParameterUnits {
public:
    ParameterUnits(const ModelConfig& config, const ParameterLayout& layout)
        : layers_(config.layers), tied_(config.tied_embeddings) {
        // Units start where the layout starts a group; each ends where the next one starts.
        std::vector<int64_t> starts{layout.embed()};
        for (int64_t l = 0; l < layers_; ++l) starts.push_back(layout.layer(l).begin);
        starts.push_back(layout.final_norm());
        if (!tied_) starts.push_back(layout.lm_head());
        starts.push_back(layout.total());
        for (size_t i = 0; i + 1 < starts.size(); ++i) units_.push_back({starts[i], starts[i + 1]});
    }

    // Unit indices, in the order the forward pass first uses them.
    int64_t embedding() const { return 0; }
    int64_t layer(int64_t l) const { return 1 + l; }
    int64_t final_norm() const { return 1 + layers_; }
    // Tied embeddings: the LM head is the embedding table, so it is the embedding's unit.
    int64_t lm_head() const { return tied_ ? embedding() : 2 + layers_; }

    int64_t count() const { return static_cast<int64_t>(units_.size()); }
    const ParameterUnit& operator[](int64_t i) const { return units_[static_cast<size_t>(i)]; }
    const std::vector<ParameterUnit>& all() const { return units_; }
    int64_t largest() const {
        int64_t most = 0;
        for (const auto& u : units_) most = std::max(most, u.size());
        return most;
    }

private:
    int64_t layers_;
    bool tied_;
    std::vector<ParameterUnit> units_;
};

}  // namespace slm::model
