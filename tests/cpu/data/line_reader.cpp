// LineReader: lines come back exactly, across its 1 MiB read buffer, from plain and gzip files
// alike (gzip found by name or by magic bytes); damaged gzip data and, in a build without zlib,
// any gzip file are errors that name the file.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#if SLM_HAS_ZLIB
#include <zlib.h>
#endif

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/data/line_reader.hpp"

namespace fs = std::filesystem;

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

// ~3 MB of lines from 0 to 5000 bytes long (some empty, some with '\r'), so lines straddle the
// reader's buffer boundaries, and one of 2.5 MB that spans three buffers; the last has no '\n'.
std::vector<std::string> awkward_lines() {
    std::vector<std::string> lines;
    size_t total = 0;
    for (uint64_t k = 0; total < 3'000'000; ++k) {
        std::string line(static_cast<size_t>((k * 7919) % 5001), static_cast<char>('a' + k % 26));
        if (k % 11 == 0) line.clear();
        if (k % 13 == 0) line += '\r';
        total += line.size() + 1;
        lines.push_back(std::move(line));
        if (k == 100) lines.push_back(std::string(2'500'000, 'L'));
    }
    return lines;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (size_t i = 0; i < lines.size(); ++i) text += lines[i] + (i + 1 < lines.size() ? "\n" : "");
    return text;
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> read_all(const fs::path& path) {
    slm::data::LineReader reader(path);
    std::vector<std::string> lines;
    std::string line;
    while (reader.next(line)) {
        lines.push_back(line);
        REQUIRE(reader.line_number() == static_cast<int64_t>(lines.size()));
    }
    CHECK(reader.consumed() == fs::file_size(path));
    return lines;
}

#if SLM_HAS_ZLIB
void write_gzip(const fs::path& path, const std::string& text) {
    gzFile gz = ::gzopen(path.c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(::gzwrite(gz, text.data(), static_cast<unsigned>(text.size())) == static_cast<int>(text.size()));
    REQUIRE(::gzclose(gz) == Z_OK);
}
#endif

}  // namespace

TEST_CASE("line reader: every line of a plain file back exactly, across buffer boundaries") {
    TempDir dir("line-reader");
    const auto lines = awkward_lines();
    write_file(dir.path / "a.txt", joined(lines));
    CHECK(!slm::data::LineReader(dir.path / "a.txt").gzip());
    CHECK(read_all(dir.path / "a.txt") == lines);

    // A final '\n' ends the last line; it does not start an empty one.
    write_file(dir.path / "b.txt", "one\ntwo\n");
    CHECK(read_all(dir.path / "b.txt") == std::vector<std::string>{"one", "two"});
    write_file(dir.path / "empty.txt", "");
    CHECK(read_all(dir.path / "empty.txt").empty());
    write_file(dir.path / "blank.txt", "\n");
    CHECK(read_all(dir.path / "blank.txt") == std::vector<std::string>{""});

    const std::string missing = error_of([&] { slm::data::LineReader r(dir.path / "missing.txt"); });
    CHECK(contains(missing, "missing.txt"));
    CHECK(contains(missing, "does not exist"));
}

TEST_CASE("line reader: gzip files read like the plain text, found by name or by magic bytes") {
    TempDir dir("line-reader-gz");
    const auto lines = awkward_lines();
#if SLM_HAS_ZLIB
    write_gzip(dir.path / "a.txt.gz", joined(lines));
    CHECK(slm::data::LineReader(dir.path / "a.txt.gz").gzip());
    CHECK(fs::file_size(dir.path / "a.txt.gz") < 1'000'000);  // compressed: several buffers of text per read
    CHECK(read_all(dir.path / "a.txt.gz") == lines);

    // The same bytes without the suffix: the magic bytes say gzip.
    fs::copy_file(dir.path / "a.txt.gz", dir.path / "renamed.txt");
    CHECK(slm::data::is_gzip(dir.path / "renamed.txt"));
    CHECK(read_all(dir.path / "renamed.txt") == lines);

    // A truncated download is an error naming the file, not a shorter corpus.
    std::ifstream in(dir.path / "a.txt.gz", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_file(dir.path / "cut.txt.gz", bytes.substr(0, bytes.size() / 2));
    const std::string cut = error_of([&] { read_all(dir.path / "cut.txt.gz"); });
    CHECK(contains(cut, "cut.txt.gz"));
    CHECK(contains(cut, "ends early"));
#else
    // Without zlib a gzip file is refused with its name, never read as bytes.
    write_file(dir.path / "a.txt.gz", std::string("\x1f\x8b\x08\x00", 4) + "junk");
    const std::string refused = error_of([&] { slm::data::LineReader r(dir.path / "a.txt.gz"); });
    CHECK(contains(refused, "a.txt.gz"));
    CHECK(contains(refused, "no zlib"));
#endif
}
