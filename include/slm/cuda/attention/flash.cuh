#pragma once
// attention::Flash on the GPU: fused causal attention in the FlashAttention-2 scheme, our own
// kernels on bf16 mma.sync tensor-core instructions (flash_forward.cuh, flash_backward.cuh,
// flash_backward_dq.cuh) and, on Hopper, on warpgroup MMAs (flash_forward_wgmma.cuh,
// flash_backward_wgmma.cuh; with a producer warp and the bulk copy engine, flash_forward_tma.cuh,
// the default forward at tiles 128 wide, and flash_backward_tma.cuh, a candidate). Nothing of size
// T × T ever reaches device memory: forward keeps only the output and one fp32 log-sum-exp per
// (sequence, head, position); backward recomputes the probabilities tile by tile from it.
// Grouped-query attention reads each kv head in place from the fused qkv rows for all query heads
// of its group.
//
// The modes (backward and forward kernels, chosen at compile time) are flash_modes.cuh's.
// Supported head_dim: 32, 48, 64, 80, 96, 128 and 256; anything else throws. On a Hopper every
// one runs the warpgroup kernels (32 and 48 in tiles 64 wide, 80 and 96 in tiles 128 wide);
// elsewhere, and in the *_mma_sync modes, the mma.sync ones, which stop at 128 (256 throws there,
// naming --attention naive).
//
// saved (per layer): lse (B, H, T) fp32.
// scratch: delta (B, H, T) fp32, then (every mode but deterministic_mma_sync) the dQ accumulator
// (B·T, H·D) fp32, then (deterministic, deterministic_tile_0_up) the turns, B·H·ceil(T / 64)
// ints, each starting on a 256-byte boundary.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>

#include "slm/attention/flash.hpp"
#include "slm/attention/policy.hpp"
#include "slm/core/error.hpp"
#include "slm/core/shapes.hpp"
#include "slm/cuda/attention/flash_backward.cuh"
#include "slm/cuda/attention/flash_backward_dq.cuh"
#include "slm/cuda/attention/flash_backward_tma.cuh"
#include "slm/cuda/attention/flash_backward_wgmma.cuh"
#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/attention/flash_forward.cuh"
#include "slm/cuda/attention/flash_forward_tma.cuh"
#include "slm/cuda/attention/flash_forward_wgmma.cuh"
#include "slm/cuda/attention/flash_modes.cuh"
#include "slm/cuda/attention/flash_turns.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/check.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/rope.cuh"
#include "slm/cuda/vector.cuh"

namespace slm::attention {

namespace cuda_flash {

// Allows `kernel` `bytes` of dynamic shared memory (above the 48 KB default) and launches it.
template <class Kernel, class... Args>
void launch(const char* name, Kernel kernel, int64_t blocks, int threads, int smem_bytes,
            cudaStream_t stream, Args... args) {
    require(blocks > 0 && blocks <= INT32_MAX,
            std::string(name) + ": " + std::to_string(blocks) +
                " thread blocks do not fit one grid dimension; lower the batch or the sequence");
    SLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        smem_bytes));
    kernel<<<static_cast<unsigned>(blocks), threads, smem_bytes, stream>>>(args...);
    cuda::detail::check_cuda(cudaGetLastError(), name, __FILE__, __LINE__);
}

inline int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

static __global__ void warpgroup_mma_probe_kernel(int* compiled) {
    *compiled = cuda::wgmma::available ? 1 : 0;
}

// Whether this program's device code for the current GPU has warpgroup MMAs (it was compiled for
// sm_90a and runs on a Hopper): asked of the GPU once per device, since only the device code
// knows which architecture it was compiled for.
inline bool warpgroup_mma_compiled() {
    static int known[64] = {};  // 0: not asked yet, 1: no, 2: yes
    int device = 0;
    SLM_CUDA_CHECK(cudaGetDevice(&device));
    if (device >= 64) return false;
    if (known[device] == 0) {
        int* flag = nullptr;
        int host = 0;
        SLM_CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
        warpgroup_mma_probe_kernel<<<1, 1>>>(flag);
        const cudaError_t launched = cudaGetLastError();
        const cudaError_t copied = cudaMemcpy(&host, flag, sizeof(int), cudaMemcpyDeviceToHost);
        SLM_CUDA_CHECK(cudaFree(flag));
        SLM_CUDA_CHECK(launched);
        SLM_CUDA_CHECK(copied);
        known[device] = host == 1 ? 2 : 1;
    }
    return known[device] == 2;
}

