#!/usr/bin/env bash
# train_llama under launchers (issue #14): bad launcher variables, --parallel single with more than
# one rank, --nproc under mpirun and CPU ranks without MPI each end non-zero with a message that
# says why and what to do; and the tiny preset trained data-parallel on the CPU — mpirun -np 2
# with --parallel ddp, and --nproc 2 (which runs mpirun itself) with --parallel zero3, each at 2
# sequences per rank — ends at the validation loss of one process at the same global batch of 4.
# Tolerance: the losses equal to the printed 4 decimals up to one unit in the last (two values
# within 1e-5 may round apart), and the metrics.jsonl value within 1e-5 relative. The weights:
# the ranks see the single run's batches (the per-step losses agree), but fp32 sums the gradient
# in another order, and AdamW's normalisation makes a gradient element that nearly cancels
# sensitive to that order. How much is measured here, not assumed: the single run trained again
# with another OpenMP thread count (only its summation order differs) gives the noise floor, and
# ddp and zero3 must be within 4 times it (at least 1e-5). Then ddp ranks write one checkpoint's
# shares at once, and one process resumes from it. On the demo's data/kjv (vocab 4096)
# that floor was 3.4e-5 for the embedding, above the fixed 1e-5 this test used to allow, which
# failed or passed by the machine's core count alone.
# Usage: launch_train_llama_env.sh BIN_DIR DATA_DIR MPIRUN [MPIRUN ARGS...]
#   BIN_DIR holds train_llama and prepare_data; DATA_DIR (data/kjv from tools/train_demo.sh) is
#   used when it has tokens.bin, else a small corpus is prepared here.
set -u
bin="$1"
data="$2"
shift 2
mpirun=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
clean=(env -u OMPI_COMM_WORLD_RANK -u OMPI_COMM_WORLD_SIZE -u OMPI_COMM_WORLD_LOCAL_RANK
       -u SLURM_PROCID -u SLURM_NTASKS -u SLURM_LOCALID -u RANK -u WORLD_SIZE -u LOCAL_RANK
       -u MASTER_ADDR -u MASTER_PORT)
export OMP_NUM_THREADS=1  # two ranks on two cores; one thread each also fixes the sum order
# --nproc finds mpirun on PATH: the one ctest was configured with.
PATH="$(dirname "$(command -v "${mpirun[0]}")"):$PATH"

expect() {  # expect CODE PATTERN COUNT -- command...: COUNT lines must match PATTERN
  local code="$1" pattern="$2" count="$3"
  shift 4
  local out got matches
  out=$("$@" 2>&1)
  got=$?
  matches=$(grep -cE -- "$pattern" <<<"$out")
  local code_ok=0
  if [ "$code" = nonzero ]; then [ "$got" -ne 0 ] && code_ok=1; else [ "$got" -eq "$code" ] && code_ok=1; fi
  if [ "$code_ok" -eq 0 ] || [ "$matches" -lt "$count" ]; then
    fail "exit $got (want $code), $matches line(s) matching '$pattern' (want $count):"
    echo "$out" | head -20
  else
    echo "ok: exit $got, $matches line(s) matching '$pattern'"
  fi
}

if [ -f "$data/tokens.bin" ]; then
  echo "data: $data"
else
  for i in $(seq 1 3000); do
    echo "the $((i % 17)) quick brown foxes jump over $((i % 13)) lazy dogs while $((i % 7)) cats sleep"
  done > "$work/text.txt"
  "$bin/prepare_data" --text "$work/text.txt" --out "$work/data" --vocab 300 > "$work/prepare.log" 2>&1 ||
    { cat "$work/prepare.log"; echo "FAIL: prepare_data"; exit 1; }
  data="$work/data"
  echo "data: $data ($2 has no tokens.bin: a small generated corpus)"
fi
torch=("${clean[@]}" MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 WORLD_SIZE=2)

# Launcher variables that contradict each other.
expect 1 "RANK=2 is not below WORLD_SIZE=2" 1 -- "${torch[@]}" RANK=2 LOCAL_RANK=0 \
  "$bin/train_llama" --data "$work/none"
