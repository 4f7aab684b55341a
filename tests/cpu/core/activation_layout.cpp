// include/slm/core/activation_layout.hpp: what forward keeps for backward is laid out without
// overlap; the scratch buffers share one region by phase (forward's delta, with the SwiGLU output
// when the backward recomputes it; the loss's logits chunk; a layer's MLP backward: d_gate_up,
// d_mlp_act; its attention backward: d_qkv, d_attn_out, the attention scratch), never overlapping
// within a phase nor with d_resid and d_norm, which live across phases; and the total is the
// saved bytes, d_resid, d_norm and the largest phase. (The model's fp64 gradient checks catch a
// phase that is wrong about lifetimes.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "slm/core/activation_layout.hpp"
#include "slm/core/presets.hpp"

namespace {

struct Span {
    std::string name;
    int64_t begin, bytes;
    int64_t end() const { return begin + bytes; }
};

bool overlap(const Span& a, const Span& b) { return a.begin < b.end() && b.begin < a.end(); }

int64_t aligned(int64_t bytes) { return (bytes + 255) / 256 * 256; }

void check_disjoint(const std::vector<Span>& spans) {
    for (size_t i = 0; i < spans.size(); ++i)
        for (size_t j = i + 1; j < spans.size(); ++j) {
            CAPTURE(spans[i].name);
            CAPTURE(spans[j].name);
            CHECK_FALSE(overlap(spans[i], spans[j]));
        }
}

}  // namespace

TEST_CASE("activation layout: saved tensors apart, scratch shared by phase, total = saved + largest phase") {
    for (const auto& c : {slm::presets::llama_100m(), slm::presets::llama_2b(), slm::presets::tiny()}) {
        for (auto [loss_chunk, recompute] : {std::pair{int64_t{512} << 20, slm::Recompute::none},
                                             std::pair{int64_t{1} << 10, slm::Recompute::none},
                                             std::pair{int64_t{1} << 10, slm::Recompute::swiglu}}) {
            CAPTURE(c.name);
            CAPTURE(loss_chunk);
            CAPTURE(std::string(slm::recompute_name(recompute)));
            const bool keeps_mlp_act = recompute == slm::Recompute::none;
            const int64_t batch = 8, seq = 2048, n = batch * seq, act = 2;
            const slm::AttentionFootprint attention{n * c.heads * 4, 3 * n * c.hidden * 4};
            const slm::ActivationLayout a(c, batch, seq, act, 4, attention, loss_chunk, 0, recompute);
            const int64_t d = c.hidden, f = c.ffn;

            // Saved: every layer's tensors and the final ones, disjoint, all below saved_bytes.
            std::vector<Span> saved = {{"tokens", a.tokens(), n * 4}, {"targets", a.targets(), n * 4},
                                       {"resid_final", a.resid_final(), n * d * act},
                                       {"norm_final", a.norm_final(), n * d * act},
                                       {"rstd_final", a.rstd_final(), n * 4}};
            for (int64_t l = 0; l < c.layers; ++l) {
                const auto& L = a.layer(l);
                const std::string at = std::to_string(l);
                for (const Span& s : {Span{"resid_in" + at, L.resid_in, n * d * act}, Span{"norm1" + at, L.norm1, n * d * act},
                                      Span{"rstd1" + at, L.rstd1, n * 4}, Span{"qkv" + at, L.qkv, n * c.qkv_width() * act},
                                      Span{"attn_out" + at, L.attn_out, n * c.q_width() * act},
                                      Span{"attn_saved" + at, L.attn_saved, attention.saved_bytes_per_layer},
                                      Span{"resid_mid" + at, L.resid_mid, n * d * act}, Span{"norm2" + at, L.norm2, n * d * act},
                                      Span{"rstd2" + at, L.rstd2, n * 4}, Span{"gate_up" + at, L.gate_up, n * 2 * f * act}})
                    saved.push_back(s);
                if (keeps_mlp_act) saved.push_back({"mlp_act" + at, L.mlp_act, n * f * act});
                else CHECK(L.mlp_act == a.layer(0).mlp_act);  // one scratch copy for every layer
            }
            check_disjoint(saved);
            for (const Span& s : saved) CHECK(s.end() <= a.saved_bytes());

            // Scratch: the two carried buffers and each phase, disjoint within; all above the saved.
            const Span d_resid{"d_resid", a.d_resid(), n * d * act}, d_norm{"d_norm", a.d_norm(), n * d * act};
            std::vector<Span> forward = {{"delta", a.delta(), n * d * act}};
            if (!keeps_mlp_act) forward.push_back({"mlp_act", a.layer(0).mlp_act, n * f * act});
            const std::vector<std::vector<Span>> phases = {
                forward,
                {{"loss_chunk", a.loss_chunk(), loss_chunk}},
                {{"d_gate_up", a.d_gate_up(), n * 2 * f * act}, {"d_mlp_act", a.d_mlp_act(), n * f * act}},
                {{"d_qkv", a.d_qkv(), n * c.qkv_width() * act}, {"d_attn_out", a.d_attn_out(), n * c.q_width() * act},
                 {"attention_scratch", a.attention_scratch(), attention.scratch_bytes}}};
            int64_t largest = 0;
            for (const auto& phase : phases) {
                std::vector<Span> live = phase;
                live.push_back(d_resid);
                live.push_back(d_norm);
                check_disjoint(live);
                int64_t bytes = 0;
                for (const Span& s : phase) {
                    CHECK(s.begin >= a.saved_bytes());
                    CHECK(s.end() <= a.total_bytes());
                    bytes += aligned(s.bytes);
                }
                largest = std::max(largest, bytes);
            }
            CHECK(a.total_bytes() == a.saved_bytes() + 2 * aligned(n * d * act) + largest);
        }
    }
}
