#pragma once
// Checksums that detect truncation and bit rot. Not cryptographic; nothing here defends against
// a deliberate forger.
//   Checksum  64-bit FNV-1a, a byte at a time (about 1 GB/s): token shards, version-1 checkpoints.
//   Xxh3      xxHash's XXH3-64, streaming, at memory speed: checkpoints from version 2 on, where
//             tens of GB are summed while training goes on.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace slm {

class Checksum {
public:
    void add(const void* data, size_t bytes) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (size_t i = 0; i < bytes; ++i) {
            state_ ^= p[i];
            state_ *= 0x100000001B3ull;
        }
    }
    uint64_t value() const { return state_; }

private:
    uint64_t state_ = 0xCBF29CE484222325ull;
};

class Xxh3 {
public:
    Xxh3() : state_(XXH3_createState(), &XXH3_freeState) {
        if (!state_ || XXH3_64bits_reset(state_.get()) != XXH_OK) throw std::bad_alloc();
    }
    void add(const void* data, size_t bytes) { XXH3_64bits_update(state_.get(), data, bytes); }
    uint64_t value() const { return XXH3_64bits_digest(state_.get()); }

private:
    std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state_;
};

inline uint64_t checksum(const void* data, size_t bytes) {
    Checksum c;
    c.add(data, bytes);
    return c.value();
}

}  // namespace slm
