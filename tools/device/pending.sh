#!/usr/bin/env bash
# What session 13 (2026-12-07) wrote and could not run, because no GPU machine started, in one
# device call of about 7 minutes: build the CUDA tests and the programs into build/device, run the
# GPU tests of the new Flash head_dims and of the FP8 cast and GEMM, then the Hugging Face model
# check of issue #32 (tools/device/hf_model_gpu.sh); it also builds train_step_cuda, so that
# NO_BUILD=1 tools/device/fp8_check.sh can follow on the same warm machine. Carry build/deps and data/kjv.
#
#   tools/device/pending.sh            # logs under $OUT (or build/device/logs); summary last
#
# Exit status: 0 when the build, the tests and the model check passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=build/device
logs="${OUT:-$build/logs}"
mkdir -p "$logs"
if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a &&
       cmake --build "$build" -j "$(nproc)" --target slm_cuda_tests train_llama export_hf parity_dump train_step_cuda; } \
     > "$logs/pending-build.log" 2>&1; then
  grep -E "error" -A3 "$logs/pending-build.log" | head -n 40
  echo "pending.sh: build FAILED (log: $logs/pending-build.log)"
  exit 1
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name --format=csv,noheader
"$build/tests/slm_cuda_tests" -tc="*flash*,*fp8*" > "$logs/pending-gpu-tests.log" 2>&1
tests=$?
grep -E "ERROR|is NOT|values: |test cases|assertions" "$logs/pending-gpu-tests.log" | head -n 40
NO_BUILD=1 tools/device/hf_model_gpu.sh
model=$?
echo "pending: GPU tests (flash head_dims, fp8) exit $tests; hf_model_gpu exit $model"
[ "$tests" -eq 0 ] && [ "$model" -eq 0 ]
