#pragma once
// The FP8 GEMM of a linear layer through cuBLASLt: c = a · bᵀ / (a_scale · b_scale), where a and
// b hold FP8 codes cast with per-tensor scales (fp8_cast.cuh: code = fp8(x · scale)), both
// row-major and contiguous along k:
//   a: (m, k)  the activations (or, for the backward GEMMs, dY / dYᵀ stored k-contiguous)
//   b: (n, k)  the weight W as stored, (out, in)
//   c: (m, n)  bf16 or fp32, row-major
// as precision::emulated_gemm computes it on the CPU (tests/cuda/fp8_gemm.cu compares them).
//
// Why this layout: Hopper's FP8 tensor-core GEMMs take only "TN" in cuBLASLt's column-major terms
// (the first operand transposed, the second not), i.e. both operands k-major. Our row-major c is
// their column-major cᵀ (n × m), and cᵀ = b · aᵀ: cuBLASLt's A is our b (k × n column-major,
// transposed), its B our a (k × m, not transposed).
//
// The scales: cuBLASLt multiplies the product by the values behind its A/B scale pointers, so it
// gets the inverses, computed on the device from the cast's device scales (no host sync). Compute
// in fp32; `fast_accumulation` lets the tensor cores keep their partial sums in their own reduced
// precision for longer (faster, less exact; Transformer Engine uses it for the forward GEMM).
// E5M2 × E5M2 is not a cuBLASLt combination (gradients pair E5M2 with E4M3 weights).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>

#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/vector.cuh"
#include "slm/precision/fp8.hpp"

namespace slm::cuda {

namespace fp8_gemm_detail {

// cuBLASLt runs an FP8 GEMM only when its scale pointers are 16-byte aligned (with them 4 bytes
// apart every matmul returned NOT_SUPPORTED on an H100 under CUDA 13.0, although the heuristic
// offered an algorithm: tools/device/fp8_probe.cu). So the two inverses sit 16 bytes apart.
inline constexpr int inverse_stride = 4;  // floats

// inverse[0] = 1 / b_scale (cuBLASLt's A), inverse[inverse_stride] = 1 / a_scale (its B).
static __global__ void inverse_scales_kernel(const float* a_scale, const float* b_scale, float* inverse) {
    inverse[0] = 1.0f / *b_scale;
    inverse[inverse_stride] = 1.0f / *a_scale;
}

inline cudaDataType_t fp8_type(precision::Fp8Format f) {
    return f == precision::Fp8Format::e4m3 ? CUDA_R_8F_E4M3 : CUDA_R_8F_E5M2;
}

}  // namespace fp8_gemm_detail

class Fp8Gemm {
public:
    static constexpr int64_t workspace_bytes = int64_t{32} << 20;

    Fp8Gemm() : workspace_(workspace_bytes), inverse_(2 * fp8_gemm_detail::inverse_stride) { SLM_CUBLAS_CHECK(cublasLtCreate(&handle_)); }
    ~Fp8Gemm() {
        plans_.clear();  // descriptors before the handle
        if (handle_) (void)cublasLtDestroy(handle_);
    }
    Fp8Gemm(const Fp8Gemm&) = delete;
    Fp8Gemm& operator=(const Fp8Gemm&) = delete;

    // Whether operator() takes a GEMM with this n and k and these operands: FP8 rows of 16 bytes
    // (k and n multiples of 16) and 16-byte aligned pointers.
    static bool takes(int64_t n, int64_t k, std::initializer_list<const void*> pointers) {
        return n > 0 && k > 0 && n % 16 == 0 && k % 16 == 0 && aligned_to(16, pointers);
    }

