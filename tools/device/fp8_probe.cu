// Which cuBLASLt FP8 GEMM configurations run on this GPU (a diagnostic for fp8_gemm.cuh): TN,
// E4M3 x E4M3, m=256 n=2304 k=768, for C/D types bf16/bf16, fp32/fp32, bf16 C with fp32 D, with
// and without scale pointers. Prints the heuristic's and the matmul's status for each.
//   nvcc -std=c++17 -arch=sm_90a tools/device/fp8_probe.cu -lcublasLt -o fp8_probe && ./fp8_probe
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

int main() {
    cublasLtHandle_t h;
    cublasLtCreate(&h);
    const int64_t m = 256, n = 2304, k = 768;
    void *a, *b, *c, *ws, *scales;
    cudaMalloc(&a, m * k);
    cudaMalloc(&b, n * k);
    cudaMalloc(&c, m * n * 4);
    cudaMalloc(&ws, 32 << 20);
    cudaMalloc(&scales, 512);
    float ones[128];
    for (float& o : ones) o = 1;
    cudaMemcpy(scales, ones, sizeof ones, cudaMemcpyHostToDevice);
    cudaMemset(a, 0x38, m * k);
    cudaMemset(b, 0x38, n * k);
    struct Case {
        const char* what;
        cudaDataType_t ct, dt;
        bool scales;
        float beta;
        int b_offset = 1;  // floats between the A and B scale pointers
    };
    for (const Case cs : {Case{"bf16 C, bf16 D, scales", CUDA_R_16BF, CUDA_R_16BF, true, 0},
                          Case{"fp32 C, fp32 D, scales", CUDA_R_32F, CUDA_R_32F, true, 0},
                          Case{"fp32 C, fp32 D, scales, beta 1", CUDA_R_32F, CUDA_R_32F, true, 1},
                          Case{"fp32 C, fp32 D, no scales", CUDA_R_32F, CUDA_R_32F, false, 0},
                          Case{"bf16 C, fp32 D, scales", CUDA_R_16BF, CUDA_R_32F, true, 0},
                          Case{"bf16 C, bf16 D, no scales", CUDA_R_16BF, CUDA_R_16BF, false, 0},
                          Case{"bf16 C, bf16 D, scales 16 B apart", CUDA_R_16BF, CUDA_R_16BF, true, 0, 4},
                          Case{"fp32 C, fp32 D, scales 16 B apart", CUDA_R_32F, CUDA_R_32F, true, 0, 4},
                          Case{"fp32 beta 1, scales 256 B apart", CUDA_R_32F, CUDA_R_32F, true, 1, 64}}) {
        cublasLtMatmulDesc_t d;
        cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn);
        if (cs.scales) {
            const float* sa = static_cast<float*>(scales);
            const float* sb = sa + cs.b_offset;
            cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa);
            cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb);
        }
        cublasLtMatrixLayout_t la, lb, lc, ld;
        cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, k, n, k);
        cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, k, m, k);
        cublasLtMatrixLayoutCreate(&lc, cs.ct, n, m, n);
        cublasLtMatrixLayoutCreate(&ld, cs.dt, n, m, n);
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        uint64_t w = 32 << 20;
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &w, sizeof w);
        cublasLtMatmulHeuristicResult_t r{};
        int found = 0;
        const auto hs = cublasLtMatmulAlgoGetHeuristic(h, d, la, lb, lc, ld, pref, 1, &r, &found);
        float alpha = 1;
        cublasStatus_t ms = CUBLAS_STATUS_NOT_SUPPORTED;
        if (hs == CUBLAS_STATUS_SUCCESS && found)
            ms = cublasLtMatmul(h, d, &alpha, b, la, a, lb, &cs.beta, c, lc, c, ld, &r.algo, ws, w, 0);
        const auto e = cudaDeviceSynchronize();
        std::printf("%-34s heuristic %d found %d matmul %d (%s) cuda %s\n", cs.what, hs, found, ms,
                    cublasLtGetStatusString(ms), cudaGetErrorString(e));
    }
    return 0;
}
