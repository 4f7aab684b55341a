#!/usr/bin/env bash
# Issue #15 on a machine with two GPUs (nvidia-h100-x2 / nvidia-h200-x2), in stages that each fit
# one device call:
#
#   tools/device/two_gpu.sh weights     # 2-GPU ctest cases (NCCL collectives, dead peer), then
#                                       # 5 steps of llama_100m: Single on GPU 0 against Ddp,
#                                       # Zero<1>, Zero<2>, Zero<3> on both GPUs (--nproc 2), Ddp
#                                       # under mpirun -np 2 and Zero<2> under a torchrun-style
#                                       # environment set by hand; checkpoint_diff on the weights
#   tools/device/two_gpu.sh peer P MB   # the PyTorch peer at preset P, micro-batch MB per GPU:
#                                       # DDP and FSDP2 through torchrun (tools/peer_train_step.py)
#   STUDY_GPUS=2 tools/study.sh         # the sweep at 2 GPUs (Ddp, Zero<2>, Zero<3>) after the
#                                       # single-GPU grid, each point after its frozen prediction
#   tools/device/two_gpu.sh summary     # scaling efficiency, memory per policy and ours against
#                                       # the peer, from runs/sweep/sweep.jsonl and the peer JSON
#
# Environment: PRESET (llama_100m), STEPS (5), BATCH (16: the global batch; 8 per GPU on two),
# DATA (data/study), DEVICE (cuda; cpu runs the weights stage over MPI ranks, to try the script),
# TOLERANCE (2e-2: bf16 compute, the sums' order differs across ranks). Logs and JSON go to $OUT
# (or build/device/logs). Exit status: non-zero when a check failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
stage="${1:?usage: two_gpu.sh weights | peer PRESET MICRO_BATCH | summary}"
preset="${PRESET:-llama_100m}" steps="${STEPS:-5}" batch="${BATCH:-16}"
data="${DATA:-data/study}" device="${DEVICE:-cuda}" tolerance="${TOLERANCE:-2e-2}"
export PATH="/usr/local/cuda/bin:$PATH" NCCL_NVLS_ENABLE=0
build=build/device
logs="${OUT:-$build/logs}"
mkdir -p "$logs"
mpirun=(mpirun --bind-to none -x NCCL_NVLS_ENABLE)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
[ "$device" = cpu ] && mpirun+=(--oversubscribe)
status=0

build_targets() {
  local cuda=(-DCMAKE_CUDA_ARCHITECTURES=90a)
  [ "$device" = cpu ] && cuda=(-DSLM_ENABLE_CUDA=OFF)
  if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda[@]}" > "$logs/configure.log" 2>&1 &&
         cmake --build "$build" -j "$(nproc)" --target "$@" > "$logs/build.log" 2>&1; }; then
    grep -E "error|FAILED" "$logs/build.log" | head -n 20
    echo "two_gpu.sh: build FAILED (log: $logs/build.log)"
    exit 1
  fi
}

train() {  # NAME, then the launcher words before train_llama, then "--" and its extra flags
  local name=$1
  shift
  local launcher=()
  while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
  shift
  local out="runs/two_gpu/$name"
  rm -rf "$out"
  "${launcher[@]}" "$build/examples/train_llama" --preset "$preset" --data "$data" \
    --device "$device" --steps "$steps" --warmup 1 --lr 3e-4 --eval-interval 0 --eval-batches 2 \
    --checkpoint-interval 0 --log-interval 1 --out "$out" "$@" > "$logs/train-$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc: $(grep -h '^validation loss:' "$logs/train-$name.log")"
  [ "$rc" -eq 0 ] || { tail -n 15 "$logs/train-$name.log"; status=1; }
}

