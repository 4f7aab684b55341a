#pragma once
// A short text that differs when two ranks would read different training data: the shards' file
// names, sizes, and a checksum of each shard's first and last 64 KiB. Cheap at start-up even for
// many gigabytes (the middle of a shard is not read: a shard rewritten with the same name, size
// and ends is not caught, which a shard's own checksum does at load), and independent of the
// directory, which may differ from node to node.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/checksum.hpp"
#include "slm/core/error.hpp"

namespace slm::parallel {

inline std::string data_fingerprint(std::vector<std::filesystem::path> shards) {
    constexpr int64_t edge = 64 << 10;
    std::sort(shards.begin(), shards.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
    Checksum sum;
    uintmax_t total = 0;
    std::vector<char> buffer(edge);
    for (const auto& path : shards) {
        std::ifstream in(path, std::ios::binary);
        require(in.good(), "data fingerprint: cannot open token shard '" + path.string() + "'");
        const auto size = static_cast<int64_t>(std::filesystem::file_size(path));
        const std::string name = path.filename().string();
        sum.add(name.data(), name.size() + 1);
        sum.add(&size, sizeof size);
        for (const int64_t at : {int64_t{0}, std::max<int64_t>(0, size - edge)}) {
            const int64_t bytes = std::min(edge, size);
            in.seekg(at);
            in.read(buffer.data(), bytes);
            require(in.gcount() == bytes,
                    "data fingerprint: cannot read token shard '" + path.string() + "'");
            sum.add(buffer.data(), static_cast<size_t>(bytes));
        }
        total += static_cast<uintmax_t>(size);
    }
    char text[96];
    std::snprintf(text, sizeof text, "%zu shard(s), %ju bytes, checksum %016llx", shards.size(),
                  total, static_cast<unsigned long long>(sum.value()));
    return text;
}

}  // namespace slm::parallel
