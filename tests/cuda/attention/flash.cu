// include/slm/cuda/attention/flash.cuh against
//   - the CPU reference: naive attention in double on exactly the bf16 qkv and d_out the GPU
//     reads (slm::attention::naive_attention_forward/backward), and
//   - the GPU Naive kernel (include/slm/cuda/attention/naive.cuh) on the same inputs,
// for head_dim 32, 48, 64, 80, 96, 128 and 256, MHA, GQA and MQA, sequences that are multiples of no
// tile (1, 17, 100, 129, 300, 1000) and some that are (64), batch 1 to 3, in every backward mode
// (on a Hopper the default and the deterministic modes run the warpgroup kernels, and the
// mma.sync modes are checked beside them). Checked: the
// output and dQ, dK, dV separately, each within 1e-2 normwise relative error (tests/common/
// compare.hpp): bf16 operands with fp32 accumulation land between 1e-3 and 1e-2 (P and dS are
// rounded to bf16 before their products, as in every FlashAttention), a wrong index or a lost
// tile is off by O(1). (dQ and dK are measured against at least 1% of the whole gradient's norm:
// at seq 1 they are exactly zero.) Output, d_qkv, the saved log-sum-exp and the scratch start as NaN (all
// bits set), so an element left unwritten, or a NaN from a padded row, fails the finiteness check.
// The deterministic mode gives the same bits twice; the default mode's dQ may differ in the last
// bits (fp32 atomics) but its output, dK and dV may not. (flash_model.cu: the whole tiny model.)
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/attention/flash.cuh"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/slm.hpp"

using namespace slm::test;

namespace {

using slm::AttentionShape;
using slm::attention::FlashBackward;
using slm::attention::FlashCudaKernel;
using slm::attention::FlashForward;
using FastKernel = slm::attention::AttentionKernel<slm::attention::Flash, slm::cuda::Backend>;
using DeterministicKernel = FlashCudaKernel<FlashBackward::deterministic>;
using MmaSyncKernel = FlashCudaKernel<FlashBackward::atomic_mma_sync>;
using DeterministicMmaSyncKernel = FlashCudaKernel<FlashBackward::deterministic_mma_sync>;
// The candidate scheme (turns from key tile 0 up, flash_turns.cuh).
using Tile0UpKernel = FlashCudaKernel<FlashBackward::deterministic_tile_0_up>;
// Each forward kernel wherever it exists (the default picks one per head_dim), and the TMA
// backward.
using TmaKernel = FlashCudaKernel<FlashBackward::atomic, FlashForward::tma>;
using WarpgroupForwardKernel = FlashCudaKernel<FlashBackward::atomic, FlashForward::warpgroup>;
using TmaBackwardKernel = FlashCudaKernel<FlashBackward::atomic_tma>;
using DeterministicTmaKernel = FlashCudaKernel<FlashBackward::deterministic_tma>;
using BulkDqKernel = FlashCudaKernel<FlashBackward::atomic_tma_bulk_dq>;
using KvRegistersKernel = FlashCudaKernel<FlashBackward::atomic_tma_kv_registers>;
using OverlappedDqKernel = FlashCudaKernel<FlashBackward::atomic_tma_overlapped_dq>;
using NaiveKernel = slm::attention::AttentionKernel<slm::attention::Naive, slm::cuda::Backend>;

constexpr double tolerance = 1e-2;

struct Inputs {
    std::vector<double> qkv, d_out;  // bf16 values, as doubles
};

Inputs make_inputs(const AttentionShape& s, uint64_t seed) {
    const int64_t n_qkv = s.tokens() * s.qkv_stride(), n_out = s.tokens() * s.out_stride();
    // Scale 2: scores of a few units, so some rows are peaked and some flat.
    return {to_double(to_bf16(random_vector<double>(n_qkv, seed, 2.0))),
            to_double(to_bf16(random_vector<double>(n_out, seed + 1)))};
}

// What one kernel produced: values and raw bits.
struct Result {
    std::vector<bf16> out, d_qkv;
    std::vector<std::byte> saved;
};

template <class Kernel>
Result run(slm::cuda::Backend& backend, const AttentionShape& s, const Inputs& in) {
    const int64_t n_qkv = s.tokens() * s.qkv_stride(), n_out = s.tokens() * s.out_stride();
    const auto footprint = Kernel::footprint(s);
    auto qkv = to_device(backend, to_bf16(in.qkv));
    auto d_out = to_device(backend, to_bf16(in.d_out));
    auto out = backend.allocate<bf16>(n_out);
    auto saved = backend.allocate<std::byte>(footprint.saved_bytes_per_layer);
    auto scratch = backend.allocate<std::byte>(footprint.scratch_bytes);
    auto d_qkv = backend.allocate<bf16>(n_qkv);
    // All bits set: NaN as bf16 and as fp32.
    SLM_CUDA_CHECK(cudaMemsetAsync(out.data(), 0xff, n_out * 2, backend.stream()));
    SLM_CUDA_CHECK(cudaMemsetAsync(d_qkv.data(), 0xff, n_qkv * 2, backend.stream()));
    SLM_CUDA_CHECK(cudaMemsetAsync(saved.data(), 0xff, footprint.saved_bytes_per_layer,
                                   backend.stream()));
    SLM_CUDA_CHECK(
        cudaMemsetAsync(scratch.data(), 0xff, footprint.scratch_bytes, backend.stream()));
    Kernel::forward(backend, s, qkv.data(), out.data(), saved.data());
    Kernel::backward(backend, s, qkv.data(), out.data(), d_out.data(), saved.data(),
                     scratch.data(), d_qkv.data());
    return {to_host(backend, out), to_host(backend, d_qkv), to_host(backend, saved)};
}

// Columns [begin, end) of every (rows, stride) row.
std::vector<double> columns(const std::vector<double>& v, int64_t rows, int64_t stride,
                            int64_t begin, int64_t end) {
    std::vector<double> part;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = begin; c < end; ++c) part.push_back(v[r * stride + c]);
    return part;
}

