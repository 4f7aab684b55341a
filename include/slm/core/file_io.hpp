#pragma once
// Files that must never be seen half-written (checkpoints, token shards) go through
// AtomicFile: write to "<path>.tmp.<pid>", fsync, rename over the target, fsync the directory.
// A crash or a full disk leaves the previous file intact.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "slm/core/error.hpp"

namespace slm {

// Sets aside `bytes` on the disk for the file behind `fd`, so a disk too full for it fails at
// once, not after gigabytes. Returns 0, or the errno; a file system that cannot reserve
// (EOPNOTSUPP, EINVAL) counts as 0: its writes report a full disk instead.
inline int reserve_file(int fd, uint64_t bytes) {
    const int e = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
    return e == EOPNOTSUPP || e == EINVAL ? 0 : e;
}

// After a rename into `file`'s directory: makes the new name durable.
inline void sync_parent_directory(const std::filesystem::path& file) {
    const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

class AtomicFile {
public:
    explicit AtomicFile(std::filesystem::path target)
        : target_(std::move(target)),
          temp_(target_.string() + ".tmp." + std::to_string(::getpid())) {
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0)
            fail("cannot write '" + target_.string() + "': " + std::strerror(errno) +
                 " (check that the directory exists and is writable)");
    }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile() {
        if (fd_ >= 0) {  // not committed: drop the partial file, keep the old target
            ::close(fd_);
            ::unlink(temp_.c_str());
        }
    }

    void write(const void* data, size_t bytes) {
        const auto* p = static_cast<const char*>(data);
        while (bytes > 0) {
            const ssize_t w = ::write(fd_, p, bytes);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0)
                fail("writing '" + target_.string() + "' failed: " + std::strerror(errno) +
                     "; the previous file (if any) is left untouched");
            p += w;
            bytes -= static_cast<size_t>(w);
        }
    }

    // Sets aside `bytes` for the file before it is written (reserve_file).
    void reserve(uint64_t bytes) {
        if (const int e = reserve_file(fd_, bytes); e != 0)
            fail("cannot write '" + target_.string() + "': " + std::strerror(e) + " (" +
                 std::to_string(bytes) + " bytes needed); the previous file (if any) is left untouched");
    }
    // For positioned writes from several threads (pwrite), besides write().
    int fd() const { return fd_; }

    // Makes the new content durable and visible under the target name.
    void commit() {
        if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
            fd_ = -1;
            ::unlink(temp_.c_str());
            fail("flushing '" + target_.string() + "' failed: " + std::strerror(errno));
        }
        fd_ = -1;
        if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
            ::unlink(temp_.c_str());
            fail("cannot replace '" + target_.string() + "': " + std::strerror(errno));
        }
        sync_parent_directory(target_);
    }

private:
    std::filesystem::path target_;
    std::string temp_;
    int fd_ = -1;
};

}  // namespace slm
