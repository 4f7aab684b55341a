#!/usr/bin/env bash
# train_llama --precision on the CPU: fp8 trains (FP8 emulated exactly), ends within 3% of bf16's loss
# (on the CPU: fp32), prints the cast summary and writes <out>/fp8_casts.json with one entry per
# linear layer and no overflow; bf16 writes no such file; the checkpoint keeps the precision (a
# resume in another is refused, naming it); an unknown precision exits 2 naming the choices and
# leaves --out untouched.
# Usage: precision.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 2000 || exit 1

run() {  # run PRECISION → the run's log in $work/PRECISION.log
  "$bin/train_llama" --device cpu --precision "$1" --data "$work/data" --out "$work/$1" \
    --steps 12 --warmup 2 --batch 4 --seq 32 --eval-batches 2 --eval-interval 0 > "$work/$1.log" 2>&1 ||
    { tail -n 20 "$work/$1.log"; fail "train_llama --precision $1 exited non-zero"; }
}
run bf16
run fp8
grep -q "precision fp8" "$work/fp8.log" || fail "the fp8 run's header does not name its precision"
grep -q "^fp8 casts over 16 linear layers" "$work/fp8.log" || { cat "$work/fp8.log"; fail "no cast summary"; }
[ -f "$work/fp8/fp8_casts.json" ] || fail "no fp8_casts.json"
[ ! -e "$work/bf16/fp8_casts.json" ] || fail "a bf16 run wrote fp8_casts.json"
python3 - "$work/fp8/fp8_casts.json" <<'EOF' || fail "fp8_casts.json is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "slm-fp8-casts-1", r["format"]
sites = r["sites"]
assert len(sites) == 16, len(sites)  # tiny: 4 layers x (qkv, o, gate_up, down)
assert sites[0]["site"] == "layers.0.qkv_proj" and sites[-1]["site"] == "layers.3.down_proj"
for s in sites:
    for op in ("x", "w", "dy"):
        assert s[op]["count"] > 0, (s["site"], op)
        assert s[op]["overflow"] == 0 and s[op]["nan"] == 0, (s["site"], op, s[op])
total = r["total"]
assert total["x"]["count"] == sum(s["x"]["count"] for s in sites)
EOF
loss() { sed -n 's/^validation loss: .* -> \([0-9.]*\) after.*/\1/p' "$work/$1.log"; }
a=$(loss bf16) b=$(loss fp8)
[ -n "$a" ] && [ -n "$b" ] || fail "no final validation loss (bf16 '$a', fp8 '$b')"
python3 -c "import sys; a, b = float('$a'), float('$b'); sys.exit(0 if abs(b - a) / a < 0.03 else 1)" ||
  fail "fp8's loss $b is not within 3% of bf16's $a"

# The checkpoint keeps its precision: a resume in another one is refused, naming it; the same resumes.
common=(--device cpu --data "$work/data" --out "$work/fp8" --warmup 2 --batch 4 --seq 32 --eval-batches 2 --eval-interval 0)
"$bin/train_llama" "${common[@]}" --steps 14 --resume > "$work/resume_bf16.log" 2>&1
code=$?
[ "$code" -eq 1 ] && grep -q "precision (--precision): fp8 in the checkpoint, bf16 now" "$work/resume_bf16.log" ||
  { tail -n 5 "$work/resume_bf16.log"; fail "a bf16 resume of an fp8 run: exit $code, not refused naming the precision"; }
"$bin/train_llama" "${common[@]}" --steps 14 --resume --precision fp8 > "$work/resume_fp8.log" 2>&1 ||
  { tail -n 5 "$work/resume_fp8.log"; fail "an fp8 resume of an fp8 run failed"; }

"$bin/train_llama" --device cpu --precision fp16 --data "$work/data" --out "$work/bad" > "$work/bad.log" 2>&1
code=$?
[ "$code" -eq 2 ] || fail "--precision fp16 exited $code, not 2"
grep -q "bf16|fp8" "$work/bad.log" || fail "--precision fp16's message does not name the choices"
[ ! -e "$work/bad" ] || fail "--precision fp16 created --out"
echo "ok: bf16 $a, fp8 $b; fp8_casts.json has 16 sites, no overflow"
