#pragma once
// Where every parameter tensor lives in the one flat parameter buffer (and, at the same offsets,
// in the gradient and optimizer-state buffers). A layer's tensors are contiguous, so a ZeRO-3
// gather or a DDP bucket is one slice; q/k/v and gate/up are adjacent so each pair is one GEMM.
// Tensor names are the Hugging Face LlamaForCausalLM names, so export is a walk over this list.
#include <cstdint>
#include <string>
#include <vector>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"

namespace slm {

struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape;   // row-major; a linear weight is (out, in) as in PyTorch
    std::vector<int64_t> stored;  // its shape in the buffer: `shape` grown by zero padding at
                                  // the end of each dimension (the FFN's, ModelConfig::ffn_padded)
    int64_t offset = 0;           // in elements from the start of the flat buffer
    int64_t size = 0;             // elements in the buffer (of `stored`)
    bool decay = true;            // AdamW weight decay applies to matrices, not to norm gains

    int64_t logical_size() const {
        int64_t n = 1;
        for (const auto s : shape) n *= s;
        return n;
    }
    bool padded() const { return stored != shape; }
    // Whether the stored element at index i (from offset) is padding, which stays zero.
    bool is_padding(int64_t i) const {
        if (!padded()) return false;
        return stored.size() == 1 ? i >= shape[0]
                                  : i / stored[1] >= shape[0] || i % stored[1] >= shape[1];
    }
    // Copies between the tensor's values in shape order (`logical`, logical_size() of them) and
    // its stored form (`size`); to_stored leaves the padding as it finds it.
    template <class From, class To>
    void to_logical(const From* stored_values, To* logical) const {
        const int64_t cols = shape.back(), stride = stored.back(), rows = logical_size() / cols;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) logical[r * cols + c] = static_cast<To>(stored_values[r * stride + c]);
    }
    template <class From, class To>
    void to_stored(const From* logical, To* stored_values) const {
        const int64_t cols = shape.back(), stride = stored.back(), rows = logical_size() / cols;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) stored_values[r * stride + c] = static_cast<To>(logical[r * cols + c]);
    }
};

// Offsets of one block's tensors. qkv is q_proj's offset: k and v follow it directly, so the
// fused projection weight is (qkv_width, hidden). gate_up likewise is (2 * ffn_padded, hidden),
// and down (hidden, ffn_padded): the FFN's tensors are stored padded (TensorInfo::stored).
struct LayerOffsets {
    int64_t begin = 0, end = 0;
    int64_t attn_norm = 0, qkv = 0, o = 0, mlp_norm = 0, gate_up = 0, down = 0;
};

class ParameterLayout {
public:
    // Group starts are aligned to this many elements so kernels can use 16-byte vector loads.
    static constexpr int64_t alignment = 64;

    // How the FFN's tensors are stored: padded to ModelConfig::ffn_padded (what the model computes
    // with), or at ffn, as checkpoints written before 2026-12-07 hold them (read by relayout).
    enum class Ffn { padded, unpadded };

    explicit ParameterLayout(const ModelConfig& c, Ffn ffn_storage = Ffn::padded) {
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
            const int64_t f = c.ffn, fp = ffn_storage == Ffn::padded ? c.ffn_padded() : c.ffn;
            o.gate_up = add(p + "mlp.gate_proj.weight", {f, d}, true, true, {fp, d});
            add(p + "mlp.up_proj.weight", {f, d}, true, false, {fp, d});
            o.down = add(p + "mlp.down_proj.weight", {d, f}, true, true, {d, fp});
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
        for (const auto& t : tensors_) n += t.logical_size();
        return n;
    }
    const TensorInfo& find(const std::string& name) const {
        for (const auto& t : tensors_)
            if (t.name == name) return t;
        fail("no parameter tensor named '" + name + "' in this model");
    }

private:
    static int64_t round_up(int64_t v) { return (v + alignment - 1) / alignment * alignment; }

    int64_t add(std::string name, std::vector<int64_t> shape, bool decay, bool starts_group,
                std::vector<int64_t> stored = {}) {
        if (starts_group) total_ = round_up(total_);
        if (stored.empty()) stored = shape;
        TensorInfo t{std::move(name), std::move(shape), std::move(stored), total_, 1, decay};
        for (auto s : t.stored) t.size *= s;
        total_ += t.size;
        tensors_.push_back(std::move(t));
        return tensors_.back().offset;
    }

    std::vector<TensorInfo> tensors_;
    std::vector<LayerOffsets> layers_;
    int64_t embed_ = 0, final_norm_ = 0, lm_head_ = 0, total_ = 0;
};

// Values in layout `from` moved into layout `to` (the same model's tensors, stored otherwise):
// each tensor's logical values are copied, and `to`'s padding is zero.
template <class T>
std::vector<T> relayout(const ParameterLayout& from, const ParameterLayout& to, const std::vector<T>& values) {
    require(static_cast<int64_t>(values.size()) == from.total() && from.tensors().size() == to.tensors().size(),
            "relayout: the values or the layouts do not match");
    std::vector<T> out(static_cast<size_t>(to.total()), T(0));
    std::vector<T> logical;
    for (size_t i = 0; i < from.tensors().size(); ++i) {
        const TensorInfo &a = from.tensors()[i], &b = to.tensors()[i];
        require(a.name == b.name && a.shape == b.shape, "relayout: tensor '" + a.name + "' differs between the layouts");
        logical.resize(static_cast<size_t>(a.logical_size()));
        a.to_logical(values.data() + a.offset, logical.data());
        b.to_stored(logical.data(), out.data() + b.offset);
    }
    return out;
}

}  // namespace slm
