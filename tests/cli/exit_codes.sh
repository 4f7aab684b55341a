#!/usr/bin/env bash
# The example programs' contract on bad input: a usage problem prints the usage and exits 2;
# bad data or checkpoints print what is wrong and exit 1; nothing is written or damaged.
# Usage: exit_codes.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

expect() {  # expect CODE PATTERN -- command...
  local code="$1" pattern="$2"
  shift 3
  local out
  out=$("$@" 2>&1)
  local got=$?
  if [ "$got" -ne "$code" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: '$*' exited $got (want $code), output:"
    echo "$out" | head -5
    failures=$((failures + 1))
  else
    echo "ok: '$*' -> $got"
  fi
}

expect 2 "unknown flag '--bogus'" -- "$bin/train_llama" --bogus
expect 2 "--batch must be >= 1" -- "$bin/train_llama" --batch 0
expect 2 "--batch 'x' is not an integer" -- "$bin/train_llama" --batch x
expect 2 "--attention must be one of naive\|flash\|flash_deterministic" -- "$bin/train_llama" --attention fast
expect 2 "--recompute must be one of none\|swiglu" -- "$bin/train_llama" --recompute norms
expect 2 "unknown preset" -- "$bin/train_llama" --preset llama_3b
expect 2 "longer than model tiny's max_seq 256" -- "$bin/train_llama" --seq 512
expect 2 "--lr" -- "$bin/train_llama" --lr 1e-3 --min-lr 1e-2
expect 2 "no checkpoint in .* to resume from" -- "$bin/train_llama" --resume --out "$work/none"
expect 2 "needs a value" -- "$bin/train_llama" --steps
expect 1 "does not exist; run prepare_data" -- "$bin/train_llama" --data "$work/missing"
mkdir -p "$work/empty"
expect 1 "no tokens\*.bin shards" -- "$bin/train_llama" --data "$work/empty"
expect 2 "--text is required" -- "$bin/prepare_data" --out "$work/x"
expect 1 "cannot open checkpoint" -- "$bin/sample" --checkpoint "$work/nope.bin"
expect 2 "unknown flag" -- "$bin/sample" --bogus
expect 2 "--lr must be a finite number, got inf" -- "$bin/train_llama" --lr inf
expect 2 "--lr must be a finite number, got nan" -- "$bin/train_llama" --lr nan
expect 2 "--lr must be > 0, got 0" -- "$bin/train_llama" --lr 0
expect 2 "--min-lr must be a finite number, got nan" -- "$bin/train_llama" --min-lr nan
expect 2 "--min-lr must be >= 0, got -1e-4" -- "$bin/train_llama" --min-lr -1e-4
expect 2 "--clip must be a finite number, got nan" -- "$bin/train_llama" --clip nan
expect 2 "--clip must be >= 0, got -1" -- "$bin/train_llama" --clip -1
expect 2 "--weight-decay must be >= 0, got -0.1" -- "$bin/train_llama" --weight-decay -0.1
expect 2 "--temperature must be a finite number, got nan" -- "$bin/sample" --temperature nan --checkpoint x
expect 2 "--temperature must be >= 0, got -1" -- "$bin/sample" --temperature -1 --checkpoint x
expect 2 "--tolerance must be > 0, got 0" -- "$bin/checkpoint_diff" --a x --b y --tolerance 0
expect 0 "flags:" -- "$bin/train_llama" --help
[ ! -e "$work/none" ] || { echo "FAIL: a rejected command created $work/none"; failures=$((failures + 1)); }
exit $((failures > 0))
