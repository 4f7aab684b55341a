#!/usr/bin/env bash
# tools/report on a synthetic sweep (make_sweep_fixture.py): it writes report.md and the six
# plots, opens with the answer the fixture was built to have (from its law_cost lines, never from
# the curve-based loss_per_dollar lines), the tables hold the best configurations the fixture
# was built to have, the findings read its built-in cases (Flash/Naive at equal global batch with
# an OOM, a 1.25× break-even price ratio, multi-GPU verdicts marked predicted when nothing
# multi-GPU was measured), a degenerate loss-curve fit is unusable, every measured point is in a
# plot, FP8 points go to the precision section alone (pairs, verdict in dollars), a sweep with
# only measured lines gives notes instead of a crash, and a malformed line
# stops it with the line's number. Exit 77 (ctest: skipped) without a python3 that has matplotlib.
# Usage: report_test.sh SOURCE_DIR TRAIN_LLAMA (the fixture reads the presets from its --list-names)
set -u
src=${1:?usage: report_test.sh SOURCE_DIR TRAIN_LLAMA}
train_llama=${2:?usage: report_test.sh SOURCE_DIR TRAIN_LLAMA}
report=$src/tools/report/report
source "$src/tools/matplotlib_python.bash"
if ! python=$(matplotlib_python); then
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

# Whether a line of file $1 starts with the text $2 (literally: table rows are full of | and $).
starts_with() {
  awk -v want="$2" 'index($0, want) == 1 { found = 1 } END { exit !found }' "$1"
}

"$python" "$src/tests/tools/make_sweep_fixture.py" "$train_llama" "$work/sweep.jsonl" || fail "fixture"
if "$report" "$work/sweep.jsonl" "$work/out" >"$work/log" 2>&1; then ok "report ran"; else
  fail "report exited $?: $(cat "$work/log")"; fi
