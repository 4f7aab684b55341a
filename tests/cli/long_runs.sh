#!/usr/bin/env bash
# train_llama's long-run protections, each on real processes with the tiny preset:
#   the run directory: a fresh run refuses to clobber a run (exit 2) unless --overwrite, a
#     second run into a locked --out exits 1 naming the holder's pid, an unwritable --out is
#     found before the model is built, leftover temp files of a killed save are removed;
#   checkpoints: numbered files with checkpoint.bin linking the newest, the newest K kept, a
#     damaged newest one skipped with a message on resume;
#   resume: another setting is refused naming it, its flag and both values, --allow-change
#     accepts it, a finished run says so (exit 0), --steps extends a run;
#   divergence: a step that leaves the model diverged exits 1 naming the step, saves nothing,
#     and metrics.jsonl stays valid JSON (null for NaN);
#   damaged checkpoint size fields: every program reading it exits 1 naming the file.
# Usage: long_runs.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 2000 || exit 1

train() {  # train OUT [flags...]: the log in $work/last.log, the exit status in $rc
  local out="$1"
  shift
  "$bin/train_llama" --device cpu --data "$work/data" --out "$out" --batch 2 --seq 32 \
    --eval-batches 1 --log-interval 1 --warmup 2 "$@" > "$work/last.log" 2>&1
  rc=$?
}
expect() {  # expect CODE PATTERN WHAT: the last train's status and log
  if [ "$rc" -eq "$1" ] && grep -qE -- "$2" "$work/last.log"; then ok "$3 -> $rc"
  else fail "$3: exit $rc (want $1), no '$2' in: $(tail -n 3 "$work/last.log")"; fi
}

run="$work/run"
train "$run" --steps 6 --checkpoint-interval 2 --keep-checkpoints 2 --checkpoint-when-busy wait
expect 0 "checkpoint .*checkpoint-00000006.bin" "a 6-step run saving every 2 steps"
[ "$(readlink "$run/checkpoint.bin")" = "checkpoint-00000006.bin" ] || fail "checkpoint.bin does not link the newest"
[ ! -e "$run/checkpoint-00000002.bin" ] && [ -e "$run/checkpoint-00000004.bin" ] ||
  fail "--keep-checkpoints 2 did not keep exactly steps 4 and 6: $(ls "$run")"
grep -q 'tok/s' "$work/last.log" && grep -qE 'validation loss [0-9.]+ \([0-9.]+ s\)' "$work/last.log" ||
  fail "evaluations do not report their own duration"

train "$run" --steps 6
expect 2 "holds a run .*--resume.*--overwrite" "a fresh run into a run's --out"
train "$run" --steps 6 --resume --overwrite
expect 2 "give one of them" "--resume with --overwrite"
train "$run" --steps 6 --resume
expect 0 "is finished: it is at step 6 of --steps 6" "resuming a finished run"
grep -q "validation loss: nan" "$work/last.log" && fail "a finished run printed a nan loss"
train "$run" --steps 6 --resume --seed 7 --seq 16
expect 1 "seed \(--seed\): 1234 in the checkpoint, 7 now" "a resume with another seed"
grep -q "seq (--seq): 32 in the checkpoint, 16 now" "$work/last.log" || fail "the seq change is not named"
grep -q "allow-change seq,seed" "$work/last.log" || fail "the refusal names no --allow-change"
train "$run" --steps 6 --resume --allow-change nonsense
expect 2 "'nonsense' is not a run setting" "--allow-change of an unknown setting"

# A step that diverges (lr 1e9, accepted by --allow-change) stops before saving.
train "$run" --steps 7 --resume --lr 1e9 --allow-change lr,min_lr --eval-interval 0
expect 1 "step 7: .*diverged, so it is not saved" "a diverging last step"
[ "$(readlink "$run/checkpoint.bin")" = "checkpoint-00000006.bin" ] && [ ! -e "$run/checkpoint-00000007.bin" ] ||
  fail "the diverged step changed the checkpoints: $(ls "$run")"
python3 -c '
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    json.loads(line)
' "$run/metrics.jsonl" && ok "metrics.jsonl is valid JSON after a NaN" || fail "metrics.jsonl is not valid JSON"
grep -q '"val_loss":null' "$run/metrics.jsonl" || fail "the NaN validation loss is not null in metrics.jsonl"

