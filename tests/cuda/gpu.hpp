#pragma once
// Every GPU test case begins with
//     if (!slm::test::gpu_available()) return;
// On a machine without a usable GPU it prints "skipped: no GPU (<reason>)", which ctest's
// SKIP_REGULAR_EXPRESSION turns into a skip: the case is counted as skipped, not as passed.
#include <cuda_runtime.h>

#include <cstdio>

namespace slm::test {

inline bool gpu_available() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        std::printf("skipped: no GPU (cudaGetDeviceCount: %s)\n", cudaGetErrorString(e));
        std::fflush(stdout);
        return false;
    }
    if (count == 0) {
        std::printf("skipped: no GPU (no CUDA device visible)\n");
        std::fflush(stdout);
        return false;
    }
    return true;
}

}  // namespace slm::test
