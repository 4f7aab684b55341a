#pragma once
// Every CUDA runtime and cuBLASLt call in slm goes through SLM_CUDA_CHECK / SLM_CUBLAS_CHECK. A
// failure throws slm::Error naming the call (its source text), where it was made, what the
// library said, and what to try. Kernel launches are followed by SLM_CUDA_CHECK_LAUNCH: launch
// configuration errors surface there, errors while a kernel runs at the next synchronisation.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "slm/core/error.hpp"

namespace slm::cuda::detail {

inline const char* cuda_hint(cudaError_t e) {
    switch (e) {
        case cudaErrorMemoryAllocation:
            return "out of GPU memory: lower the micro-batch or the sequence length, or shard the "
                   "model state with a Zero<k> policy";
        case cudaErrorNoDevice:
        case cudaErrorInsufficientDriver:
        case cudaErrorInitializationError:
            return "no usable GPU: check nvidia-smi, the driver version and CUDA_VISIBLE_DEVICES";
        case cudaErrorInvalidDevice:
            return "the device index is not one of the visible GPUs (CUDA_VISIBLE_DEVICES)";
        case cudaErrorNoKernelImageForDevice:
        case cudaErrorUnsupportedPtxVersion:
            return "the binary has no code for this GPU: configure with "
                   "-DCMAKE_CUDA_ARCHITECTURES matching it (90a for H100/H200)";
        case cudaErrorIllegalAddress:
        case cudaErrorLaunchFailure:
        case cudaErrorMisalignedAddress:
            return "a kernel accessed memory it does not own; the CUDA context is now unusable. "
                   "Rerun under compute-sanitizer to find the kernel";
        case cudaErrorInvalidConfiguration:
            return "bad launch configuration: grid or block too large, or too much shared memory";
        case cudaErrorInvalidValue:
            return "an argument is invalid: a null or foreign pointer, a wrong size or direction";
        case cudaErrorLaunchTimeout:
            return "a kernel ran too long (display watchdog): use a GPU without a display";
        default:
            return "see the CUDA runtime API documentation for this error code";
    }
}

inline const char* cublas_hint(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "cuBLASLt could not start: is a GPU visible, and is libcublasLt the toolkit's?";
        case CUBLAS_STATUS_ALLOC_FAILED:
            return "out of GPU memory inside cuBLASLt: lower the micro-batch or sequence length";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "invalid GEMM description: a leading dimension smaller than the rows, a "
                   "misaligned pointer, or a workspace too small for the chosen algorithm";
        case CUBLAS_STATUS_ARCH_MISMATCH:
            return "this GPU lacks a feature the operation needs (bf16 needs sm_80 or newer)";
        case CUBLAS_STATUS_NOT_SUPPORTED:
            return "no cuBLASLt algorithm for this combination of types, shapes and alignments";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "the GEMM kernel failed to run; an earlier kernel may have corrupted memory "
                   "(rerun under compute-sanitizer)";
        default:
            return "see the cuBLASLt documentation for this status";
    }
}

[[noreturn]] inline void throw_cuda(cudaError_t e, const std::string& call, const char* file,
                                    int line) {
    throw Error(std::string("CUDA call failed: ") + call + " returned " + cudaGetErrorName(e) +
                " (" + cudaGetErrorString(e) + ") at " + file + ":" + std::to_string(line) +
                "; hint: " + cuda_hint(e));
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
    if (e != cudaSuccess) throw_cuda(e, call, file, line);
}

inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    throw Error(std::string("cuBLASLt call failed: ") + call + " returned " +
                cublasLtGetStatusName(s) + " (" + cublasLtGetStatusString(s) + ") at " + file +
                ":" + std::to_string(line) + "; hint: " + cublas_hint(s));
}

}  // namespace slm::cuda::detail

// A macro so the message carries the call's source text, file and line.
#define SLM_CUDA_CHECK(call) ::slm::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
#define SLM_CUBLAS_CHECK(call) ::slm::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
// After `kernel<<<...>>>(...)`: kernel_name is a string literal naming the kernel.
#define SLM_CUDA_CHECK_LAUNCH(kernel_name)                                                  \
    ::slm::cuda::detail::check_cuda(cudaGetLastError(), "launch of " kernel_name, __FILE__, \
                                    __LINE__)
