#pragma once
// What kernels tell the host: bad input they met (an id outside the vocabulary) and the loss. It
// lives in device memory, one per backend; kernels write it without stopping, and the backend
// reads it back at its synchronisation points (the loss, synchronize(), download(),
// sum_of_squares()) and throws slm::Error there, naming the first offending position.
#include <cuda_runtime.h>

#include <cstdint>

namespace slm::cuda {

struct DeviceReport {
    static constexpr unsigned long long none = ~0ull;
    // (position << 32 | id) of the first out-of-range id: atomicMin keeps the lowest position.
    unsigned long long bad_token = none;   // embedding_forward
    unsigned long long bad_target = none;  // lm_head_cross_entropy
    double loss_sum = 0;                   // Σ per-token loss of the last lm_head_cross_entropy
    int counted = 0;                       // its targets that were not ignore_index
};

__device__ __forceinline__ void report_bad_id(unsigned long long* slot, int64_t position,
                                              int32_t id) {
    atomicMin(slot, (static_cast<unsigned long long>(position) << 32) | static_cast<uint32_t>(id));
}

inline int64_t reported_position(unsigned long long packed) {
    return static_cast<int64_t>(packed >> 32);
}
inline int32_t reported_id(unsigned long long packed) {
    return static_cast<int32_t>(static_cast<uint32_t>(packed & 0xffffffffull));
}

}  // namespace slm::cuda
