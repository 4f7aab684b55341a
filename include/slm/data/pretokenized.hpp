#pragma once
// Token files made by other pipelines, read for conversion into our shards (shard.hpp):
//
//   raw uint16  nanoGPT's train.bin / val.bin: little-endian uint16 tokens, no header, so the
//               vocabulary is not in the file and must be given.
//   llm.c       llm.c's shards (fineweb_train_000001.bin, ...): 256 little-endian int32 of
//               header, [0] magic 20240520, [1] version (1: uint16 tokens), [2] token count,
//               then the tokens as uint16. llm.c tokenizes with GPT-2's 50257-token vocabulary.
//
// Opening a file checks everything its size and header can say; reading checks each token
// against the vocabulary, naming the file, byte offset and token: a shard with an id the model
// has no row for would fail (or read out of bounds) only later, deep inside training. Files are
// read a chunk at a time, so a file larger than memory converts.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::data {

static_assert(std::endian::native == std::endian::little,
              "pretokenized files are little-endian and read as raw bytes");

inline constexpr int32_t llmc_magic = 20240520;
inline constexpr int32_t llmc_version_uint16 = 1;
inline constexpr size_t llmc_header_bytes = 256 * sizeof(int32_t);
inline constexpr int64_t gpt2_vocab = 50257;  // llm.c's tokenizer, the default for --llmc

// Where a file's uint16 tokens are: `count` of them from byte `offset`.
struct TokenFile {
    std::filesystem::path path;
    uint64_t offset = 0;
    uint64_t count = 0;
};

namespace detail {

inline uint64_t token_file_size(const std::filesystem::path& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    require(!ec, "cannot read token file '" + path.string() + "': " + ec.message());
    return size;
}

}  // namespace detail

// A nanoGPT-style file: every byte pair is a token.
inline TokenFile raw_uint16_file(const std::filesystem::path& path) {
    const uint64_t size = detail::token_file_size(path);
    require(size % 2 == 0, "raw uint16 token file '" + path.string() + "' has an odd size (" +
                               std::to_string(size) +
                               " bytes): it is truncated, or not 2-byte tokens");
    return {path, 0, size / 2};
}

// An llm.c shard: its header checked against itself and against the file's size.
inline TokenFile llmc_file(const std::filesystem::path& path) {
    const uint64_t size = detail::token_file_size(path);
    const std::string name = "llm.c token file '" + path.string() + "'";
    require(size >= llmc_header_bytes, name + " is " + std::to_string(size) +
                                           " bytes, shorter than its " +
                                           std::to_string(llmc_header_bytes) + "-byte header");
    int32_t header[256] = {};
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(header), sizeof(header));
    require(in.gcount() == static_cast<std::streamsize>(sizeof(header)), "cannot read the header of " + name);
    require(header[0] == llmc_magic, name + " has magic " + std::to_string(header[0]) + ", not " +
                                         std::to_string(llmc_magic) + " (not an llm.c shard)");
    require(header[1] == llmc_version_uint16,
            name + " has version " + std::to_string(header[1]) + "; only version 1 (uint16 tokens) is read" +
                (header[1] == 2 ? " (version 2 holds uint32 tokens, llm.c's LLaMA 3 format)" : ""));
    require(header[2] >= 0, name + " has a negative token count " + std::to_string(header[2]));
    const auto count = static_cast<uint64_t>(header[2]);
    require(size == llmc_header_bytes + 2 * count,
            name + " is " + std::to_string(size) + " bytes, but its header's " + std::to_string(count) +
                " tokens need " + std::to_string(llmc_header_bytes + 2 * count) + " (truncated or padded)");
    return {path, llmc_header_bytes, count};
}

// Calls add(const std::vector<int32_t>&) with the file's tokens in order, `chunk` at a time,
// each checked to be below `vocab`.
template <class Add>
void read_tokens(const TokenFile& file, int64_t vocab, Add&& add, size_t chunk = size_t{1} << 20) {
    require(vocab > 0, "read_tokens '" + file.path.string() + "': vocab must be positive");
    require(chunk > 0, "read_tokens: chunk must be positive");
    std::ifstream in(file.path, std::ios::binary);
    require(in.good(), "cannot open token file '" + file.path.string() + "'");
    in.seekg(static_cast<std::streamoff>(file.offset));
    std::vector<uint16_t> raw;
    std::vector<int32_t> tokens;
    for (uint64_t done = 0; done < file.count;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, file.count - done));
        raw.resize(n);
        in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(2 * n));
        require(in.gcount() == static_cast<std::streamsize>(2 * n),
                "token file '" + file.path.string() + "' ended early, at byte " +
                    std::to_string(file.offset + 2 * done + static_cast<uint64_t>(in.gcount())) +
                    " (it changed while being read?)");
        tokens.resize(n);
        for (size_t i = 0; i < n; ++i) {
            if (raw[i] >= vocab)
                fail("token file '" + file.path.string() + "' has token " + std::to_string(raw[i]) +
                     " at byte offset " + std::to_string(file.offset + 2 * (done + i)) +
                     " (token " + std::to_string(done + i) + "), not below the vocabulary " +
                     std::to_string(vocab) + " (--vocab)");
            tokens[i] = raw[i];
        }
        add(static_cast<const std::vector<int32_t>&>(tokens));
        done += n;
    }
}

}  // namespace slm::data