int64_t non_finite(const std::vector<double>& v) {
    int64_t n = 0;
    for (double x : v) n += std::isfinite(x) ? 0 : 1;
    return n;
}

// out and dQ, dK, dV of `got` against `ref`, each within the tolerance.
void check_close(const char* against, const AttentionShape& s, const std::vector<double>& out,
                 const std::vector<double>& out_ref, const std::vector<double>& d_qkv,
                 const std::vector<double>& d_qkv_ref) {
    CAPTURE(against);
    const int64_t rows = s.tokens(), st = s.qkv_stride();
    // dQ and dK vanish when every row sees one key (seq 1: the softmax of one score is constant),
    // so each part is measured against at least 1% of the norm of the whole gradient.
    double sum = 0;
    for (double x : d_qkv_ref) sum += x * x;
    const double least = 1e-2 * std::sqrt(sum);
    auto part = [&](const std::vector<double>& v, int64_t begin, int64_t end) {
        return columns(v, rows, st, begin, end);
    };
    const double e_out = relative_error(out, out_ref);
    const double e_dq =
        relative_error(part(d_qkv, 0, s.k_offset()), part(d_qkv_ref, 0, s.k_offset()), least);
    const double e_dk = relative_error(part(d_qkv, s.k_offset(), s.v_offset()),
                                       part(d_qkv_ref, s.k_offset(), s.v_offset()), least);
    const double e_dv = relative_error(part(d_qkv, s.v_offset(), st),
                                       part(d_qkv_ref, s.v_offset(), st), least);
    CAPTURE(e_out);
    CAPTURE(e_dq);
    CAPTURE(e_dk);
    CAPTURE(e_dv);
    CHECK(e_out < tolerance);
    CHECK(e_dq < tolerance);
    CHECK(e_dk < tolerance);
    CHECK(e_dv < tolerance);
}

void check_result(const char* name, const AttentionShape& s, const Result& r,
                  const std::vector<double>& out_ref, const std::vector<double>& d_qkv_ref,
                  const std::vector<double>& naive_out, const std::vector<double>& naive_d_qkv) {
    CAPTURE(name);
    const auto out = to_double(r.out), d_qkv = to_double(r.d_qkv);
    std::vector<double> lse(r.saved.size() / 4);
    for (size_t i = 0; i < lse.size(); ++i) {
        float x;
        std::memcpy(&x, r.saved.data() + 4 * i, 4);
        lse[i] = x;
    }
    CHECK(static_cast<int64_t>(lse.size()) == s.batch * s.heads * s.seq);
    CHECK(non_finite(out) == 0);  // every element written, no NaN from padded rows
    CHECK(non_finite(d_qkv) == 0);
    CHECK(non_finite(lse) == 0);
    check_close("fp64 CPU reference", s, out, out_ref, d_qkv, d_qkv_ref);
    check_close("GPU Naive", s, out, naive_out, d_qkv, naive_d_qkv);
}

