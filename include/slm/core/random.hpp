#pragma once
// Counter-based random numbers: element i of a tensor gets a value that depends only on
// (seed, i), so every backend, thread count and shard initialises the same weights.
#include <cmath>
#include <cstdint>
#include <numbers>

namespace slm {

constexpr uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Uniform in (0, 1): 53 random bits, never exactly 0 (so log() is safe).
constexpr double uniform_open(uint64_t seed, uint64_t index) {
    const uint64_t bits = splitmix64(seed ^ splitmix64(index)) >> 11;
    return (static_cast<double>(bits) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box–Muller over two independent counters.
inline double normal(uint64_t seed, uint64_t index) {
    const double u1 = uniform_open(seed, 2 * index);
    const double u2 = uniform_open(seed, 2 * index + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace slm
