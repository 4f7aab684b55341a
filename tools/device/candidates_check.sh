#!/usr/bin/env bash
# The attention candidates beside what they would replace, in one call: the attention GPU tests
# (tools/device/attention_check.sh with TESTS_ONLY; every mode, the candidates included), then,
# whether or not a test failed (the table says which kernel to trust; the tests' summary is
# printed first), attention_cuda and tools/sdpa_bench.py on the same shapes, and:
#   - the default (flash) against FA2 and cuDNN, forward and forward+backward;
#   - the warpgroup forward (flash_warpgroup_forward: the default's backward) against the same;
#   - the TMA forward wherever it exists (flash_tma) over the warpgroup forward, and the
#     default's forward+backward over the one with the warpgroup forward;
#   - the TMA backward (flash_tma_backward: flash_backward_tma.cuh) over the default's backward,
#     alone and with the forward, and against FA2 and cuDNN; with K and V in registers at
#     width 64 (flash_tma_kv_registers) and with each dQ product overlapped with the next step
#     at width 64 (flash_tma_overlapped_dq) over the TMA backward, and with dQ added by bulk
#     reductions besides K and V in registers (flash_tma_bulk_dq) over flash_tma_kv_registers;
#   - the deterministic mode (turns from the diagonal down) forward+backward over the
#     default's, and the TMA backward taking the same turns (flash_deterministic_tma) over the
#     TMA backward.
# Then (TRAIN_STEP=1, the default; 0 leaves it out) the candidates in the whole training step at
# the four presets' target micro-batches (benchmarks/train_step_cuda, "flash_candidate/..."),
# beside the default, with the per-op breakdown.
# The order is what the decisions need first: tests, our kernels and the ratios between them,
# the training step preset by preset, and last FA2 and cuDNN (sdpa_bench) with the tables
# against them. A stage that would start with less than its time left of CALL_BUDGET seconds
# (560 by default: a call may run 600) is skipped and says so.
# Carry build/deps; with HEAD_DIMS=64,128 about 9 minutes.
#
#   tools/device/candidates_check.sh        # logs and JSON under $OUT (or build/device/logs)
#
# Environment: HEAD_DIMS (sdpa_bench's --head-dims and the head_dims ours are timed at; every
# head_dim by default).
# Exit status: attention_check.sh's (1 failed, 124 hung) if the tests failed, else 1 when a
# benchmark failed, else 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
deadline=$((SECONDS + ${CALL_BUDGET:-560}))
left() { echo $((deadline - SECONDS)); }
train_step="${TRAIN_STEP:-1}"
[ "$train_step" = 1 ] && export EXTRA_TARGETS=train_step_cuda
TESTS_ONLY=1 tools/device/attention_check.sh
tests=$?
status=0
bench=build/device/benchmarks/attention_cuda
[ -x "$bench" ] || exit 1
# After a hang only the kernels that have passed before are timed (a hang would eat the call).
filter='^attention/(flash/(fwd|bwd|fwd_bwd)|flash_(tma|warpgroup_forward)/fwd|flash_tma_(backward|bulk_dq|kv_registers|overlapped_dq)/(bwd|fwd_bwd)|flash_deterministic(_tma)?/fwd_bwd)/'
[ $tests -eq 124 ] && filter='^attention/flash(_deterministic)?/(fwd|fwd_bwd)/'
# Only the head_dims sdpa_bench times, when HEAD_DIMS names them.
[ -n "${HEAD_DIMS:-}" ] && filter="${filter}hdim:(${HEAD_DIMS//,/|})/"
timeout $(( $(left) < 300 ? $(left) : 300 )) "$bench" --benchmark_filter="$filter" \
  --benchmark_format=json --benchmark_out="$logs/candidates.json" > "$logs/candidates.log" 2>&1 ||
  { tail -n 20 "$logs/candidates.log"; echo "candidates_check.sh: attention_cuda FAILED"; exit 1; }
python3 - "$logs/candidates.json" <<'PY'
import sys
sys.path.insert(0, "tools/device")
from attention_vs_sdpa import ours_by_shape

