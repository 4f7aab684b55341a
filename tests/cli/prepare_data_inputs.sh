#!/usr/bin/env bash
# prepare_data's inputs beyond --text: JSON Lines (plain and gzip, mixed with text), nanoGPT raw
# uint16 and llm.c token files. Good input exits 0 with the shards expected (gzip = plain, byte
# for byte; token files without a tokenizer.model, and train_llama trains on them); a usage
# problem exits 2 and writes nothing; bad data exits 1 naming the file (and line or offset) and
# leaves the previous set in --out byte for byte. --config: DIR/config.toml repeats a call, list
# keys, the command line wins, bad files exit 2.
# Usage: prepare_data_inputs.sh BIN_DIR (train_llama is expected beside prepare_data)
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
sums() { (cd "$1" && sha256sum tokenizer.model tokens*.bin 2>/dev/null); }

# expect CODE PATTERN -- command...: the exit code, and PATTERN (grep -E) in its output.
expect() {
  local code="$1" pattern="$2"
  shift 3
  "$@" > "$work/log" 2>&1
  local got=$?
  if [ "$got" -ne "$code" ] || ! grep -qE -- "$pattern" "$work/log"; then
    fail "'$*' exited $got (want $code, output matching '$pattern'): $(tail -3 "$work/log")"
  else
    ok "'${*##*/}' -> $got"
  fi
}

for i in $(seq 1 1500); do
  echo "{\"id\": $i, \"text\": \"the $((i % 17)) quick brown foxes\\njump over $((i % 13)) lazy dogs while $((i % 7)) cats sleep\"}"
  [ $((i % 100)) -eq 0 ] && echo ""  # empty lines are skipped
done > "$work/a.jsonl"
gzip -c "$work/a.jsonl" > "$work/a.jsonl.gz"
for i in $(seq 1 500); do echo "a different text $i of other words, numbers $((i * 7)) and signs"; done > "$work/b.txt"

# JSONL in: a tokenizer trained on it, shards; gzip gives the same bytes; text and JSONL mix.
expect 0 "tokens +[0-9]+ from" -- "$bin/prepare_data" --jsonl "$work/a.jsonl" --out "$work/data" --vocab 300
[ -f "$work/data/tokenizer.model" ] && [ -f "$work/data/tokens.bin" ] && [ -f "$work/data/config.toml" ] &&
  [ "$(ls "$work/data" | grep -vc '^tokenizer\.\(model\|vocab\)$\|^tokens\.bin$\|^config\.toml$')" = 0 ] &&
  ok "--jsonl wrote tokenizer.model, tokens.bin and config.toml, nothing else" || fail "--jsonl output: $(ls "$work/data")"
expect 0 "tokens" -- "$bin/prepare_data" --jsonl "$work/a.jsonl.gz" --out "$work/gz" --tokenizer "$work/data/tokenizer.model"
cmp -s "$work/gz/tokens.bin" "$work/data/tokens.bin" && ok "a .jsonl.gz gives the plain file's tokens byte for byte" ||
  fail "the .jsonl.gz tokens differ from the plain file's"
cp "$work/a.jsonl.gz" "$work/renamed.data"
expect 0 "tokens" -- "$bin/prepare_data" --jsonl "$work/renamed.data" --out "$work/renamed" --tokenizer "$work/data/tokenizer.model"
cmp -s "$work/renamed/tokens.bin" "$work/data/tokens.bin" && ok "gzip found by its magic bytes too" || fail "renamed gzip differs"
expect 0 "tokens" -- "$bin/prepare_data" --text "$work/b.txt" --jsonl "$work/a.jsonl.gz" --out "$work/mixed" --vocab 300
[ "$(stat -c %s "$work/mixed/tokens.bin")" -gt "$(stat -c %s "$work/data/tokens.bin")" ] &&
  ok "--text and --jsonl mix" || fail "mixed output is not larger than the JSONL alone"

# Usage problems: exit 2, no --out made.
expect 2 "--out is required" -- "$bin/prepare_data" --jsonl "$work/a.jsonl"
expect 2 "--field applies to --jsonl" -- "$bin/prepare_data" --text "$work/b.txt" --field body --out "$work/u"
expect 2 "--raw-uint16 needs --vocab" -- "$bin/prepare_data" --raw-uint16 "$work/r.bin" --out "$work/u"
expect 2 "do not mix" -- "$bin/prepare_data" --jsonl "$work/a.jsonl" --llmc "$work/l.bin" --out "$work/u"
expect 2 "--tokenizer applies to text" -- "$bin/prepare_data" --llmc "$work/l.bin" --tokenizer "$work/data/tokenizer.model" --out "$work/u"
expect 2 "--jsonl needs a value" -- "$bin/prepare_data" --out "$work/u" --jsonl
expect 2 "unknown flag '--bogus'" -- "$bin/prepare_data" --jsonl "$work/a.jsonl" --out "$work/u" --bogus
expect 2 "--vocab 'x' is not a positive integer" -- "$bin/prepare_data" --llmc "$work/l.bin" --vocab x --out "$work/u"
[ ! -e "$work/u" ] && ok "usage errors created no --out" || fail "a usage error created --out"

