#pragma once
// Llama<Backend, Attention, Storage, Residual, Precision>: a pre-norm LLaMA (RMSNorm, RoPE, SwiGLU,
// optional GQA, untied or tied LM head) over one flat parameter layout. It owns the order of the
// ops; every op is the backend's and attention is the policy's, so the same code trains on the CPU
// reference and on the GPU.
//
// Storage (model/parameter_storage.hpp) decides where the parameters and gradients live. The model
// asks it for each unit's weights just before their first use and for each unit's gradient buffer
// just before the backward writes it, and hands them back right after; with the default
// WholeParameters those calls are views of the whole buffers and cost nothing, under ZeRO-3 they
// are the per-unit all-gathers and reduce-scatters — then every forward (training, evaluate,
// last_logits) is collective: all ranks must run it together.
//
// Residual is the element type of the residual stream (the embedding output and every block's input
// and output, which the norms read and the blocks add into): the backend's activation type by
// default, or float on a bf16 backend. In bf16 each of the 2·layers additions rounds the stream
// again, and those roundings dominate a bf16 model's error against fp32 (about 1% of the logits at
// llama_100m); an fp32 stream, as PyTorch's autocast keeps it, roughly halves that for 2 more bytes
// per element of three saved buffers per layer and wider norm passes.
//
// Precision (precision/policy.hpp) is what the blocks' four projections multiply in: the
// backend's own GEMMs (Bf16, the default) or FP8; the LM head stays in the backend's precision.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slm/attention/policy.hpp"
#include "slm/core/activation_layout.hpp"
#include "slm/core/backend.hpp"
#include "slm/core/config.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/core/random.hpp"
#include "slm/model/parameter_storage.hpp"
#include "slm/model/parameter_units.hpp"
#include "slm/model/whole_parameters.hpp"
#include "slm/precision/policy.hpp"

namespace slm {

namespace model_detail {
// The residual stream's default type, B::Act, without naming B::Act when B has none: a default
// argument that cannot be formed is a hard error before any concept is checked, so
// Llama<attention::Flash, cpu::Backend<float>> (arguments swapped) would fail with "no type
// named 'Act'" instead of "Backend<Flash> is not satisfied".
template <class B>
struct act_of {
    using type = void;
};
template <class B>
    requires requires { typename B::Act; }
struct act_of<B> {
    using type = typename B::Act;
};
}  // namespace model_detail

template <Backend B, attention::AttentionPolicy A,
          model::ParameterStorage<B> Storage = model::WholeParameters,
          class Residual = typename model_detail::act_of<B>::type,
          precision::PrecisionPolicy P = precision::Bf16>
class Llama {
public:
    using BackendType = B;
    using AttentionType = A;
    using Master = typename B::Master;
    using Act = typename B::Act;
    using Resid = Residual;
    using Grad = typename B::Grad;
    using Stat = typename B::Stat;
    using Kernel = attention::AttentionKernel<A, B>;
    using StorageType = Storage;
    using PrecisionType = P;
    using Linear = precision::LinearKernel<P, B>;
    // The same model over another storage (the trainer picks the parallel policy's).
    template <model::ParameterStorage<B> Other>
    using with_storage = Llama<B, A, Other, Residual, P>;
    // The same model with another precision policy.
    template <precision::PrecisionPolicy Other>
    using with_precision = Llama<B, A, Storage, Residual, Other>;

    // The backend's element sizes, with this model's residual stream.
    static Precision precision() {
        Precision p = B::precision();
        p.residual = static_cast<int64_t>(sizeof(Residual));
        return p;
    }

    Llama(const ModelConfig& config, B& backend, uint64_t seed = 1234, const Storage& storage = {})
        : config_((config.validate(), config)),
          layout_(config_),
          units_(config_, layout_),
          backend_(backend),
          store_(backend, layout_, units_, storage),
          linear_(backend, config_.layers) {
        require(A::supports_head_dim(config_.head_dim()),
                "attention '" + std::string(A::name) + "' does not support head_dim " +
                    std::to_string(config_.head_dim()) +
                    " (hidden / heads); pick another attention policy or change heads");
        initialize(seed);
    }

