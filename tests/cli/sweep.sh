#!/usr/bin/env bash
# sweep on the CPU with the tiny preset, end to end: JSON lines for every grid point, a loss
# curve on real shards with its fit, a clean stop at --time-limit (exit 3) that the next run
# resumes without repeating a point, a torn last line tolerated, a damaged line refused by number,
# --precision bf16,fp8 measuring each point twice, and usage errors with exit 2.
# Usage: sweep.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
count() { grep -c "\"kind\":\"$1\"" "$2"; }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 3000 || exit 1

grid=(--device cpu --presets tiny --micro-batches 1,2 --attention flash --seq 32 --steps 1 --warmup 0)
out="$work/sweep.jsonl"

# 1. A time limit too short for the whole grid: a clean stop, exit 3, what ran is kept.
"$bin/sweep" "${grid[@]}" --out "$out" --time-limit 0.001 > "$work/run1.log" 2>&1
status=$?
[ "$status" -eq 3 ] || fail "a sweep stopped by --time-limit exited $status (want 3)"
grep -q "run the same command again to resume" "$work/run1.log" || fail "no resume hint on a timed stop"

# 2. The same command without a limit finishes the grid and the loss curve.
"$bin/sweep" "${grid[@]}" --out "$out" --loss-data "$work/data" --loss-seconds 1 > "$work/run2.log" 2>&1
status=$?
[ "$status" -eq 0 ] || { fail "the resumed sweep exited $status"; cat "$work/run2.log"; }
[ "$(count measured "$out")" -eq 2 ] || fail "want 2 measured lines, got $(count measured "$out")"
[ "$(count loss_curve "$out")" -eq 1 ] || fail "want 1 loss_curve line"
grep -q '"rms_relative_error"' "$out" || fail "the loss curve has no fit"
grep -q '"kind":"best"' "$out" || fail "no best line"
grep -q "sweep complete" "$work/run2.log" || fail "no completion line"

# 3. Again: nothing is measured twice.
"$bin/sweep" "${grid[@]}" --out "$out" --loss-data "$work/data" --loss-seconds 1 > "$work/run3.log" 2>&1
[ "$(count measured "$out")" -eq 2 ] || fail "a complete sweep run again measured points again"
grep -q "2 already in" "$work/run3.log" || fail "the rerun did not report the points it kept"

# 3b. --derive-only measures nothing (a CPU-only build refuses it, saying why).
"$bin/sweep" --derive-only --presets tiny --seq 32 --out "$out" > "$work/derive.log" 2>&1
status=$?
if [ "$status" -eq 0 ]; then
  [ "$(count measured "$out")" -eq 2 ] || fail "--derive-only changed the measured lines"
elif ! grep -q "needs the CUDA build" "$work/derive.log"; then
  fail "--derive-only exited $status: $(tail -n 1 "$work/derive.log")"
fi

# 4. A torn last line (a run killed mid-write) is dropped; a damaged line elsewhere is an error.
cp "$out" "$work/torn.jsonl"
printf '{"kind":"measured","key":"CPU/1/ti' >> "$work/torn.jsonl"
"$bin/sweep" "${grid[@]}" --out "$work/torn.jsonl" > "$work/run4.log" 2>&1 ||
  fail "a torn last line stopped the sweep: $(tail -n 2 "$work/run4.log")"
{ echo "not json"; cat "$out"; } > "$work/bad.jsonl"
"$bin/sweep" "${grid[@]}" --out "$work/bad.jsonl" > "$work/run5.log" 2>&1
status=$?
{ [ "$status" -eq 1 ] && grep -q "bad.jsonl:1 is not a JSON line" "$work/run5.log"; } ||
  fail "a damaged first line: exit $status, $(tail -n 1 "$work/run5.log")"

# 4b. --precision bf16,fp8: each point twice, the fp8 one under its own key; bf16 keys as before.
"$bin/sweep" --device cpu --presets tiny --micro-batches 1 --attention flash --precision bf16,fp8 --seq 32 \
  --steps 1 --warmup 0 --repeats 1 --out "$work/precision.jsonl" > "$work/precision.log" 2>&1 ||
  fail "sweep --precision bf16,fp8 exited non-zero: $(tail -n 2 "$work/precision.log")"
[ "$(count measured "$work/precision.jsonl")" -eq 2 ] || fail "--precision bf16,fp8: want 2 measured lines"
grep -q '"key":"CPU/1/tiny/flash/single/1/32/fp8"' "$work/precision.jsonl" || fail "no fp8 key"
grep -q '"key":"CPU/1/tiny/flash/single/1/32",' "$work/precision.jsonl" || fail "the bf16 key changed"
grep -q '"precision":"fp8"' "$work/precision.jsonl" || fail "no precision field on the fp8 line"
grep -q "tiny flash fp8 mb 1" "$work/precision.log" || fail "the progress line does not name fp8"

# 5. Usage errors.
"$bin/sweep" --presets llama_3b --out "$work/u.jsonl" > "$work/u1.log" 2>&1
[ $? -eq 2 ] && grep -q "unknown preset" "$work/u1.log" || fail "unknown preset is not a usage error"
"$bin/sweep" --micro-batches 4,x --out "$work/u.jsonl" > "$work/u2.log" 2>&1
[ $? -eq 2 ] && grep -q "'x' is not a positive integer" "$work/u2.log" || fail "bad --micro-batches is not a usage error naming it"
"$bin/sweep" --attention fast --out "$work/u.jsonl" > "$work/u3.log" 2>&1
[ $? -eq 2 ] || fail "bad --attention is not a usage error"
"$bin/sweep" --precision fp16 --out "$work/u.jsonl" > "$work/u4.log" 2>&1
[ $? -eq 2 ] && grep -q "'fp16' is not one of bf16, fp8" "$work/u4.log" || fail "bad --precision is not a usage error naming the choices"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "sweep CLI: all checks passed"
