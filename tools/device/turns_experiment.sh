#!/usr/bin/env bash
# Where the deterministic backward loses time: the attention tests (tools/device/attention_check.sh
# with TESTS_ONLY), then forward+backward of the default (flash), the deterministic mode
# (flash_deterministic: the warpgroup kernel taking turns), the candidate with turns from key
# tile 0 up (flash_deterministic_tile_0_up) and the old deterministic path
# (flash_deterministic_mma_sync) at head_dim 64, 128 and 256, beside the deterministic kernel
# built with its waits compiled out (-DSLM_FLASH_TURNS_NO_WAIT, in build/nowait; not
# deterministic): the gap between the two is what the waits cost, the rest the grid and walk.
# Prints each one's TFLOP/s over the default's. Carry build/deps; about 3 minutes.
#
# Exit status: attention_check.sh's (1 failed, 124 hung), else 1 when a build or benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
source tools/device/build_tree.bash
build_tree . build/nowait nowait attention_cuda -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_CUDA_FLAGS=-DSLM_FLASH_TURNS_NO_WAIT &
builder=$!
TESTS_ONLY=1 tools/device/attention_check.sh
status=$?
wait "$builder" || exit 1
[ $status -eq 0 ] || exit $status
only='/fwd_bwd/hdim:(64|128|256)/'
build/device/benchmarks/attention_cuda --benchmark_format=json --benchmark_out="$logs/turns.json" \
  --benchmark_filter="^attention/flash(_deterministic|_deterministic_mma_sync|_deterministic_tile_0_up)?$only" \
  > "$logs/turns.log" 2>&1 || { tail -n 20 "$logs/turns.log"; exit 1; }
build/nowait/benchmarks/attention_cuda --benchmark_format=json --benchmark_out="$logs/nowait.json" \
  --benchmark_filter="^attention/flash_deterministic$only" > "$logs/nowait.log" 2>&1 ||
  { tail -n 20 "$logs/nowait.log"; exit 1; }
python3 - "$logs/turns.json" "$logs/nowait.json" <<'PY'
import sys
sys.path.insert(0, "tools/device")
from attention_vs_sdpa import ours_by_shape

turns, nowait = sys.argv[1], sys.argv[2]
columns = [("deterministic", turns, "flash_deterministic"),
           ("no waits", nowait, "flash_deterministic"),
           ("tile_0_up", turns, "flash_deterministic_tile_0_up"),
           ("mma.sync", turns, "flash_deterministic_mma_sync")]
default = ours_by_shape(turns, "flash")
tables = [ours_by_shape(path, name) for _, path, name in columns]
print("fwd+bwd TFLOP/s of the default, and each variant's over it")
print("| head_dim | seq | default | " + " | ".join(c[0] for c in columns) + " |")
for key in sorted(k for k in default if k[2] == "fwd_bwd"):
    cells = [f"{t[key] / default[key]:.3f}" if key in t else "n/a" for t in tables]
    print(f"| {key[0]} | {key[1]} | {default[key]:.1f} | " + " | ".join(cells) + " |")
PY
