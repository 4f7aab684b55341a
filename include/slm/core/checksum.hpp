#pragma once
// 64-bit FNV-1a over bytes: detects truncation and bit rot in token shards and checkpoints.
// Not cryptographic; nothing here defends against a deliberate forger.
#include <cstddef>
#include <cstdint>

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

inline uint64_t checksum(const void* data, size_t bytes) {
    Checksum c;
    c.add(data, bytes);
    return c.value();
}

}  // namespace slm
