// Safetensors export/import in the HF LLaMA layout: export ≡ import (bit-exact in F32, the bf16
// rounding exactly in BF16), the loaded model's loss, config.json round trips, and every kind of
// malformed file rejected with a message that names the tensor.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "slm/core/config_io.hpp"
#include "slm/data/hf_config.hpp"
#include "slm/data/safetensors.hpp"
#include "slm/slm.hpp"

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;

namespace fs = std::filesystem;
using CpuModel = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
using Json = nlohmann::ordered_json;

slm::ModelConfig small(int64_t kv_heads, bool tied) {
    slm::ModelConfig c;
    c.name = "st-test";
    c.vocab = 50;
    c.hidden = 32;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = kv_heads;
    c.ffn = 48;
    c.max_seq = 16;
    c.rope_theta = 5000.0;
    c.norm_eps = 1e-6;
    c.tied_embeddings = tied;
    return c;
}

// Model weights with every tensor (norm gains too) away from its init, so a swap would show.
std::vector<float> random_weights(CpuModel& m, uint64_t seed) {
    std::vector<float> p(static_cast<size_t>(m.layout().total()));
    m.get_parameters(p.data());
    for (const auto& t : m.layout().tensors())
        for (int64_t i = 0; i < t.size; ++i)
            p[static_cast<size_t>(t.offset + i)] += 0.05f * static_cast<float>(slm::normal(seed, t.offset + i));
    m.set_parameters(p.data());
    return p;
}

double loss_of(CpuModel& m) {
    const int64_t batch = 2, seq = 12;
    std::vector<int32_t> tokens(batch * seq), targets(batch * seq);
    for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<int32_t>(slm::splitmix64(i) % 50);
        targets[i] = static_cast<int32_t>(slm::splitmix64(i + 77) % 50);
    }
    return m.evaluate(tokens.data(), targets.data(), batch, seq).mean;
}


// A safetensors file taken apart, to be broken on purpose and written back.
struct RawFile {
    Json header;
    std::string data;

    static RawFile load(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        uint64_t n = 0;
        in.read(reinterpret_cast<char*>(&n), 8);
        std::string text(n, '\0');
        in.read(text.data(), static_cast<std::streamsize>(n));
        RawFile f{Json::parse(text), std::string(std::istreambuf_iterator<char>(in), {})};
        return f;
    }
    void save(const fs::path& p) const { write_bytes(p, header.dump(), data); }
    // Appends a tensor's bytes at the end of the data section.
    void append(const std::string& name, const char* dtype, std::vector<int64_t> shape,
                const std::string& bytes) {
        header[name] = {{"dtype", dtype}, {"shape", shape},
                        {"data_offsets", Json::array({data.size(), data.size() + bytes.size()})}};
        data += bytes;
    }
    std::string bytes_of(const std::string& name) const {
        const auto& o = header[name]["data_offsets"];
        return data.substr(o[0].get<size_t>(), o[1].get<size_t>() - o[0].get<size_t>());
    }
    // Drops a tensor and its bytes, keeping the rest contiguous.
    void remove(const std::string& name) {
        const auto& o = header[name]["data_offsets"];
        const uint64_t b = o[0].get<uint64_t>(), e = o[1].get<uint64_t>();
        data.erase(b, e - b);
        header.erase(name);
        for (auto& [k, v] : header.items()) {
            if (k == "__metadata__") continue;
            for (auto& x : v["data_offsets"])
                if (x.get<uint64_t>() >= e) x = x.get<uint64_t>() - (e - b);
        }
    }
    static void write_bytes(const fs::path& p, const std::string& header_text, const std::string& data,
                            uint64_t declared = std::numeric_limits<uint64_t>::max()) {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        const uint64_t n = declared != std::numeric_limits<uint64_t>::max() ? declared : header_text.size();
        out.write(reinterpret_cast<const char*>(&n), 8);
        out << header_text << data;
    }
};

}  // namespace

