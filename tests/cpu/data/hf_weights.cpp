// A HF directory's weights, single-file and sharded (model.safetensors.index.json): the shards
// load bit-exactly into the model, and every inconsistency between the index and the shards is
// refused with the file named.
#include <doctest/doctest.h>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "slm/data/hf_weights.hpp"
#include "slm/slm.hpp"

namespace {

using slm::test::contains;
using slm::test::error_of;
using slm::test::TempDir;
namespace fs = std::filesystem;

slm::ModelConfig gqa_tied() {
    slm::ModelConfig c;
    c.name = "hfw-test";
    c.vocab = 40;
    c.hidden = 24;
    c.layers = 2;
    c.heads = 6;
    c.kv_heads = 2;
    c.ffn = 40;
    c.max_seq = 16;
    c.tied_embeddings = true;
    return c;
}

std::vector<float> numbered(const slm::ParameterLayout& layout) {
    std::vector<float> p(static_cast<size_t>(layout.total()), 0.0f);
    for (const auto& t : layout.tensors())
        for (int64_t i = 0; i < t.size; ++i) p[static_cast<size_t>(t.offset + i)] = 0.001f * static_cast<float>(t.offset + i) - 1.0f;
    return p;
}

// A shard as save_pretrained writes one: F32 tensors of `layout` whose name is in `names`.
void write_shard(const fs::path& path, const slm::ParameterLayout& layout, const std::vector<float>& p,
                 const std::set<std::string>& names) {
    nlohmann::ordered_json header;
    uint64_t at = 0;
    for (const auto& t : layout.tensors()) {
        if (!names.contains(t.name)) continue;
        const uint64_t bytes = static_cast<uint64_t>(t.size) * 4;
        header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {at, at + bytes}}};
        at += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : layout.tensors())
        if (names.contains(t.name))
            out.write(reinterpret_cast<const char*>(p.data() + t.offset), static_cast<std::streamsize>(t.size * 4));
}

// Two shards: the embedding and layer 0 in the first, the rest in the second; the index maps them.
struct ShardedDir {
    TempDir dir{"hfw"};
    slm::ParameterLayout layout{gqa_tied()};
    std::vector<float> params = numbered(layout);
    nlohmann::ordered_json index;
    ShardedDir() {
        std::set<std::string> first, second;
        for (const auto& t : layout.tensors())
            (t.name == "model.embed_tokens.weight" || t.name.starts_with("model.layers.0.") ? first : second)
                .insert(t.name);
        write_shard(dir.path / "model-00001-of-00002.safetensors", layout, params, first);
        write_shard(dir.path / "model-00002-of-00002.safetensors", layout, params, second);
        index["metadata"] = {{"total_size", layout.total() * 4}};
        for (const auto& n : first) index["weight_map"][n] = "model-00001-of-00002.safetensors";
        for (const auto& n : second) index["weight_map"][n] = "model-00002-of-00002.safetensors";
        write_index();
    }
    void write_index() const { std::ofstream(dir.path / "model.safetensors.index.json", std::ios::trunc) << index.dump(2); }
    std::string load_error() const {
        std::vector<float> out(static_cast<size_t>(layout.total()));
        return error_of([&] { slm::data::read_hf_weights(dir.path, layout, out.data()); });
    }
};

}  // namespace

TEST_CASE("a sharded HF checkpoint (index + 2 shards) loads bit-exactly, GQA and tied") {
    ShardedDir s;
    std::vector<float> out(static_cast<size_t>(s.layout.total()), 7.0f);
    slm::data::read_hf_weights(s.dir.path, s.layout, out.data());
    CHECK(std::memcmp(out.data(), s.params.data(), out.size() * sizeof(float)) == 0);
    CHECK(slm::data::hf_weight_files(s.dir.path).size() == 2);
}

TEST_CASE("a single model.safetensors directory loads, and a directory with neither is refused") {
    TempDir dir("hfw1");
    const slm::ModelConfig c = gqa_tied();
    const slm::ParameterLayout layout(c);
    const auto p = numbered(layout);
    slm::data::write_safetensors(dir.path / "model.safetensors", c, layout, p.data(), slm::data::Dtype::F32);
    std::vector<float> out(p.size());
    slm::data::read_hf_weights(dir.path, layout, out.data());
    CHECK(std::memcmp(out.data(), p.data(), out.size() * sizeof(float)) == 0);
    TempDir empty("hfw0");
    CHECK(contains(error_of([&] { slm::data::read_hf_weights(empty.path, layout, out.data()); }),
                   "has neither model.safetensors nor model.safetensors.index.json"));
}

TEST_CASE("a sharded checkpoint whose index and shards disagree is refused with the file named") {
    SUBCASE("a shard is missing") {
        ShardedDir s;
        fs::remove(s.dir.path / "model-00002-of-00002.safetensors");
        CHECK(contains(s.load_error(), "names shard 'model-00002-of-00002.safetensors', which is missing"));
    }
    SUBCASE("the index puts a tensor in a shard that does not hold it") {
        ShardedDir s;
        s.index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
        s.write_index();
        CHECK(contains(s.load_error(), "puts tensor 'model.norm.weight' in 'model-00001-of-00002.safetensors'"));
    }
    SUBCASE("a shard holds a tensor the index does not map") {
        ShardedDir s;
        s.index["weight_map"].erase("model.norm.weight");
        s.write_index();
        CHECK(contains(s.load_error(), "holds tensor 'model.norm.weight'"));
    }
    SUBCASE("a tensor the model needs is in no shard") {
        ShardedDir s;
        std::set<std::string> all;
        for (const auto& t : s.layout.tensors())
            if (t.name != "model.norm.weight") all.insert(t.name);
        write_shard(s.dir.path / "model-00002-of-00002.safetensors", s.layout, s.params, {});
        for (auto& [name, file] : s.index["weight_map"].items())
            if (file == "model-00002-of-00002.safetensors") file = "model-00001-of-00002.safetensors";
        write_shard(s.dir.path / "model-00001-of-00002.safetensors", s.layout, s.params, all);
        s.index["weight_map"].erase("model.norm.weight");
        s.write_index();
        const auto e = s.load_error();
        CHECK(contains(e, "tensor 'model.norm.weight' is missing"));
    }
    SUBCASE("the index is not JSON, or has no weight_map, or names a path") {
        ShardedDir s;
        std::ofstream(s.dir.path / "model.safetensors.index.json", std::ios::trunc) << "{\"weight_map\": ";
        CHECK(contains(s.load_error(), "is not valid JSON"));
        std::ofstream(s.dir.path / "model.safetensors.index.json", std::ios::trunc) << "{\"metadata\": {}}";
        CHECK(contains(s.load_error(), "has no \"weight_map\" object"));
        s.index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
        s.write_index();
        CHECK(contains(s.load_error(), "not a file name in the same directory"));
    }
    SUBCASE("a shape that does not fit the model") {
        ShardedDir s;
        slm::ModelConfig wider = gqa_tied();
        wider.ffn = 48;
        const slm::ParameterLayout other(wider);
        std::vector<float> out(static_cast<size_t>(other.total()));
        const auto e = error_of([&] { slm::data::read_hf_weights(s.dir.path, other, out.data()); });
        CHECK(contains(e, "has shape"));
        CHECK(contains(e, "model-0000"));
    }
}
