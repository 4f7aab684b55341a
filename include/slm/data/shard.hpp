#pragma once
// The token shard: a fixed 40-byte little-endian header, then the tokens packed 2 or 4 bytes
// each. Written atomically (never seen half-written) and validated completely on open, so a
// truncated copy or a flipped bit stops the run with the file's name instead of training on
// garbage.
//
//   offset  size  field
//        0     8  magic "SLMTOKS\0"
//        8     4  version (u32, = 1)
//       12     4  token width in bytes (u32: 2 when vocab ≤ 65536, else 4)
//       16     8  vocab size (u64)
//       24     8  token count (u64)
//       32     8  slm::checksum of the token bytes (u64)
//       40     …  tokens
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "slm/core/checksum.hpp"
#include "slm/core/error.hpp"
#include "slm/core/file_io.hpp"

namespace slm::data {

// The header is written and mapped as raw bytes; a big-endian host would need byte swaps.
static_assert(std::endian::native == std::endian::little, "token shards assume a little-endian host");

inline constexpr char shard_magic[8] = {'S', 'L', 'M', 'T', 'O', 'K', 'S', '\0'};
inline constexpr uint32_t shard_version = 1;
inline constexpr size_t shard_header_bytes = 40;

// Two bytes per token halve the disk and page-cache footprint for every vocab up to 65536.
inline constexpr uint32_t shard_token_width(int64_t vocab) { return vocab <= 65536 ? 2u : 4u; }

namespace detail {

// Packs tokens [begin, begin + n) at `width` bytes each into `out`.
inline void pack_tokens(const int32_t* tokens, size_t n, uint32_t width, std::vector<char>& out) {
    out.resize(n * width);
    for (size_t i = 0; i < n; ++i) {
        if (width == 2) {
            const auto v = static_cast<uint16_t>(tokens[i]);
            std::memcpy(out.data() + 2 * i, &v, 2);
        } else {
            const auto v = static_cast<uint32_t>(tokens[i]);
            std::memcpy(out.data() + 4 * i, &v, 4);
        }
    }
}

template <class T>
void put(char* header, size_t offset, T value) {
    std::memcpy(header + offset, &value, sizeof(T));
}

template <class T>
T get(const unsigned char* header, size_t offset) {
    T value;
    std::memcpy(&value, header + offset, sizeof(T));
    return value;
}

}  // namespace detail

inline void write_shard(const std::filesystem::path& path, const std::vector<int32_t>& tokens,
                        int64_t vocab) {
    require(vocab > 0 && vocab <= (int64_t{1} << 31),
            "write_shard '" + path.string() + "': vocab " + std::to_string(vocab) +
                " must be in [1, 2^31]");
    for (size_t i = 0; i < tokens.size(); ++i)
        require(tokens[i] >= 0 && tokens[i] < vocab,
                "write_shard '" + path.string() + "': token " + std::to_string(tokens[i]) +
                    " at index " + std::to_string(i) + " is outside the vocabulary [0, " +
                    std::to_string(vocab) + "): the tokenizer and --vocab disagree");
    const uint32_t width = shard_token_width(vocab);

    // Two passes over fixed-size chunks: the checksum goes in the header, before the tokens,
    // and packing the whole shard at once would double its memory.
    constexpr size_t chunk = size_t{1} << 20;
    std::vector<char> packed;
    Checksum sum;
    for (size_t at = 0; at < tokens.size(); at += chunk) {
        detail::pack_tokens(tokens.data() + at, std::min(chunk, tokens.size() - at), width, packed);
        sum.add(packed.data(), packed.size());
    }
    char header[shard_header_bytes] = {};
    std::memcpy(header, shard_magic, sizeof(shard_magic));
    detail::put<uint32_t>(header, 8, shard_version);
    detail::put<uint32_t>(header, 12, width);
    detail::put<uint64_t>(header, 16, static_cast<uint64_t>(vocab));
    detail::put<uint64_t>(header, 24, tokens.size());
    detail::put<uint64_t>(header, 32, sum.value());

    AtomicFile file(path);
    file.write(header, sizeof(header));
    for (size_t at = 0; at < tokens.size(); at += chunk) {
        detail::pack_tokens(tokens.data() + at, std::min(chunk, tokens.size() - at), width, packed);
        file.write(packed.data(), packed.size());
    }
    file.commit();
}

// A read-only memory map of one shard. Opening it checks the header, the size, the checksum
// and every token against the vocab; after that, access cannot meet a bad byte.
class ShardReader {
public:
    explicit ShardReader(const std::filesystem::path& path);
    ShardReader(ShardReader&& other) noexcept { *this = std::move(other); }
    ShardReader& operator=(ShardReader&& other) noexcept {
        std::swap(path_, other.path_);
        std::swap(map_, other.map_);
        std::swap(map_bytes_, other.map_bytes_);
        std::swap(tokens_, other.tokens_);
        std::swap(width_, other.width_);
        std::swap(vocab_, other.vocab_);
        std::swap(size_, other.size_);
        return *this;
    }
    ShardReader(const ShardReader&) = delete;
    ShardReader& operator=(const ShardReader&) = delete;
    ~ShardReader() {
        if (map_ != nullptr) ::munmap(map_, map_bytes_);
    }

