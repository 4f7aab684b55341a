#pragma once
// Checkpoint file: everything needed to continue a run bit-for-bit — model config, weights,
// AdamW moments, step, data position and seed — written atomically (temp file, fsync, rename)
// and closed by a checksum that load verifies before anything is used.
//
// Layout (little-endian): "SLMCKPT\0" | u32 version | u32 element bytes (4 or 8) |
// u64 config bytes | config text | i64 step | u64 loader position | u64 seed |
// i64 optimizer steps | u64 n | params[n] | m[n] | v[n] | u64 checksum of all the above.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/core/checksum.hpp"
#include "slm/core/config_io.hpp"
#include "slm/core/file_io.hpp"

namespace slm {

struct CheckpointState {
    int64_t step = 0;              // optimizer steps completed
    uint64_t loader_position = 0;  // training batches drawn
    uint64_t seed = 0;
    int64_t optimizer_steps = 0;
};

template <class Master>
struct Checkpoint {
    ModelConfig config;
    CheckpointState state;
    std::vector<Master> params, first_moment, second_moment;
};

namespace checkpoint_detail {
inline constexpr char magic[8] = {'S', 'L', 'M', 'C', 'K', 'P', 'T', '\0'};
inline constexpr uint32_t version = 1;

class Writer {
public:
    explicit Writer(const std::filesystem::path& p) : file_(p) {}
    void put(const void* data, size_t bytes) {
        sum_.add(data, bytes);
        file_.write(data, bytes);
    }
    template <class T>
    void put(const T& value) {
        put(&value, sizeof value);
    }
    void finish() {
        const uint64_t c = sum_.value();
        file_.write(&c, sizeof c);
        file_.commit();
    }

private:
    AtomicFile file_;
    Checksum sum_;
};

class Reader {
public:
    explicit Reader(const std::filesystem::path& p) : path_(p), in_(p, std::ios::binary) {
        require(static_cast<bool>(in_), "cannot open checkpoint '" + p.string() +
                                            "': no such file or not readable");
    }
    void get(void* data, size_t bytes) {
        in_.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes));
        require(in_.gcount() == static_cast<std::streamsize>(bytes),
                "checkpoint '" + path_.string() +
                    "' is truncated (ends early); it cannot be resumed — use an earlier one");
        sum_.add(data, bytes);
    }
    template <class T>
    T get() {
        T value;
        get(&value, sizeof value);
        return value;
    }
    void verify_checksum() {
        const uint64_t expected = sum_.value();
        uint64_t stored = 0;
        in_.read(reinterpret_cast<char*>(&stored), sizeof stored);
        require(in_.gcount() == sizeof stored, "checkpoint '" + path_.string() + "' is truncated");
        require(stored == expected, "checkpoint '" + path_.string() +
                                        "' fails its checksum (corrupted); use an earlier one");
    }

private:
    std::filesystem::path path_;
    std::ifstream in_;
    Checksum sum_;
};
}  // namespace checkpoint_detail

template <class Master>
void save_checkpoint(const std::filesystem::path& path, const ModelConfig& config,
                     const CheckpointState& state, const Master* params, const Master* m,
                     const Master* v, int64_t n) {
    using namespace checkpoint_detail;
    Writer w(path);
    w.put(magic, sizeof magic);
    w.put(version);
    w.put(static_cast<uint32_t>(sizeof(Master)));
    const std::string text = to_text(config);
    w.put(static_cast<uint64_t>(text.size()));
    w.put(text.data(), text.size());
    w.put(state.step);
    w.put(state.loader_position);
    w.put(state.seed);
    w.put(state.optimizer_steps);
    w.put(static_cast<uint64_t>(n));
    for (const Master* buffer : {params, m, v}) w.put(buffer, sizeof(Master) * static_cast<size_t>(n));
    w.finish();
}

// Reads and verifies a checkpoint; values stored at another precision are converted to Master.
template <class Master>
Checkpoint<Master> load_checkpoint(const std::filesystem::path& path) {
    using namespace checkpoint_detail;
    Reader r(path);
    char head[8];
    r.get(head, sizeof head);
    require(std::memcmp(head, magic, sizeof magic) == 0,
            "'" + path.string() + "' is not an slm checkpoint (bad magic)");
    const auto ver = r.get<uint32_t>();
    require(ver == version, "checkpoint '" + path.string() + "' has version " +
                                std::to_string(ver) + "; this build reads version " +
                                std::to_string(version));
    const auto width = r.get<uint32_t>();
    require(width == 4 || width == 8, "checkpoint '" + path.string() + "' has element size " +
                                          std::to_string(width) + " (corrupted)");
    const auto text_bytes = r.get<uint64_t>();
    require(text_bytes < (1u << 20), "checkpoint '" + path.string() + "' is corrupted (config size)");
    std::string text(text_bytes, '\0');
    r.get(text.data(), text.size());
    Checkpoint<Master> c;
    c.config = config_from_text(text);
    c.state.step = r.get<int64_t>();
    c.state.loader_position = r.get<uint64_t>();
    c.state.seed = r.get<uint64_t>();
    c.state.optimizer_steps = r.get<int64_t>();
    const auto n = r.get<uint64_t>();
    require(n < (uint64_t{1} << 40), "checkpoint '" + path.string() + "' is corrupted (size)");
    for (auto* buffer : {&c.params, &c.first_moment, &c.second_moment}) {
        buffer->resize(n);
        if (width == sizeof(Master)) {
            r.get(buffer->data(), n * sizeof(Master));
        } else if (width == 4) {
            std::vector<float> tmp(n);
            r.get(tmp.data(), n * 4);
            for (size_t i = 0; i < n; ++i) (*buffer)[i] = static_cast<Master>(tmp[i]);
        } else {
            std::vector<double> tmp(n);
            r.get(tmp.data(), n * 8);
            for (size_t i = 0; i < n; ++i) (*buffer)[i] = static_cast<Master>(tmp[i]);
        }
    }
    r.verify_checksum();
    return c;
}

}  // namespace slm
