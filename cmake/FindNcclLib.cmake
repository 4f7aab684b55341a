# NCCL lives under the CUDA toolkit on the CI and dev machines and in the system paths on the
# GPU machine: look in both, never at one hard-coded path. Defines the imported target slm::nccl
# and SLM_NCCL_FOUND (with SLM_NCCL_NOT_FOUND_MESSAGE when false); the caller decides whether
# that stops it. Included after find_package(CUDAToolkit) by CMakeLists.txt and, installed beside
# slmConfig.cmake, by a consumer's find_package(slm COMPONENTS cuda): the installed slm::cuda
# names slm::nccl, so both look for NCCL the same way.
find_path(SLM_NCCL_INCLUDE_DIR nccl.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include)
find_library(SLM_NCCL_LIBRARY nccl
  HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib /usr/local/cuda/lib64
        /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu)
if(NOT SLM_NCCL_INCLUDE_DIR OR NOT SLM_NCCL_LIBRARY)
  set(SLM_NCCL_FOUND FALSE)
  string(CONCAT SLM_NCCL_NOT_FOUND_MESSAGE "NCCL not found (looked for nccl.h and libnccl under "
                "the CUDA toolkit and the system paths): install NCCL")
  return()
endif()
set(SLM_NCCL_FOUND TRUE)
if(NOT TARGET slm::nccl)
  add_library(slm::nccl INTERFACE IMPORTED)
  target_include_directories(slm::nccl INTERFACE ${SLM_NCCL_INCLUDE_DIR})
  target_link_libraries(slm::nccl INTERFACE ${SLM_NCCL_LIBRARY})
  message(STATUS "slm: NCCL ${SLM_NCCL_LIBRARY}")
endif()
