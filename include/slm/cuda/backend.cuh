#pragma once
// cuda::Backend: bf16 activations and GEMM inputs, fp32 accumulation, fp32 master weights,
// gradients and AdamW state; softmax, norms and the loss in fp32. Memory is device memory; every
// op is queued on the backend's one stream and returns without waiting, except those that hand a
// number to the host (the loss, the sum of squares, download, synchronize). Those also read the
// device report and throw slm::Error for bad input a kernel met (an id outside the vocabulary),
// so an error surfaces at the latest at the loss of the step that caused it.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "slm/core/accounting.hpp"
#include "slm/core/adamw_step.hpp"
#include "slm/core/backend_options.hpp"
#include "slm/core/host_block.hpp"
#include "slm/core/error.hpp"
#include "slm/core/shapes.hpp"
#include "slm/cuda/adamw.cuh"
#include "slm/cuda/check.cuh"
#include "slm/cuda/convert.cuh"
#include "slm/cuda/cross_entropy.cuh"
#include "slm/cuda/embedding.cuh"
#include "slm/cuda/gemm.cuh"
#include "slm/cuda/linear.cuh"
#include "slm/cuda/memory.cuh"
#include "slm/cuda/op_timer.cuh"
#include "slm/cuda/report.cuh"
#include "slm/cuda/rmsnorm.cuh"
#include "slm/cuda/rope.cuh"
#include "slm/cuda/stream.cuh"
#include "slm/cuda/swiglu.cuh"
#include "slm/cuda/transfer.cuh"

namespace slm::cuda {

namespace detail {
// Makes `device` current, with a message that says what is visible when it is not there.
inline int select_device(int device) {
    int count = 0;
    SLM_CUDA_CHECK(cudaGetDeviceCount(&count));
    require(device >= 0 && device < count, "cuda::Backend: device " + std::to_string(device) +
                                               " requested but " + std::to_string(count) +
                                               " GPU(s) are visible (check CUDA_VISIBLE_DEVICES)");
    SLM_CUDA_CHECK(cudaSetDevice(device));
    return device;
}
}  // namespace detail

// What the residual stream may be stored as on the GPU.
template <class T>
concept ResidualElement = std::same_as<T, bf16> || std::same_as<T, float>;

class Backend {
public:
    using Master = float;
    using Act = __nv_bfloat16;
    using Grad = float;
    using Stat = float;
    static constexpr bool has_working_copy = true;  // GEMMs read a bf16 copy of the master
    static constexpr bool host_memory = false;      // buffers are device memory
    static constexpr const char* name = "cuda";
    // Bytes of bf16 logits the fused LM head + loss computes at once.
    static constexpr int64_t loss_chunk_bytes = int64_t{512} << 20;

    template <class U>
    using Buffer = DeviceBuffer<U>;

    explicit Backend(int device = 0)
        : device_(detail::select_device(device)), report_(1), sum_result_(1) {
        clear_report();
    }
    ~Backend() { (void)cudaStreamSynchronize(stream_.get()); }
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    int device() const { return device_; }
    cudaStream_t stream() const { return stream_.get(); }
    Gemm& gemm() { return gemm_; }
    Workspace& workspace() { return workspace_; }

    // ---- run options (the trainer passes RunConfig::backend through) -----------------------
    // How many GEMM algorithms to time per shape, and picks to replay from
    // options.gemm_choices_read when that file exists; `lead` prints the notes.
    void configure(const BackendOptions& options, bool lead) {
        options_ = options;
        gemm_.set_timed_candidates(static_cast<int>(options.gemm_candidates));
        const auto& from = options.gemm_choices_read;
        if (from.empty() || !std::filesystem::exists(from)) return;
        const auto choices = read_gemm_choices(from);
        const auto& here = gemm_.identity();
        if (choices.identity != here && options.gemm_choices_other_gpu_ok) {
            if (lead)
                std::fprintf(stderr,
                             "gemm: %s was made on '%s' and this is '%s': its picks are dropped "
                             "and the GEMMs timed anew\n",
                             from.c_str(), choices.identity.c_str(), here.c_str());
            return;
        }
        gemm_.use_choices(choices, from.string());
    }
    // With each checkpoint (on the rank that writes it): the GEMM picks so far, timed or
    // replayed, to options.gemm_choices_write when it is set and there are any.
    void on_checkpoint() {
        if (options_.gemm_choices_write.empty()) return;
        const auto choices = gemm_.choices();
        if (!choices.picks.empty()) write_gemm_choices(options_.gemm_choices_write, choices);
    }

