#pragma once
// Per-op GPU timing for cuda::Backend: with profiling on, each op is bracketed by two CUDA events
// on the backend's stream; collect() waits once and sums the elapsed times by kind. Events come
// from a pool reused across steps. Recording costs the host a few microseconds per op, so
// profiled steps of launch-bound models run slightly slower than unprofiled ones.
#include <cuda_runtime.h>

#include <array>
#include <vector>

#include "slm/core/op_profile.hpp"
#include "slm/cuda/check.cuh"

namespace slm::cuda {

class OpTimer {
public:
    class Scope {
    public:
        Scope(OpTimer* t, Op op, cudaStream_t stream)
            : timer_(t && t->enabled_ ? t : nullptr), op_(op), stream_(stream) {
            if (timer_) start_ = timer_->record(stream_);
        }
        ~Scope() {
            if (timer_) timer_->spans_.push_back({op_, start_, timer_->record(stream_)});
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        OpTimer* timer_;
        Op op_;
        cudaStream_t stream_;
        size_t start_ = 0;
    };

    OpTimer() = default;
    OpTimer(const OpTimer&) = delete;
    OpTimer& operator=(const OpTimer&) = delete;
    ~OpTimer() {
        for (cudaEvent_t e : pool_) (void)cudaEventDestroy(e);
    }

    Scope scope(Op op, cudaStream_t stream) { return Scope(this, op, stream); }
    void enable(bool on) { enabled_ = on; }
    bool enabled() const { return enabled_; }

    // Waits for the recorded ops and returns their seconds by kind since the last collect().
    std::array<double, op_count> collect() {
        std::array<double, op_count> seconds{};
        if (!spans_.empty()) SLM_CUDA_CHECK(cudaEventSynchronize(pool_[spans_.back().end]));
        for (const Span& s : spans_) {
            float ms = 0;
            SLM_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[s.start], pool_[s.end]));
            seconds[static_cast<size_t>(s.op)] += ms / 1e3;
        }
        spans_.clear();
        used_ = 0;
        return seconds;
    }

private:
    struct Span {
        Op op;
        size_t start, end;
    };

    size_t record(cudaStream_t stream) {
        if (used_ == pool_.size()) {
            cudaEvent_t e;
            SLM_CUDA_CHECK(cudaEventCreate(&e));
            pool_.push_back(e);
        }
        SLM_CUDA_CHECK(cudaEventRecord(pool_[used_], stream));
        return used_++;
    }

    bool enabled_ = false;
    std::vector<cudaEvent_t> pool_;
    size_t used_ = 0;
    std::vector<Span> spans_;
};

}  // namespace slm::cuda
