#pragma once
// The payload of a checkpoint (weights, then the two AdamW moments: 3n values) is cut into
// segments of a fixed byte size, each with its own XXH3 sum, so that several threads, and
// several data-parallel ranks, can write (and sum) their segments at once into one file: a
// single XXH3 stream cannot be split. The segment size, not the number of writers, fixes the
// cut, so the file's bytes do not depend on how many threads or ranks wrote it, and any world
// size reads it.
//   CheckpointPlan   where every segment lies in the file, and the file's size
//   write_segments   writes segments [first, last) from host memory with up to `threads`
//                    threads (pwrite at their offsets) and returns their sums
//   SegmentSums      the reader's side: sums bytes fed in file order, segment by segment
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "slm/core/checksum.hpp"
#include "slm/core/error.hpp"

namespace slm {

// Segments of this many bytes (the last one shorter): a few per GB, so the writes of a 2B
// model's 24.8 GB spread over threads and ranks, and small enough that a file of 1 GB still has
// four.
inline constexpr uint64_t default_segment_bytes = uint64_t{256} << 20;

struct CheckpointPlan {
    uint64_t payload_offset = 0;  // where the payload starts (the header's size)
    uint64_t payload_bytes = 0;
    uint64_t segment_bytes = 0;   // every segment's size but the last one's
    uint64_t segments = 0;

    CheckpointPlan() = default;
    // segment_bytes is rounded down to whole values of `width` bytes.
    CheckpointPlan(uint64_t header_bytes, uint64_t values, uint32_t width, uint64_t segment_target)
        : payload_offset(header_bytes), payload_bytes(values * width) {
        require(segment_target >= width, "checkpoint segment size " + std::to_string(segment_target) +
                                             " bytes is smaller than one value");
        segment_bytes = segment_target / width * width;
        segments = std::max<uint64_t>(1, (payload_bytes + segment_bytes - 1) / segment_bytes);
    }
    uint64_t offset(uint64_t k) const { return payload_offset + k * segment_bytes; }
    uint64_t bytes(uint64_t k) const {
        return k + 1 < segments ? segment_bytes : payload_bytes - k * segment_bytes;
    }
    // The table of segment sums follows the payload; the file's own sum closes it.
    uint64_t sums_offset() const { return payload_offset + payload_bytes; }
    uint64_t file_bytes() const { return sums_offset() + 8 * segments + 8; }
    // The segments a writer of `parts` equal shares writes as share `part` (contiguous).
    std::pair<uint64_t, uint64_t> share(int part, int parts) const {
        const auto p = static_cast<uint64_t>(part), n = static_cast<uint64_t>(parts);
        return {segments * p / n, segments * (p + 1) / n};
    }
};

// Writes `bytes` at `offset` of `fd`, all of it (pwrite may write less).
inline void pwrite_all(int fd, const void* data, uint64_t bytes, uint64_t offset, const std::string& name) {
    const auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t w = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            fail("writing '" + name + "' failed: " + std::strerror(errno) +
                 "; the previous file (if any) is left untouched");
        p += w;
        offset += static_cast<uint64_t>(w);
        bytes -= static_cast<uint64_t>(w);
    }
}

// Segments [first, last) of `plan`, whose bytes start at `data` (segment `first`'s first
// byte), summed and written to `fd` by up to `threads` threads. Returns their sums in order.
inline std::vector<uint64_t> write_segments(int fd, const CheckpointPlan& plan, uint64_t first, uint64_t last,
                                            const void* data, int threads, const std::string& name) {
    std::vector<uint64_t> sums(last - first);
    const auto* base = static_cast<const char*>(data);
    std::mutex mutex;
    std::exception_ptr error;
    auto work = [&](uint64_t from, uint64_t to) {
        try {
            for (uint64_t k = from; k < to; ++k) {
                const char* p = base + (plan.offset(k) - plan.offset(first));
                sums[k - first] = XXH3_64bits(p, plan.bytes(k));
                pwrite_all(fd, p, plan.bytes(k), plan.offset(k), name);
            }
        } catch (...) {
            const std::lock_guard<std::mutex> guard(mutex);
            if (!error) error = std::current_exception();
        }
    };
    const uint64_t count = last - first;
    const auto n = static_cast<uint64_t>(std::clamp<int64_t>(threads, 1, static_cast<int64_t>(std::max<uint64_t>(count, 1))));
    std::vector<std::thread> pool;
    for (uint64_t t = 1; t < n; ++t) pool.emplace_back(work, first + count * t / n, first + count * (t + 1) / n);
    work(first, first + count / n);
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    return sums;
}

// Sums of the payload's segments from its bytes in file order, fed in any pieces.
class SegmentSums {
public:
    explicit SegmentSums(const CheckpointPlan& plan) : plan_(plan), left_(plan.bytes(0)) {}
    void add(const void* data, uint64_t bytes) {
        const auto* p = static_cast<const char*>(data);
        while (bytes > 0) {
            require(sums_.size() < plan_.segments, "checkpoint payload longer than its segments");
            const uint64_t take = std::min(bytes, left_);
            current_.add(p, take);
            p += take;
            bytes -= take;
            left_ -= take;
            if (left_ == 0 && sums_.size() < plan_.segments) {
                sums_.push_back(current_.value());
                current_ = Xxh3();
                if (sums_.size() < plan_.segments) left_ = plan_.bytes(sums_.size());
            }
        }
    }
    // Complete once every payload byte was fed.
    const std::vector<uint64_t>& sums() const { return sums_; }

private:
    CheckpointPlan plan_;
    uint64_t left_;
    Xxh3 current_;
    std::vector<uint64_t> sums_;
};

}  // namespace slm
