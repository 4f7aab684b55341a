// A kernel whose warpgroup MMAs ptxas must serialize: the wait for the MMA sits in a branch that
// depends on the thread (C7518). tools/check_wgmma_schedule.sh must name it (tests/CMakeLists.txt).
#include <cstdint>

#include "slm/cuda/wgmma.cuh"

__global__ void deliberately_serialized_kernel(float* out, uint64_t a, uint64_t b, int steps) {
    namespace wg = slm::cuda::wgmma;
    float d[32];
    for (int s = 0; s < steps; ++s) {
        wg::fence();
        wg::mma_ss<0, 0>(d, a + s, b, s > 0);
        wg::commit();
        if (threadIdx.x % 3 == 0) wg::wait<0>();
        wg::fence_operands(d);
        for (int i = 0; i < 32; ++i) out[threadIdx.x * 32 + i] += d[i];
    }
}