    // ---- memory ----------------------------------------------------------------------------
    template <class U>
    Buffer<U> allocate(int64_t n) {
        Buffer<U> b(n);
        if (n > 0)
            SLM_CUDA_CHECK(cudaMemsetAsync(b.data(), 0, static_cast<size_t>(b.bytes()), stream()));
        return b;
    }
    // Page-locked host memory (core/host_block.hpp): downloads into it run at full bus speed.
    HostBlock allocate_host(size_t bytes) {
        void* p = nullptr;
        SLM_CUDA_CHECK(cudaMallocHost(&p, bytes > 0 ? bytes : 1));
        return HostBlock(static_cast<std::byte*>(p), [](std::byte* q) { (void)cudaFreeHost(q); });
    }
    // src is a host array the caller may reuse as soon as this returns.
    template <class U>
    void upload(U* dst, const U* src, int64_t n) {
        staging_.upload(dst, src, n * static_cast<int64_t>(sizeof(U)), stream());
    }
    // Waits for every queued op, then copies into the host array dst.
    template <class U>
    void download(U* dst, const U* src, int64_t n) {
        if (n > 0)
            SLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(U),
                                           cudaMemcpyDeviceToHost, stream()));
        synchronize();
    }
    template <class U>
    void zero(U* p, int64_t n) {
        if (n > 0)
            SLM_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(U), stream()));
    }
    // Waits for every queued op; throws for bad input the kernels reported.
    void synchronize() { read_report(); }

    static Precision precision() { return Precision{4, 2, 4, 8, 2, 4}; }
    // Rows of bf16 logits the fused LM head + loss computes at once (about 512 MB of scratch:
    // at 8192 rows × 32000 the dx GEMM fills the GPU and dW is read and written half as often
    // as at 4096, 0.7 ms of llama_100m's 19 ms loss; benchmarks/lm_head_loss_cuda).
    static int64_t loss_chunk_rows(int64_t tokens, int64_t vocab) {
        return std::clamp<int64_t>(loss_chunk_bytes / (2 * std::max<int64_t>(vocab, 1)), 1,
                                   std::max<int64_t>(tokens, 1));
    }

    // ---- ops (contracts: the cpu/ header of the same name) ---------------------------------
    void convert(const float* master, Act* working, int64_t n) {
        const auto timed = timer_.scope(Op::optimizer, stream());
        cuda::convert(master, working, n, stream());
    }
    // The residual stream (embedding_forward's out, add_rmsnorm_forward's resid_in/out,
    // rmsnorm_backward's x) is bf16 or fp32: Resid is the model's choice (model/llama.hpp).
    template <ResidualElement Resid>
    void embedding_forward(const int32_t* tokens, const Act* table, Resid* out, int64_t n,
                           int64_t d, int64_t vocab) {
        const auto timed = timer_.scope(Op::embedding, stream());
        token_vocab_ = vocab;
        cuda::embedding_forward(tokens, table, out, n, d, vocab, &report_.data()->bad_token,
                                stream());
    }
    void embedding_backward(const int32_t* tokens, const Act* dout, Grad* d_table, int64_t n,
                            int64_t d) {
        const auto timed = timer_.scope(Op::embedding, stream());
        cuda::embedding_backward(tokens, dout, d_table, n, d, workspace_, stream());
    }
    template <ResidualElement Resid>
    void add_rmsnorm_forward(const Resid* resid_in, const Act* delta, Resid* resid_out,
                             const Act* w, Act* normed, Stat* rstd, int64_t n, int64_t d,
                             double eps) {
        const auto timed = timer_.scope(Op::norm, stream());
        cuda::add_rmsnorm_forward(resid_in, delta, resid_out, w, normed, rstd, n, d, eps, stream());
    }
    template <ResidualElement Resid>
    void rmsnorm_backward(const Resid* x, const Act* w, const Stat* rstd, const Act* dnormed,
                          Act* d_resid, Grad* dw, int64_t n, int64_t d) {
        const auto timed = timer_.scope(Op::norm, stream());
        cuda::rmsnorm_backward(x, w, rstd, dnormed, d_resid, dw, n, d, workspace_, stream());
    }
    void linear_forward(const Act* x, const Act* w, Act* y, int64_t n, int64_t in, int64_t out) {
        const auto timed = timer_.scope(Op::matmul, stream());
        cuda::linear_forward(gemm_, x, w, y, n, in, out, stream());
    }
    void linear_backward(const Act* x, const Act* w, const Act* dy, Act* dx, Grad* dw, int64_t n,
                         int64_t in, int64_t out) {
        const auto timed = timer_.scope(Op::matmul, stream());
        cuda::linear_backward(gemm_, x, w, dy, dx, dw, n, in, out, stream());
    }
    void rope_forward(Act* qkv, const AttentionShape& s, double theta) {
        const auto timed = timer_.scope(Op::rope, stream());
        cuda::rope_forward(qkv, s, theta, stream());
    }
    void rope_backward(Act* d_qkv, const AttentionShape& s, double theta) {
        const auto timed = timer_.scope(Op::rope, stream());
        cuda::rope_backward(d_qkv, s, theta, stream());
    }
    void swiglu_forward(const Act* gate_up, Act* out, int64_t n, int64_t f) {
        const auto timed = timer_.scope(Op::swiglu, stream());
        cuda::swiglu_forward(gate_up, out, n, f, stream());
    }
    void swiglu_backward(const Act* gate_up, const Act* dout, Act* d_gate_up, int64_t n,
                         int64_t f) {
        const auto timed = timer_.scope(Op::swiglu, stream());
        cuda::swiglu_backward(gate_up, dout, d_gate_up, n, f, stream());
    }
    void swiglu_backward_recompute(const Act* gate_up, Act* d_out_then_out, Act* d_gate_up,
                                   int64_t n, int64_t f) {
        const auto timed = timer_.scope(Op::swiglu, stream());
        cuda::swiglu_backward_recompute(gate_up, d_out_then_out, d_gate_up, n, f, stream());
    }
    // targets: device (n). scratch: loss_chunk_rows · vocab · 2 bytes of device memory.
    // Waits for the result. With bad targets, throws; dx and dw are then unspecified.
    LossResult lm_head_cross_entropy(const Act* x, const Act* w, const int32_t* targets, int64_t n,
                                     int64_t d, int64_t vocab, void* scratch, int64_t chunk,
                                     double grad_scale, Act* dx, Grad* dw) {
        const auto timed = timer_.scope(Op::loss, stream());
        target_vocab_ = vocab;
        cuda::lm_head_cross_entropy(gemm_, x, w, targets, n, d, vocab, scratch, chunk, grad_scale,
                                    dx, dw, report_.data(), workspace_, stream());
        const DeviceReport r = read_report();
        LossResult result{0.0, r.counted};
        if (r.counted > 0) result.mean = r.loss_sum / static_cast<double>(r.counted);
        return result;
    }
    // `working` (may be null) receives the bf16 copy of the updated parameters.
    void adamw_update(Master* params, const Grad* grads, Master* m, Master* v, Act* working,
                      int64_t n, const optim::AdamWStep& s) {
        const auto timed = timer_.scope(Op::optimizer, stream());
        cuda::adamw_update(params, grads, m, v, working, n, s, stream());
    }
    // Waits for the result.
    double sum_of_squares(const Grad* x, int64_t n) {
        const auto timed = timer_.scope(Op::optimizer, stream());
        cuda::sum_of_squares(x, n, sum_result_.data(), workspace_, stream());
        double host = 0;
        SLM_CUDA_CHECK(cudaMemcpyAsync(&host, sum_result_.data(), sizeof host,
                                       cudaMemcpyDeviceToHost, stream()));
        read_report();
        return host;
    }

    // Per-op timing (core/op_profile.hpp): off by default.
    void enable_profiling(bool on) { timer_.enable(on); }
    std::array<double, op_count> collect_op_seconds() { return timer_.collect(); }
    OpTimer::Scope op_scope(Op op) { return timer_.scope(op, stream()); }
    // Work another stream does for this backend (Ddp's bucket all-reduces on its communication
    // stream), timed by the same timer; overlapping spans each count in full.
    OpTimer::Scope op_scope(Op op, cudaStream_t stream) { return timer_.scope(op, stream); }

