#pragma once
// train_llama --precision fp8, at the end of a run: what the FP8 casts could not hold, per layer
// and operand. One summary line (and a line per site that lost anything) on stdout, and every
// site's counts in <out>/fp8_casts.json, so a run's FP8 health is read, not assumed.
//
// Counted on rank 0, since this process started (a resumed run counts from the resume). What
// each count means (precision/scaling.hpp's CastStats): overflow, a value beyond the format's
// largest finite one, saturated; underflow, a non-zero value rounded to zero; nan, a NaN input.
// W is scaled from its own amax and cannot overflow; x and dY are scaled from the amaxes of
// their last 16 casts (delayed scaling, precision/delayed_scaling.hpp), so an overflow is a
// tensor that outgrew that history (a spike: worth reading next to the loss). Underflow is the
// format's range at work: values below about amax · 2^-19 (E4M3) or 2^-33 (E5M2) become 0.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slm/core/file_io.hpp"
#include "slm/precision/delayed_scaling.hpp"
#include "slm/precision/policy.hpp"

namespace precision_report {

inline nlohmann::json to_json(const slm::precision::CastStats& s) {
    return {{"count", s.count}, {"overflow", s.overflow}, {"underflow", s.underflow}, {"nan", s.nan}};
}

// Every site's counts, summed, and the sites as JSON.
inline slm::precision::LinearCastReport total(const std::vector<slm::precision::LinearCastReport>& sites) {
    slm::precision::LinearCastReport all{"all"};
    for (const auto& r : sites) {
        all.x += r.x;
        all.w += r.w;
        all.dy += r.dy;
        all.fallback_gemms += r.fallback_gemms;
    }
    return all;
}

inline void print_and_write(const std::vector<slm::precision::LinearCastReport>& sites,
                            const std::filesystem::path& file) {
    const auto all = total(sites);
    const std::string delayed = "delayed: per tensor, from the largest amax of its last " +
                                std::to_string(slm::precision::amax_history_length) + " casts, margin 2^" +
                                std::to_string(slm::precision::delayed_scaling_margin);
    nlohmann::json out = {{"format", "slm-fp8-casts-1"},
                          {"scaling",
                           {{"w", "current: per tensor, from its own amax"},
                            {"x", delayed},
                            {"dy", delayed}}},
                          {"formats", {{"x", "e4m3"}, {"w", "e4m3"}, {"dy", "e5m2"}}},
                          {"total", {{"x", to_json(all.x)}, {"w", to_json(all.w)}, {"dy", to_json(all.dy)},
                                     {"fallback_gemms", all.fallback_gemms}}},
                          {"sites", nlohmann::json::array()}};
    for (const auto& r : sites)
        out["sites"].push_back({{"site", r.site}, {"x", to_json(r.x)}, {"w", to_json(r.w)},
                                {"dy", to_json(r.dy)}, {"fallback_gemms", r.fallback_gemms}});
    const std::string text = out.dump(1) + "\n";
    slm::AtomicFile f(file);
    f.write(text.data(), text.size());
    f.commit();

    const auto line = [](const char* what, const slm::precision::CastStats& s) {
        const double n = s.count > 0 ? static_cast<double>(s.count) : 1.0;
        std::printf("  %-3s %14lld values, overflow %lld, underflow %lld (%.2e), nan %lld\n", what,
                    static_cast<long long>(s.count), static_cast<long long>(s.overflow),
                    static_cast<long long>(s.underflow), static_cast<double>(s.underflow) / n,
                    static_cast<long long>(s.nan));
    };
    std::printf("fp8 casts over %zu linear layers (E4M3 x and W, E5M2 dy; all sites in %s):\n", sites.size(),
                file.c_str());
    line("x", all.x);
    line("W", all.w);
    line("dy", all.dy);
    if (all.fallback_gemms > 0)
        std::printf("  %lld GEMMs ran in bf16: shapes the FP8 GEMMs do not take (k and n multiples of 16)\n",
                    static_cast<long long>(all.fallback_gemms));
    for (const auto& r : sites)
        if (r.x.overflow + r.w.overflow + r.dy.overflow + r.x.nan + r.w.nan + r.dy.nan > 0)
            std::printf("  %s: overflow x %lld, W %lld, dy %lld; nan x %lld, W %lld, dy %lld\n", r.site.c_str(),
                        static_cast<long long>(r.x.overflow), static_cast<long long>(r.w.overflow),
                        static_cast<long long>(r.dy.overflow), static_cast<long long>(r.x.nan),
                        static_cast<long long>(r.w.nan), static_cast<long long>(r.dy.nan));
}

}  // namespace precision_report
