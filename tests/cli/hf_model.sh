#!/usr/bin/env bash
# Models by file and weights in, on real processes: train_llama --model config.json trains a GQA,
# tied-embedding shape no preset has; export_hf then --init-from continues from exactly those
# weights (f32 export: the new run's loss before its first step equals the first run's last
# validation loss, to the printed digits of metrics.jsonl); a sharded copy (index + 2 shards)
# gives the same; bad configs, directories and shards stop with the file named and exit 1, and
# contradictory flags exit 2.
# Usage: hf_model.sh BIN_DIR
set -u
bin="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

source "$(dirname "$0")/small_corpus.bash"
small_corpus "$bin" "$work" 1500 || exit 1

train() {  # train OUT [flags...]: the log in $work/last.log, the exit status in $rc
  local out="$1"
  shift
  "$bin/train_llama" --device cpu --data "$work/data" --out "$out" --batch 2 --seq 32 \
    --eval-batches 2 --log-interval 2 --warmup 2 "$@" > "$work/last.log" 2>&1
  rc=$?
}
expect() {  # expect CODE PATTERN WHAT
  if [ "$rc" -eq "$1" ] && grep -qE -- "$2" "$work/last.log"; then ok "$3 -> $rc"
  else fail "$3: exit $rc (want $1), no '$2' in: $(tail -n 3 "$work/last.log")"; fi
}
# The val_loss of metrics.jsonl's validation line at step $2 (the last one when several).
val_loss() { grep "\"step\":$2,\"val_loss\"" "$1/metrics.jsonl" | tail -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/'; }

# A GQA, tied-embedding model by config.json (the shape of a published small LLaMA, scaled down).
mkdir -p "$work/gqa"
cat > "$work/gqa/config.json" <<'EOF'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 48,
 "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 6,
 "num_key_value_heads": 2, "vocab_size": 320, "max_position_embeddings": 64,
 "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": true,
 "hidden_act": "silu", "torch_dtype": "bfloat16", "transformers_version": "4.44.0"}
EOF
train "$work/run" --model "$work/gqa/config.json" --steps 8 --eval-interval 4
expect 0 "model gqa: " "--model config.json (GQA 6/2 heads, tied) trains"
grep -q "validation loss: .* -> " "$work/last.log" || fail "no validation loss line"
last=$(val_loss "$work/run" 8)
[ -n "$last" ] && ok "step 8 validation loss $last" || fail "no step-8 validation line"

# Export (f32: lossless) and continue from it: the loss before the first step is the last one.
"$bin/export_hf" --checkpoint "$work/run/checkpoint.bin" --out "$work/hf" --dtype f32 > "$work/export.log" 2>&1 ||
  fail "export_hf: $(cat "$work/export.log")"
train "$work/cont" --init-from "$work/hf" --steps 2
expect 0 "init: weights from" "--init-from the export"
start=$(val_loss "$work/cont" 0)
[ -n "$start" ] && [ "$start" = "$last" ] && ok "--init-from starts at the exported loss ($start)" ||
  fail "--init-from starts at '$start', the exported model ended at '$last'"

# The same weights as a sharded set: index + 2 shards (split by a python3 if there is one).
if command -v python3 > /dev/null; then
  mkdir -p "$work/sharded"
  cp "$work/hf/config.json" "$work/sharded/"
  python3 - "$work/hf/model.safetensors" "$work/sharded" <<'PY'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
header.pop("__metadata__", None)
names = sorted(header)
halves = [names[: len(names) // 2], names[len(names) // 2 :]]
index = {"metadata": {}, "weight_map": {}}
for i, part in enumerate(halves):
    file = f"model-0000{i + 1}-of-00002.safetensors"
    h, blob, at = {}, b"", 0
    for name in part:
        b, e = header[name]["data_offsets"]
        h[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"], "data_offsets": [at, at + e - b]}
        blob += data[b:e]
        at += e - b
        index["weight_map"][name] = file
    text = json.dumps(h).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(f"{out}/{file}", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)
with open(f"{out}/model.safetensors.index.json", "w") as f:
    json.dump(index, f)
PY
  train "$work/cont2" --init-from "$work/sharded" --steps 2
  expect 0 "init: weights from" "--init-from a sharded set"
  [ "$(val_loss "$work/cont2" 0)" = "$last" ] && ok "sharded set: same start loss" ||
    fail "sharded set starts at '$(val_loss "$work/cont2" 0)', want '$last'"
  rm "$work/sharded/model-00002-of-00002.safetensors"
  train "$work/cont3" --init-from "$work/sharded" --steps 2
  expect 1 "names shard 'model-00002-of-00002.safetensors', which is missing" "a missing shard"
  [ ! -e "$work/cont3/checkpoint.bin" ] || fail "a failed --init-from saved a checkpoint"
else
  echo "skipped (sharded part): no python3"
fi

# Bad inputs.
sed 's/"rope_theta"/"sliding_window": 4096, "rope_theta"/' "$work/gqa/config.json" > "$work/bad.json"
train "$work/bad1" --model "$work/bad.json" --steps 2
expect 1 "field \"sliding_window\" is not one slm implements" "an unsupported config field"
echo '{"hidden_size": 48,' > "$work/broken.json"
train "$work/bad2" --model "$work/broken.json" --steps 2
expect 1 "broken.json.* is not valid JSON" "a config.json that is not JSON"
train "$work/bad3" --model "$work/gqa/config.json" --preset tiny --steps 2
expect 2 "--model and --preset both name the model" "--model with --preset"
train "$work/bad4" --init-from "$work/nothing" --steps 2
expect 2 "--init-from '.*nothing' is not a directory" "--init-from a missing directory"
train "$work/bad5" --init-from "$work/hf" --preset tiny --steps 2
expect 1 "has shape .* but this model needs" "--init-from weights of another shape"
train "$work/bad6" --init-from "$work/gqa" --steps 2
expect 1 "has neither model.safetensors nor model.safetensors.index.json" "--init-from a directory without weights"

echo "hf_model: $failures failure(s)"
[ "$failures" -eq 0 ]
