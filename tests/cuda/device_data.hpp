#pragma once
// Test data between the host and a cuda::Backend: bf16 rounding on the host (the reference is
// always computed in double from exactly the bf16 values the GPU sees), uploads and downloads.
#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "slm/cuda/backend.cuh"

namespace slm::test {

using bf16 = __nv_bfloat16;

inline std::vector<bf16> to_bf16(const std::vector<double>& v) {
    std::vector<bf16> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16_rn(static_cast<float>(v[i]));
    return out;
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
    std::vector<double> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        if constexpr (std::is_same_v<T, bf16>)
            out[i] = static_cast<double>(__bfloat162float(v[i]));
        else
            out[i] = static_cast<double>(v[i]);
    }
    return out;
}

inline std::vector<float> to_float(const std::vector<double>& v) {
    return std::vector<float>(v.begin(), v.end());
}

// The bits of a bf16, for exact comparisons.
inline uint16_t bits(bf16 x) {
    uint16_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

inline std::vector<uint16_t> bits_of(const std::vector<bf16>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = bits(v[i]);
    return out;
}

template <class T>
cuda::DeviceBuffer<T> to_device(cuda::Backend& backend, const std::vector<T>& host) {
    auto buffer = backend.allocate<T>(static_cast<int64_t>(host.size()));
    backend.upload(buffer.data(), host.data(), static_cast<int64_t>(host.size()));
    return buffer;
}

template <class T>
std::vector<T> to_host(cuda::Backend& backend, const T* device, int64_t n) {
    std::vector<T> host(static_cast<size_t>(n));
    backend.download(host.data(), device, n);
    return host;
}

template <class T>
std::vector<T> to_host(cuda::Backend& backend, const cuda::DeviceBuffer<T>& buffer) {
    return to_host(backend, buffer.data(), buffer.size());
}

// a[begin, begin + n) as its own vector
template <class T>
std::vector<T> slice(const std::vector<T>& a, int64_t begin, int64_t n) {
    return std::vector<T>(a.begin() + begin, a.begin() + begin + n);
}

// Runs `f`, which must throw slm::Error whose message contains `needle`.
template <class F>
bool throws_error_containing(F&& f, const std::string& needle, std::string* message = nullptr) {
    try {
        f();
    } catch (const slm::Error& e) {
        if (message) *message = e.what();
        return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
}

}  // namespace slm::test
