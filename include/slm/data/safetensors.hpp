#pragma once
// Safetensors in the Hugging Face LlamaForCausalLM layout: a model trained here loads in
// transformers, and a HF LLaMA of a supported shape loads here for fine-tuning. The tensor names
// and shapes are ParameterLayout's, so export and import are walks over that list.
//
//   u64 N (little-endian) | N bytes of JSON header, space-padded so the data starts 8-aligned |
//   data: each tensor's raw little-endian bytes, contiguous, in header order
//
// The header maps each name to {"dtype", "shape", "data_offsets": [begin, end)} (byte offsets
// into the data section) plus "__metadata__" (string → string). Reading checks every entry before
// a byte is used — lengths, offsets, overlaps, holes, dtypes, shapes — and each error names the
// file and the tensor. F32 round trips bit-exactly; BF16 rounds to nearest even; F16 reads too.
// The config.json beside it is in hf_config.hpp.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/core/file_io.hpp"
#include "slm/core/parameter_layout.hpp"

namespace slm::data {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

// What write_safetensors stores. (Reading also accepts F16.)
enum class Dtype { F32, BF16 };

inline const char* dtype_name(Dtype d) { return d == Dtype::F32 ? "F32" : "BF16"; }

// bf16 is float's upper half. Round to nearest, ties to even (overflow rounds to ±inf, as it
// should); a NaN stays a NaN — its payload may be truncated to zero, so the quiet bit is set.
inline uint16_t float_to_bf16(float x) {
    const uint32_t u = std::bit_cast<uint32_t>(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

// IEEE half → float, exactly (every half is a float): zeros, subnormals, infinities and NaNs.
inline float f16_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0)
        return (sign ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(mantissa), -24);
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

struct SafetensorsTensor {
    std::string name, dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte range [begin, end) within the data section
};

struct SafetensorsHeader {
    std::vector<SafetensorsTensor> tensors;  // sorted by name
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0;  // file offset of the data section: 8 + N
    uint64_t data_bytes = 0;

    const SafetensorsTensor* find(const std::string& name) const {
        const auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                                         [](const auto& t, const std::string& n) { return t.name < n; });
        return it != tensors.end() && it->name == name ? &*it : nullptr;
    }
};

namespace safetensors_detail {

// The spec's limit: a header larger than this is not a header.
inline constexpr uint64_t max_header_bytes = 100u << 20;

inline std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Bytes per element of every dtype the format defines; 0 for a name it does not.
inline uint64_t dtype_bytes(const std::string& d) {
    static const std::map<std::string, uint64_t> sizes = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
        {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
        {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
    const auto it = sizes.find(d);
    return it == sizes.end() ? 0 : it->second;
}

inline SafetensorsTensor parse_entry(const std::string& where, const std::string& name,
                                     const nlohmann::json& e, uint64_t data_bytes) {
    const std::string at = where + ": tensor '" + name + "'";
    require(e.is_object(), at + " is not a JSON object {dtype, shape, data_offsets}");
    require(e.contains("dtype") && e["dtype"].is_string(), at + " has no \"dtype\" string");
    require(e.contains("shape") && e["shape"].is_array(), at + " has no \"shape\" array");
    require(e.contains("data_offsets") && e["data_offsets"].is_array() &&
                e["data_offsets"].size() == 2 && e["data_offsets"][0].is_number_unsigned() &&
                e["data_offsets"][1].is_number_unsigned(),
            at + " needs \"data_offsets\": [begin, end] of two non-negative integers");
    SafetensorsTensor t{name, e["dtype"].get<std::string>(), {}, e["data_offsets"][0].get<uint64_t>(),
                        e["data_offsets"][1].get<uint64_t>()};
    const uint64_t width = dtype_bytes(t.dtype);
    require(width > 0, at + " has unknown dtype '" + t.dtype + "'");
    uint64_t elements = 1;
    for (const auto& d : e["shape"]) {
        require(d.is_number_unsigned(), at + " has a shape entry that is not a non-negative integer");
        const uint64_t v = d.get<uint64_t>();
        require(v < (uint64_t{1} << 40) && (v == 0 || elements <= (uint64_t{1} << 62) / v),
                at + " has an absurd shape " + d.dump());
        elements *= v;
        t.shape.push_back(static_cast<int64_t>(v));
    }
    require(t.end >= t.begin, at + " has data_offsets end " + std::to_string(t.end) +
                                  " < begin " + std::to_string(t.begin));
    require(t.end <= data_bytes,
            at + " has data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                ") past the end of the data section (" + std::to_string(data_bytes) +
                " bytes): the file is truncated or corrupted");
    require(t.end - t.begin == elements * width,
            at + " holds " + std::to_string(t.end - t.begin) + " bytes but shape " +
                shape_text(t.shape) + " of " + t.dtype + " needs " + std::to_string(elements * width));
    return t;
}

// Tensors may not share bytes, and (as the spec requires) every data byte belongs to a tensor.
inline void check_coverage(const std::string& where, const SafetensorsHeader& h) {
    std::vector<const SafetensorsTensor*> order;
    for (const auto& t : h.tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t covered = 0;
    const SafetensorsTensor* last = nullptr;  // the non-empty tensor that ends at `covered`
    for (const auto* t : order) {
        if (t->begin == t->end) continue;
        require(t->begin >= covered, where + ": tensors '" + (last ? last->name : "") + "' and '" +
                                         t->name + "' overlap (byte ranges [" +
                                         std::to_string(last ? last->begin : 0) + ", " +
                                         std::to_string(covered) + ") and [" +
                                         std::to_string(t->begin) + ", " + std::to_string(t->end) + "))");
        require(t->begin == covered, where + ": data bytes [" + std::to_string(covered) + ", " +
                                         std::to_string(t->begin) + ") before tensor '" + t->name +
                                         "' belong to no tensor (corrupted file)");
        covered = t->end;
        last = t;
    }
    require(covered == h.data_bytes, where + ": the last " + std::to_string(h.data_bytes - covered) +
                                         " data bytes belong to no tensor (corrupted file)");
}

}  // namespace safetensors_detail

// Reads and validates the header (not the data) of a safetensors file.
inline SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
    using namespace safetensors_detail;
    const std::string where = "safetensors file '" + path.string() + "'";
    std::ifstream in(path, std::ios::binary);
    require(static_cast<bool>(in), "cannot open " + where + ": no such file or not readable");
    std::error_code ec;
    const uint64_t file_bytes = std::filesystem::file_size(path, ec);
    require(!ec && file_bytes >= 8, where + " is shorter than its 8-byte header length");
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    require(n <= max_header_bytes, where + " declares a header of " + std::to_string(n) +
                                       " bytes (absurd; the limit is 100 MiB): not a safetensors "
                                       "file, or corrupted");
    require(n <= file_bytes - 8, where + " declares a header of " + std::to_string(n) +
                                     " bytes but the file has only " + std::to_string(file_bytes) +
                                     ": truncated or not a safetensors file");
    std::string text(n, '\0');
    in.read(text.data(), static_cast<std::streamsize>(n));
    require(in.gcount() == static_cast<std::streamsize>(n), "reading " + where + " failed");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(where + ": header is not valid JSON (" + e.what() + ")");
    }
    require(j.is_object(), where + ": header is JSON but not an object of tensors");
    SafetensorsHeader h;
    h.data_start = 8 + n;
    h.data_bytes = file_bytes - h.data_start;
    for (const auto& [name, entry] : j.items()) {
        if (name == "__metadata__") {
            require(entry.is_object(), where + ": \"__metadata__\" is not an object");
            for (const auto& [k, v] : entry.items()) {
                require(v.is_string(), where + ": \"__metadata__\" value '" + k + "' is not a string");
                h.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        h.tensors.push_back(parse_entry(where, name, entry, h.data_bytes));
    }
    check_coverage(where, h);
    return h;
}

// Writes layout's tensors from flat_params (layout.total() values) as model.safetensors. A tied
// head is not a tensor of the layout, so only model.embed_tokens.weight is written (HF ties it).
inline void write_safetensors(const std::filesystem::path& path, const ModelConfig& config,
                              const ParameterLayout& layout, const float* flat_params, Dtype dtype) {
    const ParameterLayout expected(config);
    require(expected.total() == layout.total() &&
                expected.tensors().size() == layout.tensors().size(),
            "write_safetensors: the parameter layout is not the layout of config '" + config.name + "'");
    require(flat_params != nullptr, "write_safetensors: no parameters given");
    const uint64_t width = dtype == Dtype::F32 ? 4 : 2;
    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    uint64_t at = 0;
    for (const auto& t : layout.tensors()) {
        const uint64_t bytes = static_cast<uint64_t>(t.logical_size()) * width;
        header[t.name] = {{"dtype", dtype_name(dtype)},
                          {"shape", t.shape},
                          {"data_offsets", nlohmann::ordered_json::array({at, at + bytes})}};
        at += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    AtomicFile file(path);
    const uint64_t n = text.size();
    file.write(&n, sizeof n);
    file.write(text.data(), text.size());
    std::vector<uint16_t> half;
    std::vector<float> unpadded;  // a padded tensor's values without its padding
    for (const auto& t : layout.tensors()) {
        const float* src = flat_params + t.offset;
        if (t.padded()) {
            unpadded.resize(static_cast<size_t>(t.logical_size()));
            t.to_logical(src, unpadded.data());
            src = unpadded.data();
        }
        const int64_t count = t.logical_size();
        if (dtype == Dtype::F32) {
            file.write(src, static_cast<size_t>(count) * 4);
            continue;
        }
        constexpr int64_t chunk = int64_t{1} << 20;
        for (int64_t i = 0; i < count; i += chunk) {
            const int64_t m = std::min(chunk, count - i);
            half.resize(static_cast<size_t>(m));
            for (int64_t k = 0; k < m; ++k) half[static_cast<size_t>(k)] = float_to_bf16(src[i + k]);
            file.write(half.data(), static_cast<size_t>(m) * 2);
        }
    }
    file.commit();
}

namespace safetensors_detail {

// One tensor's values as floats into out (t.shape must equal `shape`).
inline void load_tensor(std::ifstream& in, const std::string& where, const SafetensorsHeader& h,
                        const SafetensorsTensor& t, const std::vector<int64_t>& shape, float* out) {
    const std::string at = where + ": tensor '" + t.name + "'";
    require(t.dtype == "F32" || t.dtype == "BF16" || t.dtype == "F16",
            at + " has dtype " + t.dtype + "; only F32, BF16 and F16 weights can be loaded");
    require(t.shape == shape, at + " has shape " + shape_text(t.shape) + " but this model needs " +
                                  shape_text(shape) + " (config.json from another model?)");
    const uint64_t bytes = t.end - t.begin;
    in.seekg(static_cast<std::streamoff>(h.data_start + t.begin));
    auto read = [&](void* dst) {
        in.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes));
        require(static_cast<uint64_t>(in.gcount()) == bytes, at + ": reading its data failed");
    };
    if (t.dtype == "F32") return read(out);
    std::vector<uint16_t> half(bytes / 2);
    read(half.data());
    const bool brain = t.dtype == "BF16";
    for (size_t i = 0; i < half.size(); ++i) out[i] = brain ? bf16_to_float(half[i]) : f16_to_float(half[i]);
}

}  // namespace safetensors_detail

// Fills flat_params_out (layout.total() values; padding set to zero) from safetensors files in
// the HF LLaMA layout: one model.safetensors, or the shards of a sharded checkpoint, each tensor
// in exactly one of them. Extra tensors are accepted only if they are rotary inv_freq buffers (a
// recomputable constant) or, for a tied model, an lm_head.weight equal to the embedding.
inline void read_safetensors(const std::vector<std::filesystem::path>& files, const ParameterLayout& layout,
                             float* flat_params_out) {
    using namespace safetensors_detail;
    require(!files.empty(), "read_safetensors: no files given");
    auto where = [&](size_t f) { return "safetensors file '" + files[f].string() + "'"; };
    std::vector<SafetensorsHeader> headers;
    std::map<std::string, size_t> file_of;  // tensor name -> index into files
    const bool tied = layout.lm_head() == layout.embed();
    for (size_t f = 0; f < files.size(); ++f) {
        headers.push_back(read_safetensors_header(files[f]));
        for (const auto& t : headers.back().tensors) {
            bool known = t.name.ends_with("rotary_emb.inv_freq") || (tied && t.name == "lm_head.weight");
            for (const auto& l : layout.tensors()) known = known || l.name == t.name;
            require(known, where(f) + ": tensor '" + t.name + "' (shape " + shape_text(t.shape) +
                               ") is not part of this LLaMA's layout: a different architecture or "
                               "a config.json that does not match the weights");
            const auto [at, fresh] = file_of.emplace(t.name, f);
            require(fresh, where(f) + ": tensor '" + t.name + "' is in " + where(at->second) + " too");
        }
    }
    std::vector<std::ifstream> in(files.size());
    for (size_t f = 0; f < files.size(); ++f) {
        in[f].open(files[f], std::ios::binary);
        require(static_cast<bool>(in[f]), "cannot open " + where(f));
    }
    auto load = [&](const std::string& name, const std::vector<int64_t>& shape, float* out) {
        const auto at = file_of.find(name);
        require(at != file_of.end(), (files.size() == 1 ? where(0) : "the safetensors files") +
                                         ": tensor '" + name + "' is missing (shape " + shape_text(shape) +
                                         " expected)");
        const size_t f = at->second;
        load_tensor(in[f], where(f), headers[f], *headers[f].find(name), shape, out);
    };
    std::fill(flat_params_out, flat_params_out + layout.total(), 0.0f);
    std::vector<float> unpadded;
    for (const auto& l : layout.tensors()) {
        if (!l.padded()) {
            load(l.name, l.shape, flat_params_out + l.offset);
            continue;
        }
        unpadded.resize(static_cast<size_t>(l.logical_size()));
        load(l.name, l.shape, unpadded.data());
        l.to_stored(unpadded.data(), flat_params_out + l.offset);  // the padding stays zero
    }
    if (tied && file_of.contains("lm_head.weight")) {
        const TensorInfo& embed = layout.tensors().front();
        std::vector<float> values(static_cast<size_t>(embed.size));
        load("lm_head.weight", embed.shape, values.data());
        require(std::memcmp(values.data(), flat_params_out + embed.offset, values.size() * 4) == 0,
                where(file_of["lm_head.weight"]) +
                    ": tensor 'lm_head.weight' differs from 'model.embed_tokens.weight' but the "
                    "config ties them (tie_word_embeddings); load it with an untied config");
    }
}

inline void read_safetensors(const std::filesystem::path& path, const ParameterLayout& layout,
                             float* flat_params_out) {
    read_safetensors(std::vector<std::filesystem::path>{path}, layout, flat_params_out);
}

}  // namespace slm::data
