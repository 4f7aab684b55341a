#!/usr/bin/env bash
# Our Flash kernels against PyTorch's SDPA backends (FlashAttention-2 and cuDNN) on the same
# shapes in the same call: benchmarks/attention_cuda (forward and forward+backward) and
# tools/sdpa_bench.py, joined by tools/device/attention_vs_sdpa.py into one table with our
# ratios (and the deterministic mode's forward+backward over the default's). Expects
# attention_cuda built in build/device (tools/device/check.sh or
# `cmake --build build/device --target attention_cuda`).
#
#   tools/device/attention_table.sh            # JSON and logs under $OUT (or build/device/logs)
#
# Exit status: non-zero when a program failed or ours is below FA2 at a shape with seq >= 1024.
set -uo pipefail
cd "$(dirname "$0")/../.."
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
bench=build/device/benchmarks/attention_cuda
[ -x "$bench" ] || { echo "attention_table.sh: $bench is not built"; exit 2; }
"$bench" --benchmark_filter='^attention/flash(_deterministic)?/(fwd|fwd_bwd)/' --benchmark_format=json \
  --benchmark_out="$logs/attention_ours.json" > "$logs/attention_ours.log" 2>&1 ||
  { tail -n 20 "$logs/attention_ours.log"; echo "attention_table.sh: attention_cuda FAILED"; exit 1; }
PYTHONUNBUFFERED=1 python3 tools/sdpa_bench.py --out "$logs/attention_sdpa.json" \
  > "$logs/attention_sdpa.log" 2>&1 ||
  { tail -n 20 "$logs/attention_sdpa.log"; echo "attention_table.sh: sdpa_bench.py FAILED"; exit 1; }
python3 tools/device/attention_vs_sdpa.py "$logs/attention_ours.json" "$logs/attention_sdpa.json"
