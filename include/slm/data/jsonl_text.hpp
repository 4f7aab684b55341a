#pragma once
// The documents of a JSON Lines corpus (one JSON object a line, the document its string field,
// "text" by default: the layout of most published pretraining corpora), plain or gzip-compressed.
//
// A bad line stops the read with "FILE:LINE: reason" rather than being skipped: a corpus that
// is silently missing the documents a converter mangled trains a different model than the one
// asked for, and the line number is what one needs to look at it. Empty (or all-whitespace)
// lines are allowed and skipped, as writers often end a file with one.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "slm/core/error.hpp"
#include "slm/data/line_reader.hpp"

namespace slm::data {

class JsonlTexts {
public:
    explicit JsonlTexts(const std::filesystem::path& path, std::string field = "text")
        : lines_(path), field_(std::move(field)) {}

    // The next document's text; false after the last line.
    bool next(std::string& text) {
        while (lines_.next(line_)) {
            if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;
            nlohmann::json object;
            try {
                object = nlohmann::json::parse(line_);
            } catch (const nlohmann::json::parse_error& e) {
                bad("not valid JSON (" + without_prefix(e.what()) + ")");
            }
            if (!object.is_object())
                bad("the line is " + described(object) + ", not a JSON object with a \"" + field_ + "\" field");
            const auto it = object.find(field_);
            if (it == object.end()) bad("no \"" + field_ + "\" field (it has " + keys(object) + "; see --field)");
            if (!it->is_string())
                bad("field \"" + field_ + "\" is " + described(*it) + ", not a string");
            text = it->get_ref<const std::string&>();
            return true;
        }
        return false;
    }

    const std::filesystem::path& path() const { return lines_.path(); }
    // The line the last document came from, counted from 1.
    int64_t line_number() const { return lines_.line_number(); }
    // Bytes of the file read so far (compressed bytes for gzip).
    uint64_t consumed() const { return lines_.consumed(); }

private:
    [[noreturn]] void bad(const std::string& reason) const {
        fail(lines_.path().string() + ":" + std::to_string(lines_.line_number()) + ": " + reason);
    }

    // nlohmann's messages start "[json.exception.parse_error.101] " and count lines within the
    // one line parsed ("at line 1, column 14"): only the column means anything here.
    static std::string without_prefix(std::string what) {
        const auto end = what.find("] ");
        if (what.starts_with("[json.exception.") && end != std::string::npos) what = what.substr(end + 2);
        const auto at = what.find("at line 1, column ");
        if (at != std::string::npos) what.replace(at, 18, "at column ");
        return what;
    }

    // "null", "a number", "an array", ...
    static std::string described(const nlohmann::json& value) {
        const std::string type = value.type_name();
        if (value.is_null()) return type;
        return (std::string("aeiou").find(type[0]) != std::string::npos ? "an " : "a ") + type;
    }

    // The object's first few keys, for a message about a field that is not there.
    static std::string keys(const nlohmann::json& object) {
        if (object.empty()) return "no fields";
        std::string out;
        int shown = 0;
        for (const auto& [key, value] : object.items()) {
            if (shown == 5) return out + ", ...";
            out += (shown++ ? ", \"" : "fields \"") + key + "\"";
        }
        return out;
    }

    LineReader lines_;
    std::string field_;
    std::string line_;
};

}  // namespace slm::data
