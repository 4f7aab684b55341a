// include/slm/cuda/attention/naive.cuh vs the CPU Naive attention in double on the same bf16 qkv
// and d_out: MHA, GQA and MQA, sequences that are multiples of nothing, both launch plans
// (batched over sequences, batched over kv heads). Outputs, the saved probabilities and d_qkv
// are bf16: within 1e-2 (scores are rounded to bf16 before the fp32 softmax, as in PyTorch's
// eager attention, ≈ 2^-9·|score| each). d_qkv starts as NaN, so an element left unwritten fails.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

namespace {

using Kernel = slm::attention::AttentionKernel<slm::attention::Naive, slm::cuda::Backend>;

// Columns [begin, end) of every (B·T, stride) row.
std::vector<double> columns(const std::vector<double>& v, int64_t rows, int64_t stride,
                            int64_t begin, int64_t end) {
    std::vector<double> out;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = begin; c < end; ++c) out.push_back(v[r * stride + c]);
    return out;
}

void compare(slm::cuda::Backend& backend, const slm::AttentionShape& s) {
    CAPTURE(s.batch);
    CAPTURE(s.seq);
    CAPTURE(s.heads);
    CAPTURE(s.kv_heads);
    CAPTURE(s.head_dim);
    const int64_t n_qkv = s.tokens() * s.qkv_stride(), n_out = s.tokens() * s.out_stride();
    const int64_t n_probs = s.batch * s.heads * s.seq * s.seq;
    const auto qkv = to_double(to_bf16(random_vector<double>(n_qkv, 21, 1.5)));
    const auto d_out = to_double(to_bf16(random_vector<double>(n_out, 22)));
    std::vector<double> out_ref(n_out), probs_ref(n_probs), d_qkv_ref(n_qkv);
    slm::attention::naive_attention_forward(s, qkv.data(), out_ref.data(), probs_ref.data());
    slm::attention::naive_attention_backward(s, qkv.data(), d_out.data(), probs_ref.data(),
                                             d_qkv_ref.data());

    const auto footprint = Kernel::footprint(s);
    CHECK(footprint.saved_bytes_per_layer == n_probs * 2);
    auto dqkv_in = to_device(backend, to_bf16(qkv));
    auto dd_out = to_device(backend, to_bf16(d_out));
    auto out = backend.allocate<bf16>(n_out);
    auto saved = backend.allocate<std::byte>(footprint.saved_bytes_per_layer);
    auto scratch = backend.allocate<std::byte>(footprint.scratch_bytes);
    auto d_qkv = backend.allocate<bf16>(n_qkv);
    SLM_CUDA_CHECK(cudaMemsetAsync(d_qkv.data(), 0xff, n_qkv * 2, backend.stream()));  // NaN
    SLM_CUDA_CHECK(
        cudaMemsetAsync(scratch.data(), 0xff, footprint.scratch_bytes, backend.stream()));

    Kernel::forward(backend, s, dqkv_in.data(), out.data(), saved.data());
    Kernel::backward(backend, s, dqkv_in.data(), out.data(), dd_out.data(), saved.data(),
                     scratch.data(), d_qkv.data());
    const auto out_got = to_double(to_host(backend, out));
    const auto probs_got =
        to_double(to_host(backend, reinterpret_cast<const bf16*>(saved.data()), n_probs));
    const auto d_qkv_got = to_double(to_host(backend, d_qkv));
    for (double v : d_qkv_got) REQUIRE(std::isfinite(v));  // every element written
    CHECK(relative_error(out_got, out_ref) < 1e-2);
    CHECK(relative_error(probs_got, probs_ref) < 1e-2);
    CHECK(relative_error(d_qkv_got, d_qkv_ref) < 1e-2);
    const int64_t rows = s.tokens(), st = s.qkv_stride();
    CHECK(relative_error(columns(d_qkv_got, rows, st, 0, s.k_offset()),
                         columns(d_qkv_ref, rows, st, 0, s.k_offset())) < 1e-2);  // dQ
    CHECK(relative_error(columns(d_qkv_got, rows, st, s.k_offset(), s.v_offset()),
                         columns(d_qkv_ref, rows, st, s.k_offset(), s.v_offset())) < 1e-2);  // dK
    CHECK(relative_error(columns(d_qkv_got, rows, st, s.v_offset(), st),
                         columns(d_qkv_ref, rows, st, s.v_offset(), st)) < 1e-2);  // dV
}

}  // namespace

TEST_CASE("Naive attention on the GPU matches the CPU reference: MHA, GQA, MQA") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    compare(backend, {2, 37, 4, 4, 16});  // MHA, batched over kv heads (H > B·G)
    compare(backend, {2, 37, 6, 2, 24});  // GQA, group 3, batched over sequences
    compare(backend, {1, 45, 4, 2, 8});   // GQA, group 2, batched over kv heads
    compare(backend, {3, 29, 4, 1, 32});  // MQA, batched over sequences
    compare(backend, {2, 64, 2, 2, 64});  // head_dim 64, a tile-friendly size
    compare(backend, {1, 1, 2, 1, 16});   // a single position
}

TEST_CASE("Naive attention footprint: probabilities saved, dP scratch plus fp32 dK|dV for groups") {
    if (!gpu_available()) return;
    const slm::AttentionShape mha{2, 37, 4, 4, 16}, gqa{2, 37, 4, 2, 16};
    CHECK(Kernel::footprint(mha).saved_bytes_per_layer == 2 * 4 * 37 * 37 * 2);
    CHECK(Kernel::footprint(mha).scratch_bytes == 2 * 4 * 37 * 37 * 2);
    CHECK(Kernel::footprint(gqa).scratch_bytes >= 2 * 4 * 37 * 37 * 2 + 2 * 37 * 2 * 2 * 16 * 4);
}
