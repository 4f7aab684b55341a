#pragma once
// train::RunDirectory: the run directory <out> of one training run, and what keeps it safe.
//   - A lock: <out>/.lock held with flock(2) for the life of the process, the holder's pid
//     written in it; a second process training into <out> fails at once naming that pid. (Within
//     one process the lock is shared: tests and sweeps build several trainers on one directory.)
//   - Checked writable before anything big is built (a probe file is created and removed).
//   - Checkpoints are numbered files checkpoint-<step>.bin beside a pointer, checkpoint.bin, a
//     symbolic link replaced atomically (rename) once a new file is complete, so a reader never
//     sees a half-written checkpoint under either name. The newest `keep` numbered files stay; a
//     file the pointer names is never removed.
//   - Temporary files of saves that never finished (<name>.tmp.<pid>, left by a kill) are removed
//     when the directory is opened: the lock says no other process is writing them.
#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "slm/core/error.hpp"

namespace slm {

class RunDirectory {
public:
    RunDirectory() = default;  // no directory (ranks other than the lead)
    explicit RunDirectory(const std::filesystem::path& out) : out_(out) {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::create_directories(out_, ec);
        require(!ec && fs::is_directory(out_), "cannot create run directory '" + out_.string() +
                                                   "': " + ec.message() + " (check --out)");
        check_writable();
        lock_ = locks().acquire(out_);
        remove_leftover_temps();
    }
    RunDirectory(RunDirectory&& o) noexcept : out_(std::move(o.out_)), lock_(std::exchange(o.lock_, "")) {}
    RunDirectory& operator=(RunDirectory&& o) noexcept {
        std::swap(out_, o.out_);
        std::swap(lock_, o.lock_);
        return *this;
    }
    RunDirectory(const RunDirectory&) = delete;
    ~RunDirectory() {
        if (!lock_.empty()) locks().release(lock_);
    }

    const std::filesystem::path& path() const { return out_; }
    std::filesystem::path pointer() const { return out_ / "checkpoint.bin"; }
    std::filesystem::path numbered(int64_t step) const { return numbered_in(out_, step); }
    static std::filesystem::path numbered_in(const std::filesystem::path& out, int64_t step) {
        char name[40];
        std::snprintf(name, sizeof name, "checkpoint-%08lld.bin", (long long)step);
        return out / name;
    }

    // Whether `out` has a checkpoint to resume (without creating or locking anything).
    static bool has_checkpoint(const std::filesystem::path& out) {
        std::error_code ec;
        return std::filesystem::exists(std::filesystem::symlink_status(out / "checkpoint.bin", ec)) ||
               !numbered_files(out).empty();
    }

    // Why a fresh run may not start in `out`, which holds a run, and what to do instead.
    static std::string holds_run_refusal(const std::filesystem::path& out) {
        return "run directory '" + out.string() + "' holds a run (checkpoints or metrics.jsonl): " +
               "continue it with --resume, start over with --overwrite (which removes them), or " +
               "pick another --out";
    }

    // Whether the directory holds a run that a fresh start would clobber.
    bool holds_run() const {
        namespace fs = std::filesystem;
        std::error_code ec;
        const bool metrics = fs::exists(out_ / "metrics.jsonl", ec) && fs::file_size(out_ / "metrics.jsonl", ec) > 0;
        return metrics || has_checkpoint(out_);
    }

    // --overwrite: the run's checkpoints, pointer and metrics go.
    void clear_run() {
        namespace fs = std::filesystem;
        std::error_code ec;
        for (const auto& f : numbered_files(out_)) fs::remove(f.second, ec);
        fs::remove(pointer(), ec);
        fs::remove(out_ / "metrics.jsonl", ec);
    }

    // After `file` (a numbered checkpoint in this directory) is complete and durable: the pointer
    // names it, then all but the newest `keep` numbered files are removed.
    void publish(const std::filesystem::path& file, int keep) {
        namespace fs = std::filesystem;
        const fs::path temp = out_ / (".checkpoint.bin.link." + std::to_string(::getpid()));
        std::error_code ec;
        fs::remove(temp, ec);
        fs::create_symlink(file.filename(), temp, ec);
        require(!ec, "cannot make the link to the newest checkpoint in '" + out_.string() + "': " + ec.message());
        fs::rename(temp, pointer(), ec);  // atomic: the old pointer or the new, never none
        require(!ec, "cannot update '" + pointer().string() + "': " + ec.message());
        auto files = numbered_files(out_);
        const int64_t excess = static_cast<int64_t>(files.size()) - std::max(keep, 1);
        for (int64_t i = 0; i < excess; ++i)
            if (files[static_cast<size_t>(i)].second.filename() != file.filename())
                fs::remove(files[static_cast<size_t>(i)].second, ec);
    }

