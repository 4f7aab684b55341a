// AdamW against the formula written out by hand, the schedule's shape, clipping, and the decay
// mask (norm gains are not decayed).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "slm/slm.hpp"

TEST_CASE("AdamW: two steps by hand, decay only on matrices, sharded state") {
    slm::ModelConfig c;
    c.vocab = 8;
    c.hidden = 4;
    c.layers = 1;
    c.heads = 2;
    c.kv_heads = 2;
    c.ffn = 6;
    c.max_seq = 4;
    const slm::ParameterLayout layout(c);
    slm::cpu::Backend<double> backend;
    slm::optim::AdamWConfig oc;
    oc.weight_decay = 0.1;
    slm::optim::AdamWState<slm::cpu::Backend<double>> adam(backend, layout, oc);
    const int64_t n = layout.total();
    // Alignment padding between tensors stays zero in params and grads, as in a model.
    std::vector<double> p(n, 0.0), g(n, 0.0);
    for (const auto& t : layout.tensors())
        for (int64_t i = t.offset; i < t.offset + t.size; ++i) {
            p[i] = 0.5;
            g[i] = 0.01 * static_cast<double>(i % 7 - 3);
        }
    auto expected = p;
    std::vector<double> m(n, 0), v(n, 0);
    const double lr = 1e-2;
    for (int step = 1; step <= 2; ++step) {
        adam.update(p.data(), g.data(), nullptr, lr, 0.5);
        for (const auto& t : layout.tensors())
            for (int64_t i = t.offset; i < t.offset + t.size; ++i) {
                const double gi = g[i] * 0.5;
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.95 * v[i] + 0.05 * gi * gi;
                const double mh = m[i] / (1 - std::pow(0.9, step));
                const double vh = v[i] / (1 - std::pow(0.95, step));
                const double wd = t.decay ? 0.1 : 0.0;
                expected[i] -= lr * (mh / (std::sqrt(vh) + 1e-8) + wd * expected[i]);
            }
    }
    for (int64_t i = 0; i < n; ++i) REQUIRE(p[i] == doctest::Approx(expected[i]).epsilon(1e-12));
    // A norm gain with zero gradient keeps its value exactly (no decay); a matrix does not.
    const auto& norm = layout.find("model.norm.weight");
    const auto& q = layout.find("model.layers.0.self_attn.q_proj.weight");
    std::vector<double> p2(n, 1.0), zero(n, 0.0);
    slm::optim::AdamWState<slm::cpu::Backend<double>> adam2(backend, layout, oc);
    adam2.update(p2.data(), zero.data(), nullptr, lr, 1.0);
    CHECK(p2[norm.offset] == 1.0);
    CHECK(p2[q.offset] == doctest::Approx(1.0 - lr * 0.1));

    // Two shards updated separately equal one update of the whole buffer.
    std::vector<double> whole(n, 0.3), sharded(n, 0.3);
    slm::optim::AdamWState<slm::cpu::Backend<double>> full(backend, layout, oc);
    slm::optim::AdamWState<slm::cpu::Backend<double>> lo(backend, layout, oc, 0, n / 2);
    slm::optim::AdamWState<slm::cpu::Backend<double>> hi(backend, layout, oc, n / 2, n);
    for (int s = 0; s < 3; ++s) {
        full.update(whole.data(), g.data(), nullptr, lr, 1.0);
        lo.update(sharded.data(), g.data(), nullptr, lr, 1.0);
        hi.update(sharded.data(), g.data(), nullptr, lr, 1.0);
    }
    CHECK(whole == sharded);
}

TEST_CASE("warmup + cosine schedule and clipping factor") {
    const slm::optim::WarmupCosine s{1e-3, 1e-4, 10, 110};
    CHECK(s(0) == doctest::Approx(1e-4));
    CHECK(s(9) == doctest::Approx(1e-3));
    CHECK(s(60) == doctest::Approx(5.5e-4));  // half way through the cosine
    CHECK(s(110) == doctest::Approx(1e-4));
    CHECK(s(500) == doctest::Approx(1e-4));
    for (int64_t i = 10; i < 110; ++i) CHECK(s(i + 1) <= s(i));
    CHECK(slm::optim::clip_factor(0.5, 1.0) == 1.0);
    CHECK(slm::optim::clip_factor(4.0, 1.0) == doctest::Approx(0.25));
    CHECK(slm::optim::clip_factor(4.0, 0.0) == 1.0);
    CHECK(slm::optim::clip_factor(NAN, 1.0) == 1.0);
}
