#!/usr/bin/env bash
# tools/report on a synthetic sweep (make_sweep_fixture.py): it writes report.md and the six
# plots, the tables hold the best configurations the fixture was built to have, the findings
# section reads the fixture's built-in answers, every measured point is in a plot, a sweep with
# only measured lines gives notes instead of a crash, and a malformed line stops it with the
# line's number. Exit 77 (ctest: skipped) without a python3 that has matplotlib.
# Usage: report_test.sh SOURCE_DIR TRAIN_LLAMA (the fixture reads the presets from its --list-names)
set -u
src=${1:?usage: report_test.sh SOURCE_DIR TRAIN_LLAMA}
train_llama=${2:?usage: report_test.sh SOURCE_DIR TRAIN_LLAMA}
report=$src/tools/report/report
python=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import matplotlib' >/dev/null 2>&1; then
    python=$p
    break
  fi
done
if [ -z "$python" ]; then
  echo "skipped: no python3 with matplotlib (on Debian: apt-get install python3-matplotlib)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# The lines of report.md's section $2 (a heading's text) up to the next heading of its level.
section() {
  awk -v want="$2" '
    /^#+ / { level = index($0, " ") - 1
             if (inside && level <= depth) inside = 0
             if (substr($0, level + 2) == want) { inside = 1; depth = level; next } }
    inside' "$1"
}

"$python" "$src/tests/tools/make_sweep_fixture.py" "$train_llama" "$work/sweep.jsonl" || fail "fixture"
if "$report" "$work/sweep.jsonl" "$work/out" >"$work/log" 2>&1; then ok "report ran"; else
  fail "report exited $?: $(cat "$work/log")"; fi
