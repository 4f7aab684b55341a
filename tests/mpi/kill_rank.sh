#!/usr/bin/env bash
# Runs kill_rank under mpirun with one victim rank and checks that the job ends the way a dead
# peer must end it: a non-zero exit status, within 60 s, with a message that names what happened.
# Usage: kill_rank.sh NP sigkill|hang PROGRAM MPIRUN [MPIRUN ARGS...]
set -u
np="$1" mode="$2" program="$3"
shift 3
limit=60
start=$(date +%s%N)
out=$(SLM_COMM_TIMEOUT_S=5 timeout 120 "$@" -x SLM_COMM_TIMEOUT_S -np "$np" "$program" "$mode" 1 2>&1)
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
elapsed="$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))"
echo "$out"
echo "--- mpirun -np $np kill_rank $mode 1: exit status $rc after ${elapsed} s"
fail() {
  echo "FAIL: $*"
  exit 1
}
[ "$rc" -ne 124 ] || fail "the job hung: timeout(1) stopped it after 120 s"
[ "$rc" -ne 0 ] || fail "the job exited 0 although rank 1 died or hung"
[ "$elapsed_ms" -lt $((limit * 1000)) ] || fail "the job took ${elapsed} s to end (limit ${limit} s)"
grep -q "rank 1: " <<<"$out" || fail "rank 1 never announced what it does"
case "$mode" in
  # mpirun names the dead rank and the signal; a survivor that timed out names its collective.
  sigkill) pattern="rank 1 .*exited on signal 9|did not complete within" ;;
  hang) pattern="MPI_Iallreduce on rank [02] of $np did not complete within 5 s" ;;
esac
grep -qE "$pattern" <<<"$out" || fail "no message naming what happened (looked for: $pattern)"
echo "ok: the job ended with status $rc after ${elapsed} s and said why"
