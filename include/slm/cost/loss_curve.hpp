#pragma once
// Loss per dollar: a preset's measured validation loss against tokens seen, fitted as
//
//     L(tokens) = E + A · tokens^(−alpha)        (E ≥ 0, A ≥ 0)
//
// and combined with a configuration's tokens per dollar to give the loss a budget buys and the
// budget a loss costs (the study's "loss per dollar"; definitions in docs/sources.md).
//
// The fit is least squares on the loss. For a fixed alpha the model is linear in E and A, so
// those come from a 2×2 solve (with the bounds enforced exactly); what is left is a 1-D search
// over alpha: a log-spaced grid finds the basin, then bisection on the derivative of the squared
// error pins the minimum down to rounding (a golden-section search on the error itself would
// stop near √ε, too coarse to recover a known alpha to 1e-6).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slm/core/error.hpp"

namespace slm::cost {

struct LossPoint {
    double tokens = 0;  // tokens seen when the loss was measured
    double loss = 0;    // validation loss (nats per token)
};

struct LossCurve {
    double E = 0;
    double A = 0;
    double alpha = 0;
    double rms_relative_error = 0;  // over the fitted points: √mean(((fit − loss) / loss)²)
    double min_tokens = 0;          // the measured token range the fit saw (tokens > 0)
    double max_tokens = 0;

    // +inf at 0 tokens when A > 0: the power law has no finite start.
    double loss_at(double tokens) const {
        require(tokens >= 0 && std::isfinite(tokens),
                "LossCurve::loss_at: tokens " + std::to_string(tokens) + " must be finite and >= 0");
        if (A == 0) return E;
        return E + A * std::pow(tokens, -alpha);
    }

    // The tokens at which the curve reaches `loss`; nullopt when it never does (loss ≤ E).
    std::optional<double> tokens_for(double loss) const {
        require(std::isfinite(loss), "LossCurve::tokens_for: the target loss is not finite");
        if (loss <= E) return std::nullopt;
        if (A == 0) return 0.0;  // flat at E: any higher loss holds from the start
        return std::pow(A / (loss - E), 1.0 / alpha);
    }

    // True outside the measured range (a 1e-9 relative margin absorbs rounding at its ends).
    bool extrapolated(double tokens) const {
        return tokens < min_tokens * (1 - 1e-9) || tokens > max_tokens * (1 + 1e-9);
    }
};

namespace detail {

// E and A minimising Σ (loss − E − A·x)² over E ≥ 0, A ≥ 0, with x = tokens^(−alpha). The
// problem is a convex quadratic in two variables: the unconstrained solution when it is
// feasible, otherwise the best of the solutions on the edges E = 0 and A = 0.
struct LinearFit {
    double E = 0, A = 0, sse = 0;
};

inline LinearFit fit_linear(std::span<const LossPoint> points, double alpha) {
    const double n = static_cast<double>(points.size());
    std::vector<double> x(points.size());
    double mx = 0, my = 0;
    for (size_t i = 0; i < points.size(); ++i) {
        x[i] = std::pow(points[i].tokens, -alpha);
        mx += x[i] / n;
        my += points[i].loss / n;
    }
    // Centred sums, from a second pass: x barely varies at small alpha, and the one-pass
    // Σx² − n·mean² would cancel away most of its digits.
    double vxx = 0, vxy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < points.size(); ++i) {
        vxx += (x[i] - mx) * (x[i] - mx);
        vxy += (x[i] - mx) * (points[i].loss - my);
        sxx += x[i] * x[i];
        sxy += x[i] * points[i].loss;
    }
    const auto sse = [&](double E, double A) {
        double s = 0;
        for (size_t i = 0; i < points.size(); ++i) {
            const double r = points[i].loss - E - A * x[i];
            s += r * r;
        }
        return s;
    };
    if (vxx > 0) {
        const double A = vxy / vxx, E = my - A * mx;
        if (A >= 0 && E >= 0) return {E, A, sse(E, A)};
    }
    const double A_only = sxx > 0 ? std::max(0.0, sxy / sxx) : 0.0;
    const LinearFit no_floor{0, A_only, sse(0, A_only)};  // on the edge E = 0
    const LinearFit flat{my, 0, sse(my, 0)};              // on the edge A = 0 (my > 0)
    return no_floor.sse <= flat.sse ? no_floor : flat;
}

// d(SSE)/d(alpha) at the best E, A for this alpha (envelope theorem: E and A are optimal, so
// only the explicit dependence through x counts). Zero at the best alpha.
inline double sse_slope(std::span<const LossPoint> points, double alpha) {
    const LinearFit f = fit_linear(points, alpha);
    double g = 0;
    for (const auto& p : points) {
        const double x = std::pow(p.tokens, -alpha);
        const double r = p.loss - f.E - f.A * x;
        g += 2 * r * f.A * std::log(p.tokens) * x;  // ∂r/∂alpha = A · ln(t) · x
    }
    return g;
}

inline void check_points(std::span<const LossPoint> points) {
    for (size_t i = 0; i < points.size(); ++i) {
        const auto& p = points[i];
        const std::string at = "point " + std::to_string(i) + " (tokens " +
                               std::to_string(p.tokens) + ", loss " + std::to_string(p.loss) + ")";
        require(std::isfinite(p.tokens) && p.tokens >= 0,
                "fit_loss_curve: " + at + ": tokens must be finite and >= 0");
        require(std::isfinite(p.loss) && p.loss > 0,
                "fit_loss_curve: " + at + ": the loss must be finite and > 0");
        require(i == 0 || p.tokens > points[i - 1].tokens,
                "fit_loss_curve: " + at + ": tokens must increase from point to point (the "
                "previous point has " + std::to_string(points[i - 1].tokens) + ")");
    }
}

}  // namespace detail

