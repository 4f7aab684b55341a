#!/usr/bin/env bash
# The per-op breakdown of the training step before and after a change, measured in one call on
# one GPU: benchmarks/train_step_cuda built from an older source tree and from this one, the same
# benchmark filter run by both, then one line per benchmark (tokens/s, MFU, memory and the ms of
# matmul, attention, loss, norm, SwiGLU, RoPE, optimizer and idle gaps) for each tree.
#
#   git archive <old commit> | tar -x -C build/old-src      # on the machine with git
#   tools/device/breakdown_before_after.sh build/old-src     # on the GPU machine (carry it there)
#   FILTER='^train_step/flash/llama_1b/batch:16/seq:2048/' \
#     tools/device/breakdown_before_after.sh build/old-src
#
# FILTER defaults to the four study presets at the micro-batches of #17's targets (Flash,
# seq 2048). A benchmark that does not fit in memory prints its error; one a tree lacks is absent.
# JSON and logs go to $OUT (or build/device/logs). Exit status: 0 when both trees built and ran,
# 1 when a build or a run failed, 2 on bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tools/device/build_tree.bash
require_old_tree "$@"
targets='100m/batch:32|500m/batch:32|1b/batch:16|2b/batch:8'
filter="${FILTER:-^train_step/flash/llama_($targets)/seq:2048/}"
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"

old_build="$(realpath -m build/before-after/old-build)"
build_tree "$old_src" "$old_build" before train_step_cuda -DCMAKE_CUDA_ARCHITECTURES=90a || exit 1
build_tree . build/device after train_step_cuda -DCMAKE_CUDA_ARCHITECTURES=90a || exit 1

status=0
run() {  # run NAME BUILD_DIR: the filter through that build's train_step_cuda
  "$2/benchmarks/train_step_cuda" --benchmark_format=json --benchmark_out="$logs/$1.json" \
    --benchmark_filter="$filter" > "$logs/$1.log" 2>&1 || {
    tail -n 10 "$logs/$1.log"
    echo "breakdown_before_after.sh: the $1 tree's train_step_cuda FAILED (log: $logs/$1.log)"
    status=1
  }
}
run before "$old_build"
run after build/device

nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null
echo "== before ($old_src)"
python3 tools/device/summarize_bench.py "$logs/before.json"
echo "== after (this tree)"
python3 tools/device/summarize_bench.py "$logs/after.json"
exit "$status"
