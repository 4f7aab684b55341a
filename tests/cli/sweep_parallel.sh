#!/usr/bin/env bash
# sweep --parallel on CPU ranks over MPI, end to end, with the tiny preset: after the single-GPU
# calibration run, `mpirun -np 2 sweep --parallel ddp,zero3` writes a measured line with
# "gpus": 2 for each policy, each paired with a prediction frozen before it ("before/" key, the
# same check_key); a rerun measures nothing again; `sweep --nproc 2` does the same as mpirun;
# rank 0's refusal (no calibration yet) ends every rank with its message; --time-limit stops all
# ranks (exit 3); single at 2 ranks is skipped with a note; a bad policy is a usage error.
# The CPU is not in the GPU catalog, so a --catalog file adds a "CPU" entry for the predictions.
# Usage: sweep_parallel.sh BIN_DIR MPIRUN [MPIRUN FLAGS...]
set -u
bin="$1"
shift
mpirun=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
count() { grep -c "\"kind\":\"$1\"" "$2"; }
export OMP_NUM_THREADS=1

cat > "$work/cpu.json" << 'EOF'
{"CPU": {"match": "no CUDA device is called this", "bf16_tflops": 0.2, "memory_gb": 16,
         "hbm_tb_per_s": 0.02, "node_busbw_gb_per_s": 2, "network_gb_per_s": 1,
         "dollars_per_hour": 0.1}}
EOF
grid=(--device cpu --presets tiny --micro-batches 2 --attention flash --seq 32 --steps 2 --warmup 1
      --catalog "$work/cpu.json" --predict-counts 1,2)
out="$work/sweep.jsonl"

# The measured 2-rank lines of a file, each with its frozen prediction: "key measured predicted".
pairs() {
  grep '"kind":"measured"' "$1" | grep '"gpus":2' | while read -r line; do
    key=$(echo "$line" | grep -o '"key":"[^"]*"' | head -n 1 | cut -d'"' -f4)
    got=$(echo "$line" | grep -o '"tokens_per_s":[0-9.e+-]*' | cut -d: -f2)
    before=$(grep "\"check_key\":\"$key\"" "$1" | grep '"before_measurement":true')
    predicted=$(echo "$before" | grep -o '"tokens_per_s":[0-9.e+-]*' | cut -d: -f2)
    echo "$key ${got:-none} ${predicted:-none}"
  done
}
check_policies() {  # FILE LABEL: both policies measured at 2 ranks, each paired
  local file="$1" label="$2"
  for policy in ddp zero3; do
    local key="CPU/2/tiny/flash/$policy/2/32"
    grep '"kind":"measured"' "$file" | grep -q "\"key\":\"$key\".*\"gpus\":2,.*\"parallel\":\"$policy\"" ||
      fail "$label: no measured line $key with gpus 2 and parallel $policy"
    grep '"kind":"predicted"' "$file" | grep "\"key\":\"before/$key\".*\"check_key\":\"$key\"" |
      grep -q '"before_measurement":true' ||
      fail "$label: no before/ prediction with check_key $key"
    grep '"kind":"measured"' "$file" | grep "\"key\":\"$key\"" | grep -q '"communication":[0-9.e+-]*[1-9]' ||
      fail "$label: $key has no communication time in its profile"
  done
}

# 0. A bad policy is a usage error naming the flag.
"$bin/sweep" "${grid[@]}" --parallel ddp,zero4 --out "$work/u.jsonl" > "$work/u.log" 2>&1
[ $? -eq 2 ] && grep -q "\-\-parallel: 'zero4'" "$work/u.log" || fail "--parallel zero4 is not a usage error naming it"

