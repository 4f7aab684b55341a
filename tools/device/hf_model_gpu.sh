#!/usr/bin/env bash
# Issue #32's GPU check of models by file and weights in, in one device call:
#
#   1. train   train_llama --device cuda --model config.json: a GQA, tied-embedding LLaMA no preset
#              has (the shape of a published 135M SLM: 30 layers, hidden 576, 9 heads of 64, 3 KV
#              heads, FFN 1536, vocab 49152, tied) trains on real text; its validation loss must
#              fall by at least MIN_DROP (default 1.0 nats) from step 0 to the end.
#   2. parity  that checkpoint in transformers (tools/hf_parity.py, as parity.sh runs it): our CPU
#              fp32 dump against HF float32, and our CUDA bf16 dump (fp32 residual stream) against
#              HF autocast(bf16): the same logits and loss, and our gradients at least as close to
#              the fp32 truth as HF's (tools/device/autocast_verdict.py says why); and
#              export_hf's bf16 export is byte for byte the file HF was given.
#   3. resume  export_hf --dtype f32, then train_llama --init-from that export: the new run's
#              validation loss before its first step equals the first run's last one (same
#              validation batches; printed digits of metrics.jsonl), and it keeps training.
#
#   tools/device/hf_model_gpu.sh          # DATA (data/kjv: prepare_data's shards), STEPS (200)
#   DEVICE=cpu SMALL=1 STEPS=20 MIN_DROP=0.5 BUILD=build/cuda NO_BUILD=1 tools/device/hf_model_gpu.sh
#                                         # a dry run of the script here: a 2-layer model of the
#                                         # same kind on the CPU; the parity step needs the GPU
#                                         # machine's transformers and is skipped without it
#
# Carry build/deps (tools/device/deps.sh) and the data directory. Logs go to $OUT (or
# build/device/logs); a table is printed last. Exit 0 when all three hold, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build="${BUILD:-build/device}"
logs="${OUT:-$build/logs}"
data="${DATA:-data/kjv}"
steps="${STEPS:-200}"
min_drop="${MIN_DROP:-1.0}"
device="${DEVICE:-cuda}"
# The 135M shape, or (SMALL=1) a 2-layer model with the same GQA 3:1 and tied embedding.
layers=30 hidden=576 ffn=1536 seq=512
[ -n "${SMALL:-}" ] && layers=2 hidden=144 ffn=384 seq=64
mkdir -p "$logs"
[ -f "$data/tokens.bin" ] || [ -f "$data/tokens_000.bin" ] || { echo "hf_model_gpu.sh: no token shards in $data (carry it)"; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/slm-hf-model.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ -z "${NO_BUILD:-}" ] && ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a &&
       cmake --build "$build" -j "$(nproc)" --target train_llama export_hf parity_dump; } > "$logs/build.log" 2>&1; then
  grep -E "error|FAILED" "$logs/build.log" | head -n 40
  echo "hf_model_gpu.sh: build FAILED (log: $logs/build.log)"
  exit 1
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
bin=$build/examples
status=0
declare -a rows

mkdir -p "$work/smol"
cat > "$work/smol/config.json" <<EOF
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": $hidden,
 "intermediate_size": $ffn, "num_hidden_layers": $layers, "num_attention_heads": 9,
 "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 2048,
 "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": true,
 "hidden_act": "silu", "torch_dtype": "bfloat16"}
