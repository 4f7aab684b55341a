#pragma once
// Training on text from a fixed random bigram chain, for tests that compare two ways of
// computing the same model (FP8 against bf16/fp32): learnable, with an entropy floor (ln 4 = 1.39:
// each token has 4 equally likely successors) the loss approaches but cannot pass, so two runs'
// losses are comparable without either reaching zero.
#include <cmath>
#include <cstdint>
#include <vector>

#include "slm/core/random.hpp"
#include "slm/optim/adamw.hpp"
#include "slm/optim/clip.hpp"
#include "slm/optim/schedule.hpp"

namespace slm::test {

// tokens, targets (n each): stream `stream` of the chain over `vocab` tokens.
inline void bigram_batch(int64_t vocab, uint64_t stream, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
    int32_t t = static_cast<int32_t>(splitmix64(stream) % static_cast<uint64_t>(vocab));
    for (size_t i = 0; i < tokens.size(); ++i) {
        const uint64_t r = splitmix64(stream * 7919 + i + 1);
        const auto next = static_cast<int32_t>(splitmix64(static_cast<uint64_t>(t) * 4 + r % 4) % static_cast<uint64_t>(vocab));
        tokens[i] = t;
        targets[i] = next;
        t = next;
    }
}

// `steps` AdamW steps (default config, lr 3e-3 → 3e-4 after `warmup`) on streams 1..steps, then
// the mean loss over held-out streams 1000..1003. working: the model's low-precision weight copy
// the update refreshes (model.weights() on the GPU), or null.
template <class Model, class Backend, class Working>
double train_on_bigrams(Model& model, Backend& backend, Working* working, int64_t vocab, int64_t batch, int64_t seq,
                        int64_t steps, int64_t warmup) {
    optim::AdamWConfig oc;
    optim::AdamWState<Backend> adam(backend, model.layout(), oc);
    const optim::WarmupCosine lr{3e-3, 3e-4, warmup, steps};
    std::vector<int32_t> tokens(static_cast<size_t>(batch * seq)), targets(tokens.size());
    for (int64_t step = 0; step < steps; ++step) {
        bigram_batch(vocab, static_cast<uint64_t>(step) + 1, tokens, targets);
        model.zero_gradients();
        model.forward_backward(tokens.data(), targets.data(), batch, seq);
        const double norm = std::sqrt(backend.sum_of_squares(model.gradients(), model.layout().total()));
        adam.update(model.parameters(), model.gradients(), working, lr(step), optim::clip_factor(norm, oc.max_grad_norm));
    }
    double loss = 0;
    for (uint64_t b = 0; b < 4; ++b) {
        bigram_batch(vocab, 1000 + b, tokens, targets);
        loss += model.evaluate(tokens.data(), targets.data(), batch, seq).mean / 4;
    }
    return loss;
}

}  // namespace slm::test
