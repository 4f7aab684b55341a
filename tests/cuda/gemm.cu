// include/slm/cuda/gemm.cuh: every transpose combination, bf16 and fp32 outputs, beta 0 and 1,
// padded row strides, strided batches and odd sizes, against a double reference computed from
// the same bf16 inputs. Tolerances: bf16 output 1e-2 (one rounding to bf16 is 2^-9 ≈ 2e-3
// relative); fp32 output 1e-5 (fp32 accumulation of exact bf16 products, k ≤ 200).
#include <doctest/doctest.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/compare.hpp"
#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/backend.cuh"

using namespace slm::test;
using slm::cuda::GemmBatch;
using slm::cuda::Trans;

namespace {

struct Case {
    Trans ta, tb;
    int64_t m, n, k, pad;  // pad: extra elements at the end of every row (row stride > row)
    int64_t count;         // batch
};

// C = alpha · op(A) · op(B) + beta · C, row-major, batch b at base + b · stride.
std::vector<double> reference_gemm(const Case& c, double alpha, const std::vector<double>& a,
                                   int64_t lda, int64_t sa, const std::vector<double>& b,
                                   int64_t ldb, int64_t sb, double beta, std::vector<double> out,
                                   int64_t ldc, int64_t sc) {
    for (int64_t t = 0; t < c.count; ++t)
        for (int64_t i = 0; i < c.m; ++i)
            for (int64_t j = 0; j < c.n; ++j) {
                double sum = 0;
                for (int64_t p = 0; p < c.k; ++p) {
                    const double x =
                        c.ta == Trans::N ? a[t * sa + i * lda + p] : a[t * sa + p * lda + i];
                    const double y =
                        c.tb == Trans::N ? b[t * sb + p * ldb + j] : b[t * sb + j * ldb + p];
                    sum += x * y;
                }
                double& o = out[t * sc + i * ldc + j];
                o = alpha * sum + beta * o;
            }
    return out;
}

template <class C>
void run_case(slm::cuda::Backend& backend, const Case& c, float alpha, float beta) {
    CAPTURE(static_cast<int>(c.ta));
    CAPTURE(static_cast<int>(c.tb));
    CAPTURE(c.m);
    CAPTURE(c.n);
    CAPTURE(c.k);
    CAPTURE(c.pad);
    CAPTURE(c.count);
    CAPTURE(beta);
    const int64_t a_rows = c.ta == Trans::N ? c.m : c.k, a_cols = c.ta == Trans::N ? c.k : c.m;
    const int64_t b_rows = c.tb == Trans::N ? c.k : c.n, b_cols = c.tb == Trans::N ? c.n : c.k;
    const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.n + c.pad;
    // Batch strides leave a gap between operands (they must not be touched).
    const int64_t sa = a_rows * lda + 5, sb = b_rows * ldb + 3, sc = c.m * ldc + 7;
    const auto a = to_double(to_bf16(random_vector<double>(c.count * sa, 1)));
    const auto b = to_double(to_bf16(random_vector<double>(c.count * sb, 2)));
    auto c0 = random_vector<double>(c.count * sc, 3);
    std::vector<C> c_host;
    if constexpr (std::is_same_v<C, bf16>)
        c_host = to_bf16(c0);
    else
        c_host = to_float(c0);
    c0 = to_double(c_host);  // the reference starts from exactly what the GPU holds
    const auto expected = reference_gemm(c, alpha, a, lda, sa, b, ldb, sb, beta, c0, ldc, sc);

    auto da = to_device(backend, to_bf16(a));
    auto db = to_device(backend, to_bf16(b));
    auto dc = to_device(backend, c_host);
    backend.gemm()(backend.stream(), c.ta, c.tb, c.m, c.n, c.k, alpha, da.data(), lda, db.data(),
                   ldb, beta, dc.data(), ldc, GemmBatch{c.count, sa, sb, sc});
    const auto got = to_double(to_host(backend, dc));

    std::vector<double> got_valid, expected_valid;
    for (int64_t i = 0; i < c.count * sc; ++i) {
        const int64_t within = i % sc, row = within / ldc, col = within % ldc;
        if (row < c.m && col < c.n) {
            got_valid.push_back(got[i]);
            expected_valid.push_back(expected[i]);
        } else {
            REQUIRE(got[i] == c0[i]);  // padding and gaps are never written
        }
    }
    const double tolerance = std::is_same_v<C, float> ? 1e-5 : 1e-2;
    CHECK(relative_error(got_valid, expected_valid) < tolerance);
}

}  // namespace

TEST_CASE("GEMM: all transposes, bf16/fp32 output, beta 0/1, padded strides, batches") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    for (Trans ta : {Trans::N, Trans::T}) {
        for (Trans tb : {Trans::N, Trans::T}) {
            for (const Case& base :
                 {Case{ta, tb, 37, 45, 200, 0, 1}, Case{ta, tb, 5, 13, 37, 3, 1},
                  Case{ta, tb, 64, 72, 128, 8, 1}, Case{ta, tb, 29, 16, 24, 0, 3},
                  Case{ta, tb, 16, 33, 8, 1, 4}}) {
                run_case<bf16>(backend, base, 1.0f, 0.0f);
                run_case<bf16>(backend, base, 0.5f, 1.0f);
                run_case<float>(backend, base, 1.0f, 1.0f);
                run_case<float>(backend, base, 0.25f, 0.0f);
            }
        }
    }
}

TEST_CASE("GEMM: one algorithm choice per distinct problem, reused by later calls") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    auto a = backend.allocate<bf16>(64 * 64);
    auto b = backend.allocate<bf16>(64 * 64);
    auto c = backend.allocate<float>(64 * 64);
    const size_t before = backend.gemm().cached_plans();
    for (int i = 0; i < 3; ++i)
        backend.gemm()(backend.stream(), Trans::N, Trans::T, 64, 64, 64, 1.0f, a.data(), 64,
                       b.data(), 64, 1.0f, c.data(), 64);
    CHECK(backend.gemm().cached_plans() == before + 1);
    backend.gemm()(backend.stream(), Trans::N, Trans::N, 64, 64, 64, 1.0f, a.data(), 64, b.data(),
                   64, 1.0f, c.data(), 64);
    CHECK(backend.gemm().cached_plans() == before + 2);
    backend.synchronize();
}

// With timed candidates the first call of a shape runs several algorithms before the real one:
// beta = 0 into C itself, beta = 1 into a scratch copy. The result must still be one product
// added once, with padding and gaps untouched.
TEST_CASE("GEMM: timing the heuristic's candidates leaves the results exact (beta 0 and 1)") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    backend.gemm().set_timed_candidates(8);
    CHECK(backend.gemm().timed_candidates() == 8);
    for (Trans ta : {Trans::N, Trans::T})
        for (const Case& base : {Case{ta, Trans::T, 37, 45, 200, 0, 1}, Case{ta, Trans::N, 64, 72, 128, 8, 1},
                                 Case{ta, Trans::N, 29, 16, 24, 0, 3}, Case{ta, Trans::T, 256, 512, 384, 0, 1}}) {
            run_case<bf16>(backend, base, 1.0f, 0.0f);
            run_case<bf16>(backend, base, 0.5f, 1.0f);
            run_case<float>(backend, base, 1.0f, 1.0f);
        }
    CHECK(throws_error_containing([&] { backend.gemm().set_timed_candidates(0); }, "outside [1, 16]"));
}
