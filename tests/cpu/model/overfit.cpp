// A tiny LLaMA must memorise one fixed batch with AdamW: the end-to-end sign that forward,
// backward, clipping and the optimizer fit together.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "slm/slm.hpp"

TEST_CASE("a tiny model overfits one batch with AdamW (loss < 0.05)") {
    slm::ModelConfig c;
    c.name = "overfit";
    c.vocab = 64;
    c.hidden = 64;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 128;
    c.max_seq = 32;
    slm::cpu::Backend<float> backend;
    slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash> model(c, backend, 5);
    slm::optim::AdamWConfig oc;
    oc.weight_decay = 0.0;
    slm::optim::AdamWState<slm::cpu::Backend<float>> adam(backend, model.layout(), oc);
    const slm::optim::WarmupCosine lr{3e-3, 3e-4, 10, 300};

    const int64_t batch = 4, seq = 32, n = batch * seq;
    std::vector<int32_t> tokens(n), targets(n);
    for (int64_t i = 0; i < n; ++i) {
        tokens[i] = static_cast<int32_t>(slm::splitmix64(i) % c.vocab);  // random: must memorise
        targets[i] = static_cast<int32_t>(slm::splitmix64(i + 1000) % c.vocab);
    }
    double first = 0, last = 0;
    for (int64_t step = 0; step < 300; ++step) {
        model.zero_gradients();
        last = model.forward_backward(tokens.data(), targets.data(), batch, seq).mean;
        if (step == 0) first = last;
        const double norm = std::sqrt(backend.sum_of_squares(model.gradients(), model.layout().total()));
        adam.update(model.parameters(), model.gradients(), nullptr, lr(step),
                    slm::optim::clip_factor(norm, oc.max_grad_norm));
        if (last < 0.05) break;
    }
    MESSAGE("loss " << first << " -> " << last);
    CHECK(first == doctest::Approx(std::log(64.0)).epsilon(0.05));
    CHECK(last < 0.05);
}
