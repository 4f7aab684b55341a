// Flash ≡ Naive ≡ a loop-by-loop reference, in fp64: outputs and dQ, dK, dV, for sequences that
// are and are not tile multiples, with MHA, GQA and MQA.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/compare.hpp"
#include "slm/slm.hpp"

namespace {

using slm::AttentionShape;

// Direct causal softmax attention, one (b, h, i) at a time: the definition, nothing clever.
std::vector<double> reference_attention(const AttentionShape& s, const std::vector<double>& qkv) {
    std::vector<double> out(static_cast<size_t>(s.tokens() * s.out_stride()), 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t h = 0; h < s.heads; ++h)
            for (int64_t i = 0; i < s.seq; ++i) {
                const int64_t kvh = h / s.group();
                std::vector<double> w(static_cast<size_t>(i + 1));
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= i; ++j) {
                    double dot = 0;
                    for (int64_t e = 0; e < s.head_dim; ++e)
                        dot += qkv[(b * s.seq + i) * s.qkv_stride() + h * s.head_dim + e] *
                               qkv[(b * s.seq + j) * s.qkv_stride() + s.k_offset() + kvh * s.head_dim + e];
                    w[j] = dot * scale;
                    m = std::max(m, w[j]);
                }
                for (auto& x : w) sum += (x = std::exp(x - m));
                for (int64_t j = 0; j <= i; ++j)
                    for (int64_t e = 0; e < s.head_dim; ++e)
                        out[(b * s.seq + i) * s.out_stride() + h * s.head_dim + e] +=
                            w[j] / sum *
                            qkv[(b * s.seq + j) * s.qkv_stride() + s.v_offset() + kvh * s.head_dim + e];
            }
    return out;
}

template <int BlockQ, int BlockK>
void compare(const AttentionShape& s) {
    CAPTURE(s.seq);
    CAPTURE(s.heads);
    CAPTURE(s.kv_heads);
    CAPTURE(BlockQ);
    CAPTURE(BlockK);
    const int64_t n_qkv = s.tokens() * s.qkv_stride(), n_out = s.tokens() * s.out_stride();
    const auto qkv = slm::test::random_vector<double>(n_qkv, 11, 2.0);
    const auto d_out = slm::test::random_vector<double>(n_out, 12);

    std::vector<double> out_naive(n_out), out_flash(n_out);
    std::vector<double> probs(static_cast<size_t>(s.batch * s.heads * s.seq * s.seq));
    std::vector<double> lse(static_cast<size_t>(s.batch * s.heads * s.seq));
    slm::attention::naive_attention_forward(s, qkv.data(), out_naive.data(), probs.data());
    slm::attention::flash_attention_forward<double, BlockQ, BlockK>(s, qkv.data(), out_flash.data(),
                                                                     lse.data());
    const auto out_ref = reference_attention(s, qkv);
    CHECK(slm::test::relative_error(out_naive, out_ref) < 1e-12);
    CHECK(slm::test::relative_error(out_flash, out_naive) < 1e-10);
    for (double x : out_flash) REQUIRE(std::isfinite(x));

    std::vector<double> dqkv_naive(n_qkv, 7.0), dqkv_flash(n_qkv, 7.0);  // must be overwritten
    slm::attention::naive_attention_backward(s, qkv.data(), d_out.data(), probs.data(),
                                             dqkv_naive.data());
    slm::attention::flash_attention_backward<double, BlockQ, BlockK>(
        s, qkv.data(), out_flash.data(), d_out.data(), lse.data(), dqkv_flash.data());
    CHECK(slm::test::relative_error(dqkv_flash, dqkv_naive) < 1e-10);

    // The gradient itself, against central differences of <d_out, attention(qkv)>.
    auto objective = [&](const std::vector<double>& x) {
        const auto o = reference_attention(s, x);
        double v = 0;
        for (int64_t i = 0; i < n_out; ++i) v += o[i] * d_out[i];
        return v;
    };
    std::vector<double> numeric, analytic;
    for (int64_t i = 0; i < n_qkv; i += std::max<int64_t>(1, n_qkv / 40)) {
        auto x = qkv;
        const double h = 1e-6;
        x[i] += h;
        const double up = objective(x);
        x[i] -= 2 * h;
        numeric.push_back((up - objective(x)) / (2 * h));
        analytic.push_back(dqkv_naive[i]);
    }
    CHECK(slm::test::relative_error(analytic, numeric) < 1e-7);
}

}  // namespace

TEST_CASE("Flash agrees with Naive in fp64, tile multiples or not") {
    for (int64_t seq : {1, 5, 8, 16, 23, 33}) {
        compare<8, 4>({2, seq, 4, 4, 6});   // MHA
        compare<8, 4>({1, seq, 4, 2, 8});   // GQA
        compare<4, 8>({1, seq, 3, 1, 4});   // MQA, key tiles larger than query tiles
    }
    compare<64, 64>({2, 100, 2, 1, 16});    // the model's default tiles, seq not a multiple
    compare<64, 64>({1, 128, 2, 2, 16});    // and a multiple
}