# Bad JSONL: exit 1, FILE:LINE: reason, the previous set untouched (with a tokenizer trained
# first, and with --tokenizer, where the bad line is met while encoding).
before=$(sums "$work/data")
{ head -2 "$work/a.jsonl"; echo '{"text": "cut off'; } > "$work/bad.jsonl"
expect 1 "bad.jsonl:3: not valid JSON" -- "$bin/prepare_data" --jsonl "$work/bad.jsonl" --out "$work/data" --vocab 300
{ cat "$work/a.jsonl"; echo '{"body": "x"}'; } > "$work/field.jsonl"
expect 1 "field.jsonl:1516: no \"text\" field" -- "$bin/prepare_data" --jsonl "$work/field.jsonl" --out "$work/data" --tokenizer "$work/data/tokenizer.model"
expect 1 "field.jsonl:1: no \"body\" field" -- "$bin/prepare_data" --jsonl "$work/field.jsonl" --field body --out "$work/data" --vocab 300
{ head -3 "$work/a.jsonl"; echo '{"text": 7}'; } | gzip -c > "$work/number.jsonl.gz"
expect 1 "number.jsonl.gz:4: field \"text\" is a number" -- "$bin/prepare_data" --jsonl "$work/number.jsonl.gz" --out "$work/data" --vocab 300
expect 1 "missing.jsonl" -- "$bin/prepare_data" --jsonl "$work/missing.jsonl" --out "$work/data" --vocab 300
[ "$(sums "$work/data")" = "$before" ] && ok "failed calls left the previous set as it was" || fail "a failed call changed --out"

# Token files: 20000 tokens below 4096, as nanoGPT's raw uint16 and as an llm.c shard.
perl -e 'print pack("v*", map { ($_ * 7919) % 4096 } 0 .. 19999)' > "$work/r.bin"
perl -e 'print pack("l<256", 20240520, 1, 20000, (0) x 253), pack("v*", map { ($_ * 7919) % 4096 } 0 .. 19999)' > "$work/l.bin"
expect 0 "vocabulary 4096 \(--vocab\)" -- "$bin/prepare_data" --raw-uint16 "$work/r.bin" --vocab 4096 --out "$work/raw"
expect 0 "vocabulary 50257 \(GPT-2's" -- "$bin/prepare_data" --llmc "$work/l.bin" --out "$work/llmc"
grep -q "note: no preset has a vocabulary of 50257" "$work/log" && ok "says no preset takes GPT-2's vocabulary" || fail "no note on the preset vocabularies"
expect 0 "vocabulary 4096" -- "$bin/prepare_data" --llmc "$work/l.bin" --raw-uint16 "$work/r.bin" --vocab 4096 --out "$work/both"
[ ! -e "$work/raw/tokenizer.model" ] && [ "$(stat -c %s "$work/raw/tokens.bin")" = $((40 + 40000)) ] &&
  ok "raw uint16 -> tokens.bin of 20000 tokens, no tokenizer.model" || fail "raw output: $(ls -l "$work/raw")"
tail -c 40000 "$work/raw/tokens.bin" | cmp -s - "$work/r.bin" && tail -c 40000 "$work/llmc/tokens.bin" | cmp -s - "$work/r.bin" &&
  ok "the shards hold the input tokens unchanged" || fail "the shards' tokens differ from the input"
[ "$(stat -c %s "$work/both/tokens.bin")" = $((40 + 80000)) ] && ok "--llmc and --raw-uint16 mix" || fail "mixed token files"

# Bad token files: exit 1, the file and the reason named, the previous set untouched.
before=$(sums "$work/raw")
head -c 39999 "$work/r.bin" > "$work/odd.bin"
expect 1 "odd.bin' has an odd size" -- "$bin/prepare_data" --raw-uint16 "$work/odd.bin" --vocab 4096 --out "$work/raw"
expect 1 "r.bin' has token 40[0-9][0-9] at byte offset [0-9]+ .* not below the vocabulary 4000" -- "$bin/prepare_data" --raw-uint16 "$work/r.bin" --vocab 4000 --out "$work/raw"
expect 1 "r.bin' has magic" -- "$bin/prepare_data" --llmc "$work/r.bin" --out "$work/raw"
perl -e 'print pack("l<256", 20240520, 2, 10, (0) x 253), pack("v*", 1 .. 10)' > "$work/v2.bin"
expect 1 "v2.bin' has version 2" -- "$bin/prepare_data" --llmc "$work/v2.bin" --out "$work/raw"
head -c 2048 "$work/l.bin" > "$work/cut.bin"
expect 1 "cut.bin' is 2048 bytes, but its header's 20000 tokens need 41024" -- "$bin/prepare_data" --llmc "$work/cut.bin" --out "$work/raw"
[ "$(sums "$work/raw")" = "$before" ] && ok "failed token conversions left the previous set as it was" || fail "a failed conversion changed --out"

