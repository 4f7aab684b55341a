#pragma once
// The study's grid as the sweep walks it: which points, in which order, under which names.
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "slm/attention/flash.hpp"
#include "slm/attention/naive.hpp"
#include "slm/precision/policy.hpp"
#include "slm/core/error.hpp"
#include "slm/names.hpp"

namespace slm::study {

// The attention policies a sweep measures: a subset of names::Attention (flash_deterministic is
// Flash's forward with a slower backward, not a point of the study).
using Attention = names::TypeList<attention::Naive, attention::Flash>;

struct Point {
    std::string preset, attention, parallel = std::string(parallel::Single::name);
    int64_t micro_batch = 1, seq = 1;
    std::string precision = std::string(precision::Bf16::name);  // names::Precisions
};

// The point's identity in the output file: a resumed sweep skips keys it already has. A bf16
// point's key has no precision part, as before precision was a dimension, so older files resume.
inline std::string key(const std::string& gpu, int gpus, const Point& p) {
    return gpu + "/" + std::to_string(gpus) + "/" + p.preset + "/" + p.attention + "/" +
           p.parallel + "/" + std::to_string(p.micro_batch) + "/" + std::to_string(p.seq) +
           (p.precision == precision::Bf16::name ? "" : "/" + p.precision);
}

// A line's precision: "bf16" for lines written before precision was a dimension.
template <class Line>
std::string precision_of(const Line& line) {
    return line.value("precision", std::string(precision::Bf16::name));
}

// Each point once per precision, in the order given, the precisions of a point side by side.
inline std::vector<Point> with_precisions(const std::vector<Point>& points, const std::vector<std::string>& precisions) {
    std::vector<Point> out;
    for (const auto& p : points)
        for (const auto& name : precisions) {
            Point q = p;
            q.precision = name;
            out.push_back(std::move(q));
        }
    return out;
}

inline std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = text.find(',', start);
        const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) items.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return items;
}

inline std::vector<int64_t> integer_list(const std::string& flag, const std::string& text) {
    std::vector<int64_t> values;
    for (const auto& item : split_list(text)) {
        size_t used = 0;
        int64_t v = 0;
        try {
            v = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        slm::require(used == item.size() && v > 0,
                     flag + ": '" + item + "' is not a positive integer (give a comma list, e.g. 4,8,16)");
        values.push_back(v);
    }
    slm::require(!values.empty(), flag + " is empty; give a comma list, e.g. 4,8,16");
    return values;
}

// Calibration presets first (the model must predict the others before they are measured), then
// presets in the order given; within a preset, attention kinds, then micro-batches upward.
// seq_of(preset): its sequence length (the sweep's --seq, or the preset's own).
template <class SeqOf>
    requires std::is_invocable_r_v<int64_t, SeqOf, const std::string&>
std::vector<Point> grid_points(const std::vector<std::string>& presets,
                               const std::vector<std::string>& calibrate_on,
                               const std::vector<std::string>& attentions,
                               const std::vector<int64_t>& micro_batches, SeqOf&& seq_of) {
    std::vector<std::string> order;
    for (const auto& p : presets)
        for (const auto& c : calibrate_on)
            if (p == c) order.push_back(p);
    for (const auto& p : presets) {
        bool calibration = false;
        for (const auto& c : calibrate_on) calibration |= p == c;
        if (!calibration) order.push_back(p);
    }
    std::vector<Point> points;
    for (const auto& preset : order)
        for (const auto& attention : attentions)
            for (int64_t mb : micro_batches)
                points.push_back({preset, attention, std::string(parallel::Single::name), mb, seq_of(preset)});
    return points;
}

// Every preset at one sequence length.
inline std::vector<Point> grid_points(const std::vector<std::string>& presets,
                                      const std::vector<std::string>& calibrate_on,
                                      const std::vector<std::string>& attentions,
                                      const std::vector<int64_t>& micro_batches, int64_t seq) {
    return grid_points(presets, calibrate_on, attentions, micro_batches, [seq](const std::string&) { return seq; });
}

}  // namespace slm::study