    const ModelConfig& config() const { return config_; }
    const ParameterLayout& layout() const { return layout_; }
    const model::ParameterUnits& units() const { return units_; }
    B& backend() { return backend_; }
    // The precision policy's linear layers (cast_report()); restart_scaling: precision/policy.hpp.
    const Linear& linear() const { return linear_; }
    void restart_precision_scaling() { linear_.restart_scaling(); }
    // What this rank holds and its optimizer updates: the whole flat buffers, or its shards.
    // A writable pointer to the weights may change them: what the precision kernel made from
    // them (FP8's weight codes) is stale from then on (writable()).
    Master* parameters() { return writable(store_.parameters()); }
    Grad* gradients() { return store_.gradients(); }
    Act* working() { return writable(store_.working()); }  // the low-precision copy, or null
    int64_t parameter_count() const { return store_.parameter_count(); }
    int64_t gradient_count() const { return store_.gradient_count(); }
    // What the GEMMs read, whole: the master weights or their low-precision copy.
    Act* weights() requires requires(typename Storage::template Store<B>& s) { s.weights(); }
    { return writable(store_.weights()); }
    // Bytes of parameters (and gather buffers) and gradients (and reduce buffers) it allocated.
    StateBytes state_bytes() const { return store_.bytes(); }

    // Normal(0, 0.02) matrices, with the two projections that write into the residual stream
    // scaled by 1/sqrt(2·layers) so the stream's variance does not grow with depth; norms at 1.
    void initialize(uint64_t seed) {
        std::vector<Master> host(static_cast<size_t>(layout_.total()), Master(0));
        const double residual_scale = 1.0 / std::sqrt(2.0 * static_cast<double>(config_.layers));
        for (const auto& t : layout_.tensors()) {
            const bool norm = t.shape.size() == 1;
            const bool into_residual = t.name.ends_with("o_proj.weight") ||
                                       t.name.ends_with("down_proj.weight");
            const double std = 0.02 * (into_residual ? residual_scale : 1.0);
            // Counter-based values: the parallel loop gives the same weights on any thread count.
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < t.size; ++i)
                host[static_cast<size_t>(t.offset + i)] =
                    t.is_padding(i) ? Master(0)  // the FFN's padding units (ModelConfig::ffn_padded)
                    : norm          ? Master(1)
                                    : static_cast<Master>(std * normal(seed, static_cast<uint64_t>(t.offset + i)));
        }
        set_parameters(host.data());
        zero_gradients();
    }

    // host: layout().total() values in the flat layout. With sharded weights, get_parameters is
    // collective (every rank calls it) and a rank may pass nullptr to only contribute.
    void set_parameters(const Master* host) { linear_.weights_changed(); store_.set_parameters(host); }
    void get_parameters(Master* host) { store_.get_parameters(host); }
    void get_gradients(Grad* host) { store_.get_gradients(host); }
    void zero_gradients() { store_.zero_gradients(); }
    void refresh_working_copy() { linear_.weights_changed(); store_.refresh_working_copy(); }

    // One micro-batch: forward, loss, backward. Gradients of grad_scale · mean loss are ADDED to
    // gradients(), so micro-batches accumulate. tokens, targets: host arrays of batch·seq.
    LossResult forward_backward(const int32_t* tokens, const int32_t* targets, int64_t batch,
                                int64_t seq, double grad_scale = 1.0) {
        LossResult loss = forward(tokens, targets, batch, seq, true, grad_scale);
        backward();
        return loss;
    }

    // Loss only; gradients untouched.
    LossResult evaluate(const int32_t* tokens, const int32_t* targets, int64_t batch, int64_t seq) {
        return forward(tokens, targets, batch, seq, false, 0.0);
    }

    // Logits of the last position of each sequence, for sampling. logits: host (batch, vocab).
    void last_logits(const int32_t* tokens, int64_t batch, int64_t seq, Act* logits) {
        forward_trunk(tokens, batch, seq);
        const auto& a = *acts_;
        const int64_t d = config_.hidden, V = config_.vocab;
        auto device_logits = backend_.template allocate<Act>(batch * V);
        const auto w = store_.gather(units_.lm_head());
        for (int64_t b = 0; b < batch; ++b)
            backend_.linear_forward(at<Act>(a.norm_final()) + ((b + 1) * seq - 1) * d,
                                    w.at(layout_.lm_head()), device_logits.data() + b * V, 1, d, V);
        store_.release(units_.lm_head());
        backend_.download(logits, device_logits.data(), batch * V);
    }

