#pragma once
// Where a training step's time goes, by kind of op: the study's "bottlenecks" as a feature. A
// backend with profiling on times each of its ops (CUDA events on the GPU, a steady clock on the
// CPU); the trainer adds the wall time of the steps, and what no op accounts for is idle (launch
// gaps, host work, synchronisation). Communication is the data-parallel collectives a policy
// queues on the backend's stream (all-reduce, reduce-scatter, all-gather), timed the same way.
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace slm {

// New kinds go before `count`: readers index by Op and name by op_names, never by position.
enum class Op : int {
    embedding, norm, matmul, rope, swiglu, attention, loss, optimizer, communication, count
};

inline constexpr int op_count = static_cast<int>(Op::count);
inline constexpr std::array<std::string_view, op_count> op_names = {
    "embedding", "norm",      "matmul", "rope", "swiglu", "attention",
    "loss",      "optimizer", "communication"};

struct OpBreakdown {
    std::array<double, op_count> seconds{};  // summed over the profiled steps
    double step_seconds = 0;                 // wall time of the profiled steps
    int64_t steps = 0;

    double op_seconds() const {
        double total = 0;
        for (double s : seconds) total += s;
        return total;
    }
    double idle_seconds() const { return step_seconds > op_seconds() ? step_seconds - op_seconds() : 0; }

    // One line per kind: milliseconds per step and share of the step.
    std::string table() const {
        std::string out = "op              ms/step   share\n";
        char line[96];
        const double per = steps > 0 ? 1e3 / static_cast<double>(steps) : 0;
        auto row = [&](std::string_view name, double s) {
            std::snprintf(line, sizeof line, "%-14.*s %8.3f  %5.1f%%\n", static_cast<int>(name.size()),
                          name.data(), s * per, step_seconds > 0 ? 100.0 * s / step_seconds : 0.0);
            out += line;
        };
        for (int i = 0; i < op_count; ++i) row(op_names[static_cast<size_t>(i)], seconds[static_cast<size_t>(i)]);
        row("idle", idle_seconds());
        row("step", step_seconds);
        return out;
    }

    // {"embedding_ms": ..., ..., "idle_ms": ..., "step_ms": ...} per step.
    // {"<op>_ms": ..., "idle_ms": ..., "step_ms": ...}, per step, ops in Op order.
    nlohmann::ordered_json json() const {
        nlohmann::ordered_json out;
        const double per = steps > 0 ? 1e3 / static_cast<double>(steps) : 0;
        for (int i = 0; i < op_count; ++i)
            out[std::string(op_names[static_cast<size_t>(i)]) + "_ms"] =
                seconds[static_cast<size_t>(i)] * per;
        out["idle_ms"] = idle_seconds() * per;
        out["step_ms"] = step_seconds * per;
        return out;
    }
};

}  // namespace slm
