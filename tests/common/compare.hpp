#pragma once
// The one tolerance helper of the test suite. Two tensors agree when their normwise relative
// error ||a − b|| / ||b|| is small: it is scale-free, and a few near-zero elements cannot make it
// blow up the way an elementwise ratio does. `floor` keeps an all-zero reference meaningful.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace slm::test {

template <class A, class B>
double relative_error(const A* a, const B* b, int64_t n, double floor = 1e-30) {
    double diff = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
        diff += (x - y) * (x - y);
        ref += y * y;
    }
    return std::sqrt(diff) / std::max(std::sqrt(ref), floor);
}

template <class A, class B>
double relative_error(const std::vector<A>& a, const std::vector<B>& b, double floor = 1e-30) {
    return relative_error(a.data(), b.data(), static_cast<int64_t>(std::min(a.size(), b.size())),
                          floor);
}

// Deterministic random fill in [-scale, scale), from the library's counter-based generator.
template <class T>
std::vector<T> random_vector(int64_t n, uint64_t seed, double scale = 1.0);

}  // namespace slm::test

#include "slm/core/random.hpp"

template <class T>
std::vector<T> slm::test::random_vector(int64_t n, uint64_t seed, double scale) {
    std::vector<T> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        v[static_cast<size_t>(i)] =
            static_cast<T>(scale * (2.0 * slm::uniform_open(seed, static_cast<uint64_t>(i)) - 1.0));
    return v;
}
