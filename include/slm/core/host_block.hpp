#pragma once
// Host memory for state that crosses between a backend and the host in bulk (checkpoint
// snapshots): a backend may hand out page-locked memory, which its copies fill at full bus speed,
// by defining allocate_host(bytes) (cuda::Backend does); otherwise it is plain memory.
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace slm {

using HostBlock = std::unique_ptr<std::byte[], void (*)(std::byte*)>;

inline HostBlock plain_host_block(size_t bytes) {
    auto* p = static_cast<std::byte*>(std::malloc(bytes > 0 ? bytes : 1));
    if (!p) throw std::bad_alloc();
    return HostBlock(p, [](std::byte* q) { std::free(q); });
}

template <class B>
HostBlock host_block(B& backend, size_t bytes) {
    if constexpr (requires { backend.allocate_host(bytes); }) return backend.allocate_host(bytes);
    else return plain_host_block(bytes);
}

}  // namespace slm
