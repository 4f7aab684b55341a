// JsonlTexts: each line's string field is one document, in order, empty lines skipped, plain or
// gzip; every kind of bad line stops the read with "FILE:LINE: reason".
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#if SLM_HAS_ZLIB
#include <zlib.h>
#endif

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/data/jsonl_text.hpp"

namespace fs = std::filesystem;

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> documents(const fs::path& path, const std::string& field = "text") {
    slm::data::JsonlTexts docs(path, field);
    std::vector<std::string> out;
    std::string text;
    while (docs.next(text)) out.push_back(text);
    return out;
}

// The message reading `lines` as a JSONL file throws ("" when it reads cleanly).
std::string error_for(const fs::path& dir, const std::string& name, const std::string& lines,
                      const std::string& field = "text") {
    write_file(dir / name, lines);
    return error_of([&] { documents(dir / name, field); });
}

// Documents with the things a JSON writer escapes: newlines, quotes, unicode, an empty text.
const std::string good_jsonl =
    "{\"text\": \"first document\\nwith two lines\\n\", \"id\": 1}\n"
    "\n"
    "   \t\r\n"
    "{\"id\": 2, \"text\": \"caf\\u00e9 \\\"quoted\\\" \xe2\x82\xac\", \"meta\": {\"text\": 5}}\r\n"
    "{\"text\": \"\"}\n"
    "{\"text\": \"last, no newline at the end\"}";
const std::vector<std::string> good_documents = {
    "first document\nwith two lines\n", "caf\xc3\xa9 \"quoted\" \xe2\x82\xac", "",
    "last, no newline at the end"};

}  // namespace

TEST_CASE("jsonl: each line's text field is one document, in order, empty lines skipped") {
    TempDir dir("jsonl");
    write_file(dir.path / "good.jsonl", good_jsonl);
    CHECK(documents(dir.path / "good.jsonl") == good_documents);

    // Another field by name; the line number is the document's line in the file.
    write_file(dir.path / "body.jsonl", "\n{\"body\": \"a\"}\n\n{\"body\": \"b\", \"text\": 3}\n");
    slm::data::JsonlTexts docs(dir.path / "body.jsonl", "body");
    std::string text;
    REQUIRE(docs.next(text));
    CHECK(text == "a");
    CHECK(docs.line_number() == 2);
    REQUIRE(docs.next(text));
    CHECK(text == "b");
    CHECK(docs.line_number() == 4);
    CHECK(!docs.next(text));
}

TEST_CASE("jsonl: a bad line is an error naming FILE:LINE and the reason") {
    TempDir dir("jsonl-bad");
    const std::string ok = "{\"text\": \"fine\"}\n";

    const std::string broken = error_for(dir.path, "broken.jsonl", ok + "\n" + "{\"text\": \"cut off\n" + ok);
    CHECK(contains(broken, (dir.path / "broken.jsonl").string() + ":3: not valid JSON"));
    CHECK(!contains(broken, "line 1"));  // nlohmann's own line count would contradict FILE:LINE

    const std::string trailing = error_for(dir.path, "trailing.jsonl", ok + "{\"text\": \"a\"} x\n");
    CHECK(contains(trailing, "trailing.jsonl:2: not valid JSON"));

    const std::string array = error_for(dir.path, "array.jsonl", ok + ok + "[\"text\", \"a\"]\n");
    CHECK(contains(array, "array.jsonl:3: the line is an array, not a JSON object"));
    const std::string scalar = error_for(dir.path, "string.jsonl", "\"just text\"\n");
    CHECK(contains(scalar, "string.jsonl:1: the line is a string, not a JSON object"));

    const std::string missing = error_for(dir.path, "missing.jsonl", ok + "{\"content\": \"a\", \"id\": 7}\n");
    CHECK(contains(missing, "missing.jsonl:2: no \"text\" field"));
    CHECK(contains(missing, "\"content\""));  // says what is there, to pick --field
    const std::string other = error_for(dir.path, "other.jsonl", ok, "body");
    CHECK(contains(other, "other.jsonl:1: no \"body\" field"));

    const std::string number = error_for(dir.path, "number.jsonl", ok + ok + ok + "{\"text\": 42}\n");
    CHECK(contains(number, "number.jsonl:4: field \"text\" is a number, not a string"));
    const std::string null = error_for(dir.path, "null.jsonl", "{\"text\": null}\n");
    CHECK(contains(null, "null.jsonl:1: field \"text\" is null, not a string"));
    const std::string object = error_for(dir.path, "object.jsonl", "{\"text\": {\"a\": \"b\"}}\n");
    CHECK(contains(object, "object.jsonl:1: field \"text\" is an object, not a string"));

    // Invalid UTF-8 inside a string is bad JSON too: it would only fail later, in the tokenizer.
    const std::string utf8 = error_for(dir.path, "utf8.jsonl", ok + "{\"text\": \"\xff\xfe\"}\n");
    CHECK(contains(utf8, "utf8.jsonl:2: not valid JSON"));

    CHECK(error_for(dir.path, "clean.jsonl", ok + "\n" + ok).empty());
}

TEST_CASE("jsonl: a gzip-compressed file gives the same documents (or, without zlib, a clear error)") {
    TempDir dir("jsonl-gz");
#if SLM_HAS_ZLIB
    gzFile gz = ::gzopen((dir.path / "good.jsonl.gz").c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(::gzwrite(gz, good_jsonl.data(), static_cast<unsigned>(good_jsonl.size())) ==
            static_cast<int>(good_jsonl.size()));
    REQUIRE(::gzclose(gz) == Z_OK);
    CHECK(documents(dir.path / "good.jsonl.gz") == good_documents);

    // Line numbers count decompressed lines.
    const std::string bad = "{\"text\": \"a\"}\n\n{\"text\": 1}\n";
    gz = ::gzopen((dir.path / "bad.jsonl.gz").c_str(), "wb");
    REQUIRE(gz != nullptr);
    ::gzwrite(gz, bad.data(), static_cast<unsigned>(bad.size()));
    ::gzclose(gz);
    CHECK(contains(error_of([&] { documents(dir.path / "bad.jsonl.gz"); }),
                   "bad.jsonl.gz:3: field \"text\" is a number"));
#else
    write_file(dir.path / "good.jsonl.gz", std::string("\x1f\x8b\x08\x00", 4) + "junk");
    const std::string refused = error_of([&] { documents(dir.path / "good.jsonl.gz"); });
    CHECK(contains(refused, "good.jsonl.gz"));
    CHECK(contains(refused, "no zlib"));
#endif
}