template <int D, FlashBackward Mode, FlashForward Forward>
void forward(const Problem& p, const bf16* qkv, bf16* out, float* lse, cudaStream_t stream) {
    if constexpr (runs_tma_forward<D, Forward>) {
        if (!mma_sync_only(Mode) && warpgroup_mma_compiled()) {
            using W = TmaForwardTiles<warpgroup_width<D>>;
            launch("launch of flash_forward_tma_kernel", flash_forward_tma_kernel<D>,
                   tiles(p.seq, W::BlockM) * p.batch * p.heads, W::threads, W::smem_bytes, stream,
                   sequence_boxes(qkv, p.qkv_stride, p), qkv, out, lse, p);
            return;
        }
    }
    if constexpr (has_warpgroup_kernels<D>) {
        if (!mma_sync_only(Mode) && warpgroup_mma_compiled()) {
            using W = WarpgroupForwardTiles<warpgroup_width<D>>;
            launch("launch of flash_forward_warpgroup_kernel", flash_forward_warpgroup_kernel<D>,
                   tiles(p.seq, W::BlockM) * p.batch * p.heads, W::threads, W::smem_bytes, stream,
                   qkv, out, lse, p);
            return;
        }
    }
    if constexpr (has_mma_sync_kernels<D>) {
        constexpr int M = Tiles<D>::ForwardM, N = Tiles<D>::ForwardN;
        constexpr int min_blocks = Tiles<D>::ForwardMinBlocks;
        launch("launch of flash_forward_kernel", flash_forward_kernel<D, M, N, min_blocks>,
               tiles(p.seq, M) * p.batch * p.heads, M / 16 * 32, forward_smem_bytes<D, M, N>,
               stream, qkv, out, lse, p);
    } else {
        no_kernel_for<D>("forward");
    }
}

