// ParameterUnits: the units ZeRO gathers and reduce-scatters cover the flat buffer without gaps,
// and each holds exactly the tensors the model reads together. Whole storage holds what the
// stage-0 formula says.
#include <doctest/doctest.h>

#include <string>

#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

namespace {

slm::ModelConfig config(bool tied) {
    slm::ModelConfig c;
    c.name = "units";
    c.vocab = 50;  // odd sizes, so alignment padding sits between groups
    c.hidden = 36;
    c.layers = 3;
    c.heads = 6;
    c.kv_heads = 2;
    c.ffn = 70;
    c.max_seq = 16;
    c.tied_embeddings = tied;
    return c;
}

// The unit a tensor belongs to, from its Hugging Face name.
int64_t expected_unit(const std::string& name, const slm::model::ParameterUnits& u) {
    if (name == "model.embed_tokens.weight") return u.embedding();
    if (name == "model.norm.weight") return u.final_norm();
    if (name == "lm_head.weight") return u.lm_head();
    const auto begin = std::string("model.layers.").size();
    return u.layer(std::stoll(name.substr(begin, name.find('.', begin) - begin)));
}

}  // namespace

TEST_CASE("parameter units cover the flat buffer and hold each tensor where the model reads it") {
    for (const bool tied : {false, true}) {
        CAPTURE(tied);
        const slm::ModelConfig c = config(tied);
        const slm::ParameterLayout layout(c);
        const slm::model::ParameterUnits units(c, layout);
        CHECK(units.count() == c.layers + (tied ? 2 : 3));
        CHECK(units[0].begin == 0);
        CHECK(units[units.count() - 1].end == layout.total());
        for (int64_t i = 1; i < units.count(); ++i) CHECK(units[i].begin == units[i - 1].end);
        if (tied) CHECK(units.lm_head() == units.embedding());
        for (const auto& t : layout.tensors()) {
            CAPTURE(t.name);
            const auto& u = units[expected_unit(t.name, units)];
            CHECK(u.begin <= t.offset);
            CHECK(t.offset + t.size <= u.end);
        }
        int64_t largest = 0;
        for (const auto& u : units.all()) largest = std::max(largest, u.size());
        CHECK(units.largest() == largest);
    }
}

TEST_CASE("whole storage and AdamW hold the bytes of the unsharded formula") {
    using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
    const slm::ModelConfig c = config(false);
    slm::RunConfig run;
    run.batch = 1;
    run.seq = 8;
    slm::Trainer<Model> trainer(c, run);
    const slm::StateBytes got = trainer.state_bytes();
    const int64_t total = trainer.model().layout().total();  // the formula's P, padding included
    const slm::StateBytes want = slm::expected_state_bytes(
        0, total, 1, trainer.model().units().largest(), Model::BackendType::precision());
    CHECK(got.parameters == want.parameters);
    CHECK(got.gradients == want.gradients);
    CHECK(got.optimizer_state == want.optimizer_state);
    CHECK(got.total() == 4 * total * 4);  // fp32: parameters, gradients and two moments
}
