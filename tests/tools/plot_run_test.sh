#!/usr/bin/env bash
# tools/plot_run on two synthetic run directories written in train_llama's metrics.jsonl format
# (include/slm/train/metrics.hpp): run "a" was killed after step 130 and resumed from its
# checkpoint at step 100, so steps 110-130 are logged twice (the resumed lines must win); run
# "b" is a plain run. Checks: one run gives RUN/run.png, a metrics.jsonl works as RUN, two runs
# overlay into ./plot_run.png, --x tokens estimates each run's tokens per step, a torn last line
# is skipped with a warning, and bad input exits 1 (naming FILE:LINE) or 2 (usage).
# Exit 77 (ctest: skipped) without a python3 that has matplotlib.
# Usage: plot_run_test.sh SOURCE_DIR
set -u
src=${1:?usage: plot_run_test.sh SOURCE_DIR}
plot_run=$src/tools/plot_run
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
is_png() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ]; }

# The fixtures. Each train line's tokens_per_s is the tokens since the previous train line over
# the training time, which is elapsed_s less the evaluations and saves in between, as the
# trainer computes them; the resumed attempt's clock starts again at zero.
mkdir -p "$work/runs/a" "$work/runs/b" "$work/runs/c" "$work/cwd"
"$python" - "$work/runs" <<'PY' || fail "fixtures"
import json, math, sys
root = sys.argv[1]

def attempt(out, first, last, tokens_per_step, lr, fresh, replaced_after=None, profile=False):
    """Steps first+1..last, a train line every 10, validation and a checkpoint every 50;
    profile: 3 profiled steps after the first (train_llama --profile 3), 5 s untimed. The
    losses after step replaced_after are 5 higher, so the lines a resume replaces stand out."""
    elapsed, tps = 0.0, 2000.0 + 10 * tokens_per_step / 1024
    if fresh:
        out.append({"step": 0, "val_loss": 8.3})
    if profile:
        out.append({"step": first + 1, "profile": {"steps": 3, "ops": []}})
        elapsed += 5.0
    for step in range(first + 10, last + 1, 10):
        tps_now = tps * (1 + 0.01 * math.sin(step))
        elapsed += 10 * tokens_per_step / tps_now
        loss = 3.5 + 4.5 * math.exp(-step * lr / 0.12)
        if replaced_after is not None and step > replaced_after:
            loss += 5.0
        out.append({"step": step, "loss": loss, "lr": lr * min(1, step / 20),
                    "grad_norm": 0.4 + 2 / (1 + step / 10) + 50 * lr, "tokens_per_s": tps_now,
                    "elapsed_s": elapsed, "eta_s": 1.5 * (last - step)})
        if step % 50 == 0:
            out.append({"step": step, "val_loss": loss + 0.05, "eval_s": 0.75})
            out.append({"step": step, "checkpoint": f"runs/x/checkpoint-{step:08d}.bin",
                        "blocked_s": 0.25})
            elapsed += 1.0
        if step == 20:
            out.append({"step": 20, "checkpoint_deferred": True, "writing_step": 0})

