#pragma once
// How long data-parallel communication takes, and how much of it a step cannot hide.
//
// Collectives are modelled as rings (what NCCL uses at these sizes): an all-reduce of B bytes
// over W GPUs moves 2·(W−1)/W·B through each GPU's slowest link, a reduce-scatter or all-gather
// (W−1)/W·B. The slowest link is the node's NVLink ring while the job fits in one node and one
// GPU's share of the network beyond it. Bandwidths are the catalog's achieved bus bandwidths.
//
// What each scheme sends per optimizer step (P parameters, fp32 gradients and master weights,
// bf16 working weights — slm's precisions):
//   Ddp     all-reduce of the gradients (4P), in buckets launched during the backward.
//   Zero<1> reduce-scatter of the gradients (4P) during the backward, all-gather of the updated
//   Zero<2> master slices (4P) after the optimizer, before the next forward can start.
//   Zero<3> all-gather of the working weights layer by layer for the forward (2P) and again for
//           the backward (2P), reduce-scatter of the gradients (4P) during the backward.
// Overlap: communication launched during a phase hides behind that phase's compute, except the
// last piece (one bucket or one layer), which has nothing left to hide behind.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "slm/core/error.hpp"
#include "slm/cost/gpu_catalog.hpp"
#include "slm/names.hpp"

namespace slm::cost {

// The parallel policies the cost model prices, in the order of names::parallel_names(), whose
// names they carry (--parallel's). A policy added to names.hpp after these has no communication
// model here until one is written: scheme_by_name says so.
enum class Scheme { single, ddp, zero1, zero2, zero3 };
inline constexpr size_t scheme_count = 5;

inline std::string_view scheme_name(Scheme s) {
    return names::parallel_names().at(static_cast<size_t>(s));
}

inline Scheme scheme_by_name(std::string_view name) {
    const auto known = names::parallel_names();
    for (size_t i = 0; i < known.size(); ++i) {
        if (known[i] != name) continue;
        require(i < scheme_count, "the cost model has no communication model for parallel policy '" +
                                      std::string(name) + "' yet (cost/communication.hpp)");
        return static_cast<Scheme>(i);
    }
    fail("unknown parallel scheme '" + std::string(name) + "'; choose one of: " +
         names::joined(known, ", "));
}

// GB/s through the slowest link of a ring over `gpus` GPUs.
inline double ring_bandwidth_gb_per_s(const GpuSpec& gpu, int gpus) {
    return gpus <= gpu.gpus_per_node ? gpu.node_busbw_gb_per_s : gpu.network_gb_per_s;
}

enum class Collective { all_reduce, reduce_scatter, all_gather };

inline double collective_seconds(Collective c, double bytes, int gpus, const GpuSpec& gpu) {
    if (gpus <= 1 || bytes <= 0) return 0;
    const double bw = ring_bandwidth_gb_per_s(gpu, gpus) * 1e9;
    require(bw > 0, "GPU '" + gpu.name + "' has no link bandwidth in the catalog; set " +
                        (gpus <= gpu.gpus_per_node ? "node_busbw_gb_per_s" : "network_gb_per_s") +
                        " with --catalog");
    const double share = static_cast<double>(gpus - 1) / static_cast<double>(gpus);
    return (c == Collective::all_reduce ? 2 : 1) * share * bytes / bw;
}

// Compute time a step offers for hiding communication.
struct ComputePhases {
    double forward_seconds = 0;
    double backward_seconds = 0;
    int pieces = 1;  // buckets (Ddp) or layers (Zero): the last one cannot be hidden
};

struct CommunicationTime {
    double total_seconds = 0;    // if nothing overlapped
    double exposed_seconds = 0;  // what the step waits for
};

// Communication launched during a phase of `phase_seconds`: all of it but the last piece hides
// unless it takes longer than the phase itself.
inline double exposed_behind(double comm_seconds, double phase_seconds, int pieces) {
    const double last = comm_seconds / std::max(pieces, 1);
    return std::max(last, comm_seconds - phase_seconds);
}

inline CommunicationTime step_communication(Scheme scheme, int64_t parameters, int gpus,
                                            const GpuSpec& gpu, const ComputePhases& phases) {
    if (scheme == Scheme::single || gpus <= 1) return {};
    const double grads = 4.0 * static_cast<double>(parameters);
    const double master = 4.0 * static_cast<double>(parameters);
    const double working = 2.0 * static_cast<double>(parameters);
    auto time = [&](Collective c, double bytes) { return collective_seconds(c, bytes, gpus, gpu); };
    CommunicationTime t;
    switch (scheme) {
        case Scheme::ddp: {
            const double ar = time(Collective::all_reduce, grads);
            t = {ar, exposed_behind(ar, phases.backward_seconds, phases.pieces)};
            break;
        }
        case Scheme::zero1:
        case Scheme::zero2: {
            const double rs = time(Collective::reduce_scatter, grads);
            const double ag = time(Collective::all_gather, master);
            t = {rs + ag, exposed_behind(rs, phases.backward_seconds, phases.pieces) + ag};
            break;
        }
        case Scheme::zero3: {
            const double ag = time(Collective::all_gather, working);
            const double rs = time(Collective::reduce_scatter, grads);
            t = {2 * ag + rs, exposed_behind(ag, phases.forward_seconds, phases.pieces) +
                                  exposed_behind(ag + rs, phases.backward_seconds, phases.pieces)};
            break;
        }
        case Scheme::single: break;
    }
    return t;
}

}  // namespace slm::cost
