#pragma once
// A fresh directory under the system temp dir, removed with everything in it at scope exit.
// Named by tag, process and time, so parallel ctest runs never share one.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

namespace slm::test {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag) {
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path = std::filesystem::temp_directory_path() /
               ("slm-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(stamp));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

}  // namespace slm::test
