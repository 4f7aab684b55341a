#!/usr/bin/env bash
# What storing the FFN padded to a multiple of 8 (ModelConfig::ffn_padded) buys, in one call on
# one GPU: train_llama built from an older source tree (FFN stored at its own width) and from
# this one train the paper_500m shape (15 x 1536, 24 heads, vocab 32000, untied, seq 1024) by
# config.json at FFN 4147 (the paper's floor(2.7 hidden), off a multiple of 8) and at 4152
# (aligned), micro-batch 16, on the same token shards; tokens/s is the median of the progress
# lines after the first. Before the change, 4147 ran at about half the speed of 4152 (78K
# against 152K tokens/s on an H100, 2026-12-07); with it, 4147 should run like 4152.
#
#   git archive <old commit> | tar -x -C build/old-src      # on the machine with git
#   tools/device/ffn_padding_before_after.sh build/old-src   # on the GPU machine (carry it there)
#
# Environment: DATA (data/kjv: prepare_data's shards), STEPS (40), NEW_BUILD (build/device: a
# build directory of this tree with train_llama, built here when missing). Logs go to $OUT (or
# build/device/logs); a table is printed last. Exit 0 when every run trained, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tools/device/build_tree.bash
require_old_tree "$@"
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
data="${DATA:-data/kjv}" steps="${STEPS:-40}" new_build="${NEW_BUILD:-build/device}"
mkdir -p "$logs"
work="$(mktemp -d "${TMPDIR:-/tmp}/slm-ffn.XXXXXX")"
trap 'rm -rf "$work"' EXIT

old_build="$(realpath -m build/before-after/old-train)"
build_tree "$old_src" "$old_build" before train_llama -DCMAKE_CUDA_ARCHITECTURES=90a &
old_pid=$!
build_tree . "$new_build" after train_llama -DCMAKE_CUDA_ARCHITECTURES=90a || exit 1
wait "$old_pid" || exit 1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name --format=csv,noheader

status=0
declare -a rows
for ffn in 4147 4152; do
  mkdir -p "$work/ffn$ffn"
  cat > "$work/ffn$ffn/config.json" <<EOF
{"hidden_size": 1536, "intermediate_size": $ffn, "num_hidden_layers": 15,
 "num_attention_heads": 24, "num_key_value_heads": 24, "vocab_size": 32000,
 "max_position_embeddings": 1024, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
 "tie_word_embeddings": false, "model_type": "llama", "architectures": ["LlamaForCausalLM"]}
EOF
  for tree in before after; do
    bin="$old_build/examples/train_llama"
    [ "$tree" = after ] && bin="$new_build/examples/train_llama"
    out="$work/$tree-$ffn"
    "$bin" --device cuda --model "$work/ffn$ffn/config.json" --data "$data" --out "$out" \
      --batch 16 --seq 1024 --steps "$steps" --log-interval 5 --eval-interval 0 --eval-batches 1 \
      --checkpoint-interval 0 --checkpoint-minutes 0 > "$logs/$tree-$ffn.log" 2>&1
    rc=$?
    cp "$out/metrics.jsonl" "$logs/$tree-$ffn.metrics.jsonl" 2> /dev/null
    tps=$(python3 - "$out/metrics.jsonl" <<'PY' 2>/dev/null
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_s"' in l]
rates = [l["tokens_per_s"] for l in lines][1:]  # the first window holds the warm-up
loss = [l["loss"] for l in lines if "loss" in l]
print(f"{statistics.median(rates):.0f} {loss[-1]:.4f}")
PY
)
    if [ "$rc" -ne 0 ] || [ -z "$tps" ]; then
      status=1
      rows+=("$tree  FFN $ffn  FAILED (exit $rc; log $tree-$ffn.log)")
      tail -n 5 "$logs/$tree-$ffn.log"
    else
      rows+=("$tree  FFN $ffn  ${tps% *} tokens/s  (loss at step $steps: ${tps#* })")
    fi
  done
done
echo
echo "ffn_padding_before_after: paper_500m shape, micro-batch 16 x seq 1024, $steps steps, median tokens/s"
for r in "${rows[@]}"; do echo "$r"; done
exit "$status"
