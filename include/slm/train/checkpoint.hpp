#pragma once
// Checkpoint file: everything needed to continue a run bit-for-bit — model config, the run's
// settings, weights, AdamW moments, step, data position and seed — written atomically (temp
// file, fsync, rename) and closed by checksums that load verifies before anything is used.
// Every size field is checked against the file's size before anything is allocated.
//
// Layout (little-endian): "SLMCKPT\0" | u32 version | u32 element bytes (4 or 8) |
// u64 config bytes | config text | [v2+: u64 settings bytes | settings text] | i64 step |
// u64 loader position | u64 seed | i64 optimizer steps | [v2+: i64 schedule steps] | u64 n |
// [v3: u64 segment bytes] | params[n] | m[n] | v[n] | [v3: u64 XXH3 of each payload segment] |
// u64 checksum: v1 FNV-1a and v2 XXH3 of all the above; v3 XXH3 of the header (everything
// before params) and the segment sums.
// Version 3 is written: its payload is cut into segments (train/checkpoint_segments.hpp) that
// threads and data-parallel ranks write and sum in parallel; versions 1 and 2 are still read.
// The settings are the run's ConfigSummary (train/run_summary.hpp), encoded: what a resume
// compares with its own flags.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "slm/core/checksum.hpp"
#include "slm/core/config_io.hpp"
#include "slm/core/file_io.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/train/checkpoint_segments.hpp"

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
inline constexpr uint32_t version = 3;

// The bytes before the payload, and where everything after them lies.
struct Header {
    std::string bytes;
    CheckpointPlan plan;
};

template <class T>
void append(std::string& out, const T& value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

inline Header header(const ModelConfig& config, const std::string& settings, const CheckpointState& state,
                     uint32_t width, int64_t n, uint64_t segment_bytes) {
    Header h;
    std::string& out = h.bytes;
    out.append(magic, sizeof magic);
    append(out, version);
    append(out, width);
    const std::string text = to_text(config);
    append(out, static_cast<uint64_t>(text.size()));
    out += text;
    append(out, static_cast<uint64_t>(settings.size()));
    out += settings;
    append(out, state.step);
    append(out, state.loader_position);
    append(out, state.seed);
    append(out, state.optimizer_steps);
    append(out, state.schedule_steps);
    append(out, static_cast<uint64_t>(n));
    h.plan = CheckpointPlan(out.size() + sizeof(uint64_t), 3 * static_cast<uint64_t>(n), width, segment_bytes);
    append(out, h.plan.segment_bytes);
    return h;
}

// The sum that closes a version-3 file: over the header and the segment sums.
inline uint64_t closing_sum(const std::string& header_bytes, const std::vector<uint64_t>& sums) {
    Xxh3 x;
    x.add(header_bytes.data(), header_bytes.size());
    x.add(sums.data(), sums.size() * sizeof(uint64_t));
    return x.value();
}

// Writes the segment sums and the closing sum after the payload.
inline void write_trailer(int fd, const Header& h, const std::vector<uint64_t>& sums, const std::string& name) {
    require(sums.size() == h.plan.segments, "checkpoint '" + name + "': " + std::to_string(sums.size()) +
                                                " segment sums for " + std::to_string(h.plan.segments) + " segments");
    std::vector<uint64_t> trailer(sums);
    trailer.push_back(closing_sum(h.bytes, sums));
    pwrite_all(fd, trailer.data(), trailer.size() * sizeof(uint64_t), h.plan.sums_offset(), name);
}

class Reader {
public:
    explicit Reader(const std::filesystem::path& p) : path_(p), in_(p, std::ios::binary) {
        require(static_cast<bool>(in_), "cannot open checkpoint '" + p.string() +
                                            "': no such file or not readable");
        std::error_code ec;
        left_ = size_ = std::filesystem::file_size(p, ec);
        require(!ec, "cannot read the size of checkpoint '" + p.string() + "': " + ec.message());
    }
    uint64_t consumed() const { return size_ - left_; }
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
        if (segments_) {  // v3's payload: summed segment by segment
            segments_->add(data, bytes);
            return;
        }
        // Both sums until the version says which one the file has (its first 12 bytes).
        if (sum_kind_ != SumKind::fnv) xxh3_sum_.add(data, bytes);
        if (sum_kind_ != SumKind::xxh3) sum_.add(data, bytes);
    }
    // Version 3: the payload's bytes are summed by segment between these two calls; then its
    // stored segment sums are read (into the closing sum, after the header) and compared.
    void begin_payload(const CheckpointPlan& plan) { segments_.emplace(plan); }
    void end_payload() {
        const std::vector<uint64_t> computed = segments_->sums();
        segments_.reset();
        for (size_t k = 0; k < computed.size(); ++k)
            require(get<uint64_t>() == computed[k],
                    "checkpoint '" + path_.string() + "' fails its checksum in segment " + std::to_string(k) +
                        " of " + std::to_string(computed.size()) + " (corrupted); use an earlier one");
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
    std::optional<SegmentSums> segments_;
    uint64_t left_ = 0, size_ = 0;
};
}  // namespace checkpoint_detail

