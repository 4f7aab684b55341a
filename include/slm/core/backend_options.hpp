#pragma once
// What a run asks of its backend beyond the model: the trainer passes these through untouched
// (RunConfig::backend) to a backend that has configure(options, lead); the CPU backend has none
// and ignores them. Today they are the CUDA backend's GEMM algorithm picks (cuda/gemm.cuh,
// cuda/gemm_choices.hpp).
#include <cstdint>
#include <filesystem>
#include <string>

#include "slm/core/error.hpp"

namespace slm {

struct BackendOptions {
    // GPU: cuBLASLt algorithms timed per GEMM shape at its first use, the fastest kept
    // (cuda::Gemm::set_timed_candidates). 1 takes the heuristic's first choice untimed, the same
    // on every run; more can choose differently from run to run (timing noise), and so change
    // the last bits of the results, unless the picks are replayed from a file.
    int64_t gemm_candidates = 1;
    // GPU: GEMM algorithm picks (cuda/gemm_choices.hpp) replayed from this file when it exists
    // (empty: none), and the run's picks written to gemm_choices_write (empty: not kept) with
    // each checkpoint, the replayed ones included.
    std::filesystem::path gemm_choices_read, gemm_choices_write;
    // Picks made on another GPU or cuBLASLt: an error (false), or dropped with a note and timed
    // anew (true: what --resume does with its run directory's file, so a run moved to another
    // machine resumes).
    bool gemm_choices_other_gpu_ok = false;

    void validate() const {
        require(gemm_candidates >= 1 && gemm_candidates <= 16,
                "RunConfig.backend.gemm_candidates must be in [1, 16], got " +
                    std::to_string(gemm_candidates));
    }
};

}  // namespace slm
