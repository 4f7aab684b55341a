#pragma once
// The message of the slm::Error a callable throws ("" when it throws none), for tests that check
// an error names the right thing.
#include <string>

#include "slm/core/error.hpp"

namespace slm::test {

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const slm::Error& e) {
        return e.what();
    }
    return "";
}

inline bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace slm::test
