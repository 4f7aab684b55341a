#!/usr/bin/env bash
# The attention candidates beside what they would replace, in one call: the attention GPU tests
# (tools/device/attention_check.sh with TESTS_ONLY; every mode, the candidates included), then,
# whether or not a test failed (the table says which kernel to trust; the tests' summary is
# printed first), attention_cuda and tools/sdpa_bench.py on the same shapes, and:
#   - the default (flash) against FA2 and cuDNN, forward and forward+backward;
#   - the TMA forward (flash_tma: forward by flash_forward_tma.cuh, the default's backward)
#     and the same with ping-pong (flash_tma_pingpong) against the same, and their forward over
#     the default's;
#   - the deterministic mode (turns from the diagonal down) and the candidate scheme
#     (flash_deterministic_tile_0_up), forward+backward over the default's.
# Carry build/deps; about 6 minutes.
#
#   tools/device/candidates_check.sh        # logs and JSON under $OUT (or build/device/logs)
#
# Environment: HEAD_DIMS (sdpa_bench's --head-dims, every head_dim by default).
# Exit status: attention_check.sh's (1 failed, 124 hung) if the tests failed, else 1 when a
# benchmark failed, else 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
TESTS_ONLY=1 tools/device/attention_check.sh
tests=$?
bench=build/device/benchmarks/attention_cuda
[ -x "$bench" ] || exit 1
# After a hang only the kernels that have passed before are timed (a hang would eat the call).
filter='^attention/flash(_tma|_tma_pingpong|_deterministic|_deterministic_tile_0_up)?/(fwd|fwd_bwd)/'
[ $tests -eq 124 ] && filter='^attention/flash(_deterministic)?/(fwd|fwd_bwd)/'
timeout 300 "$bench" --benchmark_filter="$filter" --benchmark_format=json --benchmark_out="$logs/candidates.json" > "$logs/candidates.log" 2>&1 ||
  { tail -n 20 "$logs/candidates.log"; exit 1; }
PYTHONUNBUFFERED=1 python3 tools/sdpa_bench.py --out "$logs/sdpa.json" \
  ${HEAD_DIMS:+--head-dims "$HEAD_DIMS"} > "$logs/sdpa.log" 2>&1 ||
  { tail -n 20 "$logs/sdpa.log"; exit 1; }
for name in flash flash_tma flash_tma_pingpong; do
  echo "## $name"
  python3 tools/device/attention_vs_sdpa.py "$logs/candidates.json" "$logs/sdpa.json" --name "$name"
done
python3 - "$logs/candidates.json" <<'PY'
import sys
sys.path.insert(0, "tools/device")
from attention_vs_sdpa import ours_by_shape

path = sys.argv[1]
default = ours_by_shape(path, "flash")
columns = [("tma fwd", "flash_tma", "fwd"), ("tma fwd+bwd", "flash_tma", "fwd_bwd"),
           ("ping-pong fwd", "flash_tma_pingpong", "fwd"),
           ("deterministic", "flash_deterministic", "fwd_bwd"),
           ("tile_0_up", "flash_deterministic_tile_0_up", "fwd_bwd")]
tables = {name: ours_by_shape(path, name) for _, name, _ in columns}
print("each candidate's TFLOP/s over the default's (same pass)")
print("| head_dim | seq | " + " | ".join(c[0] for c in columns) + " |")
for hd, seq in sorted({(k[0], k[1]) for k in default}):
    cells = []
    for _, name, p in columns:
        mine, base = tables[name].get((hd, seq, p)), default.get((hd, seq, p))
        cells.append(f"{mine / base:.3f}" if mine and base else "n/a")
    print(f"| {hd} | {seq} | " + " | ".join(cells) + " |")
PY
[ $tests -eq 0 ] || { echo "candidates_check.sh: the attention tests FAILED or hung (status $tests)"; exit $tests; }
