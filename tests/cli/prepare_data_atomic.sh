#!/usr/bin/env bash
# prepare_data is all or nothing: the tokenizer and the shards of one call appear in --out
# together; a call that fails (an unreadable text) or is killed while encoding leaves the
# previous set byte for byte, and the next call removes what the killed one left; an --out
# holding files prepare_data did not write is refused (exit 1) and left alone.
# Usage: prepare_data_atomic.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
sums() { (cd "$1" && sha256sum tokenizer.model tokens*.bin 2>/dev/null); }

for i in $(seq 1 3000); do
  echo "the $((i % 17)) quick brown foxes jump over $((i % 13)) lazy dogs while $((i % 7)) cats sleep"
done > "$work/a.txt"
for i in $(seq 1 3000); do echo "a different text $i of other words, numbers $((i * 7)) and signs"; done > "$work/b.txt"

"$bin/prepare_data" --text "$work/a.txt" --out "$work/data" --vocab 300 > "$work/log" 2>&1 || fail "first call: $(tail -2 "$work/log")"
before=$(sums "$work/data")
[ -n "$before" ] && [ -f "$work/data/tokens.bin" ] && ok "first call wrote tokenizer and shard" || fail "first call wrote nothing"

# A failing call (the second text is missing) changes nothing.
"$bin/prepare_data" --text "$work/b.txt" --text "$work/missing.txt" --out "$work/data" --vocab 300 > "$work/log" 2>&1
status=$?
[ "$status" -eq 1 ] || fail "a call with a missing text exited $status (want 1)"
[ "$(sums "$work/data")" = "$before" ] && ok "a failed call left the previous set as it was" || fail "a failed call changed --out"

# A call killed while it works changes nothing; the next call cleans up after it.
"$bin/prepare_data" --text "$work/b.txt" --out "$work/data" --vocab 300 > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -d "$work/data.tmp.$pid" ] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
[ "$(sums "$work/data")" = "$before" ] && ok "a killed call left the previous set as it was" || fail "a killed call changed --out"
"$bin/prepare_data" --text "$work/b.txt" --out "$work/data" --vocab 300 > "$work/log" 2>&1 || fail "the call after the kill failed"
if [ -d "$work/data.tmp.$pid" ]; then fail "the killed call's staging directory is still there"
else ok "the next call removed the killed call's staging directory (if it had one)"; fi
after=$(sums "$work/data")
[ -n "$after" ] && [ "$after" != "$before" ] && ok "a complete call replaced the set" || fail "the complete call did not replace the set"

# A directory with other files is refused, untouched.
mkdir -p "$work/mine" && echo keep > "$work/mine/notes.txt"
"$bin/prepare_data" --text "$work/a.txt" --out "$work/mine" --vocab 300 > "$work/log" 2>&1
status=$?
[ "$status" -eq 1 ] && grep -q "holds notes.txt, which this program did not write" "$work/log" ||
  fail "an --out with other files: exit $status: $(tail -1 "$work/log")"
[ "$(ls "$work/mine")" = "notes.txt" ] && ok "an --out with other files is refused and left alone" || fail "--out with other files was changed"

[ "$failures" -eq 0 ] && echo "all prepare_data checks passed" || { echo "$failures failure(s)"; exit 1; }
