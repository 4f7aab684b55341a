// Delayed scaling (precision/delayed_scaling.hpp): the rule by hand over a window that wraps and
// a NaN, and the CPU FP8 linear layer following it — a tensor that grew past its history's amax
// saturates, and exactly its values beyond the format's range are counted as overflows.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/compare.hpp"
#include "slm/core/random.hpp"
#include "slm/cpu/fp8_linear.hpp"
#include "slm/precision/delayed_scaling.hpp"

using slm::precision::AmaxHistory;
using slm::precision::Fp8Format;
using slm::precision::scale_for;

namespace {
float delayed(float amax, Fp8Format f) { return scale_for(amax, f, slm::precision::delayed_scaling_margin); }
}  // namespace

TEST_CASE("delayed scaling: the first call scales by its own amax, later ones by the window's largest") {
    constexpr int length = slm::precision::amax_history_length;
    static_assert(length == 16, "the hand-computed steps below assume a window of 16");
    AmaxHistory h;
    const auto f = Fp8Format::e4m3;
    CHECK(h.next_scale(2.0f, f) == scale_for(2.0f, f));  // call 0: its own (current scaling)
    CHECK(h.next_scale(8.0f, f) == delayed(2.0f, f));    // call 1: the history {2}, with the margin
    CHECK(delayed(2.0f, f) == scale_for(2.0f, f) / 4);   // the margin, 2: a quarter of the scale
    CHECK(h.next_scale(1.0f, f) == delayed(8.0f, f));    // call 2: {2, 8}
    for (int c = 3; c < length; ++c) CHECK(h.next_scale(1.0f, f) == delayed(8.0f, f));
    // Call 16: the window is calls 0..15 (8 still in it); it overwrites call 0's slot.
    CHECK(h.next_scale(1.0f, f) == delayed(8.0f, f));
    CHECK(h.next_scale(1.0f, f) == delayed(8.0f, f));  // call 17: calls 1..16, 8 is call 1
    CHECK(h.next_scale(1.0f, f) == delayed(1.0f, f));  // call 18: calls 2..17, 8 has left
    CHECK(h.calls == 19);

    // A NaN in the window gives scale 1 (as scale_for(NaN)) until it leaves the window.
    AmaxHistory n;
    n.next_scale(1.0f, f);
    n.next_scale(std::numeric_limits<float>::quiet_NaN(), f);  // call 1: the NaN is recorded
    for (int c = 2; c <= length + 1; ++c) CHECK(n.next_scale(1.0f, f) == 1.0f);  // calls 2..17 hold it
    CHECK(n.next_scale(1.0f, f) == delayed(1.0f, f));  // call 18: calls 2..17, without it
}

TEST_CASE("delayed scaling, CPU linear: a tensor grown past its history saturates, and each such value is counted") {
    using Cpu = slm::cpu::Backend<float>;
    Cpu backend;
    slm::precision::LinearKernel<slm::precision::Fp8, Cpu> kernel(backend, 1);
    const slm::precision::LinearSite site{0, slm::precision::Projection::o};
    const int64_t n = 32, in = 64, out = 48;
    std::vector<float> x(static_cast<size_t>(n * in)), w(static_cast<size_t>(out * in));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(slm::normal(5, i));
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.02f * static_cast<float>(slm::normal(6, i));
    std::vector<float> y(static_cast<size_t>(n * out)), y_big(y.size());
    const auto report = [&] { return kernel.cast_report()[static_cast<size_t>(site.index())]; };
    kernel.forward(backend, site, x.data(), w.data(), y.data(), n, in, out);
    CHECK(report().x.overflow == 0);

    // 8x: cast with the scale of x's amax (margin 2: a quarter of 448 / amax), so |8·x·scale|
    // passes E4M3's 448 wherever |x| is above half its amax.
    std::vector<float> big(x.size());
    for (size_t i = 0; i < x.size(); ++i) big[i] = 8.0f * x[i];
    kernel.forward(backend, site, big.data(), w.data(), y_big.data(), n, in, out);
    const float scale = delayed(slm::precision::amax(x), Fp8Format::e4m3);
    int64_t beyond = 0;
    for (float v : big) beyond += std::fabs(v * scale) > slm::precision::fp8_max_finite(Fp8Format::e4m3);
    CHECK(beyond > 0);
    CHECK(report().x.overflow == beyond);
    // Its output is not 8·y: the saturated values lost their size (counted above, not hidden).
    std::vector<double> eight_y(y.size()), got(y.size());
    for (size_t i = 0; i < y.size(); ++i) eight_y[i] = 8.0 * y[i], got[i] = y_big[i];
    CHECK(slm::test::relative_error(got, eight_y) > 0.05);

    // The next call's window holds 8x's amax: 8x again fits.
    kernel.forward(backend, site, big.data(), w.data(), y_big.data(), n, in, out);
    CHECK(report().x.overflow == beyond);
    for (size_t i = 0; i < y.size(); ++i) got[i] = y_big[i];
    CHECK(slm::test::relative_error(got, eight_y) < 0.05);
}
