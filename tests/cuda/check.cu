// include/slm/cuda/check.cuh and memory.cuh: failures become slm::Error messages that name the
// call, the place and a hint; out of memory says how much was asked and how much is free.
#include <doctest/doctest.h>

#include <cstddef>
#include <string>

#include "cuda/device_data.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"

using namespace slm::test;

TEST_CASE("SLM_CUDA_CHECK throws slm::Error with the call text, file:line and a hint") {
    if (!gpu_available()) return;
    int count = 0;
    SLM_CUDA_CHECK(cudaGetDeviceCount(&count));
    std::string message;
    CHECK(throws_error_containing([&] { SLM_CUDA_CHECK(cudaSetDevice(count + 7)); },
                                  "cudaSetDevice(count + 7)", &message));
    CAPTURE(message);
    CHECK(message.find("check.cu:") != std::string::npos);
    CHECK(message.find("hint:") != std::string::npos);
    CHECK(message.find("cudaErrorInvalidDevice") != std::string::npos);
    (void)cudaGetLastError();
    SLM_CUDA_CHECK(cudaSetDevice(0));  // the failed call changed nothing
}

TEST_CASE("SLM_CUBLAS_CHECK names the status and the call") {
    if (!gpu_available()) return;
    cublasLtMatmulDesc_t desc = nullptr;
    SLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op = CUBLAS_OP_T;
    std::string message;
    // A documented failure: the attribute's size does not match its storage.
    CHECK(throws_error_containing(
        [&] {
            SLM_CUBLAS_CHECK(
                cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op, 1));
        },
        "cublasLtMatmulDescSetAttribute", &message));
    CAPTURE(message);
    CHECK(message.find("CUBLAS_STATUS_INVALID_VALUE") != std::string::npos);
    CHECK(message.find("hint:") != std::string::npos);
    SLM_CUBLAS_CHECK(cublasLtMatmulDescDestroy(desc));
}

TEST_CASE("out of GPU memory: the message gives the bytes asked for and the bytes free") {
    if (!gpu_available()) return;
    slm::cuda::Backend backend;
    const int64_t absurd = int64_t{1} << 50;  // 1 PiB
    std::string message;
    CHECK(throws_error_containing([&] { (void)backend.allocate<std::byte>(absurd); },
                                  "out of GPU memory", &message));
    CAPTURE(message);
    CHECK(message.find(std::to_string(absurd) + " bytes") != std::string::npos);
    CHECK(message.find("free of") != std::string::npos);
    // The failure is not sticky: the backend keeps working.
    auto small = backend.allocate<float>(1000);
    backend.synchronize();
    CHECK(small.size() == 1000);
}
