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
# seq 2048). A benchmark the old tree lacks, or that does not fit its memory, prints as such.
# JSON and logs go to $OUT (or build/device/logs). Exit status: 0 when both trees built and ran,
# 1 when a build or a run failed, 2 on bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { echo "usage: breakdown_before_after.sh OLD_SOURCE_TREE"; exit 2; }
old_src="$1"
[ -f "$old_src/CMakeLists.txt" ] || {
  echo "breakdown_before_after.sh: $old_src has no CMakeLists.txt (make it with git archive)"
  exit 2
}
targets='100m/batch:32|500m/batch:32|1b/batch:16|2b/batch:8'
filter="${FILTER:-^train_step/flash/llama_($targets)/seq:2048/}"
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"

build() {  # build SOURCE_DIR BUILD_DIR NAME
  if ! { cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
           > "$logs/$3-configure.log" 2>&1 &&
         cmake --build "$2" -j "$(nproc)" --target train_step_cuda \
           > "$logs/$3-build.log" 2>&1; }; then
    tail -n 20 "$logs/$3-configure.log" "$logs/$3-build.log" 2>/dev/null
    echo "breakdown_before_after.sh: building $3 ($1) FAILED"
    exit 1
  fi
}

build "$old_src" "$(realpath -m build/before-after/old-build)" before
build . build/device after

status=0
for tree in before after; do
  binary=build/device/benchmarks/train_step_cuda
  [ "$tree" = before ] && binary=build/before-after/old-build/benchmarks/train_step_cuda
  "$binary" --benchmark_format=json --benchmark_out="$logs/$tree.json" \
    --benchmark_filter="$filter" > "$logs/$tree.log" 2>&1 || {
    tail -n 10 "$logs/$tree.log"
    echo "breakdown_before_after.sh: the $tree tree's train_step_cuda FAILED (log: $logs/$tree.log)"
    status=1
  }
done

nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null
for tree in before after; do
  echo "== $tree ($( [ "$tree" = before ] && echo "$old_src" || echo "this tree" ))"
  python3 tools/device/summarize_bench.py "$logs/$tree.json"
done
exit "$status"