# A token set replaces a text set whole: no stale tokenizer.model beside tokens it did not make.
expect 0 "tokens" -- "$bin/prepare_data" --raw-uint16 "$work/r.bin" --vocab 4096 --out "$work/mixed"
[ ! -e "$work/mixed/tokenizer.model" ] && ok "the old tokenizer.model went with the old set" || fail "a stale tokenizer.model stayed"

# train_llama needs no tokenizer: it trains on the converted tokens, and refuses a vocabulary
# larger than its preset's, saying so.
expect 0 "validation loss:" -- "$bin/train_llama" --device cpu --data "$work/raw" --out "$work/run" \
  --steps 2 --batch 2 --seq 32 --eval-batches 1
expect 1 "vocabulary \(50257\) is larger than model tiny's.*--model config.json" -- "$bin/train_llama" --device cpu --data "$work/llmc" \
  --out "$work/run2" --steps 2 --batch 2 --seq 32 --eval-batches 1

# --config: DIR/config.toml repeats the call (the same bytes); a list key gives several inputs in
# order; the command line replaces a key of the file; bad files exit 2 naming file and key.
# (tokenizer.model records the paths it was trained from, so the pieces are compared instead.)
same() { (cd "$1" && sha256sum tokenizer.vocab tokens*.bin 2>/dev/null); }
expect 0 "tokens" -- "$bin/prepare_data" --text "$work/b.txt" --jsonl "$work/a.jsonl" --field text --out "$work/cfg1" --vocab 300
grep -q '^text = \[".*b.txt"\]$' "$work/cfg1/config.toml" && grep -q '^vocab = "300"$' "$work/cfg1/config.toml" &&
  ok "config.toml records the inputs and the vocabulary" || fail "config.toml: $(cat "$work/cfg1/config.toml")"
expect 0 "tokens" -- "$bin/prepare_data" --config "$work/cfg1/config.toml" --out "$work/cfg2"
[ -n "$(same "$work/cfg1")" ] && [ "$(same "$work/cfg1")" = "$(same "$work/cfg2")" ] &&
  ok "--config DIR/config.toml makes the same tokenizer and shards" || fail "--config repeat differs"
printf 'text = ["%s", "%s"]\nout = "%s"\nvocab = 300\n' "$work/b.txt" "$work/b.txt" "$work/cfg3" > "$work/two.toml"
expect 0 "tokens" -- "$bin/prepare_data" --config "$work/two.toml"
expect 0 "tokens" -- "$bin/prepare_data" --text "$work/b.txt" --text "$work/b.txt" --out "$work/cfg4" --vocab 300
[ -n "$(same "$work/cfg3")" ] && [ "$(same "$work/cfg3")" = "$(same "$work/cfg4")" ] && ok "a list key = the flag repeated" || fail "list key differs from repeated flags"
expect 0 "vocab 320" -- "$bin/prepare_data" --config "$work/two.toml" --vocab 320 --out "$work/cfg5"
grep -q '^vocab = "320"$' "$work/cfg5/config.toml" && ok "the command line wins over the file" || fail "vocab in cfg5: $(grep vocab "$work/cfg5/config.toml")"
printf 'txt = "a"\n' > "$work/bad.toml"
expect 2 "bad.toml': 'txt' is not a flag of prepare_data" -- "$bin/prepare_data" --config "$work/bad.toml" --out "$work/cfg6"
printf 'vocab = [1, 2]\ntext = "a"\n' > "$work/bad2.toml"
expect 2 "'vocab' takes one value" -- "$bin/prepare_data" --config "$work/bad2.toml" --out "$work/cfg6"
expect 2 "none.toml': no such file" -- "$bin/prepare_data" --config "$work/none.toml" --out "$work/cfg6"
[ ! -e "$work/cfg6" ] && ok "refused configs wrote nothing" || fail "a refused config wrote $work/cfg6"

[ "$failures" -eq 0 ] && echo "all prepare_data input checks passed" || { echo "$failures failure(s)"; exit 1; }
