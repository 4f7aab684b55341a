#!/usr/bin/env bash
# Runs described by a file: train_llama writes RUN/config.toml (every flag, resolved); `--config
# RUN/config.toml --out RUN2` repeats the run bit for bit (every loss, validation loss, learning
# rate and gradient norm in metrics.jsonl equal; only timings differ) and `--config ... --resume`
# continues it; the command line wins over the file; INI works too; a key that is no flag, a
# section, a missing file or a bad switch value exits 2 naming the file and the key.
# Usage: config_file.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 1500 || exit 1

run() {  # run [flags...]: the log in $work/last.log, the exit status in $rc
  "$bin/train_llama" "$@" > "$work/last.log" 2>&1
  rc=$?
}
expect() {  # expect CODE PATTERN WHAT
  if [ "$rc" -eq "$1" ] && grep -qE -- "$2" "$work/last.log"; then ok "$3 -> $rc"
  else fail "$3: exit $rc (want $1), no '$2' in: $(tail -n 3 "$work/last.log")"; fi
}
# metrics.jsonl without the fields that are timings (they differ run to run).
numbers() {
  sed -E 's/"(tokens_per_s|elapsed_s|eta_s|eval_s|blocked_s)":[^,}]*,?//g; s/,}/}/g; s/"checkpoint":"[^"]*"//' "$1"
}

run --device cpu --data "$work/data" --out "$work/a" --batch 2 --seq 32 --steps 8 --lr 2e-3 \
    --eval-interval 4 --eval-batches 2 --log-interval 2 --warmup 2 --checkpoint-interval 4 --seed 7
expect 0 "validation loss:" "a run"
[ -s "$work/a/config.toml" ] && grep -q '^lr = "2e-3"$' "$work/a/config.toml" && grep -q '^seed = "7"$' "$work/a/config.toml" &&
  ok "RUN/config.toml holds the run's flags" || fail "config.toml: $(cat "$work/a/config.toml" 2>/dev/null | head -5)"
grep -qE '^(resume|overwrite|config) ' "$work/a/config.toml" && fail "config.toml names resume, overwrite or config"

run --config "$work/a/config.toml" --out "$work/b"
expect 0 "validation loss:" "--config RUN/config.toml --out RUN2"
if [ -n "$(numbers "$work/a/metrics.jsonl")" ] && [ "$(numbers "$work/a/metrics.jsonl")" = "$(numbers "$work/b/metrics.jsonl")" ]; then
  ok "the repeat's metrics equal the run's ($(grep -c loss "$work/b/metrics.jsonl") lines)"
else
  fail "metrics differ: $(diff <(numbers "$work/a/metrics.jsonl") <(numbers "$work/b/metrics.jsonl") | head -4)"
fi

run --config "$work/a/config.toml" --out "$work/a" --steps 10 --resume --allow-change steps
expect 0 "resumed from .*checkpoint-00000008.bin" "--config ... --resume continues the run"
grep -q '^steps = "10"$' "$work/a/config.toml" && ok "the command line wins over the file (steps 10)" ||
  fail "steps in the rewritten config: $(grep '^steps' "$work/a/config.toml")"

printf 'batch = 2\nseq = 32\nsteps = 2\ndata = "%s"\ndevice = cpu\n' "$work/data" > "$work/run.ini"
run --config "$work/run.ini" --out "$work/c" --eval-batches 1
expect 0 "validation loss:" "an INI file"

printf 'batch = 2\nbogus_flag = 3\n' > "$work/bad.toml"
run --config "$work/bad.toml" --out "$work/d"
expect 2 "bad.toml': 'bogus-flag' is not a flag of train_llama" "a key that is no flag"
printf '[train]\nbatch = 2\n' > "$work/section.toml"
run --config "$work/section.toml" --out "$work/d"
expect 2 "sections .* are not used" "a section"
run --config "$work/none.toml" --out "$work/d"
expect 2 "none.toml': no such file" "a missing config file"
printf 'resume = maybe\n' > "$work/switch.toml"
run --config "$work/switch.toml" --out "$work/d"
expect 2 "'resume' is a switch: true or false" "a switch that is not true or false"
[ ! -e "$work/d" ] || [ -z "$(ls -A "$work/d")" ] || fail "a refused config wrote into --out: $(ls "$work/d")"

echo "config_file: $failures failure(s)"
[ "$failures" -eq 0 ]
