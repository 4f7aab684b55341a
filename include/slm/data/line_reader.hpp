#pragma once
// The lines of a data file, plain or gzip-compressed, read a buffer at a time: a corpus file of
// many gigabytes costs one buffer and one line of memory, not the file. Corpora are commonly
// shipped as .jsonl.gz, so gzip is read directly (through zlib) rather than asking for a
// decompressed copy on disk. zlib is optional (CMake defines SLM_HAS_ZLIB when it is found);
// without it a gzip file is refused with its name and the fix, never read as bytes.
#if SLM_HAS_ZLIB
#include <zlib.h>
#endif

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::data {

#if SLM_HAS_ZLIB
inline constexpr bool have_zlib = true;
#else
inline constexpr bool have_zlib = false;
#endif

// Whether `path` is gzip-compressed: its name ends in .gz or it starts with the gzip magic
// bytes 1f 8b (a compressed file renamed without its suffix is still read correctly).
inline bool is_gzip(const std::filesystem::path& path) {
    if (path.extension() == ".gz") return true;
    std::ifstream in(path, std::ios::binary);
    unsigned char magic[2] = {};
    in.read(reinterpret_cast<char*>(magic), 2);
    return in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

class LineReader {
public:
    explicit LineReader(const std::filesystem::path& path) : path_(path), buffer_(buffer_bytes) {
        require(std::filesystem::is_regular_file(path),
                "cannot read data file '" + path.string() + "': it does not exist or is not a file");
        gzip_ = is_gzip(path);
        if (gzip_) {
#if SLM_HAS_ZLIB
            gz_ = ::gzopen(path.c_str(), "rb");
            require(gz_ != nullptr, "cannot open data file '" + path.string() + "': " + std::strerror(errno));
            ::gzbuffer(gz_, buffer_bytes);
#else
            fail("data file '" + path.string() + "' is gzip-compressed, but this build has no zlib: "
                 "install zlib1g-dev and rebuild, or decompress it (gunzip -k)");
#endif
        } else {
            plain_ = std::fopen(path.c_str(), "rb");
            require(plain_ != nullptr, "cannot open data file '" + path.string() + "': " + std::strerror(errno));
        }
    }
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;
    ~LineReader() {
        if (plain_ != nullptr) std::fclose(plain_);
#if SLM_HAS_ZLIB
        if (gz_ != nullptr) ::gzclose(gz_);
#endif
    }

    // The next line, without its '\n' (a '\r' before it is kept: callers that parse text
    // treat it as whitespace); false after the last line. A last line without '\n' counts.
    bool next(std::string& line) {
        line.clear();
        bool any = false;
        while (true) {
            if (begin_ == end_ && !refill()) {
                if (any) ++line_number_;
                return any;
            }
            any = true;
            const char* start = buffer_.data() + begin_;
            const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
            if (newline == nullptr) {
                line.append(start, end_ - begin_);
                begin_ = end_;
                continue;
            }
            line.append(start, static_cast<size_t>(newline - start));
            begin_ += static_cast<size_t>(newline - start) + 1;
            ++line_number_;
            return true;
        }
    }

    const std::filesystem::path& path() const { return path_; }
    bool gzip() const { return gzip_; }
    // The line next() returned last, counted from 1 (0 before the first).
    int64_t line_number() const { return line_number_; }
    // Bytes of the file read so far (compressed bytes for gzip), for progress against its size.
    uint64_t consumed() const { return consumed_; }

private:
    static constexpr size_t buffer_bytes = size_t{1} << 20;

    // Reads the next buffer; false at the end of the file. A read error or damaged gzip data
    // (a truncated download, say) throws, naming the file: a corpus is never cut short quietly.
    bool refill() {
        begin_ = end_ = 0;
        if (plain_ != nullptr) {
            end_ = std::fread(buffer_.data(), 1, buffer_.size(), plain_);
            require(!std::ferror(plain_), "reading data file '" + path_.string() + "' failed: " +
                                              std::strerror(errno));
            consumed_ += end_;
            return end_ > 0;
        }
#if SLM_HAS_ZLIB
        const int got = ::gzread(gz_, buffer_.data(), static_cast<unsigned>(buffer_.size()));
        int code = Z_OK;
        const char* message = ::gzerror(gz_, &code);
        // gzread returns what it has at a truncated end and only flags it (Z_BUF_ERROR), since
        // a file still being written ends the same way; for a finished corpus it is damage.
        if (got < 0 || (got == 0 && code != Z_OK))
            fail("data file '" + path_.string() + "' has damaged gzip data after " +
                 std::to_string(consumed_) + " compressed bytes: " +
                 (code == Z_BUF_ERROR ? std::string("it ends early (truncated?)") : std::string(message)));
        end_ = static_cast<size_t>(got);
        const auto offset = ::gzoffset(gz_);
        if (offset >= 0) consumed_ = static_cast<uint64_t>(offset);
        return end_ > 0;
#else
        return false;
#endif
    }

    std::filesystem::path path_;
    std::vector<char> buffer_;
    size_t begin_ = 0, end_ = 0;  // the unread bytes of buffer_
    std::FILE* plain_ = nullptr;
#if SLM_HAS_ZLIB
    gzFile gz_ = nullptr;
#endif
    bool gzip_ = false;
    int64_t line_number_ = 0;
    uint64_t consumed_ = 0;
};

}  // namespace slm::data
