#!/usr/bin/env bash
# FP8 (#31) on the GPU in one call: the GPU tests of the FP8 pieces (cast, GEMM, the linear
# layers against the CPU's, a small model trained in FP8 against bf16), then one linear layer in
# FP8 beside bf16 and each of its casts and GEMMs alone (benchmarks/fp8_linear_cuda, the
# PART_SHAPES presets' projections, default llama_100m_mb32|llama_1b_mb16), then the training step
# in FP8 beside bf16 at the issue's points (benchmarks/train_step_cuda: "flash" and "flash_fp8",
# seq 2048), then a short train_llama --precision fp8 run on real text for its per-layer cast
# report. Last, one table: preset, micro-batch, bf16 and fp8 tokens/s, the ratio, the matmul
# milliseconds of each, their peak memory and FP8's memory estimate.
#
#   tools/device/fp8_check.sh                  # build in build/device, logs and JSON under $OUT
#   NO_BUILD=1 tools/device/fp8_check.sh       # the targets are already built there
#   PRESETS="llama_1b" tools/device/fp8_check.sh   # only these presets' points
#   SKIP_RUN=1 tools/device/fp8_check.sh       # no train_llama build or run
#
# Carry build/deps and data/kjv. Exit status: 0 when the build, the tests and the runs passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=build/device
logs="${OUT:-$build/logs}"
mkdir -p "$logs"
presets="${PRESETS:-llama_100m llama_500m llama_1b llama_2b}"
run_target=train_llama
[ -n "${SKIP_RUN:-}" ] && run_target=""
if [ -z "${NO_BUILD:-}" ]; then
  if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a &&
         cmake --build "$build" -j "$(nproc)" --target slm_cuda_tests train_step_cuda fp8_linear_cuda $run_target; } \
       > "$logs/fp8-build.log" 2>&1; then
    grep -E "error" -A3 "$logs/fp8-build.log" | head -n 40
    echo "fp8_check.sh: build FAILED (log: $logs/fp8-build.log)"
    exit 1
  fi
fi
status=0
"$build/tests/slm_cuda_tests" -tc="*fp8*" > "$logs/fp8-tests.log" 2>&1 || status=1
grep -E "ERROR|is NOT|values: |MESSAGE|held-out|test cases|assertions" "$logs/fp8-tests.log" | head -n 40

# Where the FP8 layer's time goes: the layer beside bf16, and each cast and GEMM alone.
shapes="${PART_SHAPES:-llama_100m_mb32|llama_1b_mb16}"
"$build/benchmarks/fp8_linear_cuda" --benchmark_format=json --benchmark_out="$logs/fp8-parts.json" \
  --benchmark_filter="^fp8_(linear|part)/(${shapes})_" > "$logs/fp8-parts.log" 2>&1 || status=1
python3 - "$logs/fp8-parts.json" <<'EOF'
import json, re, sys
try:
    benchmarks = json.load(open(sys.argv[1]))["benchmarks"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"no fp8_linear_cuda results ({e})")
cols = ["precision:bf16", "precision:fp8", "amax_x", "cast_x", "cast_x_t", "cast_dy_both", "cast_w_both",
        "fp8_fwd", "fp8_dgrad", "fp8_wgrad", "bf16_fwd", "bf16_dgrad", "bf16_wgrad"]
heads = ["bf16", "fp8", "amax", "cast", "x_t", "dy2", "w2", "f8fw", "f8dg", "f8wg", "bffw", "bfdg", "bfwg"]
rows = {}
for b in benchmarks:
    m = re.match(r"fp8_(?:linear|part)/(\w+?)/([\w:]+?)(?:/|$)", b["name"])
    if m and "median_ms" in b:
        rows.setdefault(m.group(1), {})[m.group(2)] = b["median_ms"]
print(f"{'ms per call':28}", " ".join(f"{h:>6}" for h in heads))
for shape, r in rows.items():
    print(f"{shape:28}", " ".join(f"{r[c]:6.2f}" if c in r else "     -" for c in cols))
EOF

points=""
for p in $presets; do
  case "$p" in
    # Each preset's best bf16 micro-batch on one 80 GB GPU (docs/study); FP8 keeps the same
    # bf16 activations, so it fits the same micro-batches.
    llama_100m) points+="|llama_100m/batch:(32|64)" ;;
    llama_500m) points+="|llama_500m/batch:32" ;;
    llama_1b) points+="|llama_1b/batch:16" ;;
    llama_2b) points+="|llama_2b/batch:8" ;;
    *) echo "fp8_check.sh: PRESETS: '$p' is not a study preset"; exit 2 ;;
  esac
done
"$build/benchmarks/train_step_cuda" --benchmark_format=json --benchmark_out="$logs/fp8-train-step.json" \
  --benchmark_filter="^train_step/flash(_fp8)?/(${points#|})/seq:2048/" > "$logs/fp8-train-step.log" 2>&1 || status=1

rm -rf "$build/fp8-run"
if [ -n "${SKIP_RUN:-}" ]; then
  echo "fp8_check.sh: SKIP_RUN set: no train_llama run"
elif "$build/examples/train_llama" --preset tiny --data data/kjv --out "$build/fp8-run" --precision fp8 --steps 60 \
     --eval-interval 30 --checkpoint-interval 0 --device cuda > "$logs/fp8-run.log" 2>&1; then
  cp "$build/fp8-run/fp8_casts.json" "$logs/" 2>/dev/null
else
  status=1
fi
[ -f "$logs/fp8-run.log" ] &&
  grep -E "validation loss|fp8 casts|^  (x|W|dy) |GEMMs ran|overflow x|error" "$logs/fp8-run.log" | head -n 20

python3 - "$logs/fp8-train-step.json" <<'EOF'
import json, re, sys
try:
    benchmarks = json.load(open(sys.argv[1]))["benchmarks"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"no benchmark results ({e})")
rows = {}
for b in benchmarks:
    m = re.match(r"train_step/(flash|flash_fp8)/(\w+)/batch:(\d+)/seq:2048", b["name"])
    if not m:
        continue
    key = (m.group(2), int(m.group(3)))
    rows.setdefault(key, {})[m.group(1)] = b if "error_message" not in b else {"error": b["error_message"]}
print(f"{'preset':11} {'mb':>3} {'bf16 tok/s':>11} {'fp8 tok/s':>10} {'fp8/bf16':>8} {'mm bf16':>8} {'mm fp8':>7} "
      f"{'GiB bf16':>8} {'GiB fp8':>7} {'est fp8':>7}")
for (preset, mb), r in sorted(rows.items()):
    def get(v, c):
        return r.get(v, {}).get(c)
    bf, f8 = get("flash", "tokens_per_s"), get("flash_fp8", "tokens_per_s")
    ratio = f"{f8 / bf:8.3f}" if bf and f8 else "       -"
    fmt = lambda x, w, p: f"{x:{w}.{p}f}" if x is not None else " " * (w - 1) + "-"
    print(f"{preset:11} {mb:3d} {fmt(bf, 11, 0)} {fmt(f8, 10, 0)} {ratio} {fmt(get('flash', 'matmul_ms'), 8, 1)} "
          f"{fmt(get('flash_fp8', 'matmul_ms'), 7, 1)} {fmt(get('flash', 'memory_GiB'), 8, 2)} "
          f"{fmt(get('flash_fp8', 'memory_GiB'), 7, 2)} {fmt(get('flash_fp8', 'estimate_GiB'), 7, 2)}")
EOF
echo "fp8_check.sh: exit $status"
exit $status
