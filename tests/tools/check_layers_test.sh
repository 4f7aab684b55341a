#!/usr/bin/env bash
# tools/check_layers.py passes on this tree and fails, naming the include, on a copy with a
# deliberately wrong one of each kind: an arrow up the layers, an arrow sideways between
# siblings, a .hpp that includes a .cuh, and a header in no layer.
# Usage: check_layers_test.sh SOURCE_DIR
set -u
src=${1:?usage: check_layers_test.sh SOURCE_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if out=$(python3 "$src/tools/check_layers.py" "$src" 2>&1); then echo "ok: this tree: $out"; else
  fail "this tree: $out"; fi

# Copies the tree's headers and layer order, appends $2 to header $1, runs the check; expects
# exit 1 and output matching $3.
expect_caught() {
  rm -rf "$work/tree" && mkdir -p "$work/tree/docs"
  cp -r "$src/include" "$work/tree/include"
  cp "$src/docs/architecture.md" "$work/tree/docs/"
  mkdir -p "$(dirname "$work/tree/include/slm/$1")"
  printf '%s\n' "$2" >>"$work/tree/include/slm/$1"
  out=$(python3 "$src/tools/check_layers.py" "$work/tree" 2>&1)
  rc=$?
  if [ "$rc" -eq 1 ] && grep -q -- "$3" <<<"$out"; then echo "ok: caught ($1): $(head -1 <<<"$out")"
  else fail "$1 + '$2': exit $rc, expected 1 and '$3' in: $out"; fi
}
expect_caught core/config.hpp '#include "slm/train/trainer.hpp"' \
  "include/slm/core/config.hpp:[0-9]*: core (layer 0) includes slm/train/trainer.hpp, from train (layer [0-9]*): a layer above it"
expect_caught cpu/rmsnorm.hpp '#include "slm/cuda/gemm_choices.hpp"' "a sibling on its own layer"
expect_caught model/llama.hpp '#include "slm/cuda/check.cuh"' "a .cuh, from a .hpp"
expect_caught newfolder/thing.hpp '#include "slm/core/error.hpp"' "include/slm/newfolder/thing.hpp: in no layer"

# A layer block that is missing is bad input (exit 2), not a pass.
rm -rf "$work/tree" && mkdir -p "$work/tree/docs" && cp -r "$src/include" "$work/tree/include"
echo "no layers here" >"$work/tree/docs/architecture.md"
python3 "$src/tools/check_layers.py" "$work/tree" >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then echo "ok: no layer block: exit 2"; else fail "no layer block: exit $rc, expected 2"; fi

[ "$failures" -eq 0 ] && echo "all layering checks passed" || { echo "$failures failure(s)"; exit 1; }