private:
    // Waits for the stream, reads the report and throws for what it holds (clearing it first,
    // so the backend stays usable after the error is handled).
    DeviceReport read_report() {
        DeviceReport r;
        SLM_CUDA_CHECK(
            cudaMemcpyAsync(&r, report_.data(), sizeof r, cudaMemcpyDeviceToHost, stream()));
        SLM_CUDA_CHECK(cudaStreamSynchronize(stream()));
        if (r.bad_token != DeviceReport::none || r.bad_target != DeviceReport::none) {
            clear_report();
            const bool token = r.bad_token != DeviceReport::none;
            const auto packed = token ? r.bad_token : r.bad_target;
            fail(std::string(token ? "token" : "target") + " id " +
                 std::to_string(reported_id(packed)) + " at position " +
                 std::to_string(reported_position(packed)) + " is outside the vocabulary [0, " +
                 std::to_string(token ? token_vocab_ : target_vocab_) +
                 "): data and model disagree (check the tokenizer's vocab against "
                 "ModelConfig.vocab)");
        }
        return r;
    }

    void clear_report() {
        const DeviceReport fresh{};
        SLM_CUDA_CHECK(cudaMemcpyAsync(report_.data(), &fresh, sizeof fresh, cudaMemcpyHostToDevice,
                                       stream()));
        SLM_CUDA_CHECK(cudaStreamSynchronize(stream()));
    }

    int device_;
    Stream stream_;
    Gemm gemm_;
    BackendOptions options_;
    Workspace workspace_;
    UploadStaging staging_;
    DeviceBuffer<DeviceReport> report_;
    DeviceBuffer<double> sum_result_;             // sum_of_squares' result
    int64_t token_vocab_ = 0, target_vocab_ = 0;  // for messages
    OpTimer timer_;
};

}  // namespace slm::cuda
