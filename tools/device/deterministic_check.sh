#!/usr/bin/env bash
# The deterministic backward's whole check in one call: tools/device/attention_check.sh (the
# attention GPU tests, then attention_table.sh, whose last column is the deterministic mode's
# forward+backward over the default's), while train_step_cuda builds beside it in build/step;
# then the training step of llama_100m (micro-batch 16 and 32, seq 2048) with `flash` and
# `flash_deterministic`, what repeatable bits cost a whole step. Carry build/deps.
#
#   tools/device/deterministic_check.sh       # about 6 minutes; logs under $OUT
#
# Exit status: attention_check.sh's when it failed (the table fails where ours is below FA2, as
# at head_dim 32), else 1 when the step benchmark failed. The step runs either way.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
source tools/device/build_tree.bash
build_tree . build/step step train_step_cuda -DCMAKE_CUDA_ARCHITECTURES=90a > "$logs/step-build.txt" 2>&1 &
builder=$!
tools/device/attention_check.sh
status=$?
wait "$builder" || { cat "$logs/step-build.txt"; exit 1; }
build/step/benchmarks/train_step_cuda \
  --benchmark_filter='^train_step/(flash|flash_deterministic)/llama_100m/batch:(16|32)/' \
  > "$logs/step.log" 2>&1 || { tail -n 20 "$logs/step.log"; exit 1; }
grep "^train_step" "$logs/step.log"
exit $status
