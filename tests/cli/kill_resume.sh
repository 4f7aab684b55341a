#!/usr/bin/env bash
# Fault injection with real processes: train_llama saving in the background every step is
# killed (kill -9) 20 times at random moments, 10 of them while a checkpoint is being written
# (its temp file exists). After each kill the run is resumed to the end: the newest checkpoint
# that verifies must load, no temp file may survive the resumed run's start, and the final
# checkpoint must be byte for byte the uninterrupted run's (compared by the XXH3 sum that closes
# the file). Then a full disk during a save (a small tmpfs, where this process may mount one;
# else a skip that says why): exit 1, and the previous checkpoint still loads.
# Usage: kill_resume.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
cleanup() { mountpoint -q "$work/full" 2>/dev/null && umount "$work/full"; rm -rf "$work"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 2000 || exit 1

steps=10
args=(--device cpu --data "$work/data" --batch 2 --seq 32 --eval-batches 1 --eval-interval 0
      --log-interval 1 --warmup 2 --steps "$steps" --checkpoint-interval 1 --keep-checkpoints 2
      --checkpoint-when-busy wait)
sum_of() { tail -c 8 "$1" | od -An -tx8 | tr -d ' '; }

start=$(date +%s%N)
"$bin/train_llama" "${args[@]}" --out "$work/whole" > "$work/whole.log" 2>&1 ||
  { tail -5 "$work/whole.log"; echo "FAIL: the uninterrupted run"; exit 1; }
whole_ms=$((($(date +%s%N) - start) / 1000000))
want=$(sum_of "$work/whole/checkpoint.bin")
echo "uninterrupted: step $steps in $whole_ms ms, XXH3 $want"

during=0
for k in $(seq 1 20); do
  out="$work/run$k"
  "$bin/train_llama" "${args[@]}" --out "$out" > "$work/run$k.log" 2>&1 &
  pid=$!
  how="at random"
  if [ $((k % 2)) -eq 1 ]; then  # while the write of a random step is in flight
    target=$(printf "checkpoint-%08d.bin.tmp.*" $((RANDOM % (steps - 2) + 2)))
    how="during a write"
    for _ in $(seq 1 6000); do
      compgen -G "$out/$target" > /dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.005
    done
    compgen -G "$out/$target" > /dev/null && during=$((during + 1)) || how="late (no write caught)"
    how="$how of ${target%%.bin*}"
  else  # anywhere in the run
    ms=$((RANDOM % whole_ms))
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    how="after $ms ms"
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  temps=$(compgen -G "$out/*.tmp.*" | wc -l)
  if ! compgen -G "$out/checkpoint-*.bin" > /dev/null; then
    # Killed before its first checkpoint: nothing to resume; a fresh start must still work.
    "$bin/train_llama" "${args[@]}" --out "$out" --overwrite > "$work/resume$k.log" 2>&1
  else
    "$bin/train_llama" "${args[@]}" --out "$out" --resume > "$work/resume$k.log" 2>&1
  fi
  status=$?
  from=$(grep -o "resumed from .* at step [0-9]*" "$work/resume$k.log" | sed 's/.*at step //')
  left=$(compgen -G "$out/*.tmp.*" | wc -l)
  got=$( [ -e "$out/checkpoint.bin" ] && sum_of "$out/checkpoint.bin")
  if [ "$status" -eq 0 ] && [ "$left" -eq 0 ] && [ "$got" = "$want" ]; then
    echo "ok: kill $k ($how; $temps temp file(s) left by it): resumed from step ${from:-0}, final bytes equal"
  else
    fail "kill $k ($how): resume exit $status, $left temp file(s) after it, final XXH3 '$got' (want $want): $(tail -n 2 "$work/resume$k.log")"
  fi
done
[ "$during" -ge 10 ] && echo "ok: $during of the 20 kills hit a write in flight" ||
  fail "only $during kills hit a write in flight (want 10)"

# A full disk during a save: a 130 MB tmpfs holds two 60 MB checkpoints of tiny, not a third.
mkdir -p "$work/full"
if mount -t tmpfs -o size=130m tmpfs "$work/full" 2>/dev/null; then
  "$bin/train_llama" "${args[@]}" --out "$work/full/run" --keep-checkpoints 3 > "$work/full.log" 2>&1
  status=$?
  newest=$(readlink "$work/full/run/checkpoint.bin")
  if [ "$status" -eq 1 ] && grep -qE "No space left|failed" "$work/full.log" && [ -n "$newest" ] &&
     "$bin/checkpoint_diff" --a "$work/full/run/checkpoint.bin" --b "$work/full/run/checkpoint.bin" > /dev/null 2>&1; then
    echo "ok: a full disk during a save: exit 1 ($(grep -m1 -oE '[^:]*No space left on device' "$work/full.log")), $newest still loads"
  else
    fail "a full disk: exit $status, newest '$newest': $(tail -n 2 "$work/full.log")"
  fi
  umount "$work/full"
else
  echo "skipped: the full-disk case (this process may not mount a tmpfs: not root, or no CAP_SYS_ADMIN in this container)"
fi

[ "$failures" -eq 0 ] && echo "all kill and full-disk checks passed" || { echo "$failures failure(s)"; exit 1; }
