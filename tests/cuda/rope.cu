// include/slm/cuda/rope.cuh vs cpu/rope.hpp in double on the same bf16 inputs: q and k rotated
// within 1e-2 (bf16 output; the fp32 angle at position 1500 is off by ~1e-4 rad), v untouched
// bit for bit; backward likewise, and backward undoes forward. Head_dim 64 and 128 take the
// 16-byte kernel, the others the scalar one; the two give the same bits.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

namespace {

// The q and k columns of every row (what RoPE rotates), and the v columns.
std::vector<double> columns(const std::vector<double>& qkv, const slm::AttentionShape& s, bool qk) {
    std::vector<double> out;
    for (int64_t r = 0; r < s.tokens(); ++r)
        for (int64_t c = 0; c < s.qkv_stride(); ++c)
            if ((c < s.v_offset()) == qk) out.push_back(qkv[r * s.qkv_stride() + c]);
    return out;
}

}  // namespace

TEST_CASE("RoPE forward and backward match the CPU reference, v is untouched") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const double theta = 10000.0;
    for (const slm::AttentionShape s :
         {slm::AttentionShape{2, 37, 3, 1, 10}, slm::AttentionShape{1, 1500, 2, 2, 64},
          slm::AttentionShape{3, 5, 4, 2, 2}, slm::AttentionShape{2, 300, 4, 2, 128}}) {
        CAPTURE(s.seq);
        CAPTURE(s.head_dim);
        const int64_t total = s.tokens() * s.qkv_stride();
        const auto x = to_double(to_bf16(random_vector<double>(total, 1)));
        for (const bool forward : {true, false}) {
            CAPTURE(forward);
            auto ref = x;
            if (forward)
                slm::cpu::rope_forward(ref.data(), s, theta);
            else
                slm::cpu::rope_backward(ref.data(), s, theta);
            auto d = to_device(backend, to_bf16(x));
            if (forward)
                backend.rope_forward(d.data(), s, theta);
            else
                backend.rope_backward(d.data(), s, theta);
            const auto got = to_double(to_host(backend, d));
            CHECK(relative_error(columns(got, s, true), columns(ref, s, true)) < 1e-2);
            CHECK(columns(got, s, false) == columns(x, s, false));
        }
        // backward(forward(x)) = x up to two bf16 roundings
        auto d = to_device(backend, to_bf16(x));
        backend.rope_forward(d.data(), s, theta);
        backend.rope_backward(d.data(), s, theta);
        CHECK(relative_error(to_double(to_host(backend, d)), x) < 1e-2);
    }
}

TEST_CASE("RoPE: the 16-byte kernel gives the scalar kernel's bits") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (const slm::AttentionShape s :
         {slm::AttentionShape{1, 1500, 2, 2, 64}, slm::AttentionShape{2, 300, 4, 2, 128}}) {
        CAPTURE(s.head_dim);
        const int64_t total = s.tokens() * s.qkv_stride(), half = s.head_dim / 2;
        const auto x = to_bf16(random_vector<double>(total, 3));
        for (const float direction : {1.0f, -1.0f}) {
            auto a = to_device(backend, x);
            auto b = to_device(backend, x);
            const int rotated = static_cast<int>(s.heads + s.kv_heads);
            slm::cuda::rope_kernel<<<slm::cuda::blocks_for(s.tokens() * half, 256), 256, 0,
                                     backend.stream()>>>(
                a.data(), s.tokens(), s.seq, rotated, static_cast<int>(s.head_dim),
                s.qkv_stride(), 10000.0f, direction);
            slm::cuda::rope_vector_kernel<<<slm::cuda::blocks_for(s.tokens() * half / 8, 256),
                                            256, 0, backend.stream()>>>(
                b.data(), s.tokens(), s.seq, rotated, static_cast<int>(s.head_dim),
                s.qkv_stride(), 10000.0f, direction);
            const auto ha = to_host(backend, a), hb = to_host(backend, b);
            bool same = true;
            for (int64_t i = 0; i < total; ++i) same = same && bits(ha[i]) == bits(hb[i]);
            CHECK(same);
        }
    }
}

TEST_CASE("RoPE: rope_backward_k rotates the k part as rope_backward does, and nothing else") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (const slm::AttentionShape s :
         {slm::AttentionShape{2, 300, 8, 2, 64}, slm::AttentionShape{1, 129, 4, 4, 128},
          slm::AttentionShape{1, 50, 3, 1, 40}}) {  // head_dim 40: the scalar kernel
        CAPTURE(s.head_dim);
        const int64_t total = s.tokens() * s.qkv_stride();
        const auto x = to_bf16(random_vector<double>(total, 4));
        auto all = to_device(backend, x);
        auto k_only = to_device(backend, x);
        slm::cuda::rope_backward(all.data(), s, 10000.0, backend.stream());
        slm::cuda::rope_backward_k(k_only.data(), s, 10000.0, backend.stream());
        const auto ha = to_host(backend, all), hk = to_host(backend, k_only);
        bool k_same = true, rest_untouched = true;
        for (int64_t i = 0; i < total; ++i) {
            const int64_t c = i % s.qkv_stride();
            if (c >= s.k_offset() && c < s.v_offset())
                k_same = k_same && bits(hk[i]) == bits(ha[i]);
            else
                rest_untouched = rest_untouched && bits(hk[i]) == bits(x[i]);
        }
        CHECK(k_same);
        CHECK(rest_untouched);
    }
}