# --steps extends a run; the newest damaged checkpoint is skipped with a message.
train "$run" --steps 8 --resume --checkpoint-interval 1 --eval-interval 0 --checkpoint-when-busy wait
expect 0 "checkpoint .*checkpoint-00000008.bin" "--steps 8 extends a 6-step run"
printf 'xx' | dd of="$run/checkpoint-00000008.bin" bs=1 seek=4000 conv=notrunc 2>/dev/null
touch "$run/checkpoint-00000009.bin.tmp.99999"
train "$run" --steps 9 --resume --eval-interval 0
expect 0 "fails its checksum.*trying the checkpoint before it" "a damaged newest checkpoint"
grep -q "resumed from .*checkpoint-00000007.bin at step 7" "$work/last.log" || fail "did not fall back to step 7"
grep -q "removing .*checkpoint-00000009.bin.tmp.99999" "$work/last.log" || fail "the leftover temp file was not named"
[ ! -e "$run/checkpoint-00000009.bin.tmp.99999" ] || fail "the leftover temp file is still there"

# Damaged size fields: every reader exits 1 naming the file, never aborts.
cp "$(readlink -f "$run/checkpoint.bin")" "$work/flipped.bin"
text=$(od -An -tu8 -j16 -N8 "$work/flipped.bin" | tr -d ' ')
settings=$(od -An -tu8 -j$((24 + text)) -N8 "$work/flipped.bin" | tr -d ' ')
printf '\x40' | dd of="$work/flipped.bin" bs=1 seek=$((24 + text + 8 + settings + 40 + 4)) conv=notrunc 2>/dev/null
for program in "sample --checkpoint $work/flipped.bin --tokenizer $work/data/tokenizer.model" \
               "export_hf --checkpoint $work/flipped.bin --out $work/hf" \
               "checkpoint_diff --a $work/flipped.bin --b $run/checkpoint.bin"; do
  out=$($bin/$program 2>&1)
  status=$?
  if [ "$status" -eq 1 ] && grep -q "flipped.bin.*corrupted" <<<"$out"; then ok "${program%% *} on a flipped size field -> 1"
  else fail "${program%% *} on a flipped size field: exit $status: $out"; fi
done

# Saves by time as well as by steps: --checkpoint-minutes 0.0001 (6 ms) saves after every step.
train "$work/timed" --steps 3 --checkpoint-interval 0 --checkpoint-minutes 0.0001 --keep-checkpoints 5 \
  --checkpoint-when-busy wait
expect 0 "checkpoint .*checkpoint-00000001.bin" "a save by time"
[ -e "$work/timed/checkpoint-00000002.bin" ] || fail "no save by time at step 2: $(ls "$work/timed")"

# The default, --checkpoint-when-busy defer: a save due while the previous write is in flight
# is taken after it, never lost; the last step always saves. Which steps defer depends on the
# disk, so this checks what must hold either way.
train "$work/defer" --steps 12 --checkpoint-interval 1 --keep-checkpoints 20 --eval-interval 0
expect 0 "checkpoint .*checkpoint-00000012.bin" "saves every step, deferring past writes in flight"
[ "$(readlink "$work/defer/checkpoint.bin")" = "checkpoint-00000012.bin" ] || fail "defer: checkpoint.bin does not link step 12"
# Each deferral at step s ends in one later save that names s as its due step.
python3 - "$work/defer/metrics.jsonl" <<'PY' || fail "defer: a deferred save was lost"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
saves = [l for l in lines if "checkpoint" in l]
deferred = [l["step"] for l in lines if l.get("checkpoint_deferred")]
late = [l["due_step"] for l in saves if "due_step" in l]
print(f"ok: defer: {len(saves)} saves, {len(deferred)} deferred, late saves due at {late}")
sys.exit(0 if sorted(late) == sorted(deferred) and saves[-1]["step"] == 12 else 1)
PY

# The lock: a second run into a busy --out exits 1 at once, naming the first's pid.
train "$work/busy" --steps 2 --overwrite
( exec 9>"$work/busy/.lock"; flock 9; echo 4242 >&9; sleep 30 ) &
holder=$!
sleep 1
train "$work/busy" --steps 2 --overwrite
expect 1 "in use by process 4242" "a second run into a locked --out"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null

# An unwritable --out is found before the model is built (not as root: root writes anyway).
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$work/readonly" && chmod 555 "$work/readonly"
  train "$work/readonly" --steps 2
  expect 1 "is not writable" "an unwritable --out"
  grep -q "^model " "$work/last.log" && fail "the model was built before the --out check"
else
  echo "skipped: the unwritable --out case (running as root, which may write anywhere)"
fi

[ "$failures" -eq 0 ] && echo "all long-run checks passed" || { echo "$failures failure(s)"; exit 1; }