EOF
cp "$work/smol/config.json" "$logs/config.json"
val_loss() { grep "\"step\":$2,\"val_loss\"" "$1/metrics.jsonl" | tail -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/'; }
train=("$bin/train_llama" --device "$device" --data "$data" --batch 16 --seq "$seq" --log-interval 20 --eval-batches 8)

# 1. train from config.json
"${train[@]}" --model "$work/smol/config.json" --out "$work/run" --steps "$steps" --eval-interval 50 \
  > "$logs/train.log" 2>&1
rc=$?
cp "$work/run/metrics.jsonl" "$logs/train_metrics.jsonl" 2>/dev/null
first=$(val_loss "$work/run" 0) last=$(val_loss "$work/run" "$steps")
tps=$(grep -o '"tokens_per_s":[0-9.e+]*' "$work/run/metrics.jsonl" 2>/dev/null | tail -1 | cut -d: -f2)
if [ "$rc" -eq 0 ] && [ -n "$first" ] && [ -n "$last" ] &&
   python3 -c "import sys; sys.exit(0 if float('$first') - float('$last') >= $min_drop else 1)"; then
  rows+=("train   PASS  val loss $first (step 0) -> $last (step $steps), ${tps:-?} tokens/s")
else
  rows+=("train   FAIL  exit $rc, val loss '$first' -> '$last' (want a drop >= $min_drop; log train.log)")
  status=1
  tail -n 20 "$logs/train.log"
fi
grep -E "^model|parameters" "$logs/train.log" | head -n 3

# 2. the trained model in transformers
parity_ok=1
if [ "$device" = cuda ] && python3 -c "import transformers" 2> /dev/null; then
"$bin/parity_dump" --checkpoint "$work/run/checkpoint.bin" --device cpu --dtype bf16 --seq 256 \
  --out "$work/cpu" > "$logs/dump_cpu.log" 2>&1 || parity_ok=0
"$bin/parity_dump" --checkpoint "$work/run/checkpoint.bin" --device cuda --dtype bf16 --residual fp32 \
  --seq 256 --out "$work/cuda" > "$logs/dump_cuda.log" 2>&1 || parity_ok=0
"$bin/export_hf" --checkpoint "$work/run/checkpoint.bin" --out "$work/hf_bf16" --dtype bf16 \
  > "$logs/export_bf16.log" 2>&1 || parity_ok=0
cat "$logs/dump_cpu.log" "$logs/dump_cuda.log"
same_file=no
cmp -s "$work/hf_bf16/model.safetensors" "$work/cpu/model.safetensors" && same_file=yes
python3 tools/hf_parity.py "$work/cpu" --dtype float32 --json "$logs/parity_fp32.json" \
  > "$logs/parity_fp32.log" 2>&1 || parity_ok=0
python3 tools/hf_parity.py "$work/cuda" --truth "$work/cpu" --autocast --json "$logs/parity_autocast.json" \
  > "$logs/parity_autocast.log" 2>&1
# In bf16 the judge is the fp32 truth: logits and loss within tolerance of HF's, and our largest
# gradient error against the truth no larger than the tolerance or than HF autocast's own. Two bf16 implementations each off the truth
# by their own rounding can differ from each other by more than either differs from it: here
# (2026-12-07, H100) 9 of 544 gradient rows of ours vs HF autocast were above 0.05 while ours vs
# the truth reached 0.148 at most and HF vs the truth 0.345, so ours vs HF alone is not the test.
python3 tools/device/autocast_verdict.py "$logs/parity_autocast.json" || parity_ok=0
tail -n 12 "$logs/parity_fp32.log" "$logs/parity_autocast.log"
summary() {  # the ours-vs-HF numbers of one hf_parity.py --json file
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['ours_vs_hf']; f=lambda x: '-' if x is None else f'{x:.2e}'; print(f\"logits {f(s['logits'])} loss {f(s['loss'])} grad {f(s['grad_max'])}\")" "$1" 2>/dev/null || echo "no result"
}
if [ "$parity_ok" -eq 1 ] && [ "$same_file" = yes ]; then
  rows+=("parity  PASS  fp32 vs HF float32: $(summary "$logs/parity_fp32.json"); cuda bf16 vs HF autocast: $(summary "$logs/parity_autocast.json"); export_hf file = HF's file")
else
  rows+=("parity  FAIL  (export_hf file = HF's file: $same_file; logs parity_*.log, dump_*.log)")
  status=1
fi
else
  rows+=("parity  skipped: it needs --device cuda and python3 with transformers (the GPU machine)")
fi

# 3. --init-from the f32 export continues at the same loss
"$bin/export_hf" --checkpoint "$work/run/checkpoint.bin" --out "$work/hf_f32" --dtype f32 \
  > "$logs/export_f32.log" 2>&1
"${train[@]}" --init-from "$work/hf_f32" --out "$work/cont" --steps 40 --eval-interval 20 \
  > "$logs/continue.log" 2>&1
rc=$?
cp "$work/cont/metrics.jsonl" "$logs/continue_metrics.jsonl" 2>/dev/null
start=$(val_loss "$work/cont" 0) end=$(val_loss "$work/cont" 40)
if [ "$rc" -eq 0 ] && [ -n "$start" ] && [ "$start" = "$last" ]; then
  rows+=("resume  PASS  --init-from starts at val loss $start (first run ended at $last), step 40: $end")
else
  rows+=("resume  FAIL  exit $rc: --init-from starts at '$start', the first run ended at '$last' (log continue.log)")
  status=1
  tail -n 20 "$logs/continue.log"
fi

echo
echo "hf_model_gpu: config.json model ($layers x $hidden, 9/3 heads, vocab 49152, tied) on $device, $steps steps, batch 16 x $seq"
for r in "${rows[@]}"; do echo "$r"; done
exit "$status"
