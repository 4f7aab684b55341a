#!/usr/bin/env bash
# Checkpoints on the GPU machine at llama_2b, micro-batch 8, seq 2048 (issue #28):
#   stall   one run of $STEPS (default 30) steps with a save due every 5 (--keep-checkpoints 1,
#           the default --checkpoint-when-busy defer: a save due during a write is taken after
#           it): how long each save blocks training ("training blocked"), how long each
#           background write takes, and the median step time (training time only) over the
#           steps during a background write against the steps with none; its final
#           checkpoint's checksum is kept in runs/uninterrupted.sum
#   resume  the same run again, killed (kill -9) once its first checkpoint is written, resumed
#           to the end: its final checkpoint must equal the stall run's byte for byte (the
#           checksum that closes the file), and the killed save's temp file must be cleaned up
# Both use --attention flash_deterministic (Flash's dQ atomics would change the last bits run to
# run). Disk: a 24.8 GB checkpoint and one being written at a time (--keep-checkpoints 1).
#   tools/device/checkpoint_stall.sh stall      # then, on the same warm machine:
#   tools/device/checkpoint_stall.sh resume
# xxhash.h and CLI11 must be under build/deps (tools/device/deps.sh; carry build/deps).
set -uo pipefail
cd "$(dirname "$0")/../.."
phase="${1:?usage: checkpoint_stall.sh stall|resume}"
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
source tools/device/build_tree.bash
build_tree . build/device stall train_llama -DCMAKE_CUDA_ARCHITECTURES=90a || exit 1
build_tree . build/device stall-prepare prepare_data -DCMAKE_CUDA_ARCHITECTURES=90a || exit 1
bin=build/device/examples

mkdir -p runs
if [ ! -f runs/stall-data/tokens.bin ]; then  # a generated corpus: 2b trains on it as on any
  python3 -c '
import random
r = random.Random(7)
letters = "abcdefghijklmnopqrstuvwxyz"
words = ["".join(r.choice(letters) for _ in range(r.randint(2, 9))) for i in range(5000)]
print("\n".join(" ".join(r.choice(words) for _ in range(40)) for _ in range(30000)))' > runs/stall.txt
  "$bin/prepare_data" --text runs/stall.txt --out runs/stall-data --vocab 2000 > "$logs/prepare.log" 2>&1 ||
    { tail -5 "$logs/prepare.log"; exit 1; }
fi
args=(--preset llama_2b --batch 8 --seq 2048 --data runs/stall-data --steps "${STEPS:-30}" --warmup 5
      --attention flash_deterministic --checkpoint-interval 5 --keep-checkpoints 1
      --checkpoint-minutes 0 --eval-interval 0 --eval-batches 2 --log-interval 1)
sum_of() { tail -c 8 "$1" | od -An -tx8 | tr -d ' '; }  # the XXH3 sum that closes the file
df -h . | tail -1

case "$phase" in
stall)
  rm -rf runs/stall
  "$bin/train_llama" "${args[@]}" --out runs/stall > "$logs/stall.log" 2>&1 || { tail -20 "$logs/stall.log"; exit 1; }
  grep -E "checkpoint|waited|validation loss:" "$logs/stall.log"
  cp runs/stall/metrics.jsonl "$logs/stall-metrics.jsonl"
  sum_of runs/stall/checkpoint.bin > runs/uninterrupted.sum
  echo "uninterrupted final checkpoint: $(readlink runs/stall/checkpoint.bin), XXH3 $(cat runs/uninterrupted.sum)"
  python3 - "$logs/stall-metrics.jsonl" "$logs/stall.log" <<'PY'
import json, re, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = {l["step"]: l for l in lines if "loss" in l}
tokens = 8 * 2048
t = {s: tokens / l["tokens_per_s"] for s, l in steps.items()}  # training seconds of step s
saves = {l["step"]: l["blocked_s"] for l in lines if "checkpoint" in l}
writes = {int(m.group(1)): float(m.group(2)) for m in
          re.finditer(r"step +(\d+) \| checkpoint .* written in the background: .* in ([0-9.]+) s", open(sys.argv[2]).read())}
during = set()
for s, w in writes.items():  # steps that ran while the write of step s was in flight
    start = steps[s]["elapsed_s"]
    for k in steps:
        if k > s and steps[k]["elapsed_s"] - t[k] < start + saves[s] + w:
            during.add(k)
quiet = [t[k] for k in steps if k not in during and k > 1]
busy = [t[k] for k in during]
print("blocked per save (s):", {s: round(b, 2) for s, b in saves.items()})
print("background write (s):", {s: round(w, 1) for s, w in writes.items()})
if quiet and busy:
    a, b = statistics.median(quiet), statistics.median(busy)
    print(f"median step: {a*1e3:.1f} ms without a write ({len(quiet)} steps), {b*1e3:.1f} ms during one "
          f"({len(busy)} steps): {100*(b/a-1):+.1f}%")
PY
  ;;
resume)
  # WANT: the stall run's printed XXH3 ($OUT is new on every device call), else its saved file.
  want="${WANT:-$(cat runs/uninterrupted.sum 2>/dev/null)}"
  [ -n "$want" ] || { echo "run stall first (or give WANT=<its final XXH3>)"; exit 2; }
  rm -rf runs/stall runs/resumed  # the stall run's files: room on the disk
  "$bin/train_llama" "${args[@]}" --out runs/resumed > "$logs/killed.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "written in the background" "$logs/killed.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -9 "$pid"; wait "$pid" 2>/dev/null
  echo "killed after: $(grep -E '^step' "$logs/killed.log" | tail -1)"
  ls runs/resumed
  "$bin/train_llama" "${args[@]}" --out runs/resumed --resume > "$logs/resumed.log" 2>&1 ||
    { tail -20 "$logs/resumed.log"; exit 1; }
  grep -E "removing|resumed from|checkpoint|waited|validation loss:" "$logs/resumed.log"
  got=$(sum_of runs/resumed/checkpoint.bin)
  echo "resumed final checkpoint XXH3 $got, uninterrupted $want: $([ "$got" = "$want" ] && echo IDENTICAL || echo DIFFERENT)"
  ls runs/resumed
  ;;
*) echo "usage: checkpoint_stall.sh stall|resume"; exit 2 ;;
esac
