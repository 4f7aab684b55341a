#pragma once
// The GEMM layer: cuBLASLt behind one call written in row-major terms, as the rest of slm thinks.
//
//     C (m × n, row stride ldc) = alpha · op(A) · op(B) + beta · C
//
// A and B are bf16, products are accumulated in fp32 (CUBLAS_COMPUTE_32F), C is bf16 or fp32;
// beta = 1 accumulates into C (parameter gradients). op(A) is (m × k): A is stored (m × k) with
// row stride lda for Trans::N and (k × m) for Trans::T; op(B) is (k × n) likewise. A strided
// batch runs `count` such products, operand i at base + i · stride (elements).
//
// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ over the same memory, so cuBLASLt
// is called with the operands swapped and the transpose flags unchanged. An algorithm is chosen
// once per (shape, strides, output type, pointer alignment) by cuBLASLt's heuristic and cached
// with its descriptors; every GEMM shares one 32 MiB workspace.
//
// With set_timed_candidates(n > 1), the first call of each shape instead times the heuristic's
// first n candidates on the call's own operands (beta = 0: into C itself, which the real call
// then overwrites; beta ≠ 0: into a scratch copy of C's extent, or not at all when that does not
// fit) and keeps the fastest if it beats the heuristic's first by 3%. Timing noise can make two
// runs choose differently, and with the choice the last bits of the results, so the default is
// 1 (RunConfig::gemm_candidates). choices() lists the timed picks and use_choices() replays a
// list (gemm_choices.hpp keeps it in a file), so a tuned run can be repeated bit for bit.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/gemm_choices.hpp"
#include "slm/cuda/memory.cuh"

namespace slm::cuda {

enum class Trans : int { N = 0, T = 1 };

struct GemmBatch {
    int64_t count = 1;
    int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements between consecutive operands
};

template <class C>
inline constexpr bool is_gemm_output = std::is_same_v<C, __nv_bfloat16> || std::is_same_v<C, float>;

class Gemm {
public:
    static constexpr int64_t workspace_bytes = int64_t{32} << 20;

    Gemm() : workspace_(workspace_bytes), identity_(device_identity()) {
        SLM_CUBLAS_CHECK(cublasLtCreate(&handle_));
    }
    ~Gemm() {
        plans_.clear();  // descriptors before the handle
        if (handle_) (void)cublasLtDestroy(handle_);
    }
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

    template <class C>
    void operator()(cudaStream_t stream, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                    float alpha, const __nv_bfloat16* a, int64_t lda, const __nv_bfloat16* b,
                    int64_t ldb, float beta, C* c, int64_t ldc, const GemmBatch& batch = {}) {
        static_assert(is_gemm_output<C>, "GEMM output must be __nv_bfloat16 or float");
        if (m == 0 || n == 0 || batch.count == 0) return;
        require(m > 0 && n > 0 && k > 0 && batch.count > 0,
                "GEMM sizes must be positive: m=" + std::to_string(m) + " n=" + std::to_string(n) +
                    " k=" + std::to_string(k));
        require(
            lda >= (ta == Trans::N ? k : m) && ldb >= (tb == Trans::N ? n : k) && ldc >= n,
            "GEMM row stride shorter than the row: " + describe(ta, tb, m, n, k, lda, ldb, ldc));
        constexpr int64_t bf = sizeof(__nv_bfloat16), cb = sizeof(C);
        const Key key{static_cast<int>(ta),
                      static_cast<int>(tb),
                      m,
                      n,
                      k,
                      lda,
                      ldb,
                      ldc,
                      static_cast<int>(output_type<C>()),
                      batch.count,
                      batch.stride_a,
                      batch.stride_b,
                      batch.stride_c,
                      alignment(a, batch.stride_a * bf, batch.count),
                      alignment(b, batch.stride_b * bf, batch.count),
                      alignment(c, batch.stride_c * cb, batch.count)};
        Plan& p = plan(key);
        if (!p.tuned) {
            const int64_t extent = (batch.count - 1) * batch.stride_c + (m - 1) * ldc + n;
            choose_fastest(p, stream, alpha, a, b, beta, c, extent * cb);
        }
        SLM_CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c,
                                        p.c, &p.algo, workspace_.data(),
                                        static_cast<size_t>(workspace_bytes), stream));
    }

    size_t cached_plans() const { return plans_.size(); }

    // How many heuristic candidates a new shape times (1: the heuristic's first, untimed).
    // Applies to shapes first seen after the call.
    void set_timed_candidates(int n) {
        require(n >= 1 && n <= max_candidates, "Gemm::set_timed_candidates: " + std::to_string(n) +
                                                   " is outside [1, " +
                                                   std::to_string(max_candidates) + "]");
        timed_candidates_ = n;
    }
    int timed_candidates() const { return timed_candidates_; }
    static constexpr int max_candidates = 16;

    // The GPU, compute capability and cuBLASLt version: where a pick is valid.
    const std::string& identity() const { return identity_; }
    // Where the replayed picks came from ("" when use_choices was not called).
    const std::string& replay_source() const { return replay_source_; }

    // The timed and replayed picks so far, and the replayed picks not used yet (so that a file
    // written from this list loses none of the file read), in shape order.
    GemmChoices choices() const {
        std::map<GemmShapeFields, GemmChoice> all = replay_;
        for (const auto& [key, p] : plans_)
            if (p->requested > 0) all[fields(key)] = {fields(key), p->requested, words(p->algo)};
        GemmChoices out{identity_, {}};
        for (const auto& [shape, choice] : all) out.picks.push_back(choice);
        return out;
    }

    // Shapes first seen after the call take their algorithm from `c` instead of the heuristic
    // or timing. `source` names where the picks came from, in errors.
    void use_choices(const GemmChoices& c, const std::string& source) {
        require(c.identity == identity_,
                "GEMM choices from '" + source + "' were made on '" + c.identity +
                    "', and this is '" + identity_ + "': picks do not carry over; delete the file "
                    "or name another with --gemm-choices");
        for (const GemmChoice& p : c.picks) {
            require(p.requested >= 1 && p.requested <= max_candidates,
                    "GEMM choices from '" + source + "': a pick asks for " +
                        std::to_string(p.requested) + " candidates, outside [1, " +
                        std::to_string(max_candidates) + "]");
            replay_[p.shape] = p;
        }
        replay_source_ = source;
    }

