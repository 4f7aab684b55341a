// Llama::set_recompute (model/llama.hpp, core/activation_layout.hpp): a model whose backward
// recomputes the SwiGLU output instead of keeping it computes the same function bit for bit —
// the same loss and the same gradients as the model that keeps it, in fp32 and fp64, over
// several micro-batches and a switch of mode on the same model — and its arena is smaller by
// exactly one SwiGLU output per layer but the one scratch copy.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "slm/slm.hpp"

namespace {

slm::ModelConfig small_config() {
    slm::ModelConfig c;
    c.name = "recompute";
    c.vocab = 41;
    c.hidden = 32;
    c.layers = 3;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 40;
    c.max_seq = 32;
    return c;
}

template <class T>
struct Step {
    double loss;
    std::vector<T> gradients;
};

template <class Model>
Step<typename Model::Grad> two_micro_batches(Model& model, int64_t batch, int64_t seq) {
    const int64_t n = batch * seq;
    std::vector<int32_t> tokens(n), targets(n);
    model.zero_gradients();
    double loss = 0;
    for (int micro = 0; micro < 2; ++micro) {
        for (int64_t i = 0; i < n; ++i) {
            tokens[i] = static_cast<int32_t>((i * 13 + 5 * micro) % model.config().vocab);
            targets[i] = static_cast<int32_t>((i * 7 + 3 + micro) % model.config().vocab);
        }
        loss += model.forward_backward(tokens.data(), targets.data(), batch, seq, 0.5).mean;
    }
    std::vector<typename Model::Grad> g(static_cast<size_t>(model.layout().total()));
    model.get_gradients(g.data());
    return {loss, g};
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T, class Attention>
void check_same_function() {
    CAPTURE(sizeof(T));
    CAPTURE(std::string(Attention::name));
    const auto c = small_config();
    slm::cpu::Backend<T> backend;
    using Model = slm::Llama<slm::cpu::Backend<T>, Attention>;
    Model keeps(c, backend, 5), recomputes(c, backend, 5);
    recomputes.set_recompute(slm::Recompute::swiglu);
    CHECK(recomputes.recompute() == slm::Recompute::swiglu);
    const auto a = two_micro_batches(keeps, 2, 19);
    const auto b = two_micro_batches(recomputes, 2, 19);
    CHECK(std::memcmp(&a.loss, &b.loss, sizeof a.loss) == 0);
    CHECK(same_bits(a.gradients, b.gradients));
    // Back to keeping it on the same model: the arena is laid out again, same bits again.
    recomputes.set_recompute(slm::Recompute::none);
    const auto again = two_micro_batches(recomputes, 2, 19);
    CHECK(same_bits(a.gradients, again.gradients));
}

}  // namespace

TEST_CASE("recomputing the SwiGLU output gives the same loss and gradients, bit for bit") {
    check_same_function<float, slm::attention::Flash>();
    check_same_function<float, slm::attention::Naive>();
    check_same_function<double, slm::attention::Flash>();
}

TEST_CASE("recomputing the SwiGLU output saves one output per layer but the one scratch copy") {
    for (const auto& c : {slm::presets::llama_100m(), slm::presets::llama_2b()}) {
        CAPTURE(c.name);
        const int64_t batch = 8, seq = 2048, n = batch * seq, act = 2;
        const slm::AttentionFootprint attention{n * c.heads * 4, 0};
        const int64_t chunk = int64_t{512} << 20;
        const slm::ActivationLayout keep(c, batch, seq, act, 4, attention, chunk);
        const slm::ActivationLayout redo(c, batch, seq, act, 4, attention, chunk, 0,
                                         slm::Recompute::swiglu);
        const int64_t one = n * c.ffn * act;  // a multiple of the 256-byte alignment here
        CHECK(keep.saved_bytes() - redo.saved_bytes() == c.layers * one);
        // The scratch copy lives in the forward's phase, which stays below the MLP backward's
        // (3 · one), so the arena loses the whole difference.
        CHECK(keep.total_bytes() - redo.total_bytes() == c.layers * one);
        for (int64_t l = 0; l < c.layers; ++l) CHECK(redo.layer(l).mlp_act == redo.layer(0).mlp_act);
        CHECK(redo.layer(0).mlp_act >= redo.saved_bytes());
    }
    CHECK(slm::recompute_from_name("swiglu") == slm::Recompute::swiglu);
    CHECK(slm::recompute_from_name("none") == slm::Recompute::none);
    CHECK_THROWS_WITH_AS(slm::recompute_from_name("norms"),
                         "unknown recompute 'norms': use none or swiglu", slm::Error);
}