// Fits the curve to measured points in order of tokens. Points at 0 tokens (the loss before
// training) are checked but not fitted: the power law is infinite there.
inline LossCurve fit_loss_curve(std::span<const LossPoint> points) {
    detail::check_points(points);
    std::vector<LossPoint> fitted;
    for (const auto& p : points)
        if (p.tokens > 0) fitted.push_back(p);
    require(fitted.size() >= 3,
            "fit_loss_curve needs at least 3 points with tokens > 0 (it fits 3 numbers: E, A, "
            "alpha); got " + std::to_string(fitted.size()));

    // Exponents outside [1e-3, 8] are not loss curves: below, x is flat and E absorbs it;
    // above, the curve has finished falling before the second point.
    constexpr double lo = 1e-3, hi = 8.0;
    constexpr int grid = 400;
    std::vector<double> alphas(grid), errors(grid);
    int best = 0;
    for (int i = 0; i < grid; ++i) {
        alphas[i] = lo * std::pow(hi / lo, static_cast<double>(i) / (grid - 1));
        errors[i] = detail::fit_linear(fitted, alphas[i]).sse;
        if (errors[i] < errors[best]) best = i;
    }
    double alpha = alphas[best];
    if (best > 0 && best < grid - 1) {
        double a = alphas[best - 1], b = alphas[best + 1];
        double ga = detail::sse_slope(fitted, a), gb = detail::sse_slope(fitted, b);
        if (ga < 0 && gb > 0) {
            for (int it = 0; it < 200 && b - a > 4 * std::numeric_limits<double>::epsilon() * b;
                 ++it) {
                const double m = 0.5 * (a + b);
                const double gm = detail::sse_slope(fitted, m);
                if (gm == 0) {
                    a = b = m;
                    break;
                }
                (gm < 0 ? a : b) = m;
            }
            const double m = 0.5 * (a + b);
            // The slope can be unreliable where A reaches its bound; keep the grid's point then.
            if (detail::fit_linear(fitted, m).sse <= errors[best]) alpha = m;
        }
    }
    const detail::LinearFit f = detail::fit_linear(fitted, alpha);

    LossCurve curve;
    curve.E = f.E;
    curve.A = f.A;
    curve.alpha = alpha;
    curve.min_tokens = fitted.front().tokens;
    curve.max_tokens = fitted.back().tokens;
    double sum = 0;
    for (const auto& p : fitted) {
        const double rel = (curve.loss_at(p.tokens) - p.loss) / p.loss;
        sum += rel * rel;
    }
    curve.rms_relative_error = std::sqrt(sum / static_cast<double>(fitted.size()));
    return curve;
}

inline LossCurve fit_loss_curve(const std::vector<LossPoint>& points) {
    return fit_loss_curve(std::span<const LossPoint>(points));
}

// --- dollars ---------------------------------------------------------------------------------

// tokens/s × 3600 ÷ (GPUs × $/GPU-hour): the tokens one dollar of GPU time trains.
inline double tokens_per_dollar(double tokens_per_s, int gpus, double dollars_per_gpu_hour) {
    require(std::isfinite(tokens_per_s) && tokens_per_s > 0,
            "tokens_per_dollar: tokens/s " + std::to_string(tokens_per_s) + " must be > 0");
    require(gpus >= 1, "tokens_per_dollar: gpus " + std::to_string(gpus) + " must be >= 1");
    require(std::isfinite(dollars_per_gpu_hour) && dollars_per_gpu_hour > 0,
            "tokens_per_dollar: $/GPU-hour " + std::to_string(dollars_per_gpu_hour) +
                " must be > 0");
    return tokens_per_s * 3600.0 / (gpus * dollars_per_gpu_hour);
}

// One point of spend: dollars buy tokens, tokens reach a loss; `extrapolated` when the tokens
// lie outside the range the curve was measured on.
struct Spend {
    double dollars = 0;
    double tokens = 0;
    double loss = 0;
    bool extrapolated = false;
};

// The loss a budget reaches at this configuration's tokens per dollar.
inline Spend loss_for_budget(const LossCurve& curve, double tokens_per_dollar, double dollars) {
    require(std::isfinite(tokens_per_dollar) && tokens_per_dollar > 0,
            "loss_for_budget: tokens per dollar must be > 0");
    require(std::isfinite(dollars) && dollars > 0,
            "loss_for_budget: the budget $" + std::to_string(dollars) + " must be > 0");
    const double tokens = dollars * tokens_per_dollar;
    return {dollars, tokens, curve.loss_at(tokens), curve.extrapolated(tokens)};
}

// The budget that reaches `target_loss`; nullopt when the curve never gets there (loss ≤ E).
inline std::optional<Spend> budget_for_loss(const LossCurve& curve, double tokens_per_dollar,
                                            double target_loss) {
    require(std::isfinite(tokens_per_dollar) && tokens_per_dollar > 0,
            "budget_for_loss: tokens per dollar must be > 0");
    const auto tokens = curve.tokens_for(target_loss);
    if (!tokens) return std::nullopt;
    return Spend{*tokens / tokens_per_dollar, *tokens, target_loss, curve.extrapolated(*tokens)};
}

}  // namespace slm::cost
