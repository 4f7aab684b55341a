#pragma once
// The GEMM algorithm picks of a run, kept in a text file so that another run replays them.
//
// A timed pick (cuda::Gemm::set_timed_candidates > 1) depends on timing noise, and the picked
// algorithm decides the last bits of every product, so two runs of the same job can end on
// losses a percent apart. Replaying a file of picks makes a tuned run repeatable bit for bit;
// a pick is valid only where it was made, so the file names its GPU and cuBLASLt version and a
// run elsewhere refuses it. Host-only C++: the CPU tests read and write it.
//
//     slm-gemm-choices 1
//     identity NVIDIA H200 | sm_90 | cublasLt 130100
//     pick <16 shape fields> <candidates asked of the heuristic> <algorithm: 8 words in hex>
//
// The shape fields are cuda::Gemm's cache key (transposes, m n k, row strides, output type,
// batch count and strides, operand alignments); the 8 words are cuBLASLt's opaque
// cublasLtMatmulAlgo_t.
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/file_io.hpp"

namespace slm::cuda {

using GemmShapeFields = std::array<int64_t, 16>;
using GemmAlgorithmWords = std::array<uint64_t, 8>;

struct GemmChoice {
    GemmShapeFields shape{};
    int requested = 0;  // how many candidates the heuristic was asked for when this was picked
    GemmAlgorithmWords algorithm{};
    bool operator==(const GemmChoice&) const = default;
};

struct GemmChoices {
    std::string identity;  // GPU, compute capability and cuBLASLt version the picks were made on
    std::vector<GemmChoice> picks;
    bool operator==(const GemmChoices&) const = default;
};

inline constexpr std::string_view gemm_choices_magic = "slm-gemm-choices 1";

inline std::string format_gemm_choices(const GemmChoices& c) {
    std::string out = std::string(gemm_choices_magic) + "\nidentity " + c.identity + "\n";
    for (const GemmChoice& p : c.picks) {
        out += "pick";
        for (const int64_t f : p.shape) out += " " + std::to_string(f);
        out += " " + std::to_string(p.requested);
        for (const uint64_t w : p.algorithm) {
            char hex[20];
            std::snprintf(hex, sizeof hex, " %016llx", static_cast<unsigned long long>(w));
            out += hex;
        }
        out += "\n";
    }
    return out;
}

// `source` names the file in errors. A later pick of the same shape replaces an earlier one.
inline GemmChoices parse_gemm_choices(std::string_view text, const std::string& source) {
    auto bad = [&](int line, const std::string& what) {
        fail("GEMM choices file '" + source + "', line " + std::to_string(line) + ": " + what +
             "; it is written by train_llama --gemm-choices: delete it to time the GEMMs again");
    };
    std::istringstream in{std::string(text)};
    std::string line;
    int number = 0;
    GemmChoices out;
    std::map<GemmShapeFields, size_t> index;
    bool have_identity = false;
    while (std::getline(in, line)) {
        ++number;
        if (number == 1) {
            if (line != gemm_choices_magic)
                bad(1, "expected '" + std::string(gemm_choices_magic) + "', found '" + line + "'");
            continue;
        }
        if (line.empty()) continue;
        if (line.rfind("identity ", 0) == 0) {
            if (have_identity) bad(number, "a second identity line");
            out.identity = line.substr(9);
            have_identity = true;
            continue;
        }
        std::istringstream words(line);
        std::string tag;
        words >> tag;
        if (tag != "pick") bad(number, "expected 'identity' or 'pick', found '" + tag + "'");
        if (!have_identity) bad(number, "a pick before the identity line");
        GemmChoice p;
        for (int64_t& f : p.shape)
            if (!(words >> f)) bad(number, "a pick needs 16 shape fields");
        if (!(words >> p.requested) || p.requested < 1) bad(number, "a pick needs a candidate count >= 1");
        for (uint64_t& w : p.algorithm) {
            std::string hex;
            if (!(words >> hex) || hex.size() != 16 ||
                hex.find_first_not_of("0123456789abcdef") != std::string::npos)
                bad(number, "a pick needs 8 algorithm words of 16 hex digits");
            w = std::stoull(hex, nullptr, 16);
        }
        std::string extra;
        if (words >> extra) bad(number, "unexpected '" + extra + "' after the algorithm");
        if (auto it = index.find(p.shape); it != index.end())
            out.picks[it->second] = p;
        else {
            index.emplace(p.shape, out.picks.size());
            out.picks.push_back(p);
        }
    }
    if (number == 0) bad(1, "the file is empty");
    if (!have_identity) bad(number, "no identity line");
    return out;
}

inline GemmChoices read_gemm_choices(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    require(in.good(), "cannot read GEMM choices file '" + path.string() + "'");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_gemm_choices(text.str(), path.string());
}

// Atomically (a crash leaves the previous file).
inline void write_gemm_choices(const std::filesystem::path& path, const GemmChoices& c) {
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    const std::string text = format_gemm_choices(c);
    AtomicFile file(path);
    file.write(text.data(), text.size());
    file.commit();
}

}  // namespace slm::cuda
