#!/usr/bin/env bash
# README's "Using the library" shows the essential lines of examples/library_use.cpp, which the
# build compiles: every line of that C++ block must be a line of the file (leading spaces aside),
# so the README cannot drift from code that compiles.
# Usage: readme_library_snippet.sh SOURCE_DIR
set -u
src="$1"
readme="$src/README.md"
example="$src/examples/library_use.cpp"
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$example" ] || fail "no $example"
snippet=$(awk '/^## Using the library/ {inside = 1} inside && /^```cpp/ {code = 1; next}
               code && /^```/ {exit} code {print}' "$readme")
[ -n "$snippet" ] || fail "no \`\`\`cpp block under '## Using the library' in README.md"
lines=0
while IFS= read -r line; do
  trimmed="${line#"${line%%[![:space:]]*}"}"
  [ -z "$trimmed" ] && continue
  lines=$((lines + 1))
  grep -qxF -- "$trimmed" <(sed 's/^[[:space:]]*//' "$example") ||
    fail "README line not in examples/library_use.cpp: $trimmed"
done <<< "$snippet"
echo "ok: README's $lines library lines are lines of examples/library_use.cpp"
