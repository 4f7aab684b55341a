#pragma once
// slm::Error is the one exception type the library throws. Every message names the thing that
// went wrong and, where there is one, the fix; `where` carries the caller's file and line so a
// report from deep inside a trainer still points at the check that fired.
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>

namespace slm {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

inline std::string location_of(const std::source_location& where) {
    return std::string(where.file_name()) + ":" + std::to_string(where.line());
}

// Throws slm::Error with `message` unless `condition` holds.
inline void require(bool condition, std::string_view message,
                    std::source_location where = std::source_location::current()) {
    if (!condition) throw Error(std::string(message) + " [" + location_of(where) + "]");
}

[[noreturn]] inline void fail(std::string_view message,
                              std::source_location where = std::source_location::current()) {
    throw Error(std::string(message) + " [" + location_of(where) + "]");
}

}  // namespace slm