a = []
attempt(a, 0, 130, 8192, 3e-3, fresh=True, replaced_after=100, profile=True)  # killed after 130
first_attempt = len(a)
attempt(a, 100, 200, 8192, 3e-3, fresh=False)                # --resume from checkpoint 100
# "c": run a whose resumed attempt was killed again right after logging step 110, so the first
# attempt's steps 120 and 130 are past anything the resumed one logged.
c = a[:first_attempt + 1]
b = []
attempt(b, 0, 150, 4096, 1e-3, fresh=True)
for name, lines in (("a", a), ("b", b), ("c", c)):
    with open(f"{root}/{name}/metrics.jsonl", "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
PY

# One run: RUN/run.png, the file's name printed.
"$plot_run" "$work/runs/a" >"$work/log" 2>&1
code=$?
if [ "$code" -eq 0 ] && is_png "$work/runs/a/run.png" && grep -q "wrote $work/runs/a/run.png" "$work/log"; then
  ok "one run: $(cat "$work/log")"
else
  fail "one run: exit $code, $(cat "$work/log")"
fi
# The resume: the later lines win at steps 110-130 (the earlier attempt's losses there are 5 higher),
# each step once, the resume marked at the checkpoint of step 100, the lines of kinds not drawn
# counted (a profile and a deferred checkpoint), and the tokens per step (8192) recovered from
# tokens/s and elapsed time; in run c the first attempt's steps 120-130 are dropped.
PYTHONPATH=$src/tools "$python" - "$work/runs/a" "$work/runs/c" >"$work/log" 2>&1 <<'PY'
import math, sys
import plot_run_metrics as m
run = m.read_run(sys.argv[1])
assert sorted(run.train) == list(range(10, 201, 10)), sorted(run.train)
for step in (110, 120, 130):
    expected = 3.5 + 4.5 * math.exp(-step * 3e-3 / 0.12)
    assert abs(run.train[step]["loss"] - expected) < 1e-9, (step, run.train[step]["loss"])
assert abs(run.train[100]["loss"] - (3.5 + 4.5 * math.exp(-100 * 3e-3 / 0.12))) < 1e-9  # the first attempt's
assert sorted(run.validation) == [0, 50, 100, 150, 200], sorted(run.validation)
assert sorted(run.checkpoints) == [50, 100, 150, 200], sorted(run.checkpoints)
assert run.resumed_at == [100], run.resumed_at
assert run.tokens_per_step == 8192, run.tokens_per_step
assert run.ignored == 2, run.ignored
cut = m.read_run(sys.argv[2])  # the resumed attempt replaces the earlier one from step 110 on
assert sorted(cut.train) == list(range(10, 111, 10)), sorted(cut.train)
assert cut.resumed_at == [100], cut.resumed_at
PY
code=$?
[ "$code" -eq 0 ] && ok "resume: later lines win" || fail "resume: $(cat "$work/log")"

# A metrics.jsonl as RUN, with --out.
"$plot_run" "$work/runs/b/metrics.jsonl" --out "$work/b.png" >"$work/log" 2>&1 && is_png "$work/b.png" &&
  ok "a metrics.jsonl as RUN, --out" || fail "metrics.jsonl as RUN: $(cat "$work/log")"

# Two runs overlaid: ./plot_run.png in the current directory.
(cd "$work/cwd" && "$plot_run" ../runs/a ../runs/b) >"$work/log" 2>&1
code=$?
[ "$code" -eq 0 ] && is_png "$work/cwd/plot_run.png" && grep -q "wrote plot_run.png" "$work/log" &&
  ok "two runs overlaid" || fail "two runs: exit $code, $(cat "$work/log")"

# Against tokens: each run's tokens per step said.
"$plot_run" "$work/runs/a" "$work/runs/b" --x tokens --out "$work/tokens.png" >"$work/log" 2>&1
code=$?
[ "$code" -eq 0 ] && is_png "$work/tokens.png" && grep -q "runs/a: 8,192 tokens per step" "$work/log" &&
  grep -q "runs/b: 4,096 tokens per step" "$work/log" && ok "--x tokens" ||
  fail "--x tokens: exit $code, $(cat "$work/log")"

# Train lines that carry "tokens" (train_llama writes it now): tokens per step read, not estimated
# (3000 a step here, whatever tokens/s and elapsed time would suggest).
mkdir -p "$work/runs/d"
"$python" -c '
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        r = json.loads(line)
        if "loss" in r:
            r["tokens"] = 3000 * r["step"]
        out.write(json.dumps(r) + "\n")' "$work/runs/b/metrics.jsonl" "$work/runs/d/metrics.jsonl"
"$plot_run" "$work/runs/d" --x tokens --out "$work/d.png" >"$work/log" 2>&1
code=$?
[ "$code" -eq 0 ] && is_png "$work/d.png" && grep -q "runs/d: 3,000 tokens per step (from its train lines)" "$work/log" &&
  ok "--x tokens from the train lines' tokens" || fail "--x tokens with tokens: exit $code, $(cat "$work/log")"

# A torn last line (a run killed mid-write): skipped with a warning naming it.
mkdir -p "$work/torn"
cp "$work/runs/b/metrics.jsonl" "$work/torn/"
lines=$(wc -l <"$work/torn/metrics.jsonl")
printf '{"step":160,"loss":3.61,"lr":0.0' >>"$work/torn/metrics.jsonl"
"$plot_run" "$work/torn" >"$work/log" 2>&1
code=$?
[ "$code" -eq 0 ] && is_png "$work/torn/run.png" &&
  grep -q "torn/metrics.jsonl:$((lines + 1)): the last line is torn" "$work/log" &&
  ok "torn last line: $(grep warning "$work/log")" || fail "torn last line: exit $code, $(cat "$work/log")"

# Exit 1, naming the file (and the line): a missing run, a directory without metrics.jsonl, a
# line that is not JSON (not the last, or the last with its newline), no metrics at all.
expect() {  # expect CODE PATTERN WHAT ARGS...
  local want=$1 pattern=$2 what=$3
  shift 3
  "$plot_run" "$@" >"$work/log" 2>&1
  local code=$?
  if [ "$code" -eq "$want" ] && grep -q -- "$pattern" "$work/log"; then
    ok "$what: exit $code: $(head -c 200 "$work/log" | tr '\n' ' ')"
  else
    fail "$what: exit $code (want $want), $(cat "$work/log")"
  fi
}
expect 1 "$work/none: no such run directory" "missing run" "$work/none"
mkdir -p "$work/empty_dir"
expect 1 "empty_dir/metrics.jsonl: no such file" "no metrics.jsonl" "$work/empty_dir"
mkdir -p "$work/bad"
{ head -2 "$work/runs/b/metrics.jsonl"; echo '{"step": 20, "loss": 5.1,'; tail -2 "$work/runs/b/metrics.jsonl"; } \
  >"$work/bad/metrics.jsonl"
expect 1 "bad/metrics.jsonl:3: not valid JSON" "a line that is not JSON" "$work/bad"
{ head -2 "$work/runs/b/metrics.jsonl"; echo '{"step": 20, "loss": 5.1,'; } >"$work/bad/metrics.jsonl"
expect 1 "bad/metrics.jsonl:3: not valid JSON" "a complete last line that is not JSON" "$work/bad"
echo '{"step": "ten", "loss": 5.1}' >"$work/bad/metrics.jsonl"
expect 1 "bad/metrics.jsonl:1: no integer 'step'" "a line without a step" "$work/bad"
: >"$work/bad/metrics.jsonl"
expect 1 "no metrics" "an empty metrics.jsonl" "$work/bad"
echo '{"step": 20, "checkpoint_deferred": true, "writing_step": 0}' >"$work/bad/metrics.jsonl"
expect 1 "no metrics" "no train or validation lines" "$work/bad" "$work/runs/a"
[ ! -e "$work/bad/run.png" ] && ok "nothing written on bad input" || fail "a PNG was written on bad input"

# Exit 2: usage.
expect 2 "usage: plot_run" "no RUN"
expect 2 "usage: plot_run" "--x of another kind" "$work/runs/a" --x epochs
expect 2 "usage: plot_run" "an unknown flag" "$work/runs/a" --smooth
expect 2 "must end in .png" "--out not a PNG" "$work/runs/a" --out "$work/a.jpg"
expect 2 "usage: plot_run" "--out without a file" "$work/runs/a" --out

echo "plot_run test: $failures failure(s)"
[ "$failures" -eq 0 ]
