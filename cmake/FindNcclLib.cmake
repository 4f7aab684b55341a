# NCCL lives under the CUDA toolkit on the CI and dev machines and in the system paths on the
# GPU machine: look in both, never at one hard-coded path. Defines the target slm_nccl.
find_path(SLM_NCCL_INCLUDE_DIR nccl.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include)
find_library(SLM_NCCL_LIBRARY nccl
  HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib /usr/local/cuda/lib64
        /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu)
if(NOT SLM_NCCL_INCLUDE_DIR OR NOT SLM_NCCL_LIBRARY)
  message(FATAL_ERROR "NCCL not found (looked for nccl.h and libnccl under the CUDA toolkit and "
                      "the system paths); install NCCL or configure with -DSLM_ENABLE_CUDA=OFF")
endif()
add_library(slm_nccl INTERFACE)
target_include_directories(slm_nccl INTERFACE ${SLM_NCCL_INCLUDE_DIR})
target_link_libraries(slm_nccl INTERFACE ${SLM_NCCL_LIBRARY})
message(STATUS "slm: NCCL ${SLM_NCCL_LIBRARY}")
