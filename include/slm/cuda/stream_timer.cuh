#pragma once
// The time a piece of host code's GPU work takes on one stream, by CUDA events recorded around
// it: what benchmarks and the sweep report as one step's duration.
#include <cuda_runtime.h>

#include <functional>

#include "slm/cuda/check.cuh"

namespace slm::cuda {

inline double seconds_on_stream(cudaStream_t stream, const std::function<void()>& work) {
    cudaEvent_t start, stop;
    SLM_CUDA_CHECK(cudaEventCreate(&start));
    SLM_CUDA_CHECK(cudaEventCreate(&stop));
    SLM_CUDA_CHECK(cudaEventRecord(start, stream));
    work();
    SLM_CUDA_CHECK(cudaEventRecord(stop, stream));
    SLM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    SLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms / 1e3;
}

}  // namespace slm::cuda
