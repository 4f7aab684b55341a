#pragma once
// A small command-line parser for the example programs: every flag is declared with its help
// text and default, unknown or malformed flags raise UsageError (the programs print the usage
// and exit 2), and --help prints the table.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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
        return true;
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
