#pragma once
// data::OutputSet: files that belong together (a tokenizer and the token shards made with it)
// appear in their directory all at once or not at all. They are written into a staging directory
// beside the target (<out>.tmp.<pid>, same filesystem); commit() swaps it with the target in one
// atomic rename (renameat2 RENAME_EXCHANGE; where the filesystem lacks it, two renames, with the
// old set kept as <out>.old.<pid> until the new one is in place), then removes the old set. A
// kill or an error before commit() leaves the target exactly as it was; the destructor removes
// the staging directory, and the next OutputSet for that target removes the staging directories
// of processes that are gone.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "slm/core/error.hpp"

namespace slm::data {

class OutputSet {
public:
    // owned(name): whether a file already in the target belongs to the set (and may be
    // replaced); a target holding anything else is refused, so a mistaken --out (a home
    // directory, say) is never swapped away.
    OutputSet(std::filesystem::path target, std::function<bool(const std::string&)> owned)
        : target_(std::filesystem::absolute(std::move(target)).lexically_normal()) {
        namespace fs = std::filesystem;
        if (target_.filename().empty()) target_ = target_.parent_path();
        std::error_code ec;
        if (fs::exists(target_, ec)) {
            require(fs::is_directory(target_, ec), "'" + target_.string() + "' is not a directory");
            for (const auto& e : fs::directory_iterator(target_, ec))
                require(owned(e.path().filename().string()),
                        "'" + target_.string() + "' holds " + e.path().filename().string() +
                            ", which this program did not write: pick an empty or new output directory");
        }
        fs::create_directories(target_.parent_path(), ec);
        remove_abandoned();
        staging_ = sibling(".tmp." + std::to_string(::getpid()));
        fs::remove_all(staging_, ec);
        require(fs::create_directory(staging_, ec) && !ec,
                "cannot create '" + staging_.string() + "': " + ec.message() +
                    " (check that the output's parent directory is writable)");
    }
    OutputSet(const OutputSet&) = delete;
    OutputSet& operator=(const OutputSet&) = delete;
    ~OutputSet() {
        std::error_code ec;
        if (!staging_.empty()) std::filesystem::remove_all(staging_, ec);
    }

    // Where to write the new set's files.
    const std::filesystem::path& staging() const { return staging_; }
    const std::filesystem::path& target() const { return target_; }

    // The new set replaces the target's, atomically where the filesystem can.
    void commit() {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (!fs::exists(target_, ec)) {
            fs::rename(staging_, target_, ec);
            require(!ec, "cannot move '" + staging_.string() + "' to '" + target_.string() + "': " + ec.message());
        } else if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
            fs::remove_all(staging_, ec);  // now the old set
        } else {
            const fs::path old = sibling(".old." + std::to_string(::getpid()));
            fs::rename(target_, old, ec);
            require(!ec, "cannot move the old '" + target_.string() + "' aside: " + ec.message());
            fs::rename(staging_, target_, ec);
            if (ec) {
                std::error_code back;
                fs::rename(old, target_, back);
                fail("cannot move '" + staging_.string() + "' to '" + target_.string() + "': " + ec.message());
            }
            fs::remove_all(old, ec);
        }
        staging_.clear();
    }

private:
    std::filesystem::path sibling(const std::string& suffix) const {
        return target_.parent_path() / (target_.filename().string() + suffix);
    }

    // <target>.tmp.<pid> and <target>.old.<pid> of processes that no longer run.
    void remove_abandoned() const {
        namespace fs = std::filesystem;
        std::error_code ec;
        const std::string stem = target_.filename().string();
        for (const auto& e : fs::directory_iterator(target_.parent_path(), ec)) {
            const std::string name = e.path().filename().string();
            for (const std::string kind : {".tmp.", ".old."}) {
                if (!name.starts_with(stem + kind)) continue;
                const std::string pid = name.substr(stem.size() + kind.size());
                if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
                if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;
                std::fprintf(stderr, "removing %s, left by a run that did not finish\n", e.path().c_str());
                fs::remove_all(e.path(), ec);
            }
        }
    }

    std::filesystem::path target_, staging_;
};

}  // namespace slm::data