    // Where a resume looks, best first: the file the pointer names (or the pointer itself, a
    // plain file in a directory from before numbered checkpoints), then the numbered files from
    // the newest down.
    std::vector<std::filesystem::path> resume_candidates() const {
        namespace fs = std::filesystem;
        std::vector<fs::path> out;
        std::error_code ec;
        if (fs::exists(pointer(), ec)) out.push_back(fs::canonical(pointer(), ec));
        auto files = numbered_files(out_);
        for (auto it = files.rbegin(); it != files.rend(); ++it)
            if (std::find(out.begin(), out.end(), fs::canonical(it->second, ec)) == out.end())
                out.push_back(it->second);
        return out;
    }

private:
    // (step, path) of every checkpoint-<step>.bin in `out`, oldest first.
    static std::vector<std::pair<int64_t, std::filesystem::path>> numbered_files(const std::filesystem::path& out) {
        std::vector<std::pair<int64_t, std::filesystem::path>> files;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(out, ec)) {
            const std::string name = e.path().filename().string();
            // "checkpoint-" 8 digits ".bin", as numbered() writes them
            if (name.size() != 23 || !name.starts_with("checkpoint-") || !name.ends_with(".bin"))
                continue;
            const std::string digits = name.substr(11, 8);
            if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
                continue;
            files.emplace_back(std::stoll(digits), e.path());
        }
        std::sort(files.begin(), files.end());
        return files;
    }

    void check_writable() const {
        const auto probe = out_ / (".write-probe." + std::to_string(::getpid()));
        const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        require(fd >= 0, "run directory '" + out_.string() + "' is not writable: " +
                             std::strerror(errno) + " (check --out and its permissions)");
        ::close(fd);
        ::unlink(probe.c_str());
    }

    void remove_leftover_temps() const {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(out_, ec)) {
            const std::string name = e.path().filename().string();
            if (name.find(".tmp.") != std::string::npos &&
                (name.starts_with("checkpoint") || name.starts_with("gemm_choices"))) {
                std::fprintf(stderr, "run directory: removing %s, left by a save that never finished\n",
                             e.path().c_str());
                std::filesystem::remove(e.path(), ec);
            }
        }
    }

    // flock(2) locks belong to an open file: one per directory per process, counted.
    class Locks {
    public:
        std::string acquire(const std::filesystem::path& out) {
            const std::string key = std::filesystem::weakly_canonical(out).string();
            std::lock_guard<std::mutex> guard(mutex_);
            auto& held = held_[key];
            if (held.count++ > 0) return key;
            const std::string file = key + "/.lock";
            const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0) {
                held_.erase(key);
                fail("cannot open the lock file '" + file + "': " + std::strerror(errno));
            }
            if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
                char pid[32] = {};
                const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
                ::close(fd);
                held_.erase(key);
                const std::string who = n > 0 ? "process " + std::string(pid, static_cast<size_t>(n)) : "another process";
                fail("run directory '" + out.string() + "' is in use by " + who +
                     " (it holds " + file + "): wait for that run to end, or pick another --out");
            }
            const std::string me = std::to_string(::getpid());
            if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, me.data(), me.size(), 0) < 0) {
                // the pid is for messages only; the lock itself holds
            }
            held.fd = fd;
            return key;
        }
        void release(const std::string& key) {
            std::lock_guard<std::mutex> guard(mutex_);
            auto it = held_.find(key);
            if (it == held_.end() || --it->second.count > 0) return;
            ::close(it->second.fd);  // releases the flock
            held_.erase(it);
        }

    private:
        struct Held {
            int fd = -1;
            int count = 0;
        };
        std::mutex mutex_;
        std::map<std::string, Held> held_;
    };
    static Locks& locks() {
        static Locks instance;
        return instance;
    }

    std::filesystem::path out_;
    std::string lock_;  // the key of the lock held, empty when none
};

}  // namespace slm
