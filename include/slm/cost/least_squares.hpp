#pragma once
// Ordinary least squares for the handful of coefficients the throughput model fits. A column
// that the data cannot determine (every point shares one hidden size, say) gets coefficient 0
// instead of a wild value: the fit falls back to the columns the points do vary in.
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::cost {

// Solves the K×K system a·x = b by Gaussian elimination with partial pivoting; false when singular.
template <size_t K>
bool solve_linear(std::array<std::array<double, K>, K> a, std::array<double, K> b,
                  std::array<double, K>& x) {
    for (size_t col = 0; col < K; ++col) {
        size_t pivot = col;
        for (size_t r = col + 1; r < K; ++r)
            if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
        if (std::abs(a[pivot][col]) < 1e-12) return false;
        std::swap(a[pivot], a[col]);
        std::swap(b[pivot], b[col]);
        for (size_t r = col + 1; r < K; ++r) {
            const double f = a[r][col] / a[col][col];
            for (size_t c = col; c < K; ++c) a[r][c] -= f * a[col][c];
            b[r] -= f * b[col];
        }
    }
    for (size_t i = K; i-- > 0;) {
        double s = b[i];
        for (size_t c = i + 1; c < K; ++c) s -= a[i][c] * x[c];
        x[i] = s / a[i][i];
    }
    return true;
}

// Coefficients c minimising Σ (rows[i]·c − y[i])². Column 0 is the constant; columns whose values
// do not vary across the points are left at 0.
template <size_t K>
std::array<double, K> fit_linear(const std::vector<std::array<double, K>>& rows,
                                 const std::vector<double>& y) {
    require(!rows.empty() && rows.size() == y.size(), "least squares needs one value per row");
    std::array<bool, K> used{};
    used[0] = true;
    for (size_t c = 1; c < K; ++c)
        for (const auto& r : rows)
            if (std::abs(r[c] - rows[0][c]) > 1e-9 * (1 + std::abs(rows[0][c]))) used[c] = true;
    // Normal equations over the used columns; unused ones get an identity row and solve to 0.
    std::array<std::array<double, K>, K> a{};
    std::array<double, K> b{};
    for (size_t i = 0; i < K; ++i)
        if (!used[i]) a[i][i] = 1;
    for (size_t n = 0; n < rows.size(); ++n)
        for (size_t i = 0; i < K; ++i) {
            if (!used[i]) continue;
            b[i] += rows[n][i] * y[n];
            for (size_t j = 0; j < K; ++j)
                if (used[j]) a[i][j] += rows[n][i] * rows[n][j];
        }
    std::array<double, K> x{};
    if (solve_linear(a, b, x)) return x;
    // Collinear columns despite varying: keep the constant only (the mean).
    double mean = 0;
    for (double v : y) mean += v;
    x = {};
    x[0] = mean / static_cast<double>(y.size());
    return x;
}

}  // namespace slm::cost
