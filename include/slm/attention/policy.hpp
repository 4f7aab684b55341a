#pragma once
// Attention policies are empty tag types; the work is done by AttentionKernel<Policy, Backend>,
// specialised once per (policy, backend) pair next to that backend's implementation.
//
// Contract of a specialisation (all tensors on the backend's device):
//   static AttentionFootprint footprint(const AttentionShape&)
//       bytes kept per layer between forward and backward, and scratch for backward.
//   static void forward(Backend&, const AttentionShape&, const Act* qkv, Act* out, void* saved)
//       qkv: (B·T, qkv_stride) with q and k already rotated; out: (B·T, heads·head_dim).
//   static void backward(Backend&, const AttentionShape&, const Act* qkv, const Act* out,
//                        const Act* d_out, const void* saved, void* scratch, Act* d_qkv)
//       d_qkv: (B·T, qkv_stride), every element written.
// Optional, used by the model when present:
//   static void backward_through_rope(Backend&, const AttentionShape&, double theta, <backward's
//                                     arguments>)
//       backward() followed by RoPE's backward on d_qkv's q and k parts, with whatever of the
//       latter the kernel can fuse (the GPU Flash kernels rotate dQ in their dQ conversion).
// Causal, scale 1/sqrt(head_dim).
#include <concepts>
#include <cstdint>
#include <string_view>

#include "slm/core/shapes.hpp"

namespace slm::attention {

template <class Policy>
concept AttentionPolicy = requires {
    { Policy::name } -> std::convertible_to<std::string_view>;
    { Policy::supports_head_dim(int64_t{}) } -> std::same_as<bool>;
    // Whether it keeps the (T × T) probabilities for the backward (the throughput and memory
    // models price its memory traffic, not its FLOPs).
    { Policy::keeps_probabilities } -> std::convertible_to<bool>;
};

template <class>
inline constexpr bool not_implemented = false;

template <class Policy, class Backend>
struct AttentionKernel {
    static_assert(not_implemented<Policy>,
                  "this attention policy has no implementation for this backend: include its "
                  "header for the backend (e.g. slm/cpu/attention/flash.hpp or slm/cuda/attention/flash.cuh) or pick another policy");
};

}  // namespace slm::attention
