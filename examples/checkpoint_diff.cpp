// checkpoint_diff: how far apart two train_llama checkpoints of the same model are, tensor by
// tensor — what a data-parallel run is checked with against a one-process run of the same global
// batch (the same weights up to the order of the sums across ranks).
//
//   checkpoint_diff --a runs/single/checkpoint.bin --b runs/zero3/checkpoint.bin --tolerance 1e-2
//
// Prints, per tensor, the normwise relative error ‖a − b‖ / ‖b‖ and, with --base (the weights both
// started from, e.g. a checkpoint at step 0), the same of the updates (a − base) against
// (b − base), which says how much of what the steps changed differs. Exit status: 0 when every
// tensor's error is below --tolerance, 1 when one is not (or the two are different models), 2 on
// bad usage.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "slm/core/config_io.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/train/checkpoint.hpp"

namespace {

double relative(const std::vector<float>& a, const std::vector<float>& b,
                const std::vector<float>* base, int64_t begin, int64_t size) {
    double diff = 0, ref = 0;
    for (int64_t i = begin; i < begin + size; ++i) {
        const double o = base ? (*base)[static_cast<size_t>(i)] : 0.0;
        const double x = a[static_cast<size_t>(i)] - o, y = b[static_cast<size_t>(i)] - o;
        diff += (x - y) * (x - y);
        ref += y * y;
    }
    return ref > 0 ? std::sqrt(diff / ref) : (diff > 0 ? INFINITY : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
    slm::cli::Flags flags(
        "checkpoint_diff", "per-tensor relative difference of two checkpoints of one model",
        {{"--a", "", "checkpoint (required)"},
         {"--b", "", "the reference checkpoint: errors are relative to it (required)"},
         {"--base", "", "checkpoint both started from: also compare the updates (optional)"},
         {"--tolerance", "1e-2", "largest relative error that passes"},
         {"--all", "false", "print every tensor, not only the worst ten", true}});
    try {
        if (!flags.parse(argc, argv)) return 0;
        if (flags.text("--a").empty() || flags.text("--b").empty())
            throw slm::cli::UsageError("--a and --b are required");
        const double tolerance = flags.real("--tolerance", 0, true);
        const auto a = slm::load_checkpoint<float>(flags.text("--a"));
        const auto b = slm::load_checkpoint<float>(flags.text("--b"));
        if (slm::to_text(a.config) != slm::to_text(b.config))
            throw slm::Error("--a and --b are checkpoints of different models (their configs "
                             "differ); compare checkpoints of one preset");
        std::vector<float> base_params;
        if (!flags.text("--base").empty()) {
            auto base = slm::load_checkpoint<float>(flags.text("--base"));
            if (slm::to_text(base.config) != slm::to_text(b.config))
                throw slm::Error("--base is a checkpoint of another model than --a and --b");
            base_params = std::move(base.params);
        }
        const bool with_base = !base_params.empty();
        struct Row {
            std::string name;
            double weights, updates;
        };
        std::vector<Row> rows;
        const slm::ParameterLayout layout(b.config);
        for (const auto& t : layout.tensors())
            rows.push_back({t.name, relative(a.params, b.params, nullptr, t.offset, t.size),
                            with_base ? relative(a.params, b.params, &base_params, t.offset, t.size)
                                      : 0.0});
        const double worst = std::max_element(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
                                 return x.weights < y.weights;
                             })->weights;
        std::sort(rows.begin(), rows.end(),
                  [](const Row& x, const Row& y) { return x.weights > y.weights; });
        const size_t shown = flags.on("--all") ? rows.size() : std::min<size_t>(rows.size(), 10);
        std::printf("%-40s %14s%s\n", "tensor (worst first)", "weights", with_base ? "        updates" : "");
        for (size_t i = 0; i < shown; ++i) {
            std::printf("%-40s %14.3e", rows[i].name.c_str(), rows[i].weights);
            if (with_base) std::printf(" %14.3e", rows[i].updates);
            std::printf("\n");
        }
        std::printf("steps: a %lld, b %lld; largest relative error of the weights %.3e (tolerance "
                    "%.1e): %s\n",
                    static_cast<long long>(a.state.step), static_cast<long long>(b.state.step), worst,
                    tolerance, worst < tolerance ? "PASS" : "FAIL");
        return worst < tolerance ? 0 : 1;
    } catch (const slm::cli::UsageError& e) {
        std::fprintf(stderr, "checkpoint_diff: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const std::exception& e) {  // slm::Error, and what the standard library throws
        std::fprintf(stderr, "checkpoint_diff: error: %s\n", e.what());
        return 1;
    }
}
