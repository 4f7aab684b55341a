#pragma once
// NCCL result codes as slm::Error: the call, the rank and GPU, what NCCL said (its last error
// text for this communicator) and what to check. Kept apart from nccl.cuh so the communicator
// reads as the operations it offers.
#include <nccl.h>

#include <string>

#include "slm/core/error.hpp"

namespace slm::parallel::nccl_detail {

inline const char* hint(ncclResult_t r) {
    switch (r) {
        case ncclUnhandledCudaError:
            return "a CUDA call inside NCCL failed: an earlier kernel may have failed, or the GPU "
                   "is in a bad state (run one rank under compute-sanitizer)";
        case ncclSystemError:
            return "a system call failed inside NCCL: a peer process died, the network between "
                   "nodes failed, or /dev/shm is too small (containers: --shm-size). Run with "
                   "NCCL_DEBUG=WARN for details";
        case ncclInternalError:
            return "NCCL failed internally; run with NCCL_DEBUG=WARN for details";
        case ncclInvalidArgument:
            return "an argument is invalid: a host pointer or a pointer on another GPU, a count "
                   "or root out of range";
        case ncclInvalidUsage:
            return "NCCL was used wrongly: two ranks on one GPU (check LOCAL_RANK and "
                   "CUDA_VISIBLE_DEVICES), or ranks calling different collectives";
        case ncclRemoteError:
            return "a peer rank failed or died: look for its error in the output";
        default:
            return "see the NCCL documentation for this result";
    }
}

// comm may be null (before the communicator exists).
inline std::string describe(ncclResult_t r, const std::string& call, int rank, int device,
                            ncclComm_t comm) {
    std::string text = "NCCL call " + call + " failed on rank " + std::to_string(rank) +
                       " (GPU " + std::to_string(device) + "): " + ncclGetErrorString(r);
    const char* last = comm ? ncclGetLastError(comm) : nullptr;
    if (last && *last) text += " (" + std::string(last) + ")";
    return text + "; hint: " + hint(r);
}

}  // namespace slm::parallel::nccl_detail
