#pragma once
// Gradient buckets: the flat gradient buffer reduced in pieces of at most a byte budget, one
// collective each, so a large model never needs one giant collective and a bucket can start as
// soon as its gradients are complete. 25 MiB is PyTorch DDP's default: large enough that each
// collective runs near link bandwidth, small enough that the first can start early.
#include <algorithm>
#include <cstdint>
#include <functional>

#include "slm/core/op_profile.hpp"

namespace slm::parallel {

inline constexpr int64_t default_bucket_bytes = int64_t{25} << 20;

// Elements of T in a bucket of `bytes` (at least one).
template <class T>
int64_t bucket_elements(int64_t bytes) {
    return std::max<int64_t>(1, bytes / static_cast<int64_t>(sizeof(T)));
}

// Device gradients summed over ranks in place, bucket by bucket, queued on the backend's stream
// and timed there as communication. grads: device (n).
template <class Comm, class Backend, class Grad>
void all_reduce_in_buckets(const Comm& comm, Backend& backend, Grad* grads, int64_t n,
                           int64_t bucket_bytes) {
    const int64_t per = bucket_elements<Grad>(bucket_bytes);
    const auto timed = backend.op_scope(Op::communication);
    for (int64_t at = 0; at < n; at += per)
        comm.all_reduce_sum(grads + at, std::min(per, n - at), backend.stream());
}

// The device storage of Ddp that launches each bucket's all-reduce during the backward, on a
// communication stream, as soon as the bucket's units' gradients are complete:
// StreamBuckets<Comm>::Store<Backend>, defined beside the communicator (nccl_buckets.cuh for
// Nccl), so host-only code never needs CUDA.
template <class Comm>
struct StreamBuckets {
    static_assert(sizeof(Comm) == 0,
                  "Ddp on device buffers: include slm/parallel/nccl/buckets.cuh (the Nccl version)");
};

}  // namespace slm::parallel
