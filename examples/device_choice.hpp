#pragma once
// Which backends this build of an example program has, and whether a GPU is there to use: the
// programs compiled by nvcc run on the GPU when one is visible and on the CPU otherwise.
#if defined(__CUDACC__)
#include <cuda_runtime.h>
#endif

namespace slm::cli {

constexpr bool built_with_cuda() {
#if defined(__CUDACC__)
    return true;
#else
    return false;
#endif
}

inline bool gpu_present() {
#if defined(__CUDACC__)
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
#else
    return false;
#endif
}

}  // namespace slm::cli