md=$work/out/report.md
[ -s "$md" ] && ok "report.md written" || fail "no report.md"
for png in throughput_vs_gpus dollars_to_target_vs_gpus flash_vs_naive ddp_vs_zero \
           memory_vs_microbatch loss_curves; do
  if [ "$(head -c 4 "$work/out/$png.png" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ]; then
    ok "$png.png"
  else
    fail "$png.png missing or not a PNG"
  fi
  grep -q "($png.png)" "$md" || fail "report.md does not show $png.png"
done

# The report opens with the answer, right after the notes.
[ "$(grep '^## ' "$md" | head -2 | tr '\n' '/')" = "## Notes/## The answer/" ] &&
  ok "the answer comes first" || fail "sections start: $(grep '^## ' "$md" | head -2 | tr '\n' '/')"
# The designed answer (fewest $ to 20 tokens/parameter): predicted, one A100-40GB as
# flash/single/mb16 for llama_100m; two A100-40GB as flash/zero2/mb8 for llama_1b (one does not
# fit it at a good micro-batch); measured, one H100 as flash/single/mb16.
section "$md" "The answer" >"$work/answer"
for row in "| llama_100m | predicted | A100-40GB | 1 | 16 | flash | single |" \
           "| llama_1b | predicted | A100-40GB | 2 | 8 | flash | zero2 |" \
           "| llama_100m | measured | H100-80GB | 1 | 16 | flash | single |"; do
  starts_with "$work/answer" "$row" && ok "answer: $row" ||
    fail "answer lacks '$row': $(grep '^| llama' "$work/answer")"
done
# paper_100m's two-GPU case: A100-40GB wins; against the A100-80GB it breaks even at 0.80×
# (its tokens/s ÷ the 80GB's), the prices now being 0.70×.
grep -qF "| paper_100m | predicted | A100-80GB | 0.80× | 0.70× | A100-40GB |" "$work/answer" &&
  ok "answer: break-even price ratio" || fail "answer: no break-even for paper_100m"
grep -q "within the model's error (8.2%)" "$work/answer" && ok "answer: margin against the model's error" ||
  fail "answer: no margin against the model's error"
grep -q "arXiv 2404.10102" "$work/answer" && ok "answer: the law's citation" || fail "answer: no citation"

# The fixture is built so that one H100 runs llama_100m fastest as flash/single/mb16, and the
# law makes it the cheapest measured configuration there too, although a decoy loss_per_dollar
# line gives naive/single/mb4 an absurdly low loss: those lines are never used.
row="| llama_100m | H100-80GB | 1 | flash/single/mb16 |"
section "$md" "Best configuration by tokens/s" | section /dev/stdin "Measured" | grep -qF "$row" &&
  ok "best measured by tokens/s: $row" || fail "best-by-tokens/s table lacks '$row'"
section "$md" "Loss per dollar from the scaling law" | section /dev/stdin "Measured" | grep -qF "$row" &&
  ok "best measured by the law: $row" || fail "law table lacks '$row'"
grep -q "naive/single/mb4" "$work/answer" && fail "a curve-based loss_per_dollar line was used"
grep -q "Best configuration by loss per dollar" "$md" && fail "the curve-based loss-per-dollar table is back"
# The current prediction is the predicted best; the frozen one (5% higher) only checks the model.
section "$md" "Best configuration by tokens/s" | section /dev/stdin "Predicted" |
  grep -qF "$row 377,688 |" && ok "predicted best is the current prediction" ||
  fail "predicted best table: $(section "$md" "Best configuration by tokens/s" | grep -F "$row")"
# Budgets and the batch flag: 64 A100-40GB at 16 sequences each exceed DeepSeek's optimal batch.
section "$md" "Loss per dollar from the scaling law" | section /dev/stdin "Predicted" |
  grep -qE '^\| llama_100m \| A100-40GB \| 64 \| flash/ddp/mb16 \|( [^|]+ \|){7} beyond optimal' &&
  ok "law table: budgets and batch beyond optimal" || fail "law table: no budgets or batch flag"
grep -q "this report finds" "$md" && fail "the sweep's best lines disagree: $(grep "this report finds" "$md" | head -2)"
# Naive llama_500m at micro-batch 32 does not fit on one H100: skipped, with its estimate.
section "$md" "Skipped configurations" | grep -qE '^\| llama_500m \| H100-80GB \| 1 \| naive/single/mb32 \| does not fit \| [0-9.]+ \| 79\.10 \|$' &&
  ok "skipped point with its estimate" || fail "skipped table lacks naive/single/mb32"

section "$md" "The study's four findings, from these numbers" >"$work/findings"
# Finding 1 pairs equal global batches: the designed pair (llama_100m, one H100, mb8) is exactly
# 1 / 0.45 = 2.22×, and the Naive that did not fit (llama_500m, mb32) reads OOM.
grep -qE '^\| llama_100m \| 1× H100-80GB \| 8 \| single \| [0-9,]+ \| [0-9,]+ \| 2\.22× \| measured \|$' "$work/findings" &&
  ok "finding 1: equal-batch pair 2.22×" || fail "finding 1: no designed pair"
grep -qE '^\| llama_500m \| 1× H100-80GB \| 32 \| single \| [0-9,]+ \| OOM \|' "$work/findings" &&
  ok "finding 1: OOM naive shown" || fail "finding 1: no OOM row"
grep -q '^\*\*1\. .*: llama_\*: holds (measured)' "$work/findings" && ok "finding 1 holds (measured)" ||
  fail "finding 1: $(grep '^\*\*1' "$work/findings")"
grep -q "about 2.3–4.4×" "$work/findings" && ok "finding 1: the paper's range" || fail "finding 1: no paper range"
# Finding 2: the two-GPU case's break-even ratio is 1.25× (A100-80GB ÷ A100-40GB), prices 1.43×,
# the paper's 1.46×: the A100-40GB is cheaper under both, by more than the model's error.
grep -qF "| paper_100m | 1 | predicted | A100-80GB | A100-40GB | 1.25× | 1.43× | 1.46× | A100-40GB | A100-40GB |" "$work/findings" &&
  ok "finding 2: break-even 1.25×" || fail "finding 2: $(grep '^| paper_100m | 1 | predicted' "$work/findings")"
grep -qF "| H200 | \$7.27 | 3.19 | — |" "$work/findings" && ok "finding 2: price table" || fail "finding 2: no price table"
grep -q '^\*\*2\. .*: holds (predicted, not measured)\*\*' "$work/findings" && ok "finding 2 holds (predicted)" ||
  fail "finding 2: $(grep '^\*\*2' "$work/findings")"
# Finding 3 with multi-GPU points measured: DDP for llama_100m, ZeRO-2 for llama_1b, measured.
grep -q '^\*\*3\. .*: llama_\*: holds (measured)' "$work/findings" && ok "finding 3 holds (measured)" ||
  fail "finding 3: $(grep '^\*\*3' "$work/findings")"
grep -q "we agree" "$work/findings" && ok "finding 3: ZeRO-2 against ZeRO-3 beside the paper" ||
  fail "finding 3: no ZeRO-2 against ZeRO-3"
grep -q '^\*\*4\. .*: holds (measured)\*\*' "$work/findings" && ok "finding 4 holds (measured)" ||
  fail "finding 4: $(grep '^\*\*4' "$work/findings")"
# The loss curves check the law's slope: llama_1b's fit has E = 0, so it is unusable.
section "$md" "Loss curves: a check of the law's slope" >"$work/curves"
grep -qE '^\| llama_1b \|.*\| unusable: E = 0' "$work/curves" && ok "degenerate fit unusable" ||
  fail "degenerate fit: $(grep '^| llama_1b' "$work/curves")"
grep -qE '^\| llama_100m \|.*\| usable: ' "$work/curves" && ok "good fit usable" || fail "good fit not usable"

# Nothing multi-GPU measured: finding 3's verdict says so.
"$python" "$src/tests/tools/make_sweep_fixture.py" "$train_llama" "$work/single.jsonl" --single-gpu-measured
if "$report" "$work/single.jsonl" "$work/single" >"$work/log" 2>&1; then
  grep -q '^\*\*3\. .*(predicted, not measured)' "$work/single/report.md" &&
    ok "finding 3 without measured multi-GPU: predicted, not measured" ||
    fail "finding 3 without measured multi-GPU: $(grep '^\*\*3' "$work/single/report.md")"
else
  fail "single-GPU-measured sweep: report exited $?: $(cat "$work/log")"
fi

grep -q "unknown kind 'calibration'" "$md" && ok "unknown kind noted" || fail "unknown kind not noted"
grep -q "in no plot" "$md" && fail "a measured point is in no plot"
measured=$(grep -c '"kind": "measured"' "$work/sweep.jsonl")
listed=$(section "$md" "All measured points" | grep -c '^| llama')
[ "$measured" -eq "$listed" ] && ok "all $measured measured points listed" ||
  fail "$measured measured points, $listed in the table"
section "$md" "All measured points" | grep '^| llama' | grep -q '| — |$' &&
  fail "a measured point's plots column is empty"
grep -qE '^\| before measurement \(calibrated on [^|]*\) \| llama_100m \| H100-80GB \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \|' "$md" &&
  ok "prediction error summary" || fail "no prediction error summary"

# The current model's out-of-sample check (a measured point of a preset it was not calibrated
# on, predicted 50% too fast) is the error the verdicts weigh margins against, not the frozen one.
"$python" - "$work/sweep.jsonl" "$work/oos.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = next(r for r in lines if r["kind"] == "measured" and r["gpus"] == 1)
check = {k: m[k] for k in ("gpu", "gpus", "preset", "attention", "parallel", "micro_batch", "seq")}
check.update(kind="predicted", key="check/" + m["key"], check_key=m["key"], out_of_sample=True,
             calibrated_on=["llama_1b"], tokens_per_s=1.5 * m["tokens_per_s"], memory_gib=1.0,
             mfu_pct=10.0, fits=True)
with open(sys.argv[2], "w") as out:
    for r in lines + [check]:
        out.write(json.dumps(r) + "\n")
PY
if "$report" "$work/oos.jsonl" "$work/oos" >"$work/log" 2>&1; then
  grep -q "within the model's error (50.0%)" "$work/oos/report.md" && ok "out-of-sample error weighs the margins" ||
    fail "out-of-sample error not used: $(grep -o "model's error ([0-9.]*%)" "$work/oos/report.md" | sort -u)"
  grep -qE '^\| current model, out of sample \(calibrated on llama_1b\) \|' "$work/oos/report.md" &&
    ok "out-of-sample check listed" || fail "out-of-sample check not in the prediction error table"
  grep -q "check/" "$work/oos/report.md" && fail "a check line was ranked as a configuration"
else
  fail "out-of-sample sweep: report exited $?: $(cat "$work/log")"
fi

# A torn last line (a sweep stopped mid-write) is left out with a note, as the sweep does.
cp "$work/sweep.jsonl" "$work/torn.jsonl"
printf '{"kind":"measured","key":"H100-80GB/1/ll' >>"$work/torn.jsonl"
if "$report" "$work/torn.jsonl" "$work/torn" >"$work/log" 2>&1 && grep -q "the last, is torn" "$work/torn/report.md"; then
  ok "torn last line left out with a note"
else
  fail "torn last line: $(cat "$work/log")"
fi

# FP8 beside bf16: the fixture's llama_100m points on one H100 measured again in FP8 at 1.3× the
# tokens/s (each with its law_cost line at 1/1.3 the dollars): the precision section pairs them,
# its verdict says FP8 changes the answer there, by +23.1%, and the study's own tables, answer
# and plots stay bf16 (the best measured configuration is still flash/single/mb16, not /fp8).
"$python" - "$work/sweep.jsonl" "$work/fp8.jsonl" <<'PY' || fail "the FP8 fixture"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
h100 = {r["key"] for r in lines if r["kind"] == "measured" and r["preset"] == "llama_100m"
        and r["gpu"] == "H100-80GB" and r["gpus"] == 1}
with open(sys.argv[2], "w") as out:
    for r in lines:
        out.write(json.dumps(r) + "\n")
    for r in lines:
        if r.get("key") in h100 and r["kind"] in ("measured", "law_cost") and r.get("source", "measured") == "measured":
            f = dict(r, key=r["key"] + "/fp8", precision="fp8", tokens_per_s=1.3 * r["tokens_per_s"])
            if r["kind"] == "law_cost":
                f["dollars_to_target"] = r["dollars_to_target"] / 1.3
            out.write(json.dumps(f) + "\n")
PY
if "$report" "$work/fp8.jsonl" "$work/fp8" >"$work/log" 2>&1; then
  section "$work/fp8/report.md" "Precision: FP8 beside bf16" >"$work/fp8.md"
  grep -qE '^\| llama_100m \| H100-80GB \| 1 \| flash/single/mb16 \| [0-9,]+ \| [0-9,]+ \| 1\.300× \|' "$work/fp8.md" &&
    ok "precision: pairs at 1.300×" || fail "precision pairs: $(head -n 12 "$work/fp8.md")"
  grep -qE '^\| llama_100m \| H100-80GB \| 1 \| flash/single/mb16 \| [^|]+ \| flash/single/mb16/fp8 \| [^|]+ \| \+23\.1% \| yes: fp8 \|$' "$work/fp8.md" &&
    ok "precision: verdict +23.1%, FP8 changes the answer" || fail "precision verdict: $(grep 'yes\|no' "$work/fp8.md")"
  section "$work/fp8/report.md" "Best configuration by tokens/s" | section /dev/stdin "Measured" |
    grep -qF "| llama_100m | H100-80GB | 1 | flash/single/mb16 |" && ok "precision: the study's tables stay bf16" ||
    fail "precision: an FP8 point entered the study's tables"
  grep -q "FP8 point(s) are read only by the precision section" "$work/fp8/report.md" &&
    ok "precision: the set-aside FP8 points are noted" || fail "precision: no note of the FP8 points"
  grep -q "No point was measured in both bf16 and fp8" "$md" && ok "precision: a bf16 sweep says there is no FP8" ||
    fail "precision: no note in a bf16-only sweep"
else
  fail "FP8 sweep: report exited $?: $(cat "$work/log")"
fi

# --precision-from: a bf16 study takes its precision section from a separate FP8 sweep (both
# precisions measured in one run), the rest staying its own.
if "$report" "$work/sweep.jsonl" "$work/from" --precision-from "$work/fp8.jsonl" >"$work/log" 2>&1; then
  section "$work/from/report.md" "Precision: FP8 beside bf16" >"$work/from.md"
  grep -qE '^\| llama_100m \| H100-80GB \| 1 \| flash/single/mb16 \| [0-9,]+ \| [0-9,]+ \| 1\.300× \|' "$work/from.md" &&
    grep -qF "(--precision-from), not this sweep" "$work/from.md" &&
    ok "--precision-from: the section reads the other sweep" || fail "--precision-from: $(head -n 8 "$work/from.md")"
  grep -q "FP8 point(s) are read only by the precision section" "$work/from/report.md" &&
    fail "--precision-from: FP8 points noted as set aside in a bf16 sweep" || true
else
  fail "--precision-from: report exited $?: $(cat "$work/log")"
fi
"$report" "$work/sweep.jsonl" "$work/from2" --precision-from "$work/none.jsonl" >"$work/log" 2>&1
[ $? -eq 1 ] && grep -q "none.jsonl" "$work/log" && ok "--precision-from a missing file: exit 1, named" ||
  fail "--precision-from a missing file: $(cat "$work/log")"
"$report" "$work/sweep.jsonl" "$work/from2" --precision-from >"$work/log" 2>&1
[ $? -eq 2 ] && ok "--precision-from without a file: exit 2" || fail "--precision-from without a file: $(cat "$work/log")"

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

# Predictions made before the run (an earlier sweep's predicted lines): each measured point of
# llama_100m on one H100 predicted at 0.8× its tokens/s reads ratio 1.250; a point predicted to
# fit that was skipped here is counted.
"$python" - "$work/sweep.jsonl" "$work/earlier.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as out:
    for r in lines:
        if r["kind"] in ("measured", "skipped") and r["gpus"] == 1 and r["gpu"] == "H100-80GB":
            p = {k: r[k] for k in ("gpu", "gpus", "preset", "attention", "parallel", "micro_batch", "seq")}
            p.update(kind="predicted", key="earlier/" + r["key"], memory_gib=1.0, mfu_pct=10.0, fits=True,
                     tokens_per_s=0.8 * r["tokens_per_s"] if r["kind"] == "measured" else 1000.0)
            out.write(json.dumps(p) + "\n")
PY
if "$report" "$work/sweep.jsonl" "$work/prior" --predicted-before "$work/earlier.jsonl" >"$work/log" 2>&1; then
  section "$work/prior/report.md" "Predicted before the run, measured in it" >"$work/prior.md"
  grep -qE '^\| llama_100m \| flash \| [0-9]+ \| 1\.250 \| 1\.250–1\.250 \| 0 of [0-9]+ \|$' "$work/prior.md" &&
    ok "predicted before: ratio 1.250" || fail "predicted before: $(grep '^| llama_100m' "$work/prior.md" | head -3)"
  grep -qE '^Memory: [1-9][0-9]* point\(s\) predicted to fit were skipped here' "$work/prior.md" &&
    ok "predicted before: skipped points counted" || fail "predicted before: no memory line"
else
  fail "--predicted-before: report exited $?: $(cat "$work/log")"
fi
"$report" "$work/sweep.jsonl" "$work/prior2" --predicted-before "$work/none.jsonl" >"$work/log" 2>&1
code=$?
[ "$code" -eq 1 ] && grep -q "none.jsonl" "$work/log" && ok "missing earlier file: exit 1" ||
  fail "missing earlier file: exit $code, $(cat "$work/log")"

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
