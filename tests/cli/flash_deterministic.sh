#!/usr/bin/env bash
# train_llama --attention flash_deterministic on the CPU: it says that the CPU's Flash is
# deterministic already, trains that, and prints the bits --attention flash prints.
# Usage: flash_deterministic.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 2000 || exit 1

run() {  # run ATTENTION → the run's log in $work/ATTENTION.log
  "$bin/train_llama" --device cpu --attention "$1" --data "$work/data" --out "$work/$1" \
    --steps 3 --batch 2 --seq 32 --eval-batches 2 > "$work/$1.log" 2>&1 ||
    { tail -n 20 "$work/$1.log"; fail "train_llama --attention $1 exited non-zero"; }
}
run flash
run flash_deterministic
grep -q "on the CPU that is flash" "$work/flash_deterministic.log" ||
  fail "no note that the CPU trains flash for flash_deterministic"
a=$(grep "validation loss:" "$work/flash.log")
b=$(grep "validation loss:" "$work/flash_deterministic.log")
[ -n "$a" ] || fail "no validation loss line from --attention flash"
[ "$a" = "$b" ] || fail "losses differ: flash '$a', flash_deterministic '$b'"
echo "ok: $b"
