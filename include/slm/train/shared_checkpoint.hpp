#pragma once
// A checkpoint written by all data-parallel ranks at once, each its share of the segments
// (train/checkpoint_segments.hpp), into one temporary file; for policies where every rank holds
// the whole state (Ddp), so no rank gathers anything. The protocol:
//   1. rank 0 creates "<file>.tmp.shared" with the header, its full size reserved
//      (create_shared), before the collective that tells the others where the payload starts;
//   2. every rank, on its writer thread, writes and sums its segments, then puts their sums in
//      the file's table of segment sums, and syncs (write_share);
//   3. once every rank is done (a collective the trainer asks between steps), rank 0 writes the
//      closing sum over the header and the table, syncs, and gives the file its name
//      (finish_shared).
// A rank killed on the way leaves only the temporary file, which the next start removes
// (RunDirectory); the previous checkpoint is untouched until step 3's rename. The ranks must
// share the file system (one host, or a shared one).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/core/file_io.hpp"
#include "slm/train/checkpoint.hpp"

namespace slm {

inline std::filesystem::path shared_temp(const std::filesystem::path& file) {
    return file.string() + ".tmp.shared";
}

namespace shared_detail {
inline int open_or_fail(const std::filesystem::path& p, int flags) {
    const int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot write '" + p.string() + "': " + std::strerror(errno));
    return fd;
}
inline void sync_close(int fd, const std::filesystem::path& p) {
    const bool ok = ::fsync(fd) == 0;
    const int e = errno;
    ::close(fd);
    if (!ok) fail("flushing '" + p.string() + "' failed: " + std::strerror(e));
}
}  // namespace shared_detail

// Rank 0: the temporary file with the header, at its full size (reserved where the file system
// can: a full disk fails here).
inline void create_shared(const std::filesystem::path& temp, const checkpoint_detail::Header& h) {
    const int fd = shared_detail::open_or_fail(temp, O_WRONLY | O_CREAT | O_TRUNC);
    const auto size = static_cast<off_t>(h.plan.file_bytes());
    const int e = reserve_file(fd, h.plan.file_bytes());
    if (e != 0) {
        ::close(fd);
        ::unlink(temp.c_str());
        fail("cannot write '" + temp.string() + "': " + std::strerror(e) + " (" + std::to_string(size) +
             " bytes needed); the previous checkpoint is left untouched");
    }
    try {
        pwrite_all(fd, h.bytes.data(), h.bytes.size(), 0, temp.string());
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
}

// Every rank: segments [first, last) of `plan` from `values` (segment first's first byte), and
// their sums into the table.
inline void write_share(const std::filesystem::path& temp, const CheckpointPlan& plan, uint64_t first,
                        uint64_t last, const void* values, int threads) {
    const int fd = shared_detail::open_or_fail(temp, O_WRONLY);
    try {
        const auto sums = write_segments(fd, plan, first, last, values, threads, temp.string());
        pwrite_all(fd, sums.data(), sums.size() * sizeof(uint64_t), plan.sums_offset() + 8 * first, temp.string());
    } catch (...) {
        ::close(fd);
        throw;
    }
    shared_detail::sync_close(fd, temp);
}

// Rank 0, once every share is written: the closing sum, then the file takes its name.
inline void finish_shared(const std::filesystem::path& temp, const std::filesystem::path& file,
                          const checkpoint_detail::Header& h) {
    const int fd = shared_detail::open_or_fail(temp, O_RDWR);
    std::vector<uint64_t> sums(h.plan.segments);
    const auto bytes = static_cast<ssize_t>(sums.size() * sizeof(uint64_t));
    if (::pread(fd, sums.data(), static_cast<size_t>(bytes), static_cast<off_t>(h.plan.sums_offset())) != bytes) {
        ::close(fd);
        fail("cannot read back the segment sums of '" + temp.string() + "'");
    }
    const uint64_t closing = checkpoint_detail::closing_sum(h.bytes, sums);
    try {
        pwrite_all(fd, &closing, sizeof closing, h.plan.file_bytes() - sizeof closing, temp.string());
    } catch (...) {
        ::close(fd);
        throw;
    }
    shared_detail::sync_close(fd, temp);
    if (std::rename(temp.c_str(), file.c_str()) != 0)
        fail("cannot rename '" + temp.string() + "' to '" + file.string() + "': " + std::strerror(errno));
    sync_parent_directory(file);
}

}  // namespace slm