md=$work/out/report.md
[ -s "$md" ] && ok "report.md written" || fail "no report.md"
for png in throughput_vs_gpus loss_at_budget_vs_gpus flash_vs_naive ddp_vs_zero \
           memory_vs_microbatch loss_curves; do
  if [ "$(head -c 4 "$work/out/$png.png" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ]; then
    ok "$png.png"
  else
    fail "$png.png missing or not a PNG"
  fi
  grep -q "($png.png)" "$md" || fail "report.md does not show $png.png"
done

# The fixture is built so that one H100 runs llama_100m fastest as flash/single/mb16.
row="| llama_100m | H100-80GB | 1 | flash/single/mb16 |"
section "$md" "Best configuration by tokens/s" | section /dev/stdin "Measured" | grep -qF "$row" &&
  ok "best measured by tokens/s: $row" || fail "best-by-tokens/s table lacks '$row'"
section "$md" "Best configuration by loss per dollar" | section /dev/stdin "Measured" | grep -qF "$row" &&
  ok "best measured by loss per dollar: $row" || fail "best-by-loss table lacks '$row'"
# The current prediction is the predicted best; the frozen one (10% higher) only checks the model.
section "$md" "Best configuration by tokens/s" | section /dev/stdin "Predicted" |
  grep -qF "$row 377,688 |" && ok "predicted best is the current prediction" ||
  fail "predicted best table: $(section "$md" "Best configuration by tokens/s" | grep -F "$row")"
# llama_1b has no loss curve: no loss-per-dollar row for it.
section "$md" "Best configuration by loss per dollar" | grep -q "llama_1b" &&
  fail "llama_1b has a loss-per-dollar row without a loss curve"
# Naive llama_500m at micro-batch 32 does not fit on one H100: skipped, with its estimate.
section "$md" "Skipped configurations" | grep -qE '^\| llama_500m \| H100-80GB \| 1 \| naive/single/mb32 \| does not fit \| [0-9.]+ \| 79\.10 \|$' &&
  ok "skipped point with its estimate" || fail "skipped table lacks naive/single/mb32"
# The fixture's numbers make findings 2 (A100-40GB is cheapest) and 3 (DDP, then ZeRO) hold.
section "$md" "The study's four findings, from these numbers" >"$work/findings"
grep -q '^\*\*2\. .*: holds\*\*' "$work/findings" && grep -q '| llama_100m | 1 | A100-40GB |' "$work/findings" &&
  ok "finding 2 holds, on A100-40GB" || fail "finding 2: $(grep '^\*\*2' "$work/findings")"
grep -q '^\*\*3\. .*: holds\*\*' "$work/findings" && ok "finding 3 holds" ||
  fail "finding 3: $(grep '^\*\*3' "$work/findings")"
grep -q "unknown kind 'calibration'" "$md" && ok "unknown kind noted" || fail "unknown kind not noted"
grep -q "in no plot" "$md" && fail "a measured point is in no plot"
measured=$(grep -c '"kind": "measured"' "$work/sweep.jsonl")
listed=$(section "$md" "All measured points" | grep -c '^| llama')
[ "$measured" -eq "$listed" ] && ok "all $measured measured points listed" ||
  fail "$measured measured points, $listed in the table"
section "$md" "All measured points" | grep '^| llama' | grep -q '| — |$' &&
  fail "a measured point's plots column is empty"
grep -qE '^\| llama_100m \| H100-80GB \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \|' "$md" &&
  ok "prediction error summary" || fail "no prediction error summary"

# A torn last line (a sweep stopped mid-write) is left out with a note, as the sweep does.
cp "$work/sweep.jsonl" "$work/torn.jsonl"
printf '{"kind":"measured","key":"H100-80GB/1/ll' >>"$work/torn.jsonl"
if "$report" "$work/torn.jsonl" "$work/torn" >"$work/log" 2>&1 && grep -q "the last, is torn" "$work/torn/report.md"; then
  ok "torn last line left out with a note"
else
  fail "torn last line: $(cat "$work/log")"
fi

# Only measured lines: notes for what is missing, plots that need the rest left out.
"$python" "$src/tests/tools/make_sweep_fixture.py" "$train_llama" "$work/measured.jsonl" --only-measured
if "$report" "$work/measured.jsonl" "$work/measured" >"$work/log" 2>&1; then
  grep -q "No loss curves yet" "$work/measured/report.md" && ok "missing loss curves noted" ||
    fail "missing loss curves not noted"
  [ ! -e "$work/measured/loss_curves.png" ] && [ -s "$work/measured/throughput_vs_gpus.png" ] &&
    ok "plots drawn only where there is data" || fail "wrong plots for a measured-only sweep"
  # llama_1b's lines lack MFU and memory there, as on a CPU: still in a plot, "—" in the table.
  grep -q "in no plot" "$work/measured/report.md" && fail "measured-only: a point is in no plot"
  grep -qE '^\| llama_1b \| H100-80GB \| 1 \| flash \| single \| 4 \| 2048 \| [0-9.]+ \| [0-9,]+ \| [0-9,]+ \| — \| — \|' \
    "$work/measured/report.md" && ok "no MFU or memory: shown as —" || fail "no MFU or memory: row not found"
else
  fail "measured-only sweep: report exited $?: $(cat "$work/log")"
fi

# A malformed line: exit 1, the file and line number in the message, no report written.
head -3 "$work/sweep.jsonl" >"$work/bad.jsonl"
echo '{"kind": "measured", "key": "x"' >>"$work/bad.jsonl"
"$report" "$work/bad.jsonl" "$work/bad" >"$work/log" 2>&1
code=$?
[ "$code" -eq 1 ] && grep -q "bad.jsonl:4: not valid JSON" "$work/log" && [ ! -e "$work/bad/report.md" ] &&
  ok "malformed line: $(cat "$work/log")" || fail "malformed line: exit $code, $(cat "$work/log")"
head -3 "$work/sweep.jsonl" >"$work/bad.jsonl"
echo '{"kind": "measured", "key": "x", "gpu": "H100-80GB"}' >>"$work/bad.jsonl"
"$report" "$work/bad.jsonl" "$work/bad" >"$work/log" 2>&1
grep -q "bad.jsonl:4: a 'measured' line lacks 'gpus'" "$work/log" && ok "missing field: $(cat "$work/log")" ||
  fail "missing field: $(cat "$work/log")"

echo "report test: $failures failure(s)"
[ "$failures" -eq 0 ]
