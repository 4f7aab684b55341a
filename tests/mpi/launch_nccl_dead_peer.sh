#!/usr/bin/env bash
# Two GPU processes started torchrun-style (no mpirun to end the job for us): rank 1 raises
# SIGKILL or stops calling collectives mid-run, and rank 0 must end on its own — non-zero exit
# status, within 60 s, with a message that names what happened. Prints "skipped: ..." and passes
# on a machine with fewer than 2 GPUs.
# Usage: launch_nccl_dead_peer.sh PROGRAM sigkill|hang
set -u
program="$1" mode="$2"
limit=60
work=$(mktemp -d)
victim=
cleanup() {
  [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export MASTER_ADDR=127.0.0.1 MASTER_PORT=$((20000 + RANDOM % 20000)) WORLD_SIZE=2
export SLM_COMM_TIMEOUT_S=10 SLM_RENDEZVOUS_TIMEOUT_S=30 NCCL_NVLS_ENABLE=0
start=$(date +%s%N)
RANK=1 LOCAL_RANK=1 "$program" "$mode" >"$work/rank1.log" 2>&1 &
victim=$!
RANK=0 LOCAL_RANK=0 timeout 120 "$program" "$mode" >"$work/rank0.log" 2>&1
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
kill -9 "$victim" 2>/dev/null
wait "$victim" 2>/dev/null
victim=
echo "--- rank 0:"; cat "$work/rank0.log"
echo "--- rank 1:"; cat "$work/rank1.log"
if grep -q "^skipped:" "$work/rank0.log"; then
  exit 0
fi
echo "--- rank 0 exit status $rc after $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000))) s"
fail() {
  echo "FAIL: $*"
  exit 1
}
[ "$rc" -ne 124 ] || fail "rank 0 hung: timeout(1) stopped it after 120 s"
[ "$rc" -ne 0 ] || fail "rank 0 exited 0 although rank 1 died or hung"
[ "$elapsed_ms" -lt $((limit * 1000)) ] || fail "rank 0 took more than ${limit} s to end"
grep -q "rank 1: " "$work/rank1.log" || fail "rank 1 never announced what it does"
pattern="did not complete within 10 s|NCCL call .* failed on rank 0"
grep -qE "$pattern" "$work/rank0.log" || fail "rank 0 gave no message naming what happened ($pattern)"
echo "ok: rank 0 ended with status $rc and said why"