expect 1 "MASTER_ADDR is not" 1 -- "${clean[@]}" RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 \
  "$bin/train_llama" --data "$work/none"
# Two ranks, but --parallel single (the default): the fix is named.
expect 2 "pass --parallel ddp \(or zero1\|zero2\|zero3\)" 1 -- "${torch[@]}" RANK=1 LOCAL_RANK=1 \
  "$bin/train_llama" --data "$data"
expect 2 "this job has 2 ranks \(--nproc 2\).*pass --parallel ddp" 1 -- "${clean[@]}" \
  "$bin/train_llama" --data "$data" --nproc 2
# CPU ranks talk over MPI: a torchrun-style start is refused, saying how to start them.
expect 1 "CPU backend's ranks talk over MPI.*start the ranks with mpirun -np 2" 1 -- "${torch[@]}" \
  RANK=0 LOCAL_RANK=0 "$bin/train_llama" --data "$data" --device cpu --parallel ddp
# No launcher: a single process, which goes on to the next check (the missing data).
expect 1 "does not exist; run prepare_data" 1 -- "${clean[@]}" "$bin/train_llama" --data "$work/none"
# Under a real mpirun: both ranks say it, and mpirun's own status is non-zero.
expect nonzero "started by mpirun \(OpenMPI\)\), and each would train.*pass --parallel ddp" 2 -- \
  "${clean[@]}" "${mpirun[@]}" -np 2 "$bin/train_llama" --data "$data"
expect nonzero "--nproc starts its own ranks, but this process is already rank [01] of 2 started by mpirun" 2 -- \
  "${clean[@]}" "${mpirun[@]}" -np 2 "$bin/train_llama" --data "$data" --nproc 2 --parallel ddp

# The same global batch of 4 sequences: one process, mpirun + ddp, --nproc + zero3.
common=(--preset tiny --device cpu --data "$data" --seq 32 --steps 3 --warmup 1 --eval-batches 2
        --eval-interval 0 --log-interval 1)
train() {  # train NAME command...: runs it, keeps its output in $work/NAME.log
  local name="$1"
  shift
  local start=$SECONDS
  "$@" --out "$work/$name" > "$work/$name.log" 2>&1
  local status=$?
  echo "$name: exit $status in $((SECONDS - start)) s: $(grep -h "^validation loss:" "$work/$name.log")"
  [ "$status" -eq 0 ] || { fail "$name exited $status"; tail -20 "$work/$name.log"; }
}
train single "${clean[@]}" "$bin/train_llama" "${common[@]}" --batch 4
# The same run with the other summation order: one thread if it had several, else two.
threads=$("${clean[@]}" bash -c 'echo "${OMP_NUM_THREADS:-$(nproc)}"')
other=$([ "$threads" = 1 ] && echo 2 || echo 1)
train single_order "${clean[@]}" OMP_NUM_THREADS="$other" "$bin/train_llama" "${common[@]}" --batch 4
floor=$("$bin/checkpoint_diff" --a "$work/single_order/checkpoint.bin" --b "$work/single/checkpoint.bin" \
          --tolerance 1 | sed -n 's/.*largest relative error of the weights \([0-9.e+-]*\).*/\1/p')
[ -n "$floor" ] || fail "no noise floor from checkpoint_diff"
tolerance=$(awk -v f="${floor:-0}" 'BEGIN { t = 4 * f; if (t < 1e-5) t = 1e-5; printf "%.3e", t }')
echo "noise floor of fp32 summation order (OMP threads $threads vs $other): $floor; tolerance $tolerance"
train ddp "${clean[@]}" "${mpirun[@]}" -np 2 "$bin/train_llama" "${common[@]}" --batch 2 --parallel ddp
train zero3 "${clean[@]}" "$bin/train_llama" "${common[@]}" --batch 2 --parallel zero3 --nproc 2