    // a_scale, b_scale: device floats. One stream at a time: the inverse scales live in one buffer.
    // accumulate: c += the product (beta 1; a weight gradient adding up over micro-batches).
    template <class C>
    void operator()(cudaStream_t stream, const uint8_t* a, precision::Fp8Format a_format, const float* a_scale,
                    const uint8_t* b, precision::Fp8Format b_format, const float* b_scale, C* c, int64_t m,
                    int64_t n, int64_t k, bool fast_accumulation = false, bool accumulate = false) {
        static_assert(std::is_same_v<C, __nv_bfloat16> || std::is_same_v<C, float>,
                      "FP8 GEMM output must be __nv_bfloat16 or float");
        if (m == 0 || n == 0) return;
        const std::string shape = "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
        require(m > 0 && n > 0 && k > 0, "FP8 GEMM sizes must be positive: " + shape);
        // FP8 kernels read 16-byte rows: k (the leading dimension of both operands) and n (c's)
        // must be multiples of 16, and every pointer 16-byte aligned.
        require(k % 16 == 0 && n % 16 == 0,
                "FP8 GEMM needs k and n to be multiples of 16 (16-byte FP8 rows), got " + shape);
        require(aligned_to(16, {a, b, c}), "FP8 GEMM: a, b and c must be 16-byte aligned");
        require(!(a_format == precision::Fp8Format::e5m2 && b_format == precision::Fp8Format::e5m2),
                "FP8 GEMM: E5M2 x E5M2 is not supported by cuBLASLt; cast one operand to E4M3");
        fp8_gemm_detail::inverse_scales_kernel<<<1, 1, 0, stream>>>(a_scale, b_scale, inverse_.data());
        SLM_CUDA_CHECK_LAUNCH("fp8 inverse_scales_kernel");
        const Key key{m, n, k, static_cast<int>(a_format), static_cast<int>(b_format),
                      std::is_same_v<C, float> ? 1 : 0, fast_accumulation ? 1 : 0};
        Plan& p = plan(key, std::is_same_v<C, float> ? CUDA_R_32F : CUDA_R_16BF);
        const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
        SLM_CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c,
                                        &p.algo, workspace_.data(), static_cast<size_t>(workspace_bytes),
                                        stream));
    }

private:
    using Key = std::tuple<int64_t, int64_t, int64_t, int, int, int, int>;
    struct Plan {
        cublasLtMatmulDesc_t desc = nullptr;
        cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
        cublasLtMatmulAlgo_t algo{};
        ~Plan() {
            if (a) (void)cublasLtMatrixLayoutDestroy(a);
            if (b) (void)cublasLtMatrixLayoutDestroy(b);
            if (c) (void)cublasLtMatrixLayoutDestroy(c);
            if (desc) (void)cublasLtMatmulDescDestroy(desc);
        }
    };

    Plan& plan(const Key& key, cudaDataType_t c_type) {
        if (auto it = plans_.find(key); it != plans_.end()) return *it->second;
        const auto [m, n, k, a_format, b_format, fp32_out, fast] = key;
        auto p = std::make_unique<Plan>();
        SLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t op_a = CUBLAS_OP_T, op_b = CUBLAS_OP_N;  // "TN"
        set(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, op_a);
        set(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, op_b);
        const float* inverse_a = inverse_.data();
        const float* inverse_b = inverse_.data() + fp8_gemm_detail::inverse_stride;
        set(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, inverse_a);
        set(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, inverse_b);
        const int8_t fast_accum = static_cast<int8_t>(fast);
        set(p->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, fast_accum);
        // Column-major: cuBLASLt's A = our b, (k × n), ld k; its B = our a, (k × m), ld k; C (n × m), ld n.
        const auto b_type = fp8_gemm_detail::fp8_type(static_cast<precision::Fp8Format>(b_format));
        const auto a_type = fp8_gemm_detail::fp8_type(static_cast<precision::Fp8Format>(a_format));
        SLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, b_type, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
        SLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, a_type, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k));
        SLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, c_type, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n));
        cublasLtMatmulPreference_t pref = nullptr;
        SLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        const uint64_t workspace = workspace_bytes;
        SLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                              &workspace, sizeof workspace));
        cublasLtMatmulHeuristicResult_t result{};
        int found = 0;
        const cublasStatus_t status =
            cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &found);
        (void)cublasLtMatmulPreferenceDestroy(pref);
        require(status == CUBLAS_STATUS_SUCCESS && found > 0,
                "cuBLASLt has no FP8 GEMM algorithm for m=" + std::to_string(m) + " n=" + std::to_string(n) +
                    " k=" + std::to_string(k) + (fp32_out ? ", fp32" : ", bf16") +
                    " output on this GPU (FP8 tensor cores need sm_89 or newer)");
        p->algo = result.algo;
        return *plans_.emplace(key, std::move(p)).first->second;
    }

    template <class V>
    static void set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const V& value) {
        SLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof value));
    }

    cublasLtHandle_t handle_ = nullptr;
    DeviceBuffer<std::byte> workspace_;
    DeviceBuffer<float> inverse_;
    std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace slm::cuda