// Returns whether dQ went through the fp32 accumulator and its conversion, which also takes it
// back through RoPE when p.rope_theta > 0; otherwise d_qkv's q part is dQ w.r.t. the rotated q.
template <int D, FlashBackward Mode>
bool backward(const Problem& p, const bf16* qkv, const bf16* out, const bf16* d_out,
              const float* lse, float* delta, float* dq_acc, int* turns, bf16* d_qkv,
              cudaStream_t stream) {
    constexpr bool deterministic = is_deterministic(Mode);
    constexpr Turns scheme = turns_scheme(Mode);
    const int64_t rows = static_cast<int64_t>(p.batch) * p.seq;
    bool warpgroup = false;
    if constexpr (has_warpgroup_kernels<D> && !mma_sync_only(Mode))
        warpgroup = warpgroup_mma_compiled();
    if constexpr (!has_mma_sync_kernels<D>) {
        if (!warpgroup) no_kernel_for<D>("backward");
    }
    {
        constexpr int threads = 256;  // 32 (row, head) pairs per block
        const int64_t blocks = std::min<int64_t>(tiles(rows * p.heads, threads / 8), 1 << 20);
        flash_backward_delta_kernel<D>
            <<<static_cast<unsigned>(blocks), threads, 0, stream>>>(out, d_out, delta, p);
        SLM_CUDA_CHECK_LAUNCH("flash_backward_delta_kernel");
    }
    // The atomic adds: the warpgroup kernel, or the mma.sync one in the atomic modes.
    const bool accumulated = warpgroup || !deterministic;
    if (accumulated)
        SLM_CUDA_CHECK(cudaMemsetAsync(
            dq_acc, 0, static_cast<size_t>(rows * p.out_stride) * sizeof(float), stream));
    // The turns' counters, per query tile of the kernel's block_m rows (none without turns).
    auto zero_turns = [&](int block_m) {
        if (scheme != Turns::none)
            SLM_CUDA_CHECK(cudaMemsetAsync(
                turns, 0, static_cast<size_t>(turn_count(p, block_m)) * sizeof(int), stream));
    };
    if constexpr (runs_tma_backward<D, Mode>) {
        if (warpgroup) {
            using W = TmaBackwardTiles<warpgroup_width<D>, bulk_dq(Mode)>;
            zero_turns(W::BlockM);
            launch("launch of flash_backward_tma_kernel",
                   flash_backward_tma_kernel<D, scheme, bulk_dq(Mode), kv_in_registers<D>(Mode),
                                             overlapped_dq<D>(Mode)>,
                   tiles(p.seq, W::BlockN) * p.batch * p.kv_heads, W::threads, W::smem_bytes,
                   stream, sequence_boxes(qkv, p.qkv_stride, p),
                   sequence_boxes(d_out, p.out_stride, p), qkv, lse,
                   static_cast<const float*>(delta), dq_acc, d_qkv,
                   scheme != Turns::none ? turns : nullptr, p);
        }
    } else if constexpr (has_warpgroup_kernels<D>) {
        if (warpgroup) {
            using W = WarpgroupBackwardTiles<warpgroup_width<D>>;
            zero_turns(W::BlockM);
            launch("launch of flash_backward_warpgroup_kernel",
                   flash_backward_warpgroup_kernel<D, scheme>,
                   tiles(p.seq, W::BlockN) * p.batch * p.kv_heads, W::threads, W::smem_bytes,
                   stream, qkv, d_out, lse, static_cast<const float*>(delta), dq_acc, d_qkv,
                   scheme != Turns::none ? turns : nullptr, p);
        }
    }
    if constexpr (has_mma_sync_kernels<D>) {
        constexpr int N = Tiles<D>::BackwardN, M = Tiles<D>::BackwardM;
        if (!warpgroup)
            launch("launch of flash_backward_kernel",
                   flash_backward_kernel<D, N, M, !deterministic>,
                   tiles(p.seq, N) * p.batch * p.kv_heads, N / 16 * 32,
                   backward_smem_bytes<D, N, M, !deterministic>, stream, qkv, d_out, lse,
                   static_cast<const float*>(delta), dq_acc, d_qkv, p);
    }
    if (accumulated && p.rope_theta > 0) {
        constexpr int threads = 256;
        const int64_t work = rows * (D / 16);
        dq_convert_rope_kernel<D><<<cuda::blocks_for(work, threads, INT32_MAX), threads, 0, stream>>>(
            dq_acc, d_qkv, rows, p.heads, p.seq, p.qkv_stride, p.scale, p.rope_theta);
        SLM_CUDA_CHECK_LAUNCH("dq_convert_rope_kernel");
    } else if (accumulated) {
        constexpr int threads = 256;
        const int64_t packs = rows * p.out_stride / 8;
        dq_convert_kernel<<<cuda::blocks_for(packs, threads, INT32_MAX), threads, 0, stream>>>(
            dq_acc, d_qkv, rows, p.out_stride, p.qkv_stride, p.scale);
        SLM_CUDA_CHECK_LAUNCH("dq_convert_kernel");
    } else if constexpr (has_mma_sync_kernels<D>) {
        constexpr int QM = Tiles<D>::DqM, QN = Tiles<D>::DqN;
        launch("launch of flash_backward_dq_kernel", flash_backward_dq_kernel<D, QM, QN>,
               tiles(p.seq, QM) * p.batch * p.heads, QM / 16 * 32,
               backward_dq_smem_bytes<D, QM, QN>, stream, qkv, d_out, lse,
               static_cast<const float*>(delta), d_qkv, p);
    }
    return accumulated;
}

}  // namespace cuda_flash

// The GPU Flash kernels with the backward mode and the forward kernel as compile-time choices;
// the contract is AttentionKernel's (policy.hpp).
template <FlashBackward Mode, FlashForward Forward = FlashForward::best>
struct FlashCudaKernel {
    using bf16 = cuda::bf16;

    static int64_t stats_bytes(const AttentionShape& s) {
        return s.batch * s.heads * s.seq * int64_t{4};
    }
    static int64_t dq_accumulator_bytes(const AttentionShape& s) {
        return Mode != FlashBackward::deterministic_mma_sync
                   ? s.tokens() * s.out_stride() * int64_t{4}
                   : 0;
    }
    // One int per (sequence, head, 64 queries): the smallest query tile the turns count in.
    static int64_t turns_bytes(const AttentionShape& s) {
        return turns_scheme(Mode) != cuda_flash::Turns::none
                   ? s.batch * s.heads * ((s.seq + 63) / 64) * int64_t{4}
                   : 0;
    }
    static AttentionFootprint footprint(const AttentionShape& s) {
        return {stats_bytes(s), cuda::aligned_bytes(stats_bytes(s)) +
                                    cuda::aligned_bytes(dq_accumulator_bytes(s)) +
                                    cuda::aligned_bytes(turns_bytes(s))};
    }

    // qkv: (B·T, qkv_stride) with q, k rotated → out: (B·T, H·D); saved: lse (B, H, T) fp32
    static void forward(cuda::Backend& be, const AttentionShape& s, const bf16* qkv, bf16* out,
                        void* saved) {
        check(s, {qkv, out, saved});
        const auto p = problem(s);
        auto* lse = static_cast<float*>(saved);
        cuda_flash::with_head_dim(s.head_dim, [&](auto d) {
            cuda_flash::forward<decltype(d)::value, Mode, Forward>(p, qkv, out, lse,
                                                                   be.stream());
        });
    }