void compare(slm::cuda::Backend& backend, const AttentionShape& s) {
    CAPTURE(s.batch);
    CAPTURE(s.seq);
    CAPTURE(s.heads);
    CAPTURE(s.kv_heads);
    CAPTURE(s.head_dim);
    const auto in = make_inputs(s, static_cast<uint64_t>(1000 * s.seq + 10 * s.heads + s.batch));
    std::vector<double> out_ref(in.d_out.size()), d_qkv_ref(in.qkv.size());
    std::vector<double> probs(static_cast<size_t>(s.batch * s.heads * s.seq * s.seq));
    slm::attention::naive_attention_forward(s, in.qkv.data(), out_ref.data(), probs.data());
    slm::attention::naive_attention_backward(s, in.qkv.data(), in.d_out.data(), probs.data(),
                                             d_qkv_ref.data());
    const Result naive = run<NaiveKernel>(backend, s, in);
    const auto naive_out = to_double(naive.out), naive_d_qkv = to_double(naive.d_qkv);
    check_result("flash, atomic dQ (the default: warpgroup MMAs on a Hopper)", s,
                 run<FastKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out, naive_d_qkv);
    check_result("flash, TMA forward (up to head_dim 128; 256 as the default)", s,
                 run<TmaKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out, naive_d_qkv);
    check_result("flash, the TMA backward (up to head_dim 128; 256 as the default)", s,
                 run<TmaBackwardKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
    check_result("flash, the TMA backward, dQ by bulk reductions", s,
                 run<BulkDqKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out, naive_d_qkv);
    check_result("flash, the TMA backward, K and V in registers (width 64)", s,
                 run<KvRegistersKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
    check_result("flash, the TMA backward, dQ overlapped with the next step", s,
                 run<OverlappedDqKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
    check_result("flash, the warpgroup forward (cp.async)", s,
                 run<WarpgroupForwardKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
    if (s.head_dim > 128) {  // the warpgroup kernels only: the mma.sync modes refuse it
        CHECK(throws_error_containing([&] { run<MmaSyncKernel>(backend, s, in); },
                                      "use --attention naive, or head_dim 128 or less"));
        CHECK(throws_error_containing([&] { run<DeterministicMmaSyncKernel>(backend, s, in); },
                                      "use --attention naive, or head_dim 128 or less"));
    }
    check_result("flash, deterministic (turns on a Hopper)", s,
                 run<DeterministicKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
    check_result("flash, deterministic, turns from key tile 0 up", s,
                 run<Tile0UpKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out, naive_d_qkv);
    check_result("flash, deterministic, the TMA backward taking turns", s,
                 run<DeterministicTmaKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
    if (s.head_dim > 128) return;
    check_result("flash, atomic dQ, mma.sync", s, run<MmaSyncKernel>(backend, s, in), out_ref,
                 d_qkv_ref, naive_out, naive_d_qkv);
    check_result("flash, deterministic, mma.sync", s,
                 run<DeterministicMmaSyncKernel>(backend, s, in), out_ref, d_qkv_ref, naive_out,
                 naive_d_qkv);
}

// (batch, seq, heads, kv_heads) at the given head_dim: MHA, GQA (groups 2, 3, 4) and MQA.
void sweep(int64_t head_dim) {
    slm::cuda::Backend backend;
    const std::vector<AttentionShape> shapes = {
        {1, 1, 2, 2, head_dim},     // one position: the whole sequence is tail
        {2, 17, 4, 4, head_dim},    // shorter than every tile
        {3, 64, 4, 2, head_dim},    // exactly one key tile, half a query tile
        {1, 100, 4, 1, head_dim},   // MQA
        {2, 129, 6, 2, head_dim},   // one past two tiles, group of 3
        {1, 300, 4, 4, head_dim},   // several tiles of every kind
        {3, 300, 8, 2, head_dim},   // group of 4
        {1, 1000, 4, 2, head_dim},  // long: many diagonal-free tiles
        {2, 1000, 2, 1, head_dim},  // long MQA
    };
    for (const auto& s : shapes) compare(backend, s);
}

}  // namespace

TEST_CASE("flash attention on the GPU, head_dim 64: matches the fp64 reference and GPU Naive") {
    if (!gpu_available()) return;
    sweep(64);
}

TEST_CASE("flash attention on the GPU, head_dim 128: matches the fp64 reference and GPU Naive") {
    if (!gpu_available()) return;
    sweep(128);
}

// The head_dims of other published small models (the paper's 100M: 96; Phi-2-style: 80; Gemma:
// 256): on a Hopper the default and deterministic modes run the warpgroup kernels, in tiles wider
// than head_dim for 32 and 48 (64) and 80 and 96 (128), the other two modes the mma.sync ones.
TEST_CASE("flash attention on the GPU, head_dim 32, 48, 80, 96, 256: matches the fp64 reference and GPU Naive") {
    if (!gpu_available()) return;
    for (const int64_t d : {32, 48, 80, 96, 256}) {
        CAPTURE(d);
        sweep(d);
    }
}

// Both deterministic modes, ten runs each at shapes whose query tiles get the adds of many key
// tiles (seq 2048: 16 key tiles at the last query tile) and of GQA groups.
template <class Kernel>
void check_same_bits(slm::cuda::Backend& backend, const AttentionShape& s, const Inputs& in,
                     Result& first) {
    first = run<Kernel>(backend, s, in);
    for (int i = 0; i < 9; ++i) {
        const Result again = run<Kernel>(backend, s, in);
        CHECK(std::memcmp(first.out.data(), again.out.data(), first.out.size() * 2) == 0);
        CHECK(std::memcmp(first.d_qkv.data(), again.d_qkv.data(), first.d_qkv.size() * 2) == 0);
        CHECK(first.saved == again.saved);
    }
}

TEST_CASE("flash attention on the GPU: the deterministic backward gives the same bits twice") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (const AttentionShape s :
         {AttentionShape{2, 300, 8, 2, 64}, AttentionShape{1, 1000, 4, 1, 128},
          AttentionShape{2, 2048, 8, 4, 64}, AttentionShape{1, 2048, 12, 4, 96},
          AttentionShape{4, 777, 4, 2, 32}, AttentionShape{1, 1000, 4, 2, 256}}) {
        CAPTURE(s.seq);
        CAPTURE(s.head_dim);
        const auto in = make_inputs(s, 77);
        Result a, m, u, d;
        check_same_bits<DeterministicKernel>(backend, s, in, a);
        check_same_bits<Tile0UpKernel>(backend, s, in, u);
        check_same_bits<DeterministicTmaKernel>(backend, s, in, d);
        if (s.head_dim <= 128) check_same_bits<DeterministicMmaSyncKernel>(backend, s, in, m);
        // The atomic mode: forward (the same kernel), dK and dV are deterministic too; only dQ
        // may move.
        const Result f = run<FastKernel>(backend, s, in);
        const Result g = run<FastKernel>(backend, s, in);
        CHECK(std::memcmp(f.out.data(), a.out.data(), a.out.size() * 2) == 0);
        CHECK(f.saved == a.saved);
        // On a Hopper the deterministic mode is the default's kernel, walking the same steps,
        // with its dQ adds in turn: the same dK and dV bits. (The candidate walks its query
        // tiles in the other order, so its dK and dV sums round differently.)
        const bool turns = slm::attention::cuda_flash::warpgroup_mma_compiled();
        bool kv_same = true, kv_as_default = true;
        for (int64_t r = 0; r < s.tokens(); ++r)
            for (int64_t c = s.k_offset(); c < s.qkv_stride(); ++c) {
                const int64_t i = r * s.qkv_stride() + c;
                kv_same = kv_same && bits(f.d_qkv[i]) == bits(g.d_qkv[i]);
                kv_as_default = kv_as_default && bits(f.d_qkv[i]) == bits(a.d_qkv[i]);
            }
        CHECK(kv_same);
        if (turns) CHECK(kv_as_default);
    }
}

TEST_CASE("flash attention on the GPU: footprint, and an unsupported head_dim refused") {
    if (!gpu_available()) return;
    const AttentionShape s{3, 100, 8, 2, 64};
    const auto fast = FastKernel::footprint(s);
    CHECK(fast.saved_bytes_per_layer == 3 * 8 * 100 * 4);
    CHECK(fast.scratch_bytes == slm::cuda::aligned_bytes(3 * 8 * 100 * 4) +
                                    slm::cuda::aligned_bytes(3 * 100 * 8 * 64 * 4));
    const auto det = DeterministicKernel::footprint(s);  // + one int per (b, h, 64 queries)
    CHECK(det.saved_bytes_per_layer == 3 * 8 * 100 * 4);
    CHECK(det.scratch_bytes == fast.scratch_bytes + slm::cuda::aligned_bytes(3 * 8 * 2 * 4));
    const auto det_mma_sync = DeterministicMmaSyncKernel::footprint(s);
    CHECK(det_mma_sync.scratch_bytes == slm::cuda::aligned_bytes(3 * 8 * 100 * 4));

    slm::cuda::Backend backend;
    const AttentionShape odd{1, 16, 2, 2, 16};
    auto qkv = backend.allocate<bf16>(odd.tokens() * odd.qkv_stride());
    auto out = backend.allocate<bf16>(odd.tokens() * odd.out_stride());
    auto saved = backend.allocate<std::byte>(FastKernel::footprint(odd).saved_bytes_per_layer);
    std::string message;
    CHECK(throws_error_containing(
        [&] { FastKernel::forward(backend, odd, qkv.data(), out.data(), saved.data()); },
        "supports head_dim 32, 48, 64, 80, 96, 128 and 256, got head_dim 16", &message));
    MESSAGE(message);
}
