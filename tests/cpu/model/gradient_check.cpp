// Finite-difference gradient check of the whole LLaMA in fp64: every parameter tensor (the
// embedding table's used rows are the input-embedding gradient), MHA and GQA, both attention
// policies. The central difference with step 1e-6 has truncation error ~1e-12 relative, far
// below the 1e-6 bound, so a wrong gradient cannot hide.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "slm/slm.hpp"

namespace {

slm::ModelConfig small_config(int64_t kv_heads, bool tied) {
    slm::ModelConfig c;
    c.name = "gradcheck";
    c.vocab = 37;
    c.hidden = 16;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = kv_heads;
    c.ffn = 22;  // stored padded to 24 (ModelConfig::ffn_padded): the padding's gradient is 0
    c.max_seq = 16;
    c.tied_embeddings = tied;
    return c;
}

template <class Attention>
void gradient_check(const slm::ModelConfig& c, slm::Recompute recompute = slm::Recompute::none) {
    CAPTURE(c.kv_heads);
    CAPTURE(c.tied_embeddings);
    CAPTURE(std::string(Attention::name));
    CAPTURE(std::string(slm::recompute_name(recompute)));
    slm::cpu::Backend<double> backend;
    slm::Llama<slm::cpu::Backend<double>, Attention> model(c, backend, 7);
    model.set_recompute(recompute);
    const int64_t batch = 2, seq = 9, n = batch * seq;
    std::vector<int32_t> tokens(n), targets(n);
    for (int64_t i = 0; i < n; ++i) {
        tokens[i] = static_cast<int32_t>((i * 7 + 3) % 20);  // rows 20.. of the table stay unused
        targets[i] = static_cast<int32_t>((i * 5 + 1) % c.vocab);
    }
    targets[4] = slm::ignore_index;  // ignored targets must not contribute

    // Larger weights than the init so every nonlinearity is exercised away from zero.
    std::vector<double> params(static_cast<size_t>(model.layout().total()));
    model.get_parameters(params.data());
    for (const auto& t : model.layout().tensors())
        for (int64_t i = 0; i < t.size; ++i)
            params[t.offset + i] = t.is_padding(i) ? 0.0  // the model keeps it zero
                                   : (t.shape.size() == 1 ? 1.0 : 0.0) +
                                         0.4 * (2 * slm::uniform_open(99, t.offset + i) - 1);
    model.set_parameters(params.data());
    model.zero_gradients();
    const double grad_scale = 0.75;
    model.forward_backward(tokens.data(), targets.data(), batch, seq, grad_scale);
    std::vector<double> grads(params.size());
    model.get_gradients(grads.data());

    auto loss_at = [&](int64_t index, double value) {
        auto p = params;
        p[index] = value;
        model.set_parameters(p.data());
        return grad_scale * model.evaluate(tokens.data(), targets.data(), batch, seq).mean;
    };
    for (const auto& t : model.layout().tensors()) {
        CAPTURE(t.name);
        std::vector<double> numeric, analytic;
        const int64_t stride = std::max<int64_t>(1, t.size / 12);
        for (int64_t i = 0; i < t.size; i += stride) {
            int64_t index = t.offset + i;
            if (t.name == "model.embed_tokens.weight")  // probe the rows tokens actually use
                index = t.offset + (tokens[i % n] * c.hidden + i % c.hidden);
            const double h = 1e-6, x = params[index];
            numeric.push_back((loss_at(index, x + h) - loss_at(index, x - h)) / (2 * h));
            analytic.push_back(grads[index]);
        }
        CHECK(slm::test::relative_error(analytic, numeric) < 1e-6);
    }
}

}  // namespace

TEST_CASE("fp64 finite differences match backward for every parameter tensor") {
    gradient_check<slm::attention::Naive>(small_config(4, false));  // MHA
    gradient_check<slm::attention::Naive>(small_config(2, false));  // GQA
    gradient_check<slm::attention::Flash>(small_config(2, false));
    gradient_check<slm::attention::Flash>(small_config(1, true));   // MQA, tied head
    gradient_check<slm::attention::Flash>(small_config(2, false), slm::Recompute::swiglu);
}

TEST_CASE("Flash and Naive models agree in fp64, loss and every gradient") {
    for (int64_t seq : {16, 13}) {  // Flash's 64-wide default tiles: partial tiles either way
        auto c = small_config(2, false);
        slm::cpu::Backend<double> backend;
        slm::Llama<slm::cpu::Backend<double>, slm::attention::Naive> naive(c, backend, 3);
        slm::Llama<slm::cpu::Backend<double>, slm::attention::Flash> flash(c, backend, 3);
        const int64_t batch = 3, n = batch * seq;
        std::vector<int32_t> tokens(n), targets(n);
        for (int64_t i = 0; i < n; ++i) {
            tokens[i] = static_cast<int32_t>((i * 11) % c.vocab);
            targets[i] = static_cast<int32_t>((i * 3 + 2) % c.vocab);
        }
        const double a = naive.forward_backward(tokens.data(), targets.data(), batch, seq).mean;
        const double b = flash.forward_backward(tokens.data(), targets.data(), batch, seq).mean;
        CHECK(std::abs(a - b) < 1e-12);
        std::vector<double> ga(naive.layout().total()), gb(ga.size());
        naive.get_gradients(ga.data());
        flash.get_gradients(gb.data());
        CHECK(slm::test::relative_error(gb, ga) < 1e-10);
    }
}
