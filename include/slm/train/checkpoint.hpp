#pragma once
// Checkpoint file: everything needed to continue a run bit-for-bit — model config, the run's
// settings, weights, AdamW moments, step, data position and seed — written atomically (temp
// file, fsync, rename) and closed by a checksum that load verifies before anything is used.
// Every size field is checked against the file's size before anything is allocated.
//
// Layout (little-endian): "SLMCKPT\0" | u32 version | u32 element bytes (4 or 8) |
// u64 config bytes | config text | [v2: u64 settings bytes | settings text] | i64 step |
// u64 loader position | u64 seed | i64 optimizer steps | [v2: i64 schedule steps] | u64 n |
// params[n] | m[n] | v[n] | u64 checksum of all the above.
// Version 1 (no settings, FNV-1a checksum) is still read; version 2 is written, with XXH3.
// The settings are the run's ConfigSummary (train/run_summary.hpp), encoded: what a resume
// compares with its own flags.
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
    int64_t schedule_steps = 0;    // the steps the learning-rate cosine decays over (0: unknown)
};

template <class Master>
struct Checkpoint {
    ModelConfig config;
    std::string settings;  // encoded ConfigSummary; empty in a version-1 file
    CheckpointState state;
    std::vector<Master> params, first_moment, second_moment;
};

namespace checkpoint_detail {
inline constexpr char magic[8] = {'S', 'L', 'M', 'C', 'K', 'P', 'T', '\0'};
inline constexpr uint32_t version = 2;

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
    Xxh3 sum_;
};

class Reader {
public:
    explicit Reader(const std::filesystem::path& p) : path_(p), in_(p, std::ios::binary) {
        require(static_cast<bool>(in_), "cannot open checkpoint '" + p.string() +
                                            "': no such file or not readable");
        std::error_code ec;
        left_ = std::filesystem::file_size(p, ec);
        require(!ec, "cannot read the size of checkpoint '" + p.string() + "': " + ec.message());
    }
    // Bytes of the file not read yet: every size field is checked against it before anything
    // is allocated, so a damaged size is an error naming the file, never a huge allocation.
    uint64_t left() const { return left_; }
    void get(void* data, size_t bytes) {
        require(bytes <= left_, "checkpoint '" + path_.string() +
                                    "' is truncated (ends early); it cannot be resumed — use an "
                                    "earlier one");
        left_ -= bytes;
        in_.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes));
        require(in_.gcount() == static_cast<std::streamsize>(bytes),
                "checkpoint '" + path_.string() +
                    "' is truncated (ends early); it cannot be resumed — use an earlier one");
        // Both sums until the version says which one the file has (its first 12 bytes).
        if (sum_kind_ != SumKind::fnv) xxh3_sum_.add(data, bytes);
        if (sum_kind_ != SumKind::xxh3) sum_.add(data, bytes);
    }
    template <class T>
    T get() {
        T value;
        get(&value, sizeof value);
        return value;
    }
    // Version 1 files are summed with FNV-1a, later ones with XXH3.
    void set_version(uint32_t v) { sum_kind_ = v >= 2 ? SumKind::xxh3 : SumKind::fnv; }
    void verify_checksum() {
        const uint64_t expected = sum_kind_ == SumKind::xxh3 ? xxh3_sum_.value() : sum_.value();
        uint64_t stored = 0;
        in_.read(reinterpret_cast<char*>(&stored), sizeof stored);
        require(in_.gcount() == sizeof stored, "checkpoint '" + path_.string() + "' is truncated");
        require(stored == expected, "checkpoint '" + path_.string() +
                                        "' fails its checksum (corrupted); use an earlier one");
        left_ -= sizeof stored;
        require(left_ == 0, "checkpoint '" + path_.string() + "' has " + std::to_string(left_) +
                                " bytes after its checksum (corrupted or appended to)");
    }

private:
    std::filesystem::path path_;
    std::ifstream in_;
    Checksum sum_;
    Xxh3 xxh3_sum_;
    enum class SumKind { both, fnv, xxh3 } sum_kind_ = SumKind::both;
    uint64_t left_ = 0;
};
}  // namespace checkpoint_detail

// settings: the run's encoded ConfigSummary (empty: none recorded).
template <class Master>
void save_checkpoint(const std::filesystem::path& path, const ModelConfig& config,
                     const std::string& settings, const CheckpointState& state,
                     const Master* params, const Master* m, const Master* v, int64_t n) {
    using namespace checkpoint_detail;
    Writer w(path);
    w.put(magic, sizeof magic);
    w.put(version);
    w.put(static_cast<uint32_t>(sizeof(Master)));
    const std::string text = to_text(config);
    w.put(static_cast<uint64_t>(text.size()));
    w.put(text.data(), text.size());
    w.put(static_cast<uint64_t>(settings.size()));
    w.put(settings.data(), settings.size());
    w.put(state.step);
    w.put(state.loader_position);
    w.put(state.seed);
    w.put(state.optimizer_steps);
    w.put(state.schedule_steps);
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
    require(ver == 1 || ver == version, "checkpoint '" + path.string() + "' has version " +
                                            std::to_string(ver) + "; this build reads versions 1 to " +
                                            std::to_string(version));
    r.set_version(ver);
    const auto width = r.get<uint32_t>();
    require(width == 4 || width == 8, "checkpoint '" + path.string() + "' has element size " +
                                          std::to_string(width) + " (corrupted)");
    const auto text_bytes = r.get<uint64_t>();
    require(text_bytes < (1u << 20) && text_bytes <= r.left(),
            "checkpoint '" + path.string() + "' is corrupted (config size " +
                std::to_string(text_bytes) + ")");
    std::string text(text_bytes, '\0');
    r.get(text.data(), text.size());
    Checkpoint<Master> c;
    c.config = config_from_text(text);
    if (ver >= 2) {
        const auto settings_bytes = r.get<uint64_t>();
        require(settings_bytes < (1u << 20) && settings_bytes <= r.left(),
                "checkpoint '" + path.string() + "' is corrupted (settings size " +
                    std::to_string(settings_bytes) + ")");
        c.settings.resize(settings_bytes);
        r.get(c.settings.data(), c.settings.size());
    }
    c.state.step = r.get<int64_t>();
    c.state.loader_position = r.get<uint64_t>();
    c.state.seed = r.get<uint64_t>();
    c.state.optimizer_steps = r.get<int64_t>();
    if (ver >= 2) c.state.schedule_steps = r.get<int64_t>();
    const auto n = r.get<uint64_t>();
    // Three arrays of n values and the checksum must be exactly what is left of the file.
    const uint64_t expected = n < (uint64_t{1} << 40) ? 3 * n * width + sizeof(uint64_t) : 0;
    require(expected != 0 && expected <= r.left(),
            "checkpoint '" + path.string() + "' is corrupted or truncated: it declares " +
                std::to_string(n) + " values per array but holds " + std::to_string(r.left()) +
                " bytes after its header; use an earlier one");
    require(expected == r.left(), "checkpoint '" + path.string() + "' has " +
                                      std::to_string(r.left() - expected) +
                                      " bytes after its checksum (corrupted or appended to)");
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
