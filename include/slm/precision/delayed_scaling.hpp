#pragma once
// Delayed scaling: a tensor is cast with a scale taken from the amaxes of the same operand's
// previous casts, and its own amax is taken during its cast, for the next ones. Current scaling
// (scaling.hpp) reads every tensor twice, once for its amax and once to cast it; delayed scaling
// reads it once. On an H100 the amax passes were 9-15% of an FP8 linear layer's time at the
// study's shapes (benchmarks/fp8_linear_cuda, docs/performance_notes_december.md), which is what
// this buys. Transformer Engine scales this way by default.
//
// The rule, the same on the CPU and the GPU (cuda/fp8_cast.cuh, fp8_delayed_scale):
//   call 0 (no history yet): current scaling, the tensor's own amax; it is recorded;
//   call c >= 1: scale_for(the largest of the last min(c, length) recorded amaxes, format,
//   margin 2), and the tensor's own amax is recorded in place of the oldest.
// A NaN in the window gives NaN, so scale_for gives 1, as for a NaN tensor under current
// scaling. A tensor whose amax grew beyond the window's saturates the cast: those values are
// counted as overflows (CastStats), never hidden.
//
// Why a margin of 2 (the scale quartered: amax at a quarter of the format's largest value): a
// tensor may grow to four times its window's amax before anything saturates. train_llama's CLI
// test run (tiny preset, 12 steps of real text on the CPU, tests/cli/precision.sh) saturated
// 8 of 22.4M x values and 414 of 14.7M dY values with a margin of 1, as its activations and
// gradients grew in the first steps; with 2, none. The cost is two binades at the bottom of the
// range: there x's underflow went from 1.9e-4 to 3.7e-4 of its values, dY's from 2.0e-3 to
// 2.2e-3.
//
// Why 16: long enough that one small batch does not shrink the scale at once, short enough to
// follow gradients down as the loss falls (E5M2 underflows otherwise). The window counts calls,
// so micro-batches and evaluation batches each take a slot.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "slm/precision/fp8.hpp"
#include "slm/precision/scaling.hpp"

namespace slm::precision {

inline constexpr int amax_history_length = 16;
inline constexpr int delayed_scaling_margin = 2;  // scale_for's margin: 2^2 of headroom

// The amax a delayed scale is taken from: the largest of values[0, valid); NaN if one is NaN.
inline float history_amax(const float* values, int valid) {
    float result = 0.0f;
    for (int i = 0; i < valid; ++i) {
        if (std::isnan(values[i])) return std::numeric_limits<float>::quiet_NaN();
        result = std::max(result, values[i]);
    }
    return result;
}

// The clock of one operand's history: how many casts it has seen, hence the slot this call's
// amax goes to and how many recorded amaxes its scale is taken from (0: none yet, current
// scaling). Shared by the CPU's AmaxHistory and the GPU linear layer, whose amaxes live on the
// device (cuda/fp8_linear.cuh).
struct HistoryClock {
    int64_t calls = 0;

    int slot() const { return static_cast<int>(calls % amax_history_length); }
    int window() const { return static_cast<int>(std::min<int64_t>(calls, amax_history_length)); }
};

// One operand's history of amaxes (one per site and operand in a linear layer).
struct AmaxHistory : HistoryClock {
    std::array<float, amax_history_length> values{};

    // The scale for a tensor of amax `own` (its own, taken during the cast), which is recorded.
    float next_scale(float own, Fp8Format format) {
        const float scale = calls == 0 ? scale_for(own, format)  // no history yet: current scaling
                                       : scale_for(history_amax(values.data(), window()), format,
                                                   delayed_scaling_margin);
        values[static_cast<size_t>(slot())] = own;
        ++calls;
        return scale;
    }
};

}  // namespace slm::precision