    const std::filesystem::path& path() const { return path_; }
    int64_t size() const { return size_; }
    int64_t vocab() const { return vocab_; }
    int width() const { return static_cast<int>(width_); }

    int32_t operator[](int64_t i) const {
        require(i >= 0 && i < size_, "token index " + std::to_string(i) + " is outside shard '" +
                                         path_.string() + "' of " + std::to_string(size_) + " tokens");
        return unchecked(i);
    }

    // Copies tokens [begin, begin + count) into out.
    void copy(int64_t begin, int64_t count, int32_t* out) const {
        require(begin >= 0 && count >= 0 && begin + count <= size_,
                "token range [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                    ") is outside shard '" + path_.string() + "' of " + std::to_string(size_) +
                    " tokens");
        for (int64_t i = 0; i < count; ++i) out[i] = unchecked(begin + i);
    }

private:
    int32_t unchecked(int64_t i) const {
        if (width_ == 2) return detail::get<uint16_t>(tokens_, static_cast<size_t>(i) * 2);
        return static_cast<int32_t>(detail::get<uint32_t>(tokens_, static_cast<size_t>(i) * 4));
    }

    [[noreturn]] void corrupt(const std::string& what) const {
        fail("token shard '" + path_.string() + "' " + what +
             ": re-run prepare_data to rebuild it");
    }

    std::filesystem::path path_;
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    const unsigned char* tokens_ = nullptr;
    uint32_t width_ = 2;
    int64_t vocab_ = 0;
    int64_t size_ = 0;
};

inline ShardReader::ShardReader(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open token shard '" + path.string() + "': " + std::strerror(errno) +
             " (check the path, or run prepare_data to make it)");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        fail("cannot stat token shard '" + path.string() + "': " + std::strerror(e));
    }
    map_bytes_ = static_cast<size_t>(st.st_size);
    if (map_bytes_ < shard_header_bytes) {
        ::close(fd);
        corrupt("is too short (" + std::to_string(map_bytes_) + " bytes; the header alone is " +
                std::to_string(shard_header_bytes) + ")");
    }
    void* map = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (map == MAP_FAILED)
        fail("cannot memory-map token shard '" + path.string() + "': " + std::strerror(map_errno));
    map_ = map;

    // From here on a failure must unmap: the destructor does not run for a throwing constructor.
    try {
        const auto* bytes = static_cast<const unsigned char*>(map_);
        if (std::memcmp(bytes, shard_magic, sizeof(shard_magic)) != 0)
            corrupt("has a bad magic number (not an SLMTOKS token shard)");
        const auto version = detail::get<uint32_t>(bytes, 8);
        if (version != shard_version)
            corrupt("has unsupported version " + std::to_string(version) + " (this build reads " +
                    std::to_string(shard_version) + ")");
        width_ = detail::get<uint32_t>(bytes, 12);
        if (width_ != 2 && width_ != 4)
            corrupt("has token width " + std::to_string(width_) + " bytes (must be 2 or 4)");
        const auto vocab = detail::get<uint64_t>(bytes, 16);
        if (vocab == 0 || vocab > (uint64_t{1} << 31) || (width_ == 2 && vocab > 65536))
            corrupt("has vocab " + std::to_string(vocab) + ", impossible for " +
                    std::to_string(width_) + "-byte tokens");
        vocab_ = static_cast<int64_t>(vocab);
        const auto count = detail::get<uint64_t>(bytes, 24);
        const uint64_t payload = map_bytes_ - shard_header_bytes;
        if (count > payload / width_ || count * width_ != payload)
            corrupt("holds " + std::to_string(payload) + " token bytes but its header says " +
                    std::to_string(count) + " tokens of " + std::to_string(width_) +
                    " bytes (truncated or padded)");
        size_ = static_cast<int64_t>(count);
        tokens_ = bytes + shard_header_bytes;
        if (checksum(tokens_, payload) != detail::get<uint64_t>(bytes, 32))
            corrupt("fails its checksum (the token bytes changed after writing)");
        for (int64_t i = 0; i < size_; ++i) {
            const auto t = static_cast<uint32_t>(unchecked(i));
            if (t >= vocab)
                corrupt("has token " + std::to_string(t) + " at index " + std::to_string(i) +
                        ", outside its vocab " + std::to_string(vocab));
        }
    } catch (...) {
        ::munmap(map_, map_bytes_);
        map_ = nullptr;
        throw;
    }
}

}  // namespace slm::data
