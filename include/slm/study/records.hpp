#pragma once
// The sweep's output file (docs/sweep_format.md): JSON lines that survive an interrupted run.
// Measurements are appended and flushed one by one, so a stop loses at most the point in flight;
// what is derived from them (predictions, loss per dollar, best configurations) is rewritten
// atomically as a whole each time, so it always matches the measurements beside it.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/file_io.hpp"

namespace slm::study {

using Json = nlohmann::ordered_json;

// Lines a later run keeps: what was measured, and predictions frozen before their measurement.
inline bool is_primary(const Json& line) {
    const std::string kind = line.value("kind", "");
    return kind == "measured" || kind == "skipped" || kind == "loss_curve" ||
           (kind == "predicted" && line.value("before_measurement", false));
}

class Records {
public:
    explicit Records(std::filesystem::path file) : file_(std::move(file)) {
        if (file_.has_parent_path()) std::filesystem::create_directories(file_.parent_path());
        std::ifstream in(file_);
        std::string text;
        for (int number = 1; std::getline(in, text); ++number) {
            if (text.empty()) continue;
            try {
                lines_.push_back(Json::parse(text));
            } catch (const nlohmann::json::parse_error&) {
                // A run killed mid-write leaves a torn last line; anywhere else it is damage.
                if (in.peek() == EOF) {
                    torn_tail_ = true;
                    break;
                }
                slm::fail(file_.string() + ":" + std::to_string(number) +
                          " is not a JSON line; fix or delete it (every other line is kept)");
            }
            slm::require(lines_.back().contains("kind"),
                         file_.string() + ":" + std::to_string(number) + " has no \"kind\"");
        }
        if (torn_tail_) rewrite({});
    }

    const std::vector<Json>& lines() const { return lines_; }

    bool has(const std::string& kind, const std::string& key) const {
        for (const auto& l : lines_)
            if (l.value("kind", "") == kind && l.value("key", "") == key) return true;
        return false;
    }
    bool has_measurement(const std::string& key) const {
        return has("measured", key) || has("skipped", key);
    }

    // Appends one primary line and flushes it to disk before returning.
    void append(Json line) {
        std::ofstream out(file_, std::ios::app);
        out << line.dump() << '\n';
        out.flush();
        slm::require(out.good(), "cannot append to '" + file_.string() + "' (disk full?)");
        lines_.push_back(std::move(line));
    }

    // Keeps the primary lines, replaces every derived line by `derived`.
    void rewrite(std::vector<Json> derived) {
        std::vector<Json> kept;
        for (auto& l : lines_)
            if (is_primary(l)) kept.push_back(std::move(l));
        for (auto& l : derived) kept.push_back(std::move(l));
        std::string text;
        for (const auto& l : kept) text += l.dump() + '\n';
        slm::AtomicFile out(file_);
        out.write(text.data(), text.size());
        out.commit();
        lines_ = std::move(kept);
        torn_tail_ = false;
    }

    const std::filesystem::path& file() const { return file_; }

private:
    std::filesystem::path file_;
    std::vector<Json> lines_;
    bool torn_tail_ = false;
};

}  // namespace slm::study
