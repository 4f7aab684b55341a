#pragma once
// The start-up check: before the first step, every rank's configuration (the model, the run
// fields that must agree, and a fingerprint of the data) is gathered to every rank in one
// collective and compared with rank 0's. Ranks started with different flags would otherwise
// train "data-parallel" on different models or schedules and either hang at the first mismatched
// collective or, worse, silently average gradients of different things. A mismatch throws the
// same slm::Error on every rank, naming rank, field and both values:
//     rank 1: seq 128 vs rank 0: 256
// It runs over any BlobExchange: Mpi for CPU runs started by mpirun, the TCP Rendezvous for
// NCCL runs started torchrun-style.
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "slm/core/error.hpp"
#include "slm/parallel/transport/communicator.hpp"

namespace slm::parallel {

struct ConfigField {
    std::string name, value;
};

// The fields compared, in a fixed order; callers may add their own (the parallel policy, the
// attention kernel) with add().
class ConfigSummary {
public:
    void add(std::string name, std::string value) {
        fields_.push_back({std::move(name), std::move(value)});
    }
    // Without it a string literal would pick the bool overload.
    void add(std::string name, const char* value) { add(std::move(name), std::string(value)); }
    void add(std::string name, int64_t value) { add(std::move(name), std::to_string(value)); }
    void add(std::string name, double value) {
        char text[32];  // shortest text that reads back as the same double: "0.003", not 0.0030…01
        const auto end = std::to_chars(text, text + sizeof text, value).ptr;
        add(std::move(name), std::string(text, end));
    }
    void add(std::string name, bool value) { add(std::move(name), std::string(value ? "true" : "false")); }

    const std::vector<ConfigField>& fields() const { return fields_; }
    bool has(const std::string& name) const {
        for (const auto& f : fields_)
            if (f.name == name) return true;
        return false;
    }

    // One "name=value" line per field; newlines inside values are escaped so a line is a field.
    std::string encode() const {
        std::string out;
        for (const auto& f : fields_) out += f.name + "=" + escape(f.value) + "\n";
        return out;
    }
    static ConfigSummary decode(const std::string& text, int rank) {
        ConfigSummary s;
        for (size_t at = 0; at < text.size();) {
            const size_t end = text.find('\n', at), eq = text.find('=', at);
            require(end != std::string::npos && eq < end,
                    "start-up check: rank " + std::to_string(rank) +
                        " sent an unreadable config summary (is every rank the same build?)");
            s.add(text.substr(at, eq - at), unescape(text.substr(eq + 1, end - eq - 1)));
            at = end + 1;
        }
        return s;
    }

private:
    static std::string escape(const std::string& v) {
        std::string out;
        for (char c : v) out += c == '\n' ? std::string("\\n") : c == '\\' ? std::string("\\\\") : std::string(1, c);
        return out;
    }
    static std::string unescape(const std::string& v) {
        std::string out;
        for (size_t i = 0; i < v.size(); ++i) {
            if (v[i] == '\\' && i + 1 < v.size()) {
                out += v[i + 1] == 'n' ? '\n' : v[i + 1];
                ++i;
            } else {
                out += v[i];
            }
        }
        return out;
    }
    std::vector<ConfigField> fields_;
};

// "" when every rank's summary equals rank 0's; otherwise what differs, rank by rank.
// encoded: every rank's ConfigSummary::encode(), indexed by rank.
inline std::string config_differences(const std::vector<std::string>& encoded) {
    constexpr size_t max_reported = 12;  // enough to see the pattern, short enough to read
    std::vector<std::string> found;
    const ConfigSummary root = ConfigSummary::decode(encoded.at(0), 0);
    for (size_t r = 1; r < encoded.size(); ++r) {
        const ConfigSummary other = ConfigSummary::decode(encoded[r], static_cast<int>(r));
        const auto &a = other.fields(), &b = root.fields();
        const std::string who = "rank " + std::to_string(r);
        bool same_names = a.size() == b.size();
        for (size_t i = 0; same_names && i < a.size(); ++i) same_names = a[i].name == b[i].name;
        if (!same_names) {
            found.push_back(who + " compares different fields than rank 0 (" +
                            std::to_string(a.size()) + " vs " + std::to_string(b.size()) +
                            "): is every rank the same build of the program?");
            continue;
        }
        for (size_t i = 0; i < a.size(); ++i)
            if (a[i].value != b[i].value)
                found.push_back(who + ": " + a[i].name + " " + a[i].value + " vs rank 0: " +
                                b[i].value);
    }
    if (found.empty()) return "";
    std::string out;
    for (size_t i = 0; i < found.size() && i < max_reported; ++i) out += (i ? "; " : "") + found[i];
    if (found.size() > max_reported)
        out += "; and " + std::to_string(found.size() - max_reported) + " more";
    return out;
}

// One collective: every rank sends its summary to all and every rank throws the same error when
// any differ, so no rank goes on alone into a collective the others never join.
template <class Exchange>
    requires BlobExchange<Exchange>
void check_same_config(Exchange& exchange, const ConfigSummary& mine) {
    const std::string differences = config_differences(exchange.all_gather_blobs(mine.encode()));
    if (!differences.empty())
        fail("start-up check: the ranks were not started with the same configuration: " +
             differences + ". Start every rank with the same flags and the same data");
}

}  // namespace slm::parallel