private:
    struct Key {
        int ta, tb;
        int64_t m, n, k, lda, ldb, ldc;
        int c_type;
        int64_t count, stride_a, stride_b, stride_c;
        uint32_t align_a, align_b, align_c;
        auto operator<=>(const Key&) const = default;
    };

    static GemmShapeFields fields(const Key& k) {
        return {k.ta, k.tb, k.m, k.n, k.k, k.lda, k.ldb, k.ldc, k.c_type, k.count, k.stride_a,
                k.stride_b, k.stride_c, k.align_a, k.align_b, k.align_c};
    }
    static GemmAlgorithmWords words(const cublasLtMatmulAlgo_t& algo) {
        static_assert(sizeof algo.data == sizeof(GemmAlgorithmWords));
        return std::to_array(algo.data);
    }

    // Descriptors and the chosen algorithm of one cached GEMM, in cuBLASLt's (column-major,
    // operands swapped) terms: its A is our B, its B is our A.
    struct Plan {
        cublasLtMatmulDesc_t desc = nullptr;
        cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
        cublasLtMatmulAlgo_t algo{};
        // The heuristic's candidates, best first (fixed arrays: nvcc 13's front end fails on a
        // std::vector of cuBLASLt's structs); n_candidates = 0 once timed.
        std::array<cublasLtMatmulAlgo_t, max_candidates> candidates{};
        int n_candidates = 0;
        bool tuned = false;
        int requested = 0;  // > 0: a pick (timed or replayed) of that many candidates, for choices()
        Plan() = default;
        Plan(const Plan&) = delete;
        Plan& operator=(const Plan&) = delete;
        ~Plan() {
            if (a) (void)cublasLtMatrixLayoutDestroy(a);
            if (b) (void)cublasLtMatrixLayoutDestroy(b);
            if (c) (void)cublasLtMatrixLayoutDestroy(c);
            if (desc) (void)cublasLtMatmulDescDestroy(desc);
        }
    };

    struct Preference {
        cublasLtMatmulPreference_t p = nullptr;
        Preference() { SLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
        ~Preference() { (void)cublasLtMatmulPreferenceDestroy(p); }
        template <class V>
        void set(cublasLtMatmulPreferenceAttributes_t attribute, V value) {
            SLM_CUBLAS_CHECK(
                cublasLtMatmulPreferenceSetAttribute(p, attribute, &value, sizeof value));
        }
    };

    template <class C>
    static constexpr cudaDataType_t output_type() {
        return std::is_same_v<C, float> ? CUDA_R_32F : CUDA_R_16BF;
    }

    // Largest power of two (≤ 256) dividing the address of every operand of the batch.
    static uint32_t alignment(const void* p, int64_t stride_bytes, int64_t count) {
        const uint64_t bits = reinterpret_cast<uintptr_t>(p) |
                              (count > 1 ? static_cast<uint64_t>(stride_bytes) : 0) | 256u;
        return static_cast<uint32_t>(bits & (~bits + 1));
    }

    static std::string describe(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t lda,
                                int64_t ldb, int64_t ldc) {
        return std::string("C(") + std::to_string(m) + "×" + std::to_string(n) + ", ldc " +
               std::to_string(ldc) + ") = op" + (ta == Trans::T ? "ᵀ" : "") + "(A, lda " +
               std::to_string(lda) + ") · op" + (tb == Trans::T ? "ᵀ" : "") + "(B, ldb " +
               std::to_string(ldb) + "), k=" + std::to_string(k);
    }

    static void make_layout(cublasLtMatrixLayout_t* layout, cudaDataType_t type, int64_t rows,
                            int64_t cols, int64_t ld, int64_t count, int64_t stride) {
        SLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(layout, type, static_cast<uint64_t>(rows),
                                                    static_cast<uint64_t>(cols), ld));
        if (count > 1) {
            const int32_t count32 = static_cast<int32_t>(count);
            SLM_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
                *layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count32, sizeof count32));
            SLM_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
                *layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
        }
    }

    // Times each candidate on the stream and keeps the fastest in p.algo, but leaves the
    // heuristic's first choice unless another is at least min_gain faster: in isolation, back to
    // back, a GEMM sees warmer caches than in the step, and a small edge here is noise there.
    // Two rounds over the candidates (each run once untimed first), the faster of a candidate's
    // two timings counting. A candidate cuBLASLt refuses at run time is skipped.
    template <class C>
    void choose_fastest(Plan& p, cudaStream_t stream, float alpha, const __nv_bfloat16* a,
                        const __nv_bfloat16* b, float beta, C* c, int64_t c_bytes) {
        constexpr int repeats = 3;
        constexpr float min_gain = 0.03f;
        p.tuned = true;
        const int n_candidates = std::exchange(p.n_candidates, 0);
        if (n_candidates < 2) return;
        DeviceBuffer<std::byte> scratch;
        void* target = c;
        if (beta != 0.0f) {
            try {
                scratch = DeviceBuffer<std::byte>(c_bytes);
            } catch (const Error&) {
                return;  // no room for a copy of C: keep the heuristic's first choice
            }
            SLM_CUDA_CHECK(
                cudaMemsetAsync(scratch.data(), 0, static_cast<size_t>(c_bytes), stream));
            target = scratch.data();
        }
        auto run = [&](const cublasLtMatmulAlgo_t& algo) {
            return cublasLtMatmul(handle_, p.desc, &alpha, b, p.a, a, p.b, &beta, target, p.c,
                                  target, p.c, &algo, workspace_.data(),
                                  static_cast<size_t>(workspace_bytes), stream);
        };
        std::array<float, max_candidates> best_ms{};  // 0: not timed yet, -1: refused
        for (int i = 0; i < n_candidates; ++i) {
            const auto& algo = p.candidates[static_cast<size_t>(i)];
            if (run(algo) != CUBLAS_STATUS_SUCCESS) best_ms[static_cast<size_t>(i)] = -1;
        }
        cudaEvent_t start, stop;
        SLM_CUDA_CHECK(cudaEventCreate(&start));
        SLM_CUDA_CHECK(cudaEventCreate(&stop));
        for (int round = 0; round < 2; ++round)
            for (int i = 0; i < n_candidates; ++i) {
                float& best = best_ms[static_cast<size_t>(i)];
                if (best < 0) continue;
                SLM_CUDA_CHECK(cudaEventRecord(start, stream));
                const auto& algo = p.candidates[static_cast<size_t>(i)];
                for (int r = 0; r < repeats; ++r) SLM_CUBLAS_CHECK(run(algo));
                SLM_CUDA_CHECK(cudaEventRecord(stop, stream));
                SLM_CUDA_CHECK(cudaEventSynchronize(stop));
                float ms = 0;
                SLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
                if (best == 0 || ms < best) best = ms;
            }
        (void)cudaEventDestroy(start);
        (void)cudaEventDestroy(stop);
        int chosen = 0;  // the heuristic's first (if it refused to run, the real call says so)
        for (int i = 1; i < n_candidates; ++i) {
            const float ms = best_ms[static_cast<size_t>(i)];
            if (ms > 0 && ms < best_ms[static_cast<size_t>(chosen)] &&
                ms < (1.0f - min_gain) * best_ms[0])
                chosen = i;
        }
        p.algo = p.candidates[static_cast<size_t>(chosen)];
    }

    Plan& plan(const Key& key) {
        if (auto it = plans_.find(key); it != plans_.end()) return *it->second;
        const auto replay = replay_.find(fields(key));
        // A replayed pick asks for as many candidates as when it was made: the list it is in.
        const int requested = replay != replay_.end() ? replay->second.requested : timed_candidates_;
        auto p = std::make_unique<Plan>();
        SLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t op_a = key.tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A = our B
        const cublasOperation_t op_b = key.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
        SLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a,
                                                        sizeof op_a));
        SLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b,
                                                        sizeof op_b));
        // Column-major shapes of the stored matrices: our row-major (r × c) is their (c × r).
        make_layout(&p->a, CUDA_R_16BF, key.tb ? key.k : key.n, key.tb ? key.n : key.k, key.ldb,
                    key.count, key.stride_b);
        make_layout(&p->b, CUDA_R_16BF, key.ta ? key.m : key.k, key.ta ? key.k : key.m, key.lda,
                    key.count, key.stride_a);
        make_layout(&p->c, static_cast<cudaDataType_t>(key.c_type), key.n, key.m, key.ldc,
                    key.count, key.stride_c);

        // Split-K partial sums preferably stay in fp32 (never summed in a bf16 output); when
        // cuBLASLt offers nothing under that filter, any reduction scheme is accepted.
        const uint32_t fp32_reductions =
            CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
            (key.c_type == CUDA_R_32F ? CUBLASLT_REDUCTION_SCHEME_INPLACE : 0u);
        std::array<cublasLtMatmulHeuristicResult_t, max_candidates> results{};
        int found = 0;
        for (const uint32_t reductions :
             {fp32_reductions, uint32_t{CUBLASLT_REDUCTION_SCHEME_MASK}}) {
            Preference pref;
            pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                     static_cast<uint64_t>(workspace_bytes));
            pref.set(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, reductions);
            pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b);
            pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a);
            pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c);
            pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c);
            const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
                handle_, p->desc, p->a, p->b, p->c, p->c, pref.p, requested,
                results.data(), &found);
            if (status == CUBLAS_STATUS_NOT_SUPPORTED)
                found = 0;  // "nothing fits": try the next
            else
                SLM_CUBLAS_CHECK(status);
            if (found > 0) break;
        }
        if (found == 0)
            fail("cuBLASLt has no algorithm for " +
                 describe(static_cast<Trans>(key.ta), static_cast<Trans>(key.tb), key.m, key.n,
                          key.k, key.lda, key.ldb, key.ldc) +
                 " (bf16 inputs, " + (key.c_type == CUDA_R_32F ? "fp32" : "bf16") +
                 " output, batch " + std::to_string(key.count) + ", pointer alignments " +
                 std::to_string(key.align_a) + "/" + std::to_string(key.align_b) + "/" +
                 std::to_string(key.align_c) +
                 " bytes); hint: pad the dimensions and row "
                 "strides to multiples of 8 elements");
        p->algo = results[0].algo;
        if (replay != replay_.end()) {
            int at = 0;
            while (at < found && words(results[static_cast<size_t>(at)].algo) != replay->second.algorithm) ++at;
            if (at == found)
                fail("GEMM choices from '" + replay_source_ + "': the algorithm picked for " +
                     describe(static_cast<Trans>(key.ta), static_cast<Trans>(key.tb), key.m, key.n,
                              key.k, key.lda, key.ldb, key.ldc) +
                     " is not among the " + std::to_string(found) + " cuBLASLt offers here; " +
                     "delete the file to time the GEMMs again");
            p->algo = results[static_cast<size_t>(at)].algo;
            p->tuned = true;
            p->requested = requested;
        } else {
            p->tuned = found < 2;
            if (!p->tuned) p->requested = requested;
            for (int i = 0; i < found && !p->tuned; ++i)
                p->candidates[static_cast<size_t>(p->n_candidates++)] = results[static_cast<size_t>(i)].algo;
        }
        return *plans_.emplace(key, std::move(p)).first->second;
    }

    static std::string device_identity() {
        int device = 0;
        SLM_CUDA_CHECK(cudaGetDevice(&device));
        cudaDeviceProp prop{};
        SLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        return std::string(prop.name) + " | sm_" + std::to_string(prop.major) +
               std::to_string(prop.minor) + " | cublasLt " + std::to_string(cublasLtGetVersion());
    }

    cublasLtHandle_t handle_ = nullptr;
    DeviceBuffer<std::byte> workspace_;
    std::map<Key, std::unique_ptr<Plan>> plans_;
    int timed_candidates_ = 1;
    std::string identity_;
    std::map<GemmShapeFields, GemmChoice> replay_;  // picks to replay, by shape
    std::string replay_source_;
};

}  // namespace slm::cuda
