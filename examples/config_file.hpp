#pragma once
// Flag values from a file, and a run's resolved flags written back as one: `--config FILE` reads
// TOML (or INI, by a .ini/.cfg name) through CLI11's config reader (Debian's libcli11-dev), the
// keys being the flags' names without "--" ("batch = 16", "checkpoint-interval = 40"; '_' may
// stand for '-'); write_config writes every flag's value in the same form, so a run is repeated by
// `--config RUN/config.toml`. Values stay strings here: the program's flag accessors check them
// as they check the command line's.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace slm::cli {

// (key, values) pairs in file order: a list value (`text = ["a.txt", "b.txt"]`) keeps its items.
// Throws std::runtime_error naming the file for a file that cannot be read or parsed, or a
// [section] (flags have none).
inline std::vector<std::pair<std::string, std::vector<std::string>>> read_config_lists(
    const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("--config '" + path.string() + "': no such file or not readable");
    const std::string ext = path.extension().string();
    std::vector<CLI::ConfigItem> items;
    try {
        if (ext == ".ini" || ext == ".cfg") items = CLI::ConfigINI().from_config(in);
        else items = CLI::ConfigTOML().from_config(in);
    } catch (const CLI::Error& e) {
        throw std::runtime_error("--config '" + path.string() + "': " + e.what());
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const auto& item : items) {
        // CLI11 reports each [section] header as an item named "++" (entering) or "--" (leaving).
        if (item.name == "++" || item.name == "--" || !item.parents.empty())
            throw std::runtime_error("--config '" + path.string() + "': sections ([" +
                                     (item.parents.empty() ? item.name : item.parents.front()) +
                                     "]) are not used: put every flag at the top level");
        std::string key = item.name;
        std::replace(key.begin(), key.end(), '_', '-');
        out.emplace_back(std::move(key), item.inputs);
    }
    return out;
}

// (key, value) pairs in file order, a list value joined with ','.
inline std::vector<std::pair<std::string, std::string>> read_config_file(const std::filesystem::path& path) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [key, values] : read_config_lists(path)) {
        std::string value;
        for (const auto& v : values) value += (value.empty() ? "" : ",") + v;
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

// A TOML basic string: quotes, backslashes and control characters escaped.
inline std::string toml_string(const std::string& s) {
    std::string q = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            q += '\\';
            q += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            q += buf;
        } else {
            q += c;
        }
    }
    return q + "\"";
}

}  // namespace slm::cli