// Where a checkpoint's payload comes from: params, m and v of n values each, one after another
// in memory (the writer's snapshot holds them so), cut into segments of segment_bytes.
template <class Master>
struct CheckpointPayload {
    const Master* values = nullptr;  // params[n] | m[n] | v[n]
    int64_t n = 0;
    uint64_t segment_bytes = default_segment_bytes;
};

// Writes a whole checkpoint to `path`, atomically, its segments written and summed by up to
// `threads` threads. settings: the run's encoded ConfigSummary (empty: none recorded).
template <class Master>
void save_checkpoint(const std::filesystem::path& path, const ModelConfig& config, const std::string& settings,
                     const CheckpointState& state, const CheckpointPayload<Master>& payload, int threads = 4) {
    using namespace checkpoint_detail;
    const Header h = header(config, settings, state, sizeof(Master), payload.n, payload.segment_bytes);
    AtomicFile file(path);
    file.reserve(h.plan.file_bytes());
    file.write(h.bytes.data(), h.bytes.size());
    const auto sums = write_segments(file.fd(), h.plan, 0, h.plan.segments, payload.values, threads, path.string());
    write_trailer(file.fd(), h, sums, path.string());
    file.commit();
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
    require(ver >= 1 && ver <= version, "checkpoint '" + path.string() + "' has version " +
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
    try {  // parsed before the checksum is reached: a damaged text must still name the file
        c.config = config_from_text(text);
    } catch (const Error& e) {
        fail("checkpoint '" + path.string() + "' is corrupted (its model config: " + e.what() +
             "); use an earlier one");
    }
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
    require(n > 0 && n < (uint64_t{1} << 40), "checkpoint '" + path.string() + "' is corrupted: it declares " +
                                                  std::to_string(n) + " values per array; use an earlier one");
    CheckpointPlan plan;
    if (ver >= 3) {
        const auto segment = r.get<uint64_t>();
        require(segment >= width && segment % width == 0 && segment <= (uint64_t{1} << 40),
                "checkpoint '" + path.string() + "' is corrupted (segment size " + std::to_string(segment) + ")");
        plan = CheckpointPlan(r.consumed(), 3 * n, width, segment);
    }
    // Three arrays of n values, the segment sums (v3) and the checksum must be exactly what is
    // left of the file.
    const uint64_t expected = ver >= 3 ? plan.file_bytes() - plan.payload_offset : 3 * n * width + sizeof(uint64_t);
    require(expected <= r.left(),
            "checkpoint '" + path.string() + "' is corrupted or truncated: it declares " +
                std::to_string(n) + " values per array but holds " + std::to_string(r.left()) +
                " bytes after its header; use an earlier one");
    require(expected == r.left(), "checkpoint '" + path.string() + "' has " +
                                      std::to_string(r.left() - expected) +
                                      " bytes after its checksum (corrupted or appended to)");
    if (ver >= 3) r.begin_payload(plan);
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
    if (ver >= 3) r.end_payload();
    r.verify_checksum();
    // Written before the FFN was stored padded (ModelConfig::ffn_padded): moved into today's
    // layout, the padding zero, so such a run resumes, exports and samples as before.
    const ParameterLayout now(c.config), before(c.config, ParameterLayout::Ffn::unpadded);
    if (static_cast<int64_t>(n) != now.total() && static_cast<int64_t>(n) == before.total())
        for (auto* buffer : {&c.params, &c.first_moment, &c.second_moment}) *buffer = relayout(before, now, *buffer);
    return c;
}

}  // namespace slm
