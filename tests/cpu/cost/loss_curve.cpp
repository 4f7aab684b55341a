// The loss-curve fit and the loss-per-dollar helpers: known parameters come back from exact
// points, a noisy fit is a least-squares optimum with a sensible error, the inverse round-trips,
// and bad input names what is wrong.
#include <doctest/doctest.h>

#include "common/error_text.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

#include "slm/cost/loss_curve.hpp"

namespace {

using slm::cost::LossPoint;
using slm::test::contains;
using slm::test::error_of;

// `count` evaluations every `step` tokens, plus the untrained loss at 0 tokens, which the fit
// must skip.
std::vector<LossPoint> curve_points(double E, double A, double alpha, double step, int count) {
    std::vector<LossPoint> points{{0, 10.4}};
    for (int k = 1; k <= count; ++k) {
        const double t = step * k;
        points.push_back({t, E + A * std::pow(t, -alpha)});
    }
    return points;
}

double relative(double got, double want) { return std::abs(got - want) / std::abs(want); }

double sum_of_squares(const std::vector<LossPoint>& points, double E, double A, double alpha) {
    double s = 0;
    for (const auto& p : points)
        if (p.tokens > 0) s += std::pow(p.loss - E - A * std::pow(p.tokens, -alpha), 2);
    return s;
}

}  // namespace

TEST_CASE("fit_loss_curve recovers E, A and alpha from exact points") {
    struct Truth {
        double E, A, alpha, step;
        int count;
    };
    // The format page's example, a slow and a steep curve, and one with no floor (E = 0).
    const Truth cases[] = {{3.1, 410.0, 0.31, 655360, 16},
                           {2.0, 50.0, 0.2, 1e6, 8},
                           {1.7, 3e4, 0.75, 2e5, 24},
                           {0.0, 80.0, 0.25, 5e5, 10}};
    for (const auto& t : cases) {
        CAPTURE(t.E);
        CAPTURE(t.alpha);
        const auto points = curve_points(t.E, t.A, t.alpha, t.step, t.count);
        const auto fit = slm::cost::fit_loss_curve(points);
        std::printf("exact fit: E %.9g (want %g), A %.9g (want %g), alpha %.9g (want %g): "
                    "relative errors A %.1e, alpha %.1e; rms relative error %.1e\n",
                    fit.E, t.E, fit.A, t.A, fit.alpha, t.alpha, relative(fit.A, t.A),
                    relative(fit.alpha, t.alpha), fit.rms_relative_error);
        CHECK(std::abs(fit.E - t.E) <= 1e-6 * std::max(1.0, t.E));
        CHECK(relative(fit.A, t.A) <= 1e-6);
        CHECK(relative(fit.alpha, t.alpha) <= 1e-6);
        CHECK(fit.rms_relative_error <= 1e-9);
        CHECK(fit.min_tokens == t.step);  // the 0-token point is not part of the fitted range
        CHECK(fit.max_tokens == t.step * t.count);
    }
}

TEST_CASE("a noisy fit is the least-squares optimum and reports its error") {
    const double E = 3.1, A = 410.0, alpha = 0.31;
    auto points = curve_points(E, A, alpha, 655360, 32);
    // ±1.5% deterministic noise that does not correlate with the curve's shape.
    for (size_t i = 1; i < points.size(); ++i)
        points[i].loss *= 1 + 0.015 * std::sin(12.9898 * static_cast<double>(i) * 78.233);
    const auto fit = slm::cost::fit_loss_curve(points);
    std::printf("noisy fit: E %.4f A %.2f alpha %.4f, rms relative error %.4f\n", fit.E, fit.A,
                fit.alpha, fit.rms_relative_error);
    CHECK(fit.rms_relative_error > 0.002);  // the noise is seen, not fitted away...
    CHECK(fit.rms_relative_error < 0.015);  // ...and no larger than it
    // No (E, A, alpha), the true ones included, has a smaller sum of squares.
    const double best = sum_of_squares(points, fit.E, fit.A, fit.alpha);
    CHECK(best <= sum_of_squares(points, E, A, alpha));
    for (double d : {-1e-3, 1e-3})
        CHECK(best <= sum_of_squares(points, fit.E, fit.A, fit.alpha * (1 + d)));
    // Within the measured range the fit tracks the true curve.
    for (double t : {1e6, 5e6, 2e7})
        CHECK(relative(fit.loss_at(t), E + A * std::pow(t, -alpha)) < 0.02);
}

TEST_CASE("the bounds hold: a rising curve fits flat, never with a negative A") {
    const std::vector<LossPoint> rising{{1e5, 4.0}, {2e5, 4.1}, {4e5, 4.2}, {8e5, 4.3}};
    const auto fit = slm::cost::fit_loss_curve(rising);
    CHECK(fit.A == 0);
    CHECK(fit.E == doctest::Approx(4.15));
    CHECK(fit.loss_at(1e9) == doctest::Approx(4.15));
    CHECK(fit.tokens_for(4.2) == 0.0);  // flat at E: a higher loss holds from the start
    CHECK_FALSE(fit.tokens_for(4.1).has_value());
}

