#!/usr/bin/env bash
# Ours against the PyTorch peer on this GPU, one preset at a time, in one call: our training step
# (benchmarks/train_step_cuda, Flash, seq 2048) and the peer's (tools/peer_train_step.py:
# transformers LlamaForCausalLM with SDPA and with torch.compile) at the same preset and
# micro-batch, then one side-by-side table of tokens/s, MFU and peak memory. Ours up to three
# ways, as the benchmark has them: the default (the heuristic's GEMM algorithms),
# --gemm-candidates 8, and --recompute swiglu (the SwiGLU output recomputed: less memory).
#
#   tools/device/peer_compare.sh llama_100m 32      # preset, micro-batch
#
# Builds train_step_cuda and train_llama (whose --list-names gives the peer our presets) in
# build/device if needed (Ninja, sm_90a). JSON from both sides goes to
# $OUT (or build/device/logs). Exit status: non-zero when either side failed to run.
set -uo pipefail
cd "$(dirname "$0")/../.."
preset="${1:?usage: peer_compare.sh PRESET MICRO_BATCH}"
batch="${2:?usage: peer_compare.sh PRESET MICRO_BATCH}"
export PATH="/usr/local/cuda/bin:$PATH"
build=build/device
logs="${OUT:-$build/logs}"
mkdir -p "$logs"

if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
         > "$logs/configure.log" 2>&1 &&
       cmake --build "$build" -j "$(nproc)" --target train_step_cuda train_llama > "$logs/build.log" 2>&1; }; then
  tail -n 30 "$logs/build.log" "$logs/configure.log" 2>/dev/null
  echo "peer_compare.sh: build FAILED"
  exit 1
fi

ours="$logs/ours_${preset}_${batch}.json"
peer="$logs/peer_${preset}_${batch}.json"
variants='(_tuned_gemm|_recompute_swiglu)?'
"$build/benchmarks/train_step_cuda" --benchmark_format=json --benchmark_out="$ours" \
  --benchmark_filter="^train_step/flash${variants}/${preset}/batch:${batch}/seq:2048/" > /dev/null
ours_status=$?
SLM_TRAIN_LLAMA="$build/examples/train_llama" python3 tools/peer_train_step.py --preset "$preset" --micro-batch "$batch" --seq 2048 \
  --mode both --out "$peer" > "$logs/peer_${preset}_${batch}.log" 2>&1
peer_status=$?
tail -n 4 "$logs/peer_${preset}_${batch}.log"

python3 - "$ours" "$peer" "$preset" "$batch" <<'EOF'
import json
import sys

ours_path, peer_path, preset, batch = sys.argv[1:5]
rows = []
try:
    with open(ours_path) as f:
        for b in json.load(f).get("benchmarks", []):
            # train_step/flash/...: the default (heuristic GEMMs); flash_tuned_gemm: timed picks;
            # flash_recompute_swiglu: the SwiGLU output recomputed in the backward
            name = ("slm (tuned gemm)" if "tuned_gemm" in b["name"] else
                    "slm (recompute)" if "recompute_swiglu" in b["name"] else "slm (flash)")
            if b.get("error_occurred"):
                rows.append((name, None, None, None, b.get("error_message", "error")))
            else:
                rows.append((name, b["tokens_per_s"], b["MFU_pct"], b["memory_GiB"], ""))
except (OSError, ValueError) as e:
    rows.append(("slm (flash)", None, None, None, f"no result: {e}"))
try:
    with open(peer_path) as f:
        for r in json.load(f):
            name = "peer " + r.get("mode", "?")
            if r.get("error"):
                rows.append((name, None, None, None, r["error"]))
            else:
                mfu = r.get("mfu")
                rows.append((name, r.get("tokens_per_s"), mfu * 100 if mfu else None,
                             r.get("peak_allocated_gib"), ""))
except (OSError, ValueError) as e:
    rows.append(("peer", None, None, None, f"no result: {e}"))

print(f"\n{preset}, micro-batch {batch}, seq 2048, one GPU")
print(f"{'run':<18}{'tokens/s':>12}{'MFU %':>8}{'peak GiB':>10}  note")
ours_tps = max((r[1] for r in rows if r[0].startswith("slm") and r[1]), default=None)
for name, tps, mfu, mem, note in rows:
    t = f"{tps:12,.0f}" if tps else f"{'-':>12}"
    m = f"{mfu:8.1f}" if mfu else f"{'-':>8}"
    g = f"{mem:10.2f}" if mem else f"{'-':>10}"
    ratio = f"  ours = {ours_tps / tps:.2f}x" if tps and ours_tps and not name.startswith("slm") else ""
    print(f"{name:<18}{t}{m}{g}  {note}{ratio}")
EOF
[ "$ours_status" -eq 0 ] && [ "$peer_status" -eq 0 ]
