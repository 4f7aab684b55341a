#pragma once
// Host-to-device copies whose source the caller may reuse as soon as the call returns, without
// stalling the stream. Small copies (tokens, targets: every step) go through pinned staging
// slots: the host array is copied into a free slot and the device copy is queued asynchronously;
// a slot is reused once the copy out of it has completed. Large copies (whole parameter sets,
// rare) are queued and waited for, which needs no pinned memory of their size.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/stream.cuh"

namespace slm::cuda {

class UploadStaging {
public:
    static constexpr int64_t max_staged_bytes = int64_t{4} << 20;  // larger copies wait instead
    static constexpr size_t max_slots = 8;

    void upload(void* dst, const void* src, int64_t bytes, cudaStream_t stream) {
        if (bytes <= 0) return;
        if (bytes > max_staged_bytes) {
            SLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes),
                                           cudaMemcpyHostToDevice, stream));
            SLM_CUDA_CHECK(cudaStreamSynchronize(stream));
            return;
        }
        Slot& slot = acquire(bytes);
        std::memcpy(slot.host.data(), src, static_cast<size_t>(bytes));
        SLM_CUDA_CHECK(cudaMemcpyAsync(dst, slot.host.data(), static_cast<size_t>(bytes),
                                       cudaMemcpyHostToDevice, stream));
        slot.copied.record(stream);
    }

private:
    struct Slot {
        PinnedBuffer host;
        Event copied{false};
    };

    // A slot large enough whose last copy has finished; else a new one; else wait for the oldest.
    Slot& acquire(int64_t bytes) {
        for (auto& s : slots_)
            if (s->host.bytes() >= bytes && s->copied.done()) return *s;
        const int64_t size = std::max<int64_t>(bytes, int64_t{64} << 10);
        if (slots_.size() < max_slots) {
            slots_.push_back(std::make_unique<Slot>());
            slots_.back()->host = PinnedBuffer(size);
            return *slots_.back();
        }
        Slot& s = *slots_[next_++ % slots_.size()];
        s.copied.synchronize();
        if (s.host.bytes() < bytes) s.host = PinnedBuffer(size);
        return s;
    }

    std::vector<std::unique_ptr<Slot>> slots_;
    size_t next_ = 0;
};

}  // namespace slm::cuda
