#!/usr/bin/env bash
# README's main command: on a fresh Debian machine, install what slm needs, build the example
# programs, turn Debian's King James Bible (package bible-kjv) into a tokenizer and token shards,
# train the `tiny` LLaMA on the CPU for a few minutes, and print a sample from it.
# Extra arguments go to train_llama (e.g. --steps 50, --device cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export PATH="/usr/local/cuda/bin:$PATH"
preset=cpu  # the demo trains on the CPU; nvcc is not needed for it
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" --target prepare_data train_llama sample

bin=build/$preset/examples
if [ ! -f data/kjv/tokens.bin ]; then
  mkdir -p data
  echo "== corpus: King James Bible from Debian's bible-kjv-text"
  bible -p /usr/lib gen1:1-rev22:21 > data/kjv.txt
  "$bin/prepare_data" --text data/kjv.txt --out data/kjv --vocab 4096
fi
echo "== training the tiny preset on the CPU"
# The demo starts over each time it runs (--overwrite), unless asked to --resume its run.
fresh=(--overwrite)
for a in "$@"; do [ "$a" = "--resume" ] && fresh=(); done
"$bin/train_llama" --preset tiny --data data/kjv --out runs/tiny "${fresh[@]}" "$@"
echo "== sample"
"$bin/sample" --checkpoint runs/tiny/checkpoint.bin --tokenizer data/kjv/tokenizer.model \
  --prompt "And God said" --tokens 60
