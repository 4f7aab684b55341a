#pragma once
// cpu::Backend<T>: the reference backend. Everything is T (float to train, double to check
// gradients by finite differences); memory is host memory; ops are the Eigen/OpenMP functions
// in this folder, one per header.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "slm/core/accounting.hpp"
#include "slm/core/shapes.hpp"
#include "slm/cpu/adamw.hpp"
#include "slm/cpu/cross_entropy.hpp"
#include "slm/cpu/embedding.hpp"
#include "slm/cpu/linear.hpp"
#include "slm/cpu/op_timer.hpp"
#include "slm/cpu/rmsnorm.hpp"
#include "slm/cpu/rope.hpp"
#include "slm/cpu/swiglu.hpp"

namespace slm::cpu {

template <class T>
class Backend {
    static_assert(std::is_floating_point_v<T>, "cpu::Backend<T> needs float or double");

public:
    using Master = T;  // parameters the optimizer updates
    using Act = T;     // activations and the weights GEMMs read
    using Grad = T;
    using Stat = T;    // saved per-row statistics (rstd, log-sum-exp)
    static constexpr bool has_working_copy = false;  // GEMMs read the master weights directly
    static constexpr bool host_memory = true;        // buffers are host memory (MPI can send them)
    static constexpr const char* name = "cpu";

    template <class U>
    using Buffer = std::vector<U>;

    template <class U>
    Buffer<U> allocate(int64_t n) {
        return Buffer<U>(static_cast<size_t>(n), U{});
    }
    template <class U>
    void upload(U* dst, const U* src, int64_t n) {
        std::memcpy(dst, src, sizeof(U) * static_cast<size_t>(n));
    }
    template <class U>
    void download(U* dst, const U* src, int64_t n) {
        std::memcpy(dst, src, sizeof(U) * static_cast<size_t>(n));
    }
    template <class U>
    void zero(U* p, int64_t n) {
        std::fill(p, p + n, U{});
    }
    void synchronize() {}

    static Precision precision() {
        constexpr int64_t b = sizeof(T);
        return Precision{b, 0, b, 2 * b, b, b};
    }
    // Rows of logits computed at once by the fused LM head + loss (bounds its scratch).
    static int64_t loss_chunk_rows(int64_t tokens, int64_t vocab) {
        return std::clamp<int64_t>((int64_t{1} << 22) / vocab, 1, tokens);
    }

    void embedding_forward(const int32_t* tokens, const T* table, T* out, int64_t n, int64_t d,
                           int64_t vocab) {
        const auto timed = timer_.scope(Op::embedding);
        cpu::embedding_forward(tokens, table, out, n, d, vocab);
    }
    void embedding_backward(const int32_t* tokens, const T* dout, T* d_table, int64_t n,
                            int64_t d) {
        const auto timed = timer_.scope(Op::embedding);
        cpu::embedding_backward(tokens, dout, d_table, n, d);
    }
    void add_rmsnorm_forward(const T* resid_in, const T* delta, T* resid_out, const T* w,
                             T* normed, T* rstd, int64_t n, int64_t d, double eps) {
        const auto timed = timer_.scope(Op::norm);
        cpu::add_rmsnorm_forward(resid_in, delta, resid_out, w, normed, rstd, n, d, eps);
    }
    void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* dnormed, T* d_resid,
                          T* dw, int64_t n, int64_t d) {
        const auto timed = timer_.scope(Op::norm);
        cpu::rmsnorm_backward(x, w, rstd, dnormed, d_resid, dw, n, d);
    }
    void linear_forward(const T* x, const T* w, T* y, int64_t n, int64_t in, int64_t out) {
        const auto timed = timer_.scope(Op::matmul);
        cpu::linear_forward(x, w, y, n, in, out);
    }
    void linear_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t n, int64_t in,
                         int64_t out) {
        const auto timed = timer_.scope(Op::matmul);
        cpu::linear_backward(x, w, dy, dx, dw, n, in, out);
    }
    void rope_forward(T* qkv, const AttentionShape& s, double theta) {
        const auto timed = timer_.scope(Op::rope);
        cpu::rope_forward(qkv, s, theta);
    }
    void rope_backward(T* d_qkv, const AttentionShape& s, double theta) {
        const auto timed = timer_.scope(Op::rope);
        cpu::rope_backward(d_qkv, s, theta);
    }
    void swiglu_forward(const T* gate_up, T* out, int64_t n, int64_t f) {
        const auto timed = timer_.scope(Op::swiglu);
        cpu::swiglu_forward(gate_up, out, n, f);
    }
    void swiglu_backward(const T* gate_up, const T* dout, T* d_gate_up, int64_t n, int64_t f) {
        const auto timed = timer_.scope(Op::swiglu);
        cpu::swiglu_backward(gate_up, dout, d_gate_up, n, f);
    }
    void swiglu_backward_recompute(const T* gate_up, T* d_out_then_out, T* d_gate_up, int64_t n,
                                   int64_t f) {
        const auto timed = timer_.scope(Op::swiglu);
        cpu::swiglu_backward_recompute(gate_up, d_out_then_out, d_gate_up, n, f);
    }
    LossResult lm_head_cross_entropy(const T* x, const T* w, const int32_t* targets, int64_t n,
                                     int64_t d, int64_t vocab, void* scratch, int64_t chunk,
                                     double grad_scale, T* dx, T* dw) {
        const auto timed = timer_.scope(Op::loss);
        return cpu::lm_head_cross_entropy(x, w, targets, n, d, vocab, static_cast<T*>(scratch),
                                          chunk, grad_scale, dx, dw);
    }
    // `working` is the low-precision copy some backends keep; here GEMMs read params directly.
    void adamw_update(T* params, const T* grads, T* m, T* v, T* /*working*/, int64_t n,
                      const optim::AdamWStep& s) {
        const auto timed = timer_.scope(Op::optimizer);
        cpu::adamw_update(params, grads, m, v, n, s);
    }
    double sum_of_squares(const T* x, int64_t n) {
        const auto timed = timer_.scope(Op::optimizer); return cpu::sum_of_squares(x, n); }

    // Per-op timing (core/op_profile.hpp): off by default.
    void enable_profiling(bool on) { timer_.enable(on); }
    std::array<double, op_count> collect_op_seconds() { return timer_.collect(); }
    OpTimer::Scope op_scope(Op op) { return timer_.scope(op); }

private:
    OpTimer timer_;
};

}  // namespace slm::cpu