TEST_CASE("bf16 rounds to nearest even and keeps NaN and infinity, and f16 reads exactly") {
    using slm::data::float_to_bf16;
    CHECK(float_to_bf16(1.0f) == 0x3f80);
    CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);      // tie → even (down)
    CHECK(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);  // tie → even (up)
    CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3f81);
    CHECK(float_to_bf16(-2.0f) == 0xc000);
    CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // overflow rounds to inf
    CHECK(std::isnan(slm::data::bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    // A signalling NaN whose payload lives only in the low half must not become infinity.
    CHECK(std::isnan(slm::data::bf16_to_float(float_to_bf16(std::bit_cast<float>(0x7f800001u)))));
    CHECK(std::signbit(slm::data::bf16_to_float(float_to_bf16(-0.0f))));

    using slm::data::f16_to_float;
    CHECK(f16_to_float(0x3c00) == 1.0f);
    CHECK(f16_to_float(0xc000) == -2.0f);
    CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
    CHECK(f16_to_float(0x7bff) == 65504.0f);               // largest finite
    CHECK(std::isinf(f16_to_float(0x7c00)));
    CHECK(std::isnan(f16_to_float(0x7e00)));
    for (uint32_t h = 0; h < 0x7c00; h += 97) {  // every finite exponent, by formula
        const int e = static_cast<int>(h >> 10), m = static_cast<int>(h & 0x3ff);
        const float want = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                                  : std::ldexp(1.0f + static_cast<float>(m) / 1024.0f, e - 15);
        CHECK(f16_to_float(static_cast<uint16_t>(h)) == want);
        CHECK(f16_to_float(static_cast<uint16_t>(h | 0x8000)) == -want);
    }
}

TEST_CASE("F32 export then import is bit-exact and gives the same loss (MHA, GQA, tied)") {
    for (const auto& c : {small(4, false), small(2, false), small(1, true)}) {
        CAPTURE(c.kv_heads);
        CAPTURE(c.tied_embeddings);
        TempDir dir("f32");
        slm::cpu::Backend<float> backend;
        CpuModel a(c, backend, 11);
        const auto weights = random_weights(a, 3);
        slm::data::write_safetensors(dir.path / "model.safetensors", c, a.layout(), weights.data(),
                                     slm::data::Dtype::F32);
        slm::data::write_hf_config(dir.path / "config.json", c);

        const auto h = slm::data::read_safetensors_header(dir.path / "model.safetensors");
        CHECK(h.data_start % 8 == 0);
        CHECK(h.metadata.at("format") == "pt");
        CHECK(h.tensors.size() == a.layout().tensors().size());
        CHECK((h.find("lm_head.weight") == nullptr) == c.tied_embeddings);
        CHECK(h.find("model.layers.1.self_attn.k_proj.weight")->shape ==
              std::vector<int64_t>{c.kv_width(), c.hidden});

        const slm::ModelConfig read = slm::data::read_hf_config(dir.path / "config.json");
        CHECK(slm::config_difference(read, c) == "");
        CpuModel b(read, backend, 99);
        std::vector<float> loaded(static_cast<size_t>(b.layout().total()), -1.0f);
        slm::data::read_safetensors(dir.path / "model.safetensors", b.layout(), loaded.data());
        CHECK(std::memcmp(loaded.data(), weights.data(), weights.size() * 4) == 0);  // padding too
        b.set_parameters(loaded.data());
        CHECK(loss_of(b) == loss_of(a));
    }
}

TEST_CASE("BF16 export then import equals the bf16-rounded weights exactly") {
    for (const auto& c : {small(2, false), small(2, true)}) {
        TempDir dir("bf16");
        slm::cpu::Backend<float> backend;
        CpuModel a(c, backend, 12);
        const auto weights = random_weights(a, 4);
        const auto file = dir.path / "model.safetensors";
        slm::data::write_safetensors(file, c, a.layout(), weights.data(), slm::data::Dtype::BF16);
        CHECK(slm::data::read_safetensors_header(file).tensors.front().dtype == "BF16");
        std::vector<float> loaded(weights.size());
        slm::data::read_safetensors(file, a.layout(), loaded.data());
        int64_t differ = 0;
        for (size_t i = 0; i < weights.size(); ++i)
            differ += std::bit_cast<uint32_t>(loaded[i]) !=
                      std::bit_cast<uint32_t>(slm::data::round_to_bf16(weights[i]));
        CHECK(differ == 0);
        // Same model up to bf16 rounding of the weights: the loss moves a little, not a lot.
        const double before = loss_of(a);
        a.set_parameters(loaded.data());
        CHECK(loss_of(a) == doctest::Approx(before).epsilon(1e-2));
    }
}

TEST_CASE("F16 weights and extra inv_freq buffers load, and a tied lm_head must equal the embedding") {
    TempDir dir("f16");
    const auto c = small(2, true);
    slm::cpu::Backend<float> backend;
    CpuModel m(c, backend, 13);
    const auto weights = random_weights(m, 5);
    const auto file = dir.path / "model.safetensors";
    slm::data::write_safetensors(file, c, m.layout(), weights.data(), slm::data::Dtype::F32);
    auto raw = RawFile::load(file);
    // Replace the final norm by F16 bit patterns; the loader must decode them exactly.
    raw.remove("model.norm.weight");
    std::string half(static_cast<size_t>(2 * c.hidden), '\0');
    for (int64_t i = 0; i < c.hidden; ++i) {
        const auto bits = static_cast<uint16_t>(0x3000 + 37 * i);
        std::memcpy(half.data() + 2 * i, &bits, 2);
    }
    raw.append("model.norm.weight", "F16", {c.hidden}, half);
    raw.append("model.rotary_emb.inv_freq", "F32", {c.head_dim() / 2},
               std::string(static_cast<size_t>(2 * c.head_dim()), '\0'));
    raw.append("lm_head.weight", "F32", {c.vocab, c.hidden}, raw.bytes_of("model.embed_tokens.weight"));
    raw.save(file);
    std::vector<float> loaded(weights.size());
    slm::data::read_safetensors(file, m.layout(), loaded.data());
    for (int64_t i = 0; i < c.hidden; ++i)
        CHECK(loaded[static_cast<size_t>(m.layout().final_norm() + i)] ==
              slm::data::f16_to_float(static_cast<uint16_t>(0x3000 + 37 * i)));
    const auto& embed = m.layout().tensors().front();
    CHECK(std::memcmp(loaded.data() + embed.offset, weights.data() + embed.offset, embed.size * 4) == 0);

    raw.remove("lm_head.weight");
    std::string other = raw.bytes_of("model.embed_tokens.weight");
    other[5] ^= 1;
    raw.append("lm_head.weight", "F32", {c.vocab, c.hidden}, other);
    raw.save(file);
    const auto e = error_of([&] { slm::data::read_safetensors(file, m.layout(), loaded.data()); });
    CHECK(contains(e, "'lm_head.weight' differs from 'model.embed_tokens.weight'"));
}

TEST_CASE("malformed safetensors files are rejected with the file and the tensor named") {
    TempDir dir("bad");
    const auto c = small(2, false);
    slm::cpu::Backend<float> backend;
    CpuModel m(c, backend, 14);
    const auto weights = random_weights(m, 6);
    const auto good = dir.path / "good.safetensors", bad = dir.path / "bad.safetensors";
    slm::data::write_safetensors(good, c, m.layout(), weights.data(), slm::data::Dtype::F32);
    const RawFile base = RawFile::load(good);
    std::vector<float> out(weights.size());
    auto load_error = [&] { return error_of([&] { slm::data::read_safetensors(bad, m.layout(), out.data()); }); };
    auto with = [&](auto&& change) {
        RawFile r = base;
        change(r);
        r.save(bad);
        return load_error();
    };

    SUBCASE("header length absurd, larger than the file, or missing") {
        RawFile::write_bytes(bad, base.header.dump(), base.data, uint64_t{1} << 40);
        CHECK(contains(load_error(), "absurd"));
        RawFile::write_bytes(bad, base.header.dump(), base.data, fs::file_size(good));
        CHECK(contains(load_error(), "but the file has only"));
        CHECK(contains(load_error(), "bad.safetensors"));
        CHECK(contains(error_of([&] {
                  std::ofstream(bad, std::ios::binary | std::ios::trunc) << "abc";
                  slm::data::read_safetensors(bad, m.layout(), out.data());
              }),
              "shorter than its 8-byte header length"));
    }
    SUBCASE("header not JSON, or not an object") {
        RawFile::write_bytes(bad, "{\"model.norm.weight\": {\"dtype\": ", base.data);
        CHECK(contains(load_error(), "header is not valid JSON"));
        RawFile::write_bytes(bad, "[1, 2, 3]", base.data);
        CHECK(contains(load_error(), "not an object"));
    }
    SUBCASE("overlapping byte ranges name both tensors") {
        const auto e = with([](RawFile& r) {
            r.header["model.layers.0.post_attention_layernorm.weight"]["data_offsets"] =
                r.header["model.layers.0.input_layernorm.weight"]["data_offsets"];
        });
        CHECK(contains(e, "overlap"));
        CHECK(contains(e, "'model.layers.0.input_layernorm.weight'"));
        CHECK(contains(e, "'model.layers.0.post_attention_layernorm.weight'"));
    }
    SUBCASE("a dtype other than F32/BF16/F16 names the tensor and the dtype") {
        auto e = with([&](RawFile& r) {
            r.header["model.norm.weight"]["dtype"] = "I64";
            r.header["model.norm.weight"]["shape"] = {c.hidden / 2};
        });
        CHECK(contains(e, "tensor 'model.norm.weight' has dtype I64"));
        e = with([](RawFile& r) { r.header["model.norm.weight"]["dtype"] = "Q4"; });
        CHECK(contains(e, "tensor 'model.norm.weight' has unknown dtype 'Q4'"));
    }
    SUBCASE("a missing tensor is named") {
        const auto e = with([](RawFile& r) { r.remove("model.layers.1.mlp.down_proj.weight"); });
        CHECK(contains(e, "tensor 'model.layers.1.mlp.down_proj.weight' is missing"));
    }
    SUBCASE("a wrong shape names the tensor and both shapes") {
        const auto e = with([&](RawFile& r) {
            r.header["model.layers.0.mlp.gate_proj.weight"]["shape"] = {c.hidden, c.ffn};
        });
        CHECK(contains(e, "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [32, 48]"));
        CHECK(contains(e, "needs [48, 32]"));
    }
    SUBCASE("offsets past the end, end before begin, or a size that is not shape × dtype") {
        auto e = with([](RawFile& r) {
            auto& o = r.header["lm_head.weight"]["data_offsets"];
            o = Json::array({o[0].get<uint64_t>() + 8, o[1].get<uint64_t>() + 8});
        });
        CHECK(contains(e, "tensor 'lm_head.weight' has data_offsets"));
        CHECK(contains(e, "past the end of the data section"));
        e = with([](RawFile& r) { r.header["model.norm.weight"]["data_offsets"][1] = 0; });
        CHECK(contains(e, "tensor 'model.norm.weight' has data_offsets end 0 < begin"));
        e = with([](RawFile& r) {
            auto& o = r.header["model.norm.weight"]["data_offsets"];
            o[1] = o[1].get<uint64_t>() - 4;
        });
        CHECK(contains(e, "tensor 'model.norm.weight' holds 124 bytes but shape [32] of F32 needs 128"));
    }
    SUBCASE("truncated data names the tensor that runs past the end") {
        RawFile::write_bytes(bad, base.header.dump(), base.data.substr(0, base.data.size() - 10));
        const auto e = load_error();
        CHECK(contains(e, "tensor 'lm_head.weight'"));  // written last
        CHECK(contains(e, "truncated"));
    }
    SUBCASE("bytes that belong to no tensor") {
        const auto e = with([](RawFile& r) { r.data += "12345678"; });
        CHECK(contains(e, "belong to no tensor"));
    }
    SUBCASE("extra tensors other than inv_freq mean another architecture") {
        auto e = with([&](RawFile& r) {
            r.append("model.layers.0.self_attn.q_norm.weight", "F32", {8}, std::string(32, '\0'));
        });
        CHECK(contains(e, "tensor 'model.layers.0.self_attn.q_norm.weight' (shape [8]) is not part"));
        e = with([&](RawFile& r) {
            r.append("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {4}, std::string(16, '\0'));
        });
        CHECK(e == "");
    }
}

TEST_CASE("config.json: unsupported HF LLaMA variants are refused by name") {
    TempDir dir("cfg");
    const auto path = dir.path / "config.json";
    slm::data::write_hf_config(path, small(2, true), slm::data::Dtype::BF16);
    const auto base = nlohmann::json::parse(std::ifstream(path));
    CHECK(base["torch_dtype"] == "bfloat16");
    CHECK(base["architectures"] == nlohmann::json::array({"LlamaForCausalLM"}));
    CHECK(base["head_dim"] == 8);
    auto error_with = [&](auto&& change) {
        auto j = base;
        change(j);
        std::ofstream(path, std::ios::trunc) << j.dump();
        return error_of([&] { slm::data::read_hf_config(path); });
    };
    CHECK(error_with([](auto&) {}) == "");
    CHECK(contains(error_with([](auto& j) { j["model_type"] = "mistral"; }), "model_type 'mistral'"));
    CHECK(contains(error_with([](auto& j) { j["attention_bias"] = true; }), "attention_bias"));
    CHECK(contains(error_with([](auto& j) { j["hidden_act"] = "gelu"; }), "hidden_act 'gelu'"));
    CHECK(contains(error_with([](auto& j) { j["head_dim"] = 16; }), "head_dim 16"));
    CHECK(contains(error_with([](auto& j) { j.erase("vocab_size"); }), "no \"vocab_size\""));
    CHECK(contains(error_with([](auto& j) { j["rope_scaling"] = {{"rope_type", "llama3"}}; }),
                   "rope_type \"llama3\""));
    CHECK(contains(error_with([](auto& j) { j["num_key_value_heads"] = 3; }), "ModelConfig.kv_heads"));
    // A field slm does not compute is named, never ignored; one that only describes the file is fine.
    CHECK(contains(error_with([](auto& j) { j["sliding_window"] = 4096; }), "field \"sliding_window\""));
    CHECK(contains(error_with([](auto& j) { j["attention_dropout"] = 0.1; }), "attention_dropout is 0.1"));
    CHECK(error_with([](auto& j) { j["transformers_version"] = "4.44.0"; j["pretraining_tp"] = 1; }) == "");
    // A HF-style file without our extras: defaults are LlamaConfig's.
    const auto e = error_with([](auto& j) {
        for (const char* k : {"rope_parameters", "rope_theta", "num_key_value_heads", "head_dim"}) j.erase(k);
    });
    CHECK(e == "");
    const auto c = slm::data::read_hf_config(path);
    CHECK(c.rope_theta == 10000.0);
    CHECK(c.kv_heads == c.heads);
    CHECK(c.tied_embeddings);
    CHECK(contains(error_of([&] { slm::data::read_hf_config(dir.path / "none.json"); }), "cannot open"));
}