# 1. Before calibration: rank 0 refuses, saying what to run first, and every rank ends (exit 1).
"${mpirun[@]}" -np 2 "$bin/sweep" "${grid[@]}" --parallel ddp --out "$work/early.jsonl" > "$work/early.log" 2>&1
status=$?
{ [ "$status" -ne 0 ] && grep -q "first run the same sweep on one GPU without --parallel" "$work/early.log"; } ||
  { fail "2 ranks without calibration: exit $status, want non-zero with the fix"; tail -n 5 "$work/early.log"; }
[ -f "$work/early.jsonl" ] && [ "$(count measured "$work/early.jsonl")" -ne 0 ] && fail "measured without a prediction"

# 2. The single-process run: the calibration point.
"$bin/sweep" "${grid[@]}" --out "$out" > "$work/single.log" 2>&1 || { fail "single sweep failed"; cat "$work/single.log"; }
cp "$out" "$work/nproc.jsonl"
cp "$out" "$work/limit.jsonl"

# 3. A time limit already past: all ranks stop before the first point, exit 3, nothing measured.
"${mpirun[@]}" -np 2 "$bin/sweep" "${grid[@]}" --parallel ddp,zero3 --time-limit 0.001 \
  --out "$work/limit.jsonl" > "$work/limit.log" 2>&1
status=$?
[ "$status" -eq 3 ] || { fail "2 ranks stopped by --time-limit exited $status (want 3)"; tail -n 5 "$work/limit.log"; }
[ "$(count measured "$work/limit.jsonl")" -eq 1 ] || fail "a stop at the time limit measured a point"

# 4. mpirun -np 2: both policies measured at gpus 2, each after its frozen prediction.
"${mpirun[@]}" -np 2 "$bin/sweep" "${grid[@]}" --parallel ddp,zero3 --out "$out" > "$work/mpi.log" 2>&1
status=$?
[ "$status" -eq 0 ] || { fail "mpirun -np 2 sweep exited $status"; cat "$work/mpi.log"; }
[ "$(count measured "$out")" -eq 3 ] || fail "want 3 measured lines (1 single + 2 at 2 ranks), got $(count measured "$out")"
check_policies "$out" "mpirun"
grep -q "prediction made before measurement vs measurement" "$work/mpi.log" || fail "no prediction check printed"
echo "mpirun -np 2 (key, measured tokens/s, predicted before):"
pairs "$out" | sed 's/^/  /'

# 5. The same command again measures nothing.
"${mpirun[@]}" -np 2 "$bin/sweep" "${grid[@]}" --parallel ddp,zero3 --out "$out" > "$work/again.log" 2>&1 ||
  fail "the rerun failed: $(tail -n 2 "$work/again.log")"
[ "$(count measured "$out")" -eq 3 ] || fail "the rerun measured points again"
grep -q "2 already in" "$work/again.log" || fail "the rerun did not report the 2 points it kept"
[ "$(grep -c '"key":"before/CPU/2/' "$out")" -eq 2 ] || fail "the rerun froze predictions again"

# 6. single at 2 ranks: a note, nothing measured, exit 0.
"${mpirun[@]}" -np 2 "$bin/sweep" "${grid[@]}" --parallel single --out "$out" > "$work/single2.log" 2>&1 ||
  fail "--parallel single at 2 ranks failed: $(tail -n 2 "$work/single2.log")"
grep -q "skipped at 2 ranks" "$work/single2.log" || fail "no note that single is skipped at 2 ranks"
[ "$(count measured "$out")" -eq 3 ] || fail "--parallel single at 2 ranks measured something"

# 7. --nproc 2 does what mpirun -np 2 did.
"$bin/sweep" "${grid[@]}" --parallel ddp,zero3 --nproc 2 --out "$work/nproc.jsonl" > "$work/nproc.log" 2>&1
status=$?
[ "$status" -eq 0 ] || { fail "sweep --nproc 2 exited $status"; cat "$work/nproc.log"; }
check_policies "$work/nproc.jsonl" "--nproc 2"
echo "--nproc 2:"
pairs "$work/nproc.jsonl" | sed 's/^/  /'

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "sweep --parallel CLI: all checks passed"
