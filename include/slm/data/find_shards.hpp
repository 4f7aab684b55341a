#pragma once
// The token shards prepare_data wrote into a directory (tokens.bin or tokens_000.bin, ...), in
// order, with a message that says what to run when there are none.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::data {

inline std::vector<std::filesystem::path> find_shards(const std::filesystem::path& dir) {
    require(std::filesystem::is_directory(dir),
            "data directory '" + dir.string() + "' does not exist; run prepare_data first (README shows how)");
    std::vector<std::filesystem::path> shards;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.starts_with("tokens") && name.ends_with(".bin")) shards.push_back(e.path());
    }
    std::sort(shards.begin(), shards.end());
    require(!shards.empty(), "no tokens*.bin shards in '" + dir.string() + "'; run prepare_data --out " +
                                 dir.string() + " first");
    return shards;
}

}  // namespace slm::data
