#pragma once
// Where a sweep runs, as functions that hide the backend types: measuring a point (alone, or on
// the sweep's ranks under a data-parallel policy), running a loss curve, and estimating memory
// with that backend's precision and attention footprints. examples/sweep/device.hpp binds them
// to the CPU or the GPU backend.
#include <filesystem>
#include <functional>
#include <vector>

#include "slm/core/accounting.hpp"
#include "slm/study/loss_curve_run.hpp"
#include "slm/study/measure.hpp"
#include "slm/study/ranks.hpp"

namespace slm::study {

struct Target {
    bool on_gpu = false;
    Device device;
    slm::Precision precision;
    MemoryEstimator estimate;
    std::function<Json(const Point&, const Timing&)> measure;
    // Every rank calls it: p under p.parallel over a communicator made for this point (Mpi on the
    // CPU, Nccl bootstrapped over `ranks` on GPUs); the line on rank 0. Empty in a CPU build
    // without MPI.
    std::function<Json(const Point&, const Timing&, Ranks& ranks)> measure_ranked;
    std::function<Json(const LossRun&, const std::vector<std::filesystem::path>&,
                       const std::filesystem::path&)>
        loss_curve;
};

}  // namespace slm::study