    // d_out: (B·T, H·D) → d_qkv: (B·T, qkv_stride), every element written.
    static void backward(cuda::Backend& be, const AttentionShape& s, const bf16* qkv,
                         const bf16* out, const bf16* d_out, const void* saved, void* scratch,
                         bf16* d_qkv) {
        run_backward(be, s, qkv, out, d_out, saved, scratch, d_qkv, 0.0f);
    }

    // The backward of RoPE (theta) followed by attention: backward(), then d_qkv's q and k
    // parts taken back through the rotation, as cuda::rope_backward would. Where dQ goes through
    // the fp32 accumulator, its conversion rotates it (rounded to bf16 once, and no pass over dQ
    // of its own) and dK alone goes through cuda::rope_backward_k. qkv holds the rotated q and k.
    static void backward_through_rope(cuda::Backend& be, const AttentionShape& s, double theta,
                                      const bf16* qkv, const bf16* out, const bf16* d_out,
                                      const void* saved, void* scratch, bf16* d_qkv) {
        require(theta > 0, "backward_through_rope: RoPE theta must be > 0, got " +
                               std::to_string(theta));
        if (run_backward(be, s, qkv, out, d_out, saved, scratch, d_qkv,
                         static_cast<float>(theta)))
            cuda::rope_backward_k(d_qkv, s, theta, be.stream());
        else
            cuda::rope_backward(d_qkv, s, theta, be.stream());
    }

private:
    // Returns whether dQ was taken back through RoPE (backward's return).
    static bool run_backward(cuda::Backend& be, const AttentionShape& s, const bf16* qkv,
                             const bf16* out, const bf16* d_out, const void* saved, void* scratch,
                             bf16* d_qkv, float rope_theta) {
        check(s, {qkv, out, d_out, saved, scratch, d_qkv});
        auto p = problem(s);
        p.rope_theta = rope_theta;
        const auto* lse = static_cast<const float*>(saved);
        auto* delta = static_cast<float*>(scratch);
        auto* bytes = static_cast<std::byte*>(scratch) + cuda::aligned_bytes(stats_bytes(s));
        float* dq_acc = dq_accumulator_bytes(s) > 0 ? reinterpret_cast<float*>(bytes) : nullptr;
        bytes += cuda::aligned_bytes(dq_accumulator_bytes(s));
        int* turns = turns_bytes(s) > 0 ? reinterpret_cast<int*>(bytes) : nullptr;
        bool rotated = false;
        cuda_flash::with_head_dim(s.head_dim, [&](auto d) {
            rotated = cuda_flash::backward<decltype(d)::value, Mode>(
                p, qkv, out, d_out, lse, delta, dq_acc, turns, d_qkv, be.stream());
        });
        return rotated;
    }

    static cuda_flash::Problem problem(const AttentionShape& s) {
        return cuda_flash::make_problem(
            s, static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim))));
    }

    static void check(const AttentionShape& s, std::initializer_list<const void*> pointers) {
        require(s.batch > 0 && s.seq > 0 && s.heads > 0 && s.kv_heads > 0 && s.head_dim > 0 &&
                    s.heads % s.kv_heads == 0,
                "attention shape: batch, seq, heads, kv_heads and head_dim must be positive "
                "and kv_heads must divide heads");
        require(cuda_flash::supported_head_dim(s.head_dim),
                "Flash attention on the GPU supports head_dim " +
                    cuda_flash::listed(cuda_flash::HeadDims{}) + ", got head_dim " + std::to_string(s.head_dim) +
                    "; choose hidden / heads among them, or use --attention naive");
        require(s.seq <= (int64_t{1} << 30) && s.batch * s.heads <= INT32_MAX,
                "Flash attention on the GPU: sequence or batch·heads too large for 32-bit tile "
                "indices");
        for (const void* ptr : pointers)
            require(ptr != nullptr && cuda::aligned_to(16, {ptr}),
                    "Flash attention on the GPU: every tensor must be non-null and 16-byte "
                    "aligned (cp.async moves 16 bytes)");
    }
};

template <>
struct AttentionKernel<Flash, cuda::Backend> : FlashCudaKernel<FlashBackward::atomic> {};

template <>
struct AttentionKernel<FlashDeterministic, cuda::Backend>
    : FlashCudaKernel<FlashBackward::deterministic> {};

}  // namespace slm::attention
