#pragma once
// Byte offsets of everything a training step keeps in the activation arena for one micro-batch.
// The model carves its arena from this layout and the memory estimate sums it, so the estimate
// is the allocation, not a second guess at it.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/core/shapes.hpp"

namespace slm {

// What the forward may leave out for the backward to compute again. swiglu: the SwiGLU output
// (the down projection's input, ffn values per token and layer: the largest tensor a layer
// keeps but gate_up) lives in scratch during the forward, and the backward's SwiGLU kernel
// writes it again from gate_up, bit for bit, as it reads the gradient, so the down projection's
// weight gradient can follow. It costs one more write of that tensor per layer and no GEMM.
enum class Recompute { none, swiglu };

inline const char* recompute_name(Recompute r) { return r == Recompute::swiglu ? "swiglu" : "none"; }

inline Recompute recompute_from_name(const std::string& name) {
    if (name == "none") return Recompute::none;
    if (name == "swiglu") return Recompute::swiglu;
    throw Error("unknown recompute '" + name + "': use none or swiglu");
}

// mlp_act is the one scratch buffer every layer shares under Recompute::swiglu.
struct LayerActivations {
    int64_t resid_in, norm1, rstd1, qkv, attn_out, attn_saved, resid_mid, norm2, rstd2, gate_up,
        mlp_act;
};

class ActivationLayout {
public:
    static constexpr int64_t alignment = 256;  // bytes; what cudaMalloc and vector loads want

    // act_bytes: size of an activation element (4 or 8 on CPU, 2 for bf16 on the GPU).
    // stat_bytes: size of a saved statistic (rstd) — fp32 on the GPU, the scalar type on CPU.
    // resid_bytes: size of an element of the residual stream (resid_in, resid_mid, resid_final);
    // 0: act_bytes. A bf16 model may keep its residual stream in fp32 (model/llama.hpp).
    ActivationLayout(const ModelConfig& c, int64_t batch, int64_t seq, int64_t act_bytes,
                     int64_t stat_bytes, AttentionFootprint attention, int64_t loss_chunk_bytes,
                     int64_t resid_bytes = 0, Recompute recompute = Recompute::none)
        : batch_(batch), seq_(seq), recompute_(recompute) {
        const bool keep_mlp_act = recompute != Recompute::swiglu;
        const int64_t n = batch * seq, d = c.hidden;
        auto acts = [&](int64_t elems) { return take(elems * act_bytes); };
        auto resid = [&](int64_t elems) {
            return take(elems * (resid_bytes > 0 ? resid_bytes : act_bytes));
        };
        auto stats = [&](int64_t elems) { return take(elems * stat_bytes); };
        tokens_ = take(n * 4);
        targets_ = take(n * 4);
        for (int64_t l = 0; l < c.layers; ++l) {
            LayerActivations a{};
            a.resid_in = resid(n * d);
            a.norm1 = acts(n * d);
            a.rstd1 = stats(n);
            a.qkv = acts(n * c.qkv_width());
            a.attn_out = acts(n * c.q_width());
            a.attn_saved = take(attention.saved_bytes_per_layer);
            a.resid_mid = resid(n * d);
            a.norm2 = acts(n * d);
            a.rstd2 = stats(n);
            a.gate_up = acts(n * 2 * c.ffn_padded());
            a.mlp_act = keep_mlp_act ? acts(n * c.ffn_padded()) : -1;  // set below otherwise
            layers_.push_back(a);
        }
        resid_final_ = resid(n * d);
        norm_final_ = acts(n * d);
        rstd_final_ = stats(n);
        saved_bytes_ = used_;
        // Scratch, reused by every layer. d_resid and d_norm carry the gradient from one op to
        // the next across phases (d_norm from the loss into the trunk). The rest is needed one
        // phase at a time, and the phases follow each other on one stream, so they share one
        // region as large as the largest phase:
        //   forward:                      delta (a block's output before its residual add),
        //                                 and the SwiGLU output when the backward recomputes it
        //   the loss:                     the logits chunk
        //   backward, a layer's MLP:      d_gate_up, d_mlp_act
        //   backward, a layer's attention: d_qkv, d_attn_out, the attention kernel's scratch
        d_resid_ = acts(n * d);
        d_norm_ = acts(n * d);
        const int64_t region = used_;
        int64_t region_end = region;
        auto phase = [&](auto&&... carve) {
            used_ = region;
            (carve(), ...);
            region_end = std::max(region_end, used_);
        };
        phase([&] { delta_ = acts(n * d); }, [&] {
            if (keep_mlp_act) return;
            const int64_t shared = acts(n * c.ffn_padded());
            for (auto& a : layers_) a.mlp_act = shared;
        });
        phase([&] { loss_chunk_ = take(loss_chunk_bytes); });
        phase([&] { d_gate_up_ = acts(n * 2 * c.ffn_padded()); }, [&] { d_mlp_act_ = acts(n * c.ffn_padded()); });
        phase([&] { d_qkv_ = acts(n * c.qkv_width()); }, [&] { d_attn_out_ = acts(n * c.q_width()); },
              [&] { attention_scratch_ = take(attention.scratch_bytes); });
        used_ = region_end;
    }

    int64_t batch() const { return batch_; }
    int64_t seq() const { return seq_; }
    int64_t total_bytes() const { return used_; }
    int64_t saved_bytes() const { return saved_bytes_; }  // what forward keeps for backward
    Recompute recompute() const { return recompute_; }
    const LayerActivations& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }
    int64_t tokens() const { return tokens_; }
    int64_t targets() const { return targets_; }
    int64_t resid_final() const { return resid_final_; }
    int64_t norm_final() const { return norm_final_; }
    int64_t rstd_final() const { return rstd_final_; }
    int64_t delta() const { return delta_; }
    int64_t d_resid() const { return d_resid_; }
    int64_t d_norm() const { return d_norm_; }
    int64_t d_qkv() const { return d_qkv_; }
    int64_t d_attn_out() const { return d_attn_out_; }
    int64_t d_gate_up() const { return d_gate_up_; }
    int64_t d_mlp_act() const { return d_mlp_act_; }
    int64_t attention_scratch() const { return attention_scratch_; }
    int64_t loss_chunk() const { return loss_chunk_; }

private:
    int64_t take(int64_t bytes) {
        const int64_t at = used_;
        used_ += (bytes + alignment - 1) / alignment * alignment;
        return at;
    }

    int64_t batch_, seq_;
    Recompute recompute_;
    int64_t used_ = 0, saved_bytes_ = 0;
    std::vector<LayerActivations> layers_;
    int64_t tokens_, targets_, resid_final_, norm_final_, rstd_final_, delta_, d_resid_, d_norm_,
        d_qkv_, d_attn_out_, d_gate_up_, d_mlp_act_, attention_scratch_, loss_chunk_;
};

}  // namespace slm
