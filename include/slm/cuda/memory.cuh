#pragma once
// Owning device and pinned host memory. DeviceBuffer<T> is what cuda::Backend::Buffer<T> is: it
// owns `size()` elements, moves, never copies, and frees itself. An allocation that does not fit
// says how much was asked and how much is free, so the caller can set it beside its estimate.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "slm/core/accounting.hpp"
#include "slm/core/error.hpp"
#include "slm/cuda/check.cuh"

namespace slm::cuda {

namespace detail {
inline std::string bytes_text(int64_t bytes) {
    return std::to_string(bytes) + " bytes (" + format_gib(bytes) + ")";
}
}  // namespace detail

// cudaMalloc with an out-of-memory message that carries the numbers.
inline void* device_allocate(int64_t bytes) {
    require(bytes >= 0, "device_allocate: negative size " + std::to_string(bytes));
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, static_cast<size_t>(bytes));
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();  // not sticky: clear it so later checks do not see it
        size_t free = 0, total = 0;
        int device = -1;
        (void)cudaGetDevice(&device);
        (void)cudaMemGetInfo(&free, &total);
        throw Error("out of GPU memory: cudaMalloc of " + detail::bytes_text(bytes) +
                    " failed on device " + std::to_string(device) + " with " +
                    detail::bytes_text(static_cast<int64_t>(free)) + " free of " +
                    detail::bytes_text(static_cast<int64_t>(total)) +
                    "; hint: lower the micro-batch or the sequence length, or shard the model "
                    "state with a Zero<k> policy");
    }
    detail::check_cuda(e, ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str(), __FILE__,
                       __LINE__);
    return p;
}

// n elements of T in device memory, uninitialised (cuda::Backend::allocate zero-fills).
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(int64_t n)
        : data_(static_cast<T*>(device_allocate(n * static_cast<int64_t>(sizeof(T))))), size_(n) {}
    ~DeviceBuffer() { release(); }

    DeviceBuffer(DeviceBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    T* data() { return data_; }
    const T* data() const { return data_; }
    int64_t size() const { return size_; }
    int64_t bytes() const { return size_ * static_cast<int64_t>(sizeof(T)); }
    bool empty() const { return size_ == 0; }

private:
    void release() noexcept {
        // cudaFree waits for the device to finish with the memory. A destructor cannot throw;
        // an error here means the context is already broken and the next checked call reports it.
        if (data_) (void)cudaFree(data_);
        data_ = nullptr;
        size_ = 0;
    }

    T* data_ = nullptr;
    int64_t size_ = 0;
};

// Page-locked host memory: the source of truly asynchronous host-to-device copies.
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(int64_t bytes) : bytes_(bytes) {
        if (bytes > 0) SLM_CUDA_CHECK(cudaMallocHost(&data_, static_cast<size_t>(bytes)));
    }
    ~PinnedBuffer() {
        if (data_) (void)cudaFreeHost(data_);
    }
    PinnedBuffer(PinnedBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
        if (this != &other) {
            if (data_) (void)cudaFreeHost(data_);
            data_ = std::exchange(other.data_, nullptr);
            bytes_ = std::exchange(other.bytes_, 0);
        }
        return *this;
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* data() { return data_; }
    int64_t bytes() const { return bytes_; }

private:
    void* data_ = nullptr;
    int64_t bytes_ = 0;
};

// Bytes rounded up so consecutive regions carved from one block stay 256-byte aligned.
inline int64_t aligned_bytes(int64_t bytes) { return (bytes + 255) / 256 * 256; }

// Scratch device memory an op needs only while it runs (sort keys, partial sums). One block,
// grown on demand and reused by every op of a backend: ops run in stream order, so one op's use
// ends before the next op's begins. Growing waits for the stream before freeing the old block.
class Workspace {
public:
    std::byte* get(int64_t bytes, cudaStream_t stream) {
        if (bytes > buffer_.size()) {
            SLM_CUDA_CHECK(cudaStreamSynchronize(stream));
            buffer_ = DeviceBuffer<std::byte>();
            buffer_ = DeviceBuffer<std::byte>(aligned_bytes(bytes + bytes / 4));
        }
        return buffer_.data();
    }
    int64_t bytes() const { return buffer_.size(); }

private:
    DeviceBuffer<std::byte> buffer_;
};

}  // namespace slm::cuda