TEST_CASE("tokens_for inverts loss_at, and at or below E the loss is out of reach") {
    const auto fit = slm::cost::fit_loss_curve(curve_points(3.1, 410.0, 0.31, 655360, 16));
    for (double t : {1e3, 655360.0, 3e6, 1e7, 1e12}) {
        const auto back = fit.tokens_for(fit.loss_at(t));
        REQUIRE(back.has_value());
        CHECK(relative(*back, t) < 1e-9);
    }
    CHECK_FALSE(fit.tokens_for(fit.E).has_value());
    CHECK_FALSE(fit.tokens_for(fit.E - 0.5).has_value());
    CHECK(std::isinf(fit.loss_at(0)));
    CHECK_FALSE(fit.extrapolated(655360));
    CHECK_FALSE(fit.extrapolated(16 * 655360));
    CHECK(fit.extrapolated(655359));
    CHECK(fit.extrapolated(16 * 655360 + 1000));
}

TEST_CASE("loss per dollar: tokens per dollar, the loss a budget buys, the budget a loss costs") {
    // docs/sources.md: tokens/s × 3600 ÷ (GPUs × $/GPU-hour); the format page's H100 example.
    CHECK(slm::cost::tokens_per_dollar(422773, 1, 7.39) == doctest::Approx(205'950'000).epsilon(1e-4));
    CHECK(slm::cost::tokens_per_dollar(800000, 8, 2.0) == doctest::Approx(180'000'000));

    const auto fit = slm::cost::fit_loss_curve(curve_points(3.1, 410.0, 0.31, 655360, 16));
    const double per_dollar = 2e6;  // tokens per dollar
    const auto spend = slm::cost::loss_for_budget(fit, per_dollar, 2.5);
    CHECK(spend.tokens == doctest::Approx(5e6));
    CHECK(spend.loss == doctest::Approx(3.1 + 410.0 * std::pow(5e6, -0.31)).epsilon(1e-9));
    CHECK_FALSE(spend.extrapolated);
    CHECK(slm::cost::loss_for_budget(fit, per_dollar, 100).extrapolated);  // 2e8 tokens

    const auto back = slm::cost::budget_for_loss(fit, per_dollar, spend.loss);
    REQUIRE(back.has_value());
    CHECK(back->dollars == doctest::Approx(2.5).epsilon(1e-9));
    CHECK(back->tokens == doctest::Approx(5e6).epsilon(1e-9));
    CHECK_FALSE(back->extrapolated);
    CHECK_FALSE(slm::cost::budget_for_loss(fit, per_dollar, 3.0).has_value());  // below E = 3.1
}

TEST_CASE("bad input raises slm::Error naming the problem") {
    using P = std::vector<LossPoint>;
    const auto fit = [](const P& p) { return error_of([&] { slm::cost::fit_loss_curve(p); }); };

    CHECK(contains(fit(P{{0, 10}, {1e5, 6}, {2e5, 5}}), "at least 3 points with tokens > 0"));
    CHECK(contains(fit(P{{0, 10}, {1e5, 6}, {2e5, 5}}), "got 2"));
    CHECK(contains(fit(P{}), "got 0"));
    const std::string zero = fit(P{{1e5, 6}, {2e5, 0}, {3e5, 4}});
    CHECK(contains(zero, "point 1"));
    CHECK(contains(zero, "loss must be finite and > 0"));
    CHECK(contains(fit(P{{1e5, -6}, {2e5, 5}, {3e5, 4}}), "loss must be finite and > 0"));
    CHECK(contains(fit(P{{1e5, NAN}, {2e5, 5}, {3e5, 4}}), "loss must be finite and > 0"));
    const std::string order = fit(P{{1e5, 6}, {3e5, 5}, {2e5, 4}, {4e5, 3.9}});
    CHECK(contains(order, "point 2"));
    CHECK(contains(order, "tokens must increase"));
    CHECK(contains(fit(P{{1e5, 6}, {1e5, 5}, {2e5, 4}}), "tokens must increase"));
    CHECK(contains(fit(P{{-1, 6}, {1e5, 5}, {2e5, 4}}), "tokens must be finite and >= 0"));

    CHECK(contains(error_of([] { slm::cost::tokens_per_dollar(0, 1, 7.39); }), "must be > 0"));
    CHECK(contains(error_of([] { slm::cost::tokens_per_dollar(1e5, 0, 7.39); }), "gpus 0"));
    CHECK(contains(error_of([] { slm::cost::tokens_per_dollar(1e5, 1, -1); }), "$/GPU-hour"));
    const auto curve = slm::cost::fit_loss_curve(curve_points(3.1, 410.0, 0.31, 655360, 4));
    CHECK(contains(error_of([&] { slm::cost::loss_for_budget(curve, 1e6, 0); }), "budget"));
    CHECK(contains(error_of([&] { curve.loss_at(-5); }), "must be finite and >= 0"));
}
