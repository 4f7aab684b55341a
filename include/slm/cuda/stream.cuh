#pragma once
// RAII for CUDA streams and events. A backend owns one Stream and issues every kernel, copy and
// GEMM on it, so its ops run in program order without host synchronisation; Events time ops and
// tell when an asynchronous copy has finished with its source.
#include <cuda_runtime.h>

#include <utility>

#include "slm/cuda/check.cuh"

namespace slm::cuda {

class Stream {
public:
    // Non-blocking: no implicit ordering with the legacy default stream, so other libraries'
    // work on it (and other streams later: communication) can overlap with ours.
    Stream() { SLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
    ~Stream() {
        if (stream_) (void)cudaStreamDestroy(stream_);  // pending work still completes
    }
    Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
    Stream& operator=(Stream&& other) noexcept {
        if (this != &other) {
            if (stream_) (void)cudaStreamDestroy(stream_);
            stream_ = std::exchange(other.stream_, nullptr);
        }
        return *this;
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    cudaStream_t get() const { return stream_; }
    void synchronize() const { SLM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

private:
    cudaStream_t stream_ = nullptr;
};

class Event {
public:
    // timing = false makes record/query cheaper (no timestamp).
    explicit Event(bool timing = true) {
        SLM_CUDA_CHECK(
            cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
    }
    ~Event() {
        if (event_) (void)cudaEventDestroy(event_);
    }
    Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
    Event& operator=(Event&& other) noexcept {
        if (this != &other) {
            if (event_) (void)cudaEventDestroy(event_);
            event_ = std::exchange(other.event_, nullptr);
        }
        return *this;
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    cudaEvent_t get() const { return event_; }
    void record(cudaStream_t stream) { SLM_CUDA_CHECK(cudaEventRecord(event_, stream)); }
    void synchronize() const { SLM_CUDA_CHECK(cudaEventSynchronize(event_)); }
    // True once all work captured by the last record() has completed.
    bool done() const {
        const cudaError_t e = cudaEventQuery(event_);
        if (e == cudaErrorNotReady) {
            (void)cudaGetLastError();  // "not ready" is an answer, not an error: do not leave it
            return false;
        }
        SLM_CUDA_CHECK(e);
        return true;
    }
    // Milliseconds between two recorded events (both created with timing).
    static float elapsed_ms(const Event& start, const Event& stop) {
        float ms = 0;
        SLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, stop.event_));
        return ms;
    }

private:
    cudaEvent_t event_ = nullptr;
};

}  // namespace slm::cuda
