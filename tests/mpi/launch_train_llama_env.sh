#!/usr/bin/env bash
# train_llama under a launcher: inconsistent launcher variables and a world size above 1 (which
# train_llama cannot train yet) each end with exit status 1 and a message that says why, on
# every rank, instead of N processes training alone into the same run directory.
# Usage: launch_train_llama_env.sh TRAIN_LLAMA MPIRUN [MPIRUN ARGS...]
set -u
bin="$1"
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
clean=(env -u OMPI_COMM_WORLD_RANK -u OMPI_COMM_WORLD_SIZE -u OMPI_COMM_WORLD_LOCAL_RANK
       -u SLURM_PROCID -u SLURM_NTASKS -u SLURM_LOCALID -u RANK -u WORLD_SIZE -u LOCAL_RANK
       -u MASTER_ADDR -u MASTER_PORT)

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
    echo "FAIL: exit $got (want $code), $matches line(s) matching '$pattern' (want $count):"
    echo "$out" | head -20
    failures=$((failures + 1))
  else
    echo "ok: exit $got, $matches line(s) matching '$pattern'"
  fi
}

expect 1 "RANK=2 is not below WORLD_SIZE=2" 1 -- "${clean[@]}" RANK=2 WORLD_SIZE=2 LOCAL_RANK=0 \
  MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 "$bin" --data "$work/none"
expect 1 "MASTER_ADDR is not" 1 -- "${clean[@]}" RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 \
  "$bin" --data "$work/none"
expect 1 "rank 1 of 2 by torchrun-style environment, but train_llama does not train data-parallel yet" 1 -- \
  "${clean[@]}" RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \
  "$bin" --data "$work/none"
# No launcher: a single process, which goes on to the next check (the missing data).
expect 1 "does not exist; run prepare_data" 1 -- "${clean[@]}" "$bin" --data "$work/none"
# Under a real mpirun: both ranks say it, and mpirun's own status is non-zero.
expect nonzero "by mpirun \(OpenMPI\), but train_llama does not train data-parallel yet" 2 -- \
  "${clean[@]}" "$@" -np 2 "$bin" --data "$work/none"
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
