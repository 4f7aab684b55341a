// sample: generate text from a train_llama checkpoint, so you can see what the model learned.
//
//   sample --checkpoint runs/tiny/checkpoint.bin --tokenizer data/kjv/tokenizer.model \
//          --prompt "In the beginning" --tokens 80 --temperature 0.8 --top-k 40
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cli.hpp"
#include "slm/core/random.hpp"
#include "slm/data/tokenizer.hpp"
#include "slm/slm.hpp"
#include "slm/train/checkpoint.hpp"

namespace {

// Picks a token from logits: temperature 0 is greedy; otherwise softmax(logits / T) restricted
// to the top_k largest (0: all), drawn with the counter-based generator.
int32_t pick(const std::vector<float>& logits, double temperature, int64_t top_k, uint64_t seed,
             uint64_t draw) {
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    if (temperature <= 0)
        return *std::max_element(order.begin(), order.end(),
                                 [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
    const auto k = static_cast<size_t>(top_k > 0 ? std::min<int64_t>(top_k, logits.size())
                                                 : static_cast<int64_t>(logits.size()));
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    std::vector<double> p(k);
    for (size_t i = 0; i < k; ++i) p[i] = std::exp((logits[order[i]] - logits[order[0]]) / temperature);
    double u = slm::uniform_open(seed, draw) * std::accumulate(p.begin(), p.end(), 0.0);
    for (size_t i = 0; i < k; ++i)
        if ((u -= p[i]) <= 0) return order[i];
    return order[k - 1];
}

}  // namespace

int main(int argc, char** argv) {
    slm::cli::Flags flags("sample", "generate text from a checkpoint",
                          {{"--checkpoint", "runs/tiny/checkpoint.bin", "checkpoint from train_llama"},
                           {"--tokenizer", "data/kjv/tokenizer.model", "tokenizer from prepare_data"},
                           {"--prompt", "And God said", "text to continue"},
                           {"--tokens", "80", "tokens to generate"},
                           {"--temperature", "0.8", "softmax temperature (0: greedy)"},
                           {"--top-k", "40", "sample among the k most likely tokens (0: all)"},
                           {"--seed", "1", "sampling seed"}});
    try {
        if (!flags.parse(argc, argv)) return 0;
        const int64_t count = flags.integer("--tokens", 1);
        const double temperature = flags.real("--temperature", 0);
        const int64_t top_k = flags.integer("--top-k", 0);
        const auto seed = static_cast<uint64_t>(flags.integer("--seed", 0));

        const auto ckpt = slm::load_checkpoint<float>(flags.text("--checkpoint"));
        const slm::data::Tokenizer tokenizer(flags.text("--tokenizer"));
        slm::require(tokenizer.vocab_size() <= ckpt.config.vocab,
                     "tokenizer vocabulary (" + std::to_string(tokenizer.vocab_size()) +
                         ") is larger than the model's (" + std::to_string(ckpt.config.vocab) +
                         "): use the tokenizer the model was trained with");
        slm::cpu::Backend<float> backend;
        slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash> model(ckpt.config, backend);
        model.set_parameters(ckpt.params.data());

        const std::string prompt = flags.text("--prompt");
        std::vector<int32_t> context{static_cast<int32_t>(tokenizer.bos())};
        for (int32_t t : tokenizer.encode(prompt)) context.push_back(t);
        std::vector<int32_t> generated;
        std::vector<float> logits(static_cast<size_t>(ckpt.config.vocab));
        for (int64_t i = 0; i < count; ++i) {
            const int64_t window = std::min<int64_t>(context.size(), ckpt.config.max_seq);
            model.last_logits(context.data() + context.size() - window, 1, window, logits.data());
            // Tokens the tokenizer cannot decode (the model's vocab may be larger) are excluded.
            std::fill(logits.begin() + tokenizer.vocab_size(), logits.end(), -INFINITY);
            const int32_t next = pick(logits, temperature, top_k, seed, static_cast<uint64_t>(i));
            if (next == tokenizer.eos()) break;
            context.push_back(next);
            generated.push_back(next);
        }
        std::printf("%s%s\n", prompt.c_str(), tokenizer.decode(generated).c_str());
        return 0;
    } catch (const slm::cli::UsageError& e) {
        std::fprintf(stderr, "sample: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const std::exception& e) {  // slm::Error, and what the standard library throws
        std::fprintf(stderr, "sample: error: %s\n", e.what());
        return 1;
    }
}