    // Bytes the activation arena holds for a (batch, seq) micro-batch.
    int64_t activation_bytes(int64_t batch, int64_t seq) const {
        return make_activation_layout(batch, seq).total_bytes();
    }

    // What the backward computes again instead of reading it (core/activation_layout.hpp); the
    // results are the same bits either way. Takes effect at the next forward.
    void set_recompute(Recompute r) { recompute_ = r; }
    Recompute recompute() const { return recompute_; }

private:
    using Projection = precision::Projection;
    static precision::LinearSite site(int64_t layer, Projection p) { return {layer, p}; }
    template <class T>  // p, once the precision kernel knows the weights may change (through it)
    T* writable(T* p) { return linear_.weights_changed(), p; }

    AttentionShape attention_shape(int64_t batch, int64_t seq) const {
        return {batch, seq, config_.heads, config_.kv_heads, config_.head_dim()};
    }

    ActivationLayout make_activation_layout(int64_t batch, int64_t seq) const {
        const auto p = precision();
        const int64_t chunk = backend_.loss_chunk_rows(batch * seq, config_.vocab);
        return ActivationLayout(config_, batch, seq, p.activation, p.statistic,
                                Kernel::footprint(attention_shape(batch, seq)),
                                chunk * config_.vocab * p.activation, p.residual, recompute_);
    }

    template <class U>
    U* at(int64_t byte_offset) {
        return reinterpret_cast<U*>(arena_->data() + byte_offset);
    }

    void prepare(int64_t batch, int64_t seq) {
        require(batch > 0, "batch must be > 0, got " + std::to_string(batch));
        require(seq > 0 && seq <= config_.max_seq,
                "sequence length " + std::to_string(seq) + " is outside [1, max_seq = " +
                    std::to_string(config_.max_seq) + "] of model '" + config_.name +
                    "'; use a shorter --seq or a config with a larger max_seq");
        if (acts_ && acts_->batch() == batch && acts_->seq() == seq &&
            acts_->recompute() == recompute_)
            return;
        acts_.emplace(make_activation_layout(batch, seq));
        // A smaller micro-batch (the short last validation batch) reuses the arena as it is.
        if (arena_ && static_cast<int64_t>(arena_->size()) >= acts_->total_bytes()) return;
        arena_.reset();
        arena_.emplace(backend_.template allocate<std::byte>(acts_->total_bytes()));
    }

    // Embedding → blocks → final norm; leaves everything backward needs in the arena. Each unit's
    // weights are gathered just before first use and released once the next unit is in hand.
    void forward_trunk(const int32_t* tokens, int64_t batch, int64_t seq) {
        prepare(batch, seq);
        const auto& a = *acts_;
        const ModelConfig& c = config_;
        const int64_t n = batch * seq, d = c.hidden, f = c.ffn_padded();
        const auto shape = attention_shape(batch, seq);
        backend_.upload(at<int32_t>(a.tokens()), tokens, n);
        const auto embedding = store_.gather(units_.embedding());
        backend_.embedding_forward(at<int32_t>(a.tokens()), embedding.at(layout_.embed()),
                                   at<Resid>(a.layer(0).resid_in), n, d, c.vocab);
        const auto& l0 = a.layer(0);
        auto w = store_.gather(units_.layer(0));
        backend_.add_rmsnorm_forward(at<Resid>(l0.resid_in), nullptr, at<Resid>(l0.resid_in),
                                     w.at(layout_.layer(0).attn_norm), at<Act>(l0.norm1),
                                     at<Stat>(l0.rstd1), n, d, c.norm_eps);
        store_.release(units_.embedding());
        for (int64_t l = 0; l < c.layers; ++l) {
            const auto& al = a.layer(l);
            const auto& pl = layout_.layer(l);
            Act* delta = at<Act>(a.delta());
            linear_.forward(backend_, site(l, Projection::qkv), at<Act>(al.norm1), w.at(pl.qkv),
                            at<Act>(al.qkv), n, d, c.qkv_width());
            backend_.rope_forward(at<Act>(al.qkv), shape, c.rope_theta);
            {
                const auto timed = backend_.op_scope(Op::attention);
                Kernel::forward(backend_, shape, at<Act>(al.qkv), at<Act>(al.attn_out),
                                arena_->data() + al.attn_saved);
            }
            linear_.forward(backend_, site(l, Projection::o), at<Act>(al.attn_out), w.at(pl.o), delta, n,
                            c.q_width(), d);
            backend_.add_rmsnorm_forward(at<Resid>(al.resid_in), delta, at<Resid>(al.resid_mid),
                                         w.at(pl.mlp_norm), at<Act>(al.norm2), at<Stat>(al.rstd2),
                                         n, d, c.norm_eps);
            linear_.forward(backend_, site(l, Projection::gate_up), at<Act>(al.norm2), w.at(pl.gate_up),
                            at<Act>(al.gate_up), n, d, 2 * f);
            backend_.swiglu_forward(at<Act>(al.gate_up), at<Act>(al.mlp_act), n, f);
            linear_.forward(backend_, site(l, Projection::down), at<Act>(al.mlp_act), w.at(pl.down), delta,
                            n, f, d);
            // The residual add closing this block is fused with the norm opening the next, so the
            // next unit is gathered before this one is released.
            const bool last = l + 1 == c.layers;
            Resid* next_resid = at<Resid>(last ? a.resid_final() : a.layer(l + 1).resid_in);
            Act* next_norm = at<Act>(last ? a.norm_final() : a.layer(l + 1).norm1);
            Stat* next_rstd = at<Stat>(last ? a.rstd_final() : a.layer(l + 1).rstd1);
            const int64_t next_w = last ? layout_.final_norm() : layout_.layer(l + 1).attn_norm;
            const auto next = store_.gather(last ? units_.final_norm() : units_.layer(l + 1));
            backend_.add_rmsnorm_forward(at<Resid>(al.resid_mid), delta, next_resid, next.at(next_w),
                                         next_norm, next_rstd, n, d, c.norm_eps);
            store_.release(units_.layer(l));
            w = next;
        }
        store_.release(units_.final_norm());
    }

