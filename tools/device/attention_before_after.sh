#!/usr/bin/env bash
# Our Flash kernels before and after a change, in one call on one GPU: benchmarks/attention_cuda
# built from an older source tree and from this one (the two builds run side by side), the same
# benchmark filter run by both, then one line per shape: TFLOP/s before, after, and their ratio.
#
#   git archive <old commit> | tar -x -C build/old-src       # on the machine with git
#   tools/device/attention_before_after.sh build/old-src      # on the GPU machine (carry it)
#   FILTER='^attention/flash/bwd/hdim:128/' tools/device/attention_before_after.sh build/old-src
#
# FILTER defaults to Flash's fwd, bwd and fwd_bwd at head_dim 64 and 128. NO_BUILD=1 reuses both
# builds; AFTER_TARGETS='attention_cuda slm_cuda_tests' builds more of this tree in the same go.
# JSON and logs go to $OUT (or build/device/logs). Exit status: 0 when both trees built and ran,
# 1 when a build or a run failed, 2 on bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tools/device/build_tree.bash
require_old_tree "$@"
filter="${FILTER:-^attention/flash/(fwd|bwd|fwd_bwd)/hdim:(64|128)/}"
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"

if [ -z "${NO_BUILD:-}" ]; then
  # Each build gets half the cores, so neither waits for the other.
  export JOBS=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))
  build_tree "$old_src" build/device-old before attention_cuda -DCMAKE_CUDA_ARCHITECTURES=90a &
  old_pid=$!
  build_tree . build/device after "${AFTER_TARGETS:-attention_cuda}" -DCMAKE_CUDA_ARCHITECTURES=90a
  after_status=$?
  wait "$old_pid"
  before_status=$?
  [ $before_status -eq 0 ] && [ $after_status -eq 0 ] || exit 1
fi

status=0
for tree in before after; do
  build=build/device
  [ $tree = before ] && build=build/device-old
  "$build/benchmarks/attention_cuda" --benchmark_filter="$filter" --benchmark_format=json \
    --benchmark_out="$logs/attention_$tree.json" > "$logs/attention_$tree.log" 2>&1 ||
    { tail -n 20 "$logs/attention_$tree.log"; echo "attention_before_after.sh: $tree FAILED"; status=1; }
done
python3 - "$logs/attention_before.json" "$logs/attention_after.json" <<'PY'
import json, sys
def load(path):
    try:
        with open(path) as f:
            return {b["name"].split("/iterations")[0]: b.get("TFLOPs")
                    for b in json.load(f)["benchmarks"] if not b.get("error_occurred")}
    except (OSError, ValueError, KeyError):
        return {}
before, after = load(sys.argv[1]), load(sys.argv[2])
print(f"{'benchmark':48} {'before':>8} {'after':>8} {'after/before':>12}  (TFLOP/s)")
for name in sorted(set(before) | set(after), key=lambda n: (n.split('/')[2], n)):
    b, a = before.get(name), after.get(name)
    ratio = f"{a / b:12.3f}" if a and b else f"{'-':>12}"
    fmt = lambda v: f"{v:8.1f}" if v else f"{'-':>8}"
    print(f"{name:48} {fmt(b)} {fmt(a)} {ratio}")
PY
exit $status
