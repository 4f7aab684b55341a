#pragma once
// Deterministic parallel sums on the CPU: the range is cut into a fixed number of blocks
// (independent of the thread count), blocks are summed in parallel and the partials in order.
// OpenMP's reduction clause combines partials in whatever order threads finish, which would make
// a resumed run differ from an uninterrupted one in the last bit.
#include <algorithm>
#include <array>
#include <cstdint>

namespace slm::cpu {

// Σ_{i < n} term(i), in double.
template <class Term>
double deterministic_sum(int64_t n, Term term) {
    constexpr int64_t blocks = 64;
    std::array<double, blocks> partial{};
    const int64_t per_block = (n + blocks - 1) / blocks;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
        double acc = 0;
        const int64_t end = std::min(n, (b + 1) * per_block);
        for (int64_t i = b * per_block; i < end; ++i) acc += term(i);
        partial[static_cast<size_t>(b)] = acc;
    }
    double total = 0;
    for (double p : partial) total += p;
    return total;
}

}  // namespace slm::cpu
