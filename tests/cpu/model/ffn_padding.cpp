// The FFN stored padded to a multiple of 8 (ModelConfig::ffn_padded): the layout keeps the Hugging
// Face shapes and the parameter counts, training keeps the padding exactly zero (weights and
// gradients, AdamW with decay), the export strips it and the import restores it, and a checkpoint
// written in the unpadded layout of earlier trees loads into today's.
#include <doctest/doctest.h>

#include <filesystem>
#include <tuple>
#include <vector>

#include "common/temp_dir.hpp"
#include "slm/core/presets.hpp"
#include "slm/data/safetensors.hpp"
#include "slm/slm.hpp"
#include "slm/train/checkpoint.hpp"

namespace {

slm::ModelConfig odd_ffn() {
    slm::ModelConfig c;
    c.name = "odd-ffn";
    c.vocab = 40;
    c.hidden = 16;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 21;  // stored as 24
    c.max_seq = 16;
    return c;
}

int64_t padding_nonzero(const slm::ParameterLayout& layout, const std::vector<float>& values) {
    int64_t n = 0;
    for (const auto& t : layout.tensors())
        for (int64_t i = 0; i < t.size; ++i) n += t.is_padding(i) && values[static_cast<size_t>(t.offset + i)] != 0.0f;
    return n;
}

}  // namespace

TEST_CASE("FFN padding: the paper's shapes are stored at a multiple of 8 and counted as published") {
    for (const auto& [name, ffn, padded, count] : {std::tuple{"paper_500m", 4147, 4152, int64_t{526550016}},
                                                   std::tuple{"paper_2b", 6739, 6744, int64_t{1969027008}},
                                                   std::tuple{"llama_1b", 5504, 5504, int64_t{0}}}) {
        CAPTURE(name);
        const auto c = slm::presets::by_name(name);
        REQUIRE(c.ffn == ffn);
        CHECK(c.ffn_padded() == padded);
        const slm::ParameterLayout layout(c);
        const auto& gate = layout.find("model.layers.0.mlp.gate_proj.weight");
        const auto& down = layout.find("model.layers.0.mlp.down_proj.weight");
        CHECK(gate.shape == std::vector<int64_t>{ffn, c.hidden});
        CHECK(gate.stored == std::vector<int64_t>{padded, c.hidden});
        CHECK(down.shape == std::vector<int64_t>{c.hidden, ffn});
        CHECK(down.stored == std::vector<int64_t>{c.hidden, padded});
        CHECK(gate.padded() == (ffn != padded));
        CHECK(layout.parameter_count() == slm::parameter_count(c));
        if (count > 0) CHECK(layout.parameter_count() == count);
    }
}

TEST_CASE("FFN padding: training keeps it zero, export strips it, import and old checkpoints restore it") {
    const auto c = odd_ffn();
    slm::cpu::Backend<float> backend;
    slm::Llama<slm::cpu::Backend<float>, slm::attention::Naive> model(c, backend, 3);
    const auto& layout = model.layout();
    const int64_t total = layout.total();
    std::vector<float> p(static_cast<size_t>(total)), g(p.size());
    model.get_parameters(p.data());
    REQUIRE(padding_nonzero(layout, p) == 0);

    slm::optim::AdamWConfig oc;
    oc.weight_decay = 0.1;
    slm::optim::AdamWState<slm::cpu::Backend<float>> adam(backend, layout, oc);
    const int64_t batch = 2, seq = 8, n = batch * seq;
    std::vector<int32_t> tokens(n), targets(n);
    for (int64_t i = 0; i < n; ++i) {
        tokens[i] = static_cast<int32_t>((i * 7 + 3) % c.vocab);
        targets[i] = static_cast<int32_t>((i * 5 + 1) % c.vocab);
    }
    const double first = model.evaluate(tokens.data(), targets.data(), batch, seq).mean;
    for (int step = 0; step < 20; ++step) {
        model.zero_gradients();
        model.forward_backward(tokens.data(), targets.data(), batch, seq);
        model.get_gradients(g.data());
        CHECK(padding_nonzero(layout, g) == 0);
        adam.update(p.data(), g.data(), nullptr, 1e-2, 1.0);
        model.set_parameters(p.data());
    }
    CHECK(padding_nonzero(layout, p) == 0);
    const double last = model.evaluate(tokens.data(), targets.data(), batch, seq).mean;
    CHECK(last < first - 0.5);  // it learned, with the padding still zero

    // Export: the Hugging Face shapes, padding left out; import: the same buffer back, exactly.
    slm::test::TempDir tmp("ffn-padding");
    const auto file = tmp.path / "model.safetensors";
    slm::data::write_safetensors(file, c, layout, p.data(), slm::data::Dtype::F32);
    const auto header = slm::data::read_safetensors_header(file);
    CHECK(header.find("model.layers.1.mlp.up_proj.weight")->shape == std::vector<int64_t>{21, 16});
    CHECK(header.find("model.layers.1.mlp.down_proj.weight")->shape == std::vector<int64_t>{16, 21});
    std::vector<float> back(p.size(), 1.0f);
    slm::data::read_safetensors(file, layout, back.data());
    CHECK(back == p);

    // A checkpoint in the unpadded layout (trees before the padding) loads into today's.
    const slm::ParameterLayout before(c, slm::ParameterLayout::Ffn::unpadded);
    REQUIRE(before.total() < total);
    std::vector<float> old;  // params, first moment (params + 1), second moment (params + 2)
    for (int k = 0; k < 3; ++k) {
        std::vector<float> shifted(p);
        for (float& v : shifted) v += static_cast<float>(k);
        const auto block = slm::relayout(layout, before, shifted);
        old.insert(old.end(), block.begin(), block.end());
    }
    slm::save_checkpoint(tmp.path / "old.bin", c, "", slm::CheckpointState{5, 0, 1, 5, 20},
                         slm::CheckpointPayload<float>{old.data(), before.total()});
    const auto loaded = slm::load_checkpoint<float>(tmp.path / "old.bin");
    REQUIRE(static_cast<int64_t>(loaded.params.size()) == total);
    CHECK(padding_nonzero(layout, loaded.params) == 0);
    CHECK(padding_nonzero(layout, loaded.second_moment) == 0);
    for (const auto& t : layout.tensors())
        for (int64_t i = 0; i < t.size; i += 3)
            if (!t.is_padding(i)) {
                const auto at = static_cast<size_t>(t.offset + i);
                REQUIRE(loaded.params[at] == p[at]);
                REQUIRE(loaded.first_moment[at] == p[at] + 1.0f);
            }
}