printed() { sed -n 's/^validation loss: .* -> \([0-9.]*\) after 3 steps$/\1/p' "$work/$1.log"; }
logged() { sed -n 's/^{"step":3,"val_loss":\([0-9.]*\)[,}].*$/\1/p' "$work/$1/metrics.jsonl" 2>/dev/null; }
for run in ddp zero3; do
  a=$(printed single) b=$(printed "$run") c=$(logged single) d=$(logged "$run")
  if [ -z "$a" ] || [ -z "$b" ] || [ -z "$c" ] || [ -z "$d" ]; then
    fail "$run: no final validation loss (printed '$b' vs '$a', metrics.jsonl '$d' vs '$c')"
  elif awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" \
         'BEGIN { p = a - b; q = (c - d) / c; exit !((p < 0 ? -p : p) <= 1.00001e-4 && (q < 0 ? -q : q) <= 1e-5) }'; then
    echo "ok: $run ends at validation loss $b (metrics.jsonl $d), single $a ($c)"
  else
    fail "$run ends at validation loss $b (metrics.jsonl $d), single $a ($c)"
  fi
  # Rank 0 alone prints the run's lines and writes the checkpoint.
  n=$(grep -c "^validation loss:" "$work/$run.log")
  m=$(grep -c "^model tiny:" "$work/$run.log")
  [ "$n" -eq 1 ] && [ "$m" -eq 1 ] || fail "$run: $n 'validation loss:' and $m 'model tiny:' lines (want 1 each: rank 0 alone prints)"
  grep -q "x 2 rank(s) = 128 tokens/step (global batch 4)" "$work/$run.log" || fail "$run: no 'global batch 4' line"
  [ -f "$work/$run/checkpoint.bin" ] || fail "$run wrote no checkpoint"
  # The weights themselves: the same as the one-process run's up to the order of the sums across
  # ranks (fp32), tensor by tensor (checkpoint_diff exits 0 only when every tensor is within).
  expect 0 "largest relative error of the weights .*PASS" 1 -- \
    "$bin/checkpoint_diff" --a "$work/$run/checkpoint.bin" --b "$work/single/checkpoint.bin" \
    --tolerance "$tolerance"
done
# Data-parallel ranks write their shares of each checkpoint into one file at once (segments of
# 50 KiB, so both ranks have many): the same weights as the ddp run above, and a run of one
# process resumes from it (another world size) and trains on.
train ddp_shares "${clean[@]}" "${mpirun[@]}" -np 2 "$bin/train_llama" "${common[@]}" --batch 2 --parallel ddp \
  --checkpoint-interval 1 --checkpoint-segment-mib 0.05
grep -q "written in the background by 2 ranks" "$work/ddp_shares.log" && echo "ok: the ranks wrote shares" ||
  fail "ddp_shares: no checkpoint written by 2 ranks: $(grep checkpoint "$work/ddp_shares.log" | tail -3)"
ls "$work/ddp_shares" | grep -q "tmp" && fail "ddp_shares: a temp file is left: $(ls "$work/ddp_shares")"
expect 0 "largest relative error of the weights 0.000e\+00 .*PASS" 1 -- \
  "$bin/checkpoint_diff" --a "$work/ddp_shares/checkpoint.bin" --b "$work/ddp/checkpoint.bin" --tolerance 1e-30
expect 0 "resumed from .*checkpoint-00000003.bin at step 3" 1 -- "${clean[@]}" "$bin/train_llama" --preset tiny \
  --device cpu --data "$data" --seq 32 --steps 4 --warmup 1 --eval-batches 2 --eval-interval 0 --log-interval 1 \
  --batch 4 --resume --out "$work/ddp_shares"

# And checkpoint_diff fails a run that is not the same: a different global batch.
train single2 "${clean[@]}" "$bin/train_llama" "${common[@]}" --batch 2
expect 1 "largest relative error of the weights .*FAIL" 1 -- \
  "$bin/checkpoint_diff" --a "$work/single2/checkpoint.bin" --b "$work/single/checkpoint.bin" \
  --tolerance "$tolerance"
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all ok"