    LossResult forward(const int32_t* tokens, const int32_t* targets, int64_t batch, int64_t seq,
                       bool with_gradient, double grad_scale) {
        forward_trunk(tokens, batch, seq);
        const auto& a = *acts_;
        const int64_t n = batch * seq;
        backend_.upload(at<int32_t>(a.targets()), targets, n);
        // The head's gradient comes out of the same pass as the loss: d_norm holds dL/d(norm_final)
        // for backward() to continue from, and the head's unit gradient is complete here.
        const int64_t head = units_.lm_head();
        const auto w = store_.gather(head);
        Grad* d_head = with_gradient ? store_.gradients_for(head).at(layout_.lm_head()) : nullptr;
        const LossResult loss = backend_.lm_head_cross_entropy(
            at<Act>(a.norm_final()), w.at(layout_.lm_head()), at<int32_t>(a.targets()), n,
            config_.hidden, config_.vocab, arena_->data() + a.loss_chunk(),
            backend_.loss_chunk_rows(n, config_.vocab), grad_scale,
            with_gradient ? at<Act>(a.d_norm()) : nullptr, d_head);
        if (with_gradient) store_.gradients_done(head);
        store_.release(head);
        return loss;
    }

    // Unit by unit from the top: gather the unit's weights, take its gradient buffer, run its
    // backward, hand the gradient back (ZeRO-2/3 reduce-scatter it there), release the weights.
    void backward() {
        const auto& a = *acts_;
        const ModelConfig& c = config_;
        const int64_t n = a.batch() * a.seq(), d = c.hidden, f = c.ffn_padded();
        const auto shape = attention_shape(a.batch(), a.seq());
        Act* d_resid = at<Act>(a.d_resid());
        Act* d_norm = at<Act>(a.d_norm());
        backend_.zero(d_resid, n * d);
        {
            const int64_t unit = units_.final_norm();
            const auto w = store_.gather(unit);
            const auto g = store_.gradients_for(unit);
            backend_.rmsnorm_backward(at<Resid>(a.resid_final()), w.at(layout_.final_norm()),
                                      at<Stat>(a.rstd_final()), d_norm, d_resid,
                                      g.at(layout_.final_norm()), n, d);
            store_.gradients_done(unit);
            store_.release(unit);
        }
        // d_resid is dL/d(residual stream) after each block; both branches read it and the
        // norms' backward add their share into it.
        for (int64_t l = c.layers - 1; l >= 0; --l) {
            const auto& al = a.layer(l);
            const auto& pl = layout_.layer(l);
            const auto w = store_.gather(units_.layer(l));
            const auto g = store_.gradients_for(units_.layer(l));
            Act* d_mlp_act = at<Act>(a.d_mlp_act());
            if (a.recompute() == Recompute::swiglu) {
                // The SwiGLU output was not kept: the input gradient first, then the SwiGLU
                // backward leaves the output, recomputed, where that gradient was, for the
                // down projection's weight gradient.
                linear_.backward(backend_, site(l, Projection::down), nullptr, w.at(pl.down), d_resid,
                                 d_mlp_act, nullptr, n, f, d);
                backend_.swiglu_backward_recompute(at<Act>(al.gate_up), d_mlp_act,
                                                   at<Act>(a.d_gate_up()), n, f);
                linear_.backward(backend_, site(l, Projection::down), d_mlp_act, nullptr, d_resid,
                                 nullptr, g.at(pl.down), n, f, d);
            } else {
                linear_.backward(backend_, site(l, Projection::down), at<Act>(al.mlp_act), w.at(pl.down),
                                 d_resid, d_mlp_act, g.at(pl.down), n, f, d);
                backend_.swiglu_backward(at<Act>(al.gate_up), d_mlp_act, at<Act>(a.d_gate_up()),
                                         n, f);
            }
            linear_.backward(backend_, site(l, Projection::gate_up), at<Act>(al.norm2), w.at(pl.gate_up),
                             at<Act>(a.d_gate_up()), d_norm, g.at(pl.gate_up), n, d, 2 * f);
            backend_.rmsnorm_backward(at<Resid>(al.resid_mid), w.at(pl.mlp_norm), at<Stat>(al.rstd2),
                                      d_norm, d_resid, g.at(pl.mlp_norm), n, d);
            linear_.backward(backend_, site(l, Projection::o), at<Act>(al.attn_out), w.at(pl.o), d_resid,
                             at<Act>(a.d_attn_out()), g.at(pl.o), n, c.q_width(), d);
            // A kernel that takes the gradient back through RoPE itself saves part of that pass.
            if constexpr (requires { &Kernel::backward_through_rope; }) {
                const auto timed = backend_.op_scope(Op::attention);
                Kernel::backward_through_rope(backend_, shape, c.rope_theta, at<Act>(al.qkv),
                                              at<Act>(al.attn_out), at<Act>(a.d_attn_out()),
                                              arena_->data() + al.attn_saved,
                                              arena_->data() + a.attention_scratch(),
                                              at<Act>(a.d_qkv()));
            } else {
                {
                    const auto timed = backend_.op_scope(Op::attention);
                    Kernel::backward(backend_, shape, at<Act>(al.qkv), at<Act>(al.attn_out),
                                     at<Act>(a.d_attn_out()), arena_->data() + al.attn_saved,
                                     arena_->data() + a.attention_scratch(), at<Act>(a.d_qkv()));
                }
                backend_.rope_backward(at<Act>(a.d_qkv()), shape, c.rope_theta);
            }
            linear_.backward(backend_, site(l, Projection::qkv), at<Act>(al.norm1), w.at(pl.qkv),
                             at<Act>(a.d_qkv()), d_norm, g.at(pl.qkv), n, d, c.qkv_width());
            backend_.rmsnorm_backward(at<Resid>(al.resid_in), w.at(pl.attn_norm), at<Stat>(al.rstd1),
                                      d_norm, d_resid, g.at(pl.attn_norm), n, d);
            store_.gradients_done(units_.layer(l));
            store_.release(units_.layer(l));
        }
        // The table's rows are gathered by token, not read: no weights needed.
        const auto g = store_.gradients_for(units_.embedding());
        backend_.embedding_backward(at<int32_t>(a.tokens()), d_resid, g.at(layout_.embed()), n, d);
        store_.gradients_done(units_.embedding());
    }

    ModelConfig config_;
    ParameterLayout layout_;
    model::ParameterUnits units_;
    B& backend_;
    typename Storage::template Store<B> store_;
    Linear linear_;
    Recompute recompute_ = Recompute::none;
    std::optional<ActivationLayout> acts_;
    std::optional<typename B::template Buffer<std::byte>> arena_;
};

}  // namespace slm
