// ModelConfig validation, presets, parameter counts, FLOPs and the memory estimate.
#include <doctest/doctest.h>

#include <string>

#include "slm/slm.hpp"

namespace {

std::string error_of(const slm::ModelConfig& c) {
    try {
        c.validate();
    } catch (const slm::Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// The count a person does on paper: embeddings, then per layer q/k/v/o, gate/up/down and two
// norms, then the final norm and the untied head.
int64_t hand_count(int64_t V, int64_t L, int64_t d, int64_t ffn) {
    return V * d + L * (4 * d * d + 3 * d * ffn + 2 * d) + d + V * d;
}

}  // namespace

TEST_CASE("invalid configs name the field and the rule") {
    slm::ModelConfig c = slm::presets::tiny();
    CHECK(error_of(c).empty());

    auto bad = c;
    bad.heads = 3;  // 256 % 3 != 0
    CHECK(contains(error_of(bad), "ModelConfig.heads"));
    CHECK(contains(error_of(bad), "must divide hidden"));

    bad = c;
    bad.kv_heads = 3;  // 4 % 3 != 0
    CHECK(contains(error_of(bad), "ModelConfig.kv_heads"));

    for (auto field : {&slm::ModelConfig::vocab, &slm::ModelConfig::hidden,
                       &slm::ModelConfig::layers, &slm::ModelConfig::heads,
                       &slm::ModelConfig::kv_heads, &slm::ModelConfig::ffn,
                       &slm::ModelConfig::max_seq}) {
        bad = c;
        bad.*field = 0;
        const std::string e = error_of(bad);
        CHECK(contains(e, "must be > 0"));
    }
    bad = c;
    bad.ffn = 0;
    CHECK(contains(error_of(bad), "ModelConfig.ffn"));

    bad = c;
    bad.hidden = 12;
    bad.heads = 4;  // head_dim 3 is odd
    bad.kv_heads = 4;
    CHECK(contains(error_of(bad), "head_dim"));
    CHECK(contains(error_of(bad), "even for RoPE"));

    CHECK_THROWS_AS(slm::presets::by_name("llama_3b"), slm::Error);
}

TEST_CASE("preset parameter counts equal the hand count and the published table") {
    struct Row {
        slm::ModelConfig c;
        double millions;
    };
    for (const Row& r : {Row{slm::presets::llama_100m(), 134.1}, Row{slm::presets::llama_500m(), 557.8},
                         Row{slm::presets::llama_1b(), 1345.4}, Row{slm::presets::llama_2b(), 2067.1}}) {
        const auto& c = r.c;
        const int64_t hand = hand_count(c.vocab, c.layers, c.hidden, c.ffn);
        CHECK(slm::parameter_count(c) == hand);
        CHECK(slm::ParameterLayout(c).parameter_count() == hand);
        CHECK(static_cast<double>(hand) / 1e6 == doctest::Approx(r.millions).epsilon(0.0005));
    }
    // GQA and tied embeddings: the layout and the formula must still agree.
    auto c = slm::presets::tiny();
    c.tied_embeddings = true;
    CHECK(slm::ParameterLayout(c).parameter_count() == slm::parameter_count(c));
    CHECK(slm::parameter_count(c) ==
          c.vocab * c.hidden +
              c.layers * (2 * c.hidden * c.hidden + 2 * c.hidden * c.kv_width() +
                          3 * c.hidden * c.ffn + 2 * c.hidden) +
              c.hidden);
}

TEST_CASE("paper presets: the paper's Table 2 counts at 500M, 1B and 2B exactly, and 100M differs as documented") {
    // arXiv 2410.19456, Table 2: parameters of the models it trained. FFN = floor(2.7 x hidden),
    // vocab 32000 untied (core/presets.hpp says why).
    struct Row {
        const char* name;
        int64_t layers, hidden, ffn, heads, count;
    };
    for (const Row& r : {Row{"paper_500m", 15, 1536, 4147, 24, 526'550'016},
                         Row{"paper_1b", 19, 1920, 5184, 30, 970'458'240},
                         Row{"paper_2b", 24, 2496, 6739, 39, 1'969'027'008}}) {
        const auto c = slm::presets::by_name(r.name);
        CAPTURE(r.name);
        CHECK(c.layers == r.layers);
        CHECK(c.hidden == r.hidden);
        CHECK(c.ffn == static_cast<int64_t>(2.7 * static_cast<double>(r.hidden)));
        CHECK(c.ffn == r.ffn);
        CHECK(c.heads == r.heads);
        CHECK(c.head_dim() == 64);
        CHECK(c.max_seq == 1024);
        CHECK(slm::parameter_count(c) == r.count);
        CHECK(slm::ParameterLayout(c).parameter_count() == r.count);
    }
    const auto small = slm::presets::by_name("paper_100m");
    CHECK(small.head_dim() == 96);
    CHECK(small.ffn == 2332);
    CHECK(slm::parameter_count(small) == 136'587'168);  // the paper says 130,569,920
    CHECK(slm::parameter_count(small) != 130'569'920);
}

TEST_CASE("FLOPs per token follow 6·(L·(4d²+3·d·ffn)+d·V) + 6·L·T·d") {
    struct Row {
        slm::ModelConfig c;
        double gflop;  // docs/sources.md, at T = 2048
    };
    for (const Row& r : {Row{slm::presets::llama_100m(), 0.770}, Row{slm::presets::llama_500m(), 3.478},
                         Row{slm::presets::llama_1b(), 8.283}, Row{slm::presets::llama_2b(), 12.665}}) {
        const auto& c = r.c;
        const double d = static_cast<double>(c.hidden), L = static_cast<double>(c.layers);
        const double formula =
            6 * (L * (4 * d * d + 3 * d * static_cast<double>(c.ffn)) + d * static_cast<double>(c.vocab)) +
            6 * L * 2048 * d;
        CHECK(slm::flops_per_token(c, 2048) == doctest::Approx(formula).epsilon(1e-12));
        CHECK(slm::flops_per_token(c, 2048) / 1e9 == doctest::Approx(r.gflop).epsilon(0.001));
    }
}

TEST_CASE("memory estimate: buffers by precision, activations by attention policy") {
    using Naive = slm::attention::AttentionKernel<slm::attention::Naive, slm::cpu::Backend<float>>;
    using Flash = slm::attention::AttentionKernel<slm::attention::Flash, slm::cpu::Backend<float>>;
    const auto c = slm::presets::llama_100m();
    const slm::AttentionShape s{8, 2048, c.heads, c.kv_heads, c.head_dim()};
    const slm::Precision gpu{4, 2, 4, 8, 2, 4};
    const auto naive = slm::estimate_training_memory(c, 8, 2048, gpu, Naive::footprint(s), 0);
    const auto flash = slm::estimate_training_memory(c, 8, 2048, gpu, Flash::footprint(s), 0);
    const int64_t n = slm::parameter_count(c);
    CHECK(naive.parameters == 4 * n);
    CHECK(naive.working_copy == 2 * n);
    CHECK(naive.optimizer_state == 8 * n);
    // Naive keeps B·H·T² probabilities per layer; Flash one log-sum-exp per row and head.
    const int64_t probs = 8LL * c.heads * 2048 * 2048 * 4 * c.layers;
    CHECK(naive.activations - flash.activations >= probs - 8LL * c.heads * 2048 * 4 * c.layers);
    CHECK(flash.activations > 0);
    // Activations grow linearly in the micro-batch for Flash.
    const slm::AttentionShape s16{16, 2048, c.heads, c.kv_heads, c.head_dim()};
    const auto flash16 = slm::estimate_training_memory(c, 16, 2048, gpu, Flash::footprint(s16), 0);
    CHECK(static_cast<double>(flash16.activations) / static_cast<double>(flash.activations) ==
          doctest::Approx(2.0).epsilon(0.01));
}

TEST_CASE("memory estimate: an fp32 residual stream adds 2 bytes per element of its 2L+1 buffers") {
    using Flash = slm::attention::AttentionKernel<slm::attention::Flash, slm::cpu::Backend<float>>;
    const auto c = slm::presets::llama_100m();
    const slm::AttentionShape s{8, 2048, c.heads, c.kv_heads, c.head_dim()};
    slm::Precision bf16_stream{4, 2, 4, 8, 2, 4};
    slm::Precision fp32_stream = bf16_stream;
    fp32_stream.residual = 4;
    const auto a = slm::estimate_training_memory(c, 8, 2048, bf16_stream, Flash::footprint(s), 0);
    const auto b = slm::estimate_training_memory(c, 8, 2048, fp32_stream, Flash::footprint(s), 0);
    // resid_in and resid_mid per layer, resid_final once; n·d is a multiple of the alignment.
    const int64_t n = 8 * 2048, d = c.hidden;
    CHECK(b.activations - a.activations == (2 * c.layers + 1) * n * d * 2);
    CHECK(b.parameters == a.parameters);
    // residual = 0 means "the activation size": the same layout as before the field existed.
    slm::Precision explicit_bf16 = bf16_stream;
    explicit_bf16.residual = 2;
    CHECK(slm::estimate_training_memory(c, 8, 2048, explicit_bf16, Flash::footprint(s), 0)
              .activations == a.activations);
}
