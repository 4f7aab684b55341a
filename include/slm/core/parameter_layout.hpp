#pragma once
// Where every parameter tensor lives in the one flat parameter buffer (and, at the same offsets,
// in the gradient and optimizer-state buffers). A layer's tensors are contiguous, so a ZeRO-3
// gather or a DDP bucket is one slice; q/k/v and gate/up are adjacent so each pair is one GEMM.
// Tensor names are the Hugging Face LlamaForCausalLM names, so export is a walk over this list.
#include <cstdint>
#include <string>
#include <vector>

#include "slm/core/config.hpp"

namespace slm {

struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape;  // row-major; a linear weight is (out, in) as in PyTorch
    int64_t offset = 0;          // in elements from the start of the flat buffer
    int64_t size = 0;
    bool decay = true;           // AdamW weight decay applies to matrices, not to norm gains
};

// Offsets of one block's tensors. qkv is q_proj's offset: k and v follow it directly, so the
// fused projection weight is (qkv_width, hidden). gate_up likewise is (2 * ffn, hidden).
struct LayerOffsets {
    int64_t begin = 0, end = 0;
    int64_t attn_norm = 0, qkv = 0, o = 0, mlp_norm = 0, gate_up = 0, down = 0;
};

class ParameterLayout {
public:
    // Group starts are aligned to this many elements so kernels can use 16-byte vector loads.
    static constexpr int64_t alignment = 64;

    explicit ParameterLayout(const ModelConfig& c) {
        c.validate();
        const int64_t d = c.hidden;
        embed_ = add("model.embed_tokens.weight", {c.vocab, d}, true, true);
        for (int64_t l = 0; l < c.layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            LayerOffsets o;
            o.begin = o.attn_norm = add(p + "input_layernorm.weight", {d}, false, true);
            o.qkv = add(p + "self_attn.q_proj.weight", {c.q_width(), d}, true, true);
            add(p + "self_attn.k_proj.weight", {c.kv_width(), d}, true, false);
            add(p + "self_attn.v_proj.weight", {c.kv_width(), d}, true, false);
            o.o = add(p + "self_attn.o_proj.weight", {d, c.q_width()}, true, true);
            o.mlp_norm = add(p + "post_attention_layernorm.weight", {d}, false, true);
            o.gate_up = add(p + "mlp.gate_proj.weight", {c.ffn, d}, true, true);
            add(p + "mlp.up_proj.weight", {c.ffn, d}, true, false);
            o.down = add(p + "mlp.down_proj.weight", {d, c.ffn}, true, true);
            o.end = total_;
            layers_.push_back(o);
        }
        final_norm_ = add("model.norm.weight", {d}, false, true);
        lm_head_ = c.tied_embeddings ? embed_ : add("lm_head.weight", {c.vocab, d}, true, true);
        total_ = round_up(total_);
    }

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const LayerOffsets& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }
    int64_t embed() const { return embed_; }
    int64_t final_norm() const { return final_norm_; }
    int64_t lm_head() const { return lm_head_; }
    // Elements in the flat buffer, alignment padding included (padding stays zero).
    int64_t total() const { return total_; }
    // Trainable parameters, padding excluded.
    int64_t parameter_count() const {
        int64_t n = 0;
        for (const auto& t : tensors_) n += t.size;
        return n;
    }
    const TensorInfo& find(const std::string& name) const {
        for (const auto& t : tensors_)
            if (t.name == name) return t;
        fail("no parameter tensor named '" + name + "' in this model");
    }

private:
    static int64_t round_up(int64_t v) { return (v + alignment - 1) / alignment * alignment; }

    int64_t add(std::string name, std::vector<int64_t> shape, bool decay, bool starts_group) {
        if (starts_group) total_ = round_up(total_);
        TensorInfo t{std::move(name), std::move(shape), total_, 1, decay};
        for (auto s : t.shape) t.size *= s;
        total_ += t.size;
        tensors_.push_back(std::move(t));
        return tensors_.back().offset;
    }

    std::vector<TensorInfo> tensors_;
    std::vector<LayerOffsets> layers_;
    int64_t embed_ = 0, final_norm_ = 0, lm_head_ = 0, total_ = 0;
};

}  // namespace slm
