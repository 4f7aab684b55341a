# Launch, rendezvous, start-up check and dead-peer tests over real processes (issue #14), and the
# NCCL programs that need more than one GPU. Included from tests/CMakeLists.txt; the CPU unit
# tests (tests/cpu/parallel) and the one-GPU NCCL test (tests/cuda/parallel) join the doctest
# executables there.
find_package(MPI COMPONENTS CXX)
# (No return(): in an included file it would also end the including CMakeLists.txt.)
if(MPI_CXX_FOUND AND MPIEXEC_EXECUTABLE)
  # Root needs --allow-run-as-root; CI has 2 cores, so -np 3 oversubscribes.
  set(SLM_LAUNCH_MPIRUN ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe)

  foreach(program launch_checks kill_rank)
    add_executable(slm_mpi_${program} mpi/${program}.cpp)
    target_link_libraries(slm_mpi_${program} PRIVATE slm::slm MPI::MPI_CXX)
    target_include_directories(slm_mpi_${program} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  endforeach()

  set(name "mpi: launch environment, blobs, and the start-up config check over Mpi and the TCP rendezvous (rank 1 differs in seq)")
  add_test(NAME "${name}" COMMAND ${SLM_LAUNCH_MPIRUN} -np 2 $<TARGET_FILE:slm_mpi_launch_checks>)
  set_tests_properties("${name}" PROPERTIES TIMEOUT 120 FAIL_REGULAR_EXPRESSION "FAILED")

  # kill_rank.sh checks the exit status, the time (< 60 s) and the message itself.
  set(name "mpi: a rank killed by SIGKILL mid-run ends the job non-zero within 60 s, saying so (3 ranks)")
  add_test(NAME "${name}"
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi/kill_rank.sh 3 sigkill
                   $<TARGET_FILE:slm_mpi_kill_rank> ${SLM_LAUNCH_MPIRUN})
  set_tests_properties("${name}" PROPERTIES TIMEOUT 150)
  set(name "mpi: a rank that stops calling collectives ends the job non-zero within 60 s, saying so (2 ranks)")
  add_test(NAME "${name}"
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi/kill_rank.sh 2 hang
                   $<TARGET_FILE:slm_mpi_kill_rank> ${SLM_LAUNCH_MPIRUN})
  set_tests_properties("${name}" PROPERTIES TIMEOUT 150)

  # data/kjv (tools/train_demo.sh makes it) when there; else the script prepares a small corpus.
  if(SLM_BUILD_EXAMPLES)
    set(name "mpi: train_llama --parallel ddp under mpirun and zero3 under --nproc 2 end at the single run's validation loss, bad launches exit non-zero naming the fix")
    add_test(NAME "${name}"
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi/launch_train_llama_env.sh
                     $<TARGET_FILE_DIR:train_llama> ${PROJECT_SOURCE_DIR}/data/kjv ${SLM_LAUNCH_MPIRUN})
    set_tests_properties("${name}" PROPERTIES TIMEOUT 240)
  endif()

  # sweep --parallel: data-parallel points measured on 2 CPU ranks, resumed, under --nproc too.
  if(SLM_BUILD_EXAMPLES)
    set(name "mpi: sweep --parallel ddp,zero3 on 2 CPU ranks (mpirun and --nproc) measures gpus=2 points after their frozen predictions, and resumes")
    add_test(NAME "${name}"
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/sweep_parallel.sh $<TARGET_FILE_DIR:sweep>
                     ${SLM_LAUNCH_MPIRUN})
    set_tests_properties("${name}" PROPERTIES TIMEOUT 120)
  endif()

  # Two GPU processes (needs 2 GPUs: elsewhere each prints "skipped: ..." and ctest skips it).
  if(SLM_HAS_CUDA)
    add_executable(slm_mpi_launch_nccl_two_ranks mpi/launch_nccl_two_ranks.cu)
    target_link_libraries(slm_mpi_launch_nccl_two_ranks PRIVATE slm::cuda MPI::MPI_CXX)
    target_include_directories(slm_mpi_launch_nccl_two_ranks PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    set(name "nccl: start_nccl over MPI and over the TCP rendezvous, collectives on 2 GPUs (float, bf16)")
    add_test(NAME "${name}"
             COMMAND ${SLM_LAUNCH_MPIRUN} -np 2 -x NCCL_NVLS_ENABLE=0
                     $<TARGET_FILE:slm_mpi_launch_nccl_two_ranks> collectives)
    set_tests_properties("${name}" PROPERTIES TIMEOUT 300 SKIP_REGULAR_EXPRESSION "skipped: "
                                              FAIL_REGULAR_EXPRESSION "FAILED")
    foreach(mode sigkill hang)
      set(name "nccl: rank 1 of 2 GPUs ${mode}, rank 0 ends non-zero within 60 s saying so (torchrun-style launch)")
      add_test(NAME "${name}"
               COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi/launch_nccl_dead_peer.sh
                       $<TARGET_FILE:slm_mpi_launch_nccl_two_ranks> ${mode})
      set_tests_properties("${name}" PROPERTIES TIMEOUT 200 SKIP_REGULAR_EXPRESSION "skipped: ")
    endforeach()
  endif()
endif()