path = sys.argv[1]
# (column, numerator, denominator, pass)
columns = [("tma fwd / warpgroup fwd", "flash_tma", "flash_warpgroup_forward", "fwd"),
           ("default fwd+bwd / warpgroup-forward's", "flash", "flash_warpgroup_forward", "fwd_bwd"),
           ("tma bwd / default bwd", "flash_tma_backward", "flash", "bwd"),
           ("tma bwd's fwd+bwd / default's", "flash_tma_backward", "flash", "fwd_bwd"),
           ("kv registers / tma bwd", "flash_tma_kv_registers", "flash_tma_backward", "bwd"),
           ("bulk dq / kv registers", "flash_tma_bulk_dq", "flash_tma_kv_registers", "bwd"),
           ("overlapped dq / tma bwd", "flash_tma_overlapped_dq", "flash_tma_backward", "bwd"),
           ("deterministic / default", "flash_deterministic", "flash", "fwd_bwd"),
           ("deterministic tma / tma backward", "flash_deterministic_tma", "flash_tma_backward",
            "fwd_bwd")]
tables = {n: ours_by_shape(path, n) for c in columns for n in c[1:3]}
print("TFLOP/s ratios")
print("| head_dim | seq | " + " | ".join(c[0] for c in columns) + " |")
for hd, seq in sorted({(k[0], k[1]) for k in tables["flash"]}):
    cells = []
    for _, top, bottom, p in columns:
        mine, base = tables[top].get((hd, seq, p)), tables[bottom].get((hd, seq, p))
        cells.append(f"{mine / base:.3f}" if mine and base else "n/a")
    print(f"| {hd} | {seq} | " + " | ".join(cells) + " |")
PY
# The candidates in the whole training step, beside the default, one preset at a time (each its
# own JSON, so a preset cut short loses only itself); after a hang, not at all.
if [ "$train_step" = 1 ] && [ $tests -ne 124 ]; then
  parts=()
  for preset in 100m/batch:32 500m/batch:32 1b/batch:16 2b/batch:8; do
    if [ "$(left)" -lt 60 ]; then echo "candidates_check.sh: no time left for llama_$preset"; continue; fi
    part="$logs/train_step_${preset%%/*}.json"
    timeout "$(left)" build/device/benchmarks/train_step_cuda \
      --benchmark_filter="^train_step/(flash|flash_candidate/[a-z_]+)/llama_$preset/seq:2048/" \
      --benchmark_format=json --benchmark_out="$part" >> "$logs/train_step.log" 2>&1 ||
      { tail -n 10 "$logs/train_step.log"; echo "candidates_check.sh: train_step_cuda FAILED at llama_$preset"; status=1; }
    parts+=("$part")
  done
  echo "## the training step (seq 2048)"
  python3 tools/device/summarize_bench.py "${parts[@]}"
  rm -f "${parts[@]}"  # the summary is in the output; a call brings back at most 8 files
fi
# FA2 and cuDNN on the same shapes, and each of ours against them.
if [ "$(left)" -lt 90 ]; then
  echo "candidates_check.sh: no time left for sdpa_bench and the tables against FA2 and cuDNN"
elif PYTHONUNBUFFERED=1 timeout "$(left)" python3 tools/sdpa_bench.py --out "$logs/sdpa.json" \
       ${HEAD_DIMS:+--head-dims "$HEAD_DIMS"} > "$logs/sdpa.log" 2>&1; then
  for name in flash flash_tma_backward flash_tma_kv_registers flash_tma_bulk_dq flash_tma_overlapped_dq; do
    echo "## $name"
    python3 tools/device/attention_vs_sdpa.py "$logs/candidates.json" "$logs/sdpa.json" --name "$name"
  done
else
  tail -n 20 "$logs/sdpa.log"; echo "candidates_check.sh: sdpa_bench FAILED"; status=1
fi
[ $tests -eq 0 ] || { echo "candidates_check.sh: the attention tests FAILED or hung (status $tests)"; exit $tests; }
exit $status
