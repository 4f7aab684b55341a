#pragma once
// A small command-line parser for the example programs: every flag is declared with its help
// text and default, unknown or malformed flags raise UsageError (the programs print the usage
// and exit 2), and --help prints the table. Every program also takes `--config FILE` (TOML or
// INI, config_file.hpp): its values for the flags not on the command line (which wins); and
// write_config saves the resolved flags in that form, so a run can be repeated from its file.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config_file.hpp"
#include "slm/core/file_io.hpp"

namespace slm::cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Flag {
    std::string name;           // "--batch"
    std::string default_value;  // "" for none; "false" for a switch
    std::string help;
    bool is_switch = false;     // present/absent, takes no value
};

class Flags {
public:
    Flags(std::string program, std::string summary, std::vector<Flag> flags)
        : program_(std::move(program)), summary_(std::move(summary)), flags_(std::move(flags)) {
        flags_.push_back({"--config", "", "TOML or INI file of flag values (keys: the flags without "
                                          "--); flags on the command line win"});
        for (const auto& f : flags_) values_[f.name] = f.default_value;
    }

    // Returns false when --help was asked (usage already printed).
    bool parse(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::fputs(usage().c_str(), stdout);
                return false;
            }
            const Flag* f = find(arg);
            if (!f) throw UsageError("unknown flag '" + arg + "'");
            if (f->is_switch) {
                values_[arg] = "true";
                continue;
            }
            if (i + 1 >= argc) throw UsageError(arg + " needs a value");
            values_[arg] = argv[++i];
            given_.push_back(arg);
        }
        if (given("--config")) apply_config(values_.at("--config"));
        return true;
    }

    // Writes every flag's value but `except`'s as `key = "value"` lines (switches true/false),
    // atomically: what --config reads back.
    void write_config(const std::filesystem::path& path, const std::vector<std::string>& except = {}) const {
        std::string text = "# " + program_ + ": the settings of this run (command line, --config and "
                           "defaults); repeat it with " + program_ + " --config FILE\n";
        for (const auto& f : flags_) {
            if (f.name == "--config" || std::find(except.begin(), except.end(), f.name) != except.end()) continue;
            const std::string& v = values_.at(f.name);
            text += f.name.substr(2) + " = " + (f.is_switch ? (v == "true" ? "true" : "false") : toml_string(v)) + "\n";
        }
        AtomicFile out(path);
        out.write(text.data(), text.size());
        out.commit();
    }

    bool given(const std::string& name) const {
        for (const auto& g : given_)
            if (g == name) return true;
        return false;
    }
    std::string text(const std::string& name) const { return values_.at(name); }
    bool on(const std::string& name) const { return values_.at(name) == "true"; }

    int64_t integer(const std::string& name, int64_t min_value) const {
        const std::string v = values_.at(name);
        size_t used = 0;
        int64_t x = 0;
        try {
            x = std::stoll(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != v.size() || v.empty()) throw UsageError(name + " '" + v + "' is not an integer");
        if (x < min_value)
            throw UsageError(name + " must be >= " + std::to_string(min_value) + ", got " + v);
        return x;
    }

    // A finite number (no flag takes inf or nan).
    double real(const std::string& name) const {
        const std::string v = values_.at(name);
        size_t used = 0;
        double x = 0;
        try {
            x = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != v.size() || v.empty()) throw UsageError(name + " '" + v + "' is not a number");
        if (!std::isfinite(x)) throw UsageError(name + " must be a finite number, got " + v);
        return x;
    }
    // A finite number >= min_value (> min_value when `strictly`).
    double real(const std::string& name, double min_value, bool strictly = false) const {
        const double x = real(name);
        if (strictly ? !(x > min_value) : !(x >= min_value))
            throw UsageError(name + " must be " + (strictly ? "> " : ">= ") + number(min_value) +
                             ", got " + values_.at(name));
        return x;
    }

    std::string choice(const std::string& name, const std::vector<std::string>& allowed) const {
        const std::string v = values_.at(name);
        std::string list;
        for (const auto& a : allowed) {
            if (a == v) return v;
            list += (list.empty() ? "" : "|") + a;
        }
        throw UsageError(name + " must be one of " + list + ", got '" + v + "'");
    }
    // The same over a list of names (names.hpp's tables). A template, so that a braced list of
    // strings still picks the overload above.
    template <class Name>
        requires std::same_as<Name, std::string_view>
    std::string choice(const std::string& name, const std::vector<Name>& allowed) const {
        return choice(name, std::vector<std::string>(allowed.begin(), allowed.end()));
    }

    static std::string number(double x) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", x);
        return buf;
    }

    std::string usage() const {
        std::string u = program_ + ": " + summary_ + "\n\nflags:\n";
        for (const auto& f : flags_) {
            std::string left = "  " + f.name + (f.is_switch ? "" : " VALUE");
            left.resize(std::max<size_t>(left.size() + 1, 28), ' ');
            u += left + f.help;
            if (!f.is_switch && !f.default_value.empty()) u += " (default " + f.default_value + ")";
            u += "\n";
        }
        return u;
    }

private:
    // The file's values for the flags the command line did not give.
    void apply_config(const std::string& file) {
        std::vector<std::pair<std::string, std::string>> items;
        try {
            items = read_config_file(file);
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
        std::vector<std::string> from_line = given_;
        for (const auto& [key, value] : items) {
            const Flag* f = find("--" + key);
            if (!f || f->name == "--config")
                throw UsageError("--config '" + file + "': '" + key + "' is not a flag of " + program_ +
                                 " (--help lists them)");
            if (std::find(from_line.begin(), from_line.end(), f->name) != from_line.end() ||
                (f->is_switch && values_[f->name] == "true"))
                continue;  // the command line wins
            if (f->is_switch && value != "true" && value != "false")
                throw UsageError("--config '" + file + "': '" + key + "' is a switch: true or false, got '" + value + "'");
            values_[f->name] = value;
            // A file written by write_config names every flag: its defaults count as not given,
            // so "preset = tiny" beside "model = FILE" does not read as both choices made.
            if (!f->is_switch && value != f->default_value) given_.push_back(f->name);
        }
    }

    const Flag* find(const std::string& name) const {
        for (const auto& f : flags_)
            if (f.name == name) return &f;
        return nullptr;
    }
    std::string program_, summary_;
    std::vector<Flag> flags_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> given_;
};

}  // namespace slm::cli