case "$stage" in
weights)
  targets=(train_llama checkpoint_diff)
  [ "$device" = cuda ] && targets+=(slm_mpi_launch_nccl_two_ranks)
  build_targets "${targets[@]}"
  if [ "$device" = cuda ]; then
    ctest --test-dir "$build" -R "^nccl: " --output-on-failure > "$logs/ctest-2gpu.log" 2>&1 || status=1
    grep -E "tests passed|Passed|Failed|Skipped" "$logs/ctest-2gpu.log" | tail -n 5
  fi
  half=$((batch / 2))
  one=(env)
  [ "$device" = cuda ] && one=(env CUDA_VISIBLE_DEVICES=0)
  train single "${one[@]}" -- --batch "$batch"
  for policy in ddp zero1 zero2 zero3; do
    train "$policy" env -- --batch "$half" --parallel "$policy" --nproc 2
  done
  train ddp-mpirun "${mpirun[@]}" -np 2 -- --batch "$half" --parallel ddp
  if [ "$device" = cuda ]; then  # torchrun's variables, set by hand (what torchrun itself sets)
    port=$((29500 + RANDOM % 1000))
    for r in 1 0; do
      RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        "$build/examples/train_llama" --preset "$preset" --data "$data" --steps "$steps" \
        --warmup 1 --lr 3e-4 --eval-interval 0 --eval-batches 2 --checkpoint-interval 0 \
        --batch "$half" --parallel zero2 --out "runs/two_gpu/zero2-env" \
        > "$logs/train-zero2-env-rank$r.log" 2>&1 &
    done
    wait || status=1
    echo "zero2-env: $(grep -h '^validation loss:' "$logs/train-zero2-env-rank0.log")"
  fi
  for run in runs/two_gpu/*/; do
    name=$(basename "$run")
    [ "$name" = single ] && continue
    echo "== $name against single (weights after $steps steps)"
    "$build/examples/checkpoint_diff" --a "$run/checkpoint.bin" --b runs/two_gpu/single/checkpoint.bin \
      --tolerance "$tolerance" > "$logs/diff-$name.log" 2>&1 || status=1
    tail -n 4 "$logs/diff-$name.log"
  done
  ;;
peer)
  p="${2:?usage: two_gpu.sh peer PRESET MICRO_BATCH}" mb="${3:?usage: two_gpu.sh peer PRESET MICRO_BATCH}"
  build_targets train_llama  # the peer reads our presets from its --list-names
  export SLM_TRAIN_LLAMA="$build/examples/train_llama"
  for how in ddp fsdp2; do
    torchrun --standalone --nproc_per_node 2 tools/peer_train_step.py --preset "$p" \
      --micro-batch "$mb" --distributed "$how" --mode both --out "$logs/peer_${how}_${p}_${mb}.json" \
      > "$logs/peer_${how}_${p}_${mb}.log" 2>&1 || status=1
    tail -n 4 "$logs/peer_${how}_${p}_${mb}.log"
  done
  ;;
summary)
  python3 - "${STUDY_OUT:-runs/sweep}/sweep.jsonl" "$logs" <<'EOF'
import glob, json, sys
lines = []
for raw in open(sys.argv[1]):
    try:
        lines.append(json.loads(raw))
    except ValueError:
        pass
measured = [l for l in lines if l.get("kind") == "measured"]
one = {(l["preset"], l["attention"], l["micro_batch"]): l for l in measured if l["gpus"] == 1}
print(f"{'preset':<11}{'scheme':<7}{'mb':>4}{'tokens/s 2 GPUs':>17}{'efficiency':>12}{'GiB/GPU':>9}")
for l in sorted((l for l in measured if l["gpus"] == 2), key=lambda l: (l["preset"], l["parallel"], l["micro_batch"])):
    base = one.get((l["preset"], l["attention"], l["micro_batch"]))
    eff = l["tokens_per_s"] / (2 * base["tokens_per_s"]) if base else float("nan")
    print(f"{l['preset']:<11}{l['parallel']:<7}{l['micro_batch']:>4}{l['tokens_per_s']:>17,.0f}"
          f"{eff:>12.3f}{l.get('memory_gib', float('nan')):>9.2f}")
for path in sorted(glob.glob(f"{sys.argv[2]}/peer_*_*.json")):
    for r in json.load(open(path)):
        if r.get("world_size") != 2 or r.get("error"):
            continue
        ours = [l for l in measured if l["gpus"] == 2 and l["preset"] == r["preset"]
                and l["micro_batch"] == r["micro_batch"]]
        best = max(ours, key=lambda l: l["tokens_per_s"], default=None)
        ratio = f"ours best ({best['parallel']}) = {best['tokens_per_s'] / r['tokens_per_s']:.2f}x" if best else "no 2-GPU line of ours"
        print(f"peer {r['distributed']} {r['mode']} {r['preset']} mb {r['micro_batch']}: "
              f"{r['tokens_per_s']:,.0f} tokens/s; {ratio}")
EOF
  ;;
*)
  echo "usage: two_gpu.sh weights | peer PRESET MICRO_BATCH | summary"
  exit 2
  ;;
esac
exit "$status"
