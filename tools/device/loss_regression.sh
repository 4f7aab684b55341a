#!/usr/bin/env bash
# Did an optimisation change what training learns? Trains the same preset for the same steps on
# the same real text with the same seed twice — once with train_llama built from an older source
# tree, once from this one — and compares the final validation losses (fail above 1%).
#
#   git archive <old commit> | tar -x -C build/old-src      # on the machine with git
#   tools/device/loss_regression.sh build/old-src            # on the GPU machine (carry it there)
#
#   OLD_LOSS=4.8488 tools/device/loss_regression.sh -        # the old tree's loss measured before
#   SEEDS="1234 1 2 3" tools/device/loss_regression.sh build/old-src   # both trees, 4 seeds
#   SEEDS="1 2 3 4 5 6" VARIANT_FLAGS="--precision fp8" TOLERANCE=0.015 \
#     tools/device/loss_regression.sh -     # no old tree: this tree's variants against its own plain run
#
# Both builds and six seeds at llama_100m do not fit one 600-s device call (an H100, 12-07: the
# builds and four seeds took 590 s; a seed's pair of runs about 50 s): split SEEDS over two calls
# on the still-warm machine, the second with NEW_BUILD=build/loss-regression/new-build (the old
# tree's build is found again and only checked). Each seed's losses are printed as soon as its
# runs end, so a call cut short still says what it measured.
#
# One run is one draw: on the GPU, Flash's backward adds dQ up with atomics in whatever order
# its blocks finish, and 300 steps at lr 3e-3 carry that last-bit noise to about ±0.6% of the
# final loss (docs/performance_notes_december.md). --attention flash_deterministic repeats its
# bits; SEEDS pairs the two trees seed by seed and holds the mean of the differences to the
# tolerance, with its standard error printed beside it.
#
# OLD_LOSS holds only for the same token shards, byte for byte, the same seed and the same kind
# of GPU (the GEMM algorithms, and so the bits, are the GPU's): the old tree gave 4.8774 on
# 2026-11-25 (an H100, that session's data/study) and 4.8488 on 12-02 and 12-03 (an H200;
# tools/corpus.sh made the same shards both times), so otherwise train the old tree again.
# On that H200 and those shards the old tree gave, at seeds 1234 1 2 3 4 5: 4.8488 4.7725
# 4.9046 4.9414 4.7206 4.7616 (12-03; the pairs' differences spread by about 0.9% per seed).
#
# Environment: PRESET (llama_100m), STEPS (300), BATCH (16), DATA (data/study), DEVICE (cuda),
# TOLERANCE (0.01), SEEDS (1234: the --seed of every run, space-separated), OLD_LOSS (set: the
# old tree's loss at the one seed, neither built nor trained here), VARIANT_FLAGS (empty: none;
# else more runs of this tree's build per seed, one per ';'-separated group of train_llama
# flags, in order, say "--attention flash_deterministic" or, twice, "--gemm-candidates 8
# --gemm-choices $OUT/picks.txt" (timed picks kept, then replayed), each held to the same
# tolerance), NEW_BUILD (set: a build directory of this tree with train_llama built, say
# build/device, used instead of building one). Logs, and each FP8 run's fp8_casts.json (its casts'
# counts per layer), go to $OUT (or build/device/logs); the runs' checkpoints are deleted.
# Exit status: 0 when the losses agree, 1 when they do not or a step failed, 2 on bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
old_src="${1:?usage: loss_regression.sh OLD_SOURCE_TREE (or OLD_LOSS=... loss_regression.sh -)}"
# "-" without OLD_LOSS: no old tree; the baseline is this tree's run without VARIANT_FLAGS.
self_baseline=""
[ "$old_src" = - ] && [ -z "${OLD_LOSS:-}" ] && self_baseline=1
if [ -n "$self_baseline" ]; then
  variant_words="${VARIANT_FLAGS:-}"
  [ -n "${variant_words// /}" ] ||
    { echo "loss_regression.sh: '-' without OLD_LOSS compares this tree's VARIANT_FLAGS runs with its plain run: set VARIANT_FLAGS"; exit 2; }
elif [ -z "${OLD_LOSS:-}" ] && [ ! -f "$old_src/CMakeLists.txt" ]; then
  echo "loss_regression.sh: $old_src has no CMakeLists.txt (make it with git archive)"; exit 2
fi
preset="${PRESET:-llama_100m}" steps="${STEPS:-300}" batch="${BATCH:-16}"
data="${DATA:-data/study}" device="${DEVICE:-cuda}" tolerance="${TOLERANCE:-0.01}"
read -r -a seeds <<< "${SEEDS:-1234}"
[ "${#seeds[@]}" -ge 1 ] || { echo "loss_regression.sh: SEEDS is empty (default: 1234)"; exit 2; }
for seed in "${seeds[@]}"; do
  [[ "$seed" =~ ^[0-9]+$ ]] || { echo "loss_regression.sh: SEEDS: '$seed' is not a non-negative integer"; exit 2; }
done
[ -z "${OLD_LOSS:-}" ] || [ "${#seeds[@]}" -eq 1 ] ||
  { echo "loss_regression.sh: OLD_LOSS is one seed's loss; with SEEDS='${seeds[*]}' train the old tree (give its directory instead of -)"; exit 2; }
[ -d "$data" ] || { echo "loss_regression.sh: no token shards in $data (tools/corpus.sh $data makes them)"; exit 2; }
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
cuda_arch=(-DSLM_ENABLE_CUDA=OFF)
[ "$device" = cuda ] && cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90a)

source tools/device/build_tree.bash
build() {  # build SOURCE_DIR BUILD_DIR NAME: train_llama from that tree
  build_tree "$1" "$2" "$3" train_llama "${cuda_arch[@]}" || exit 1
}

trained=""
fp8_runs=()  # the runs of this invocation that trained in FP8
train() {  # train BUILD_DIR NAME SEED [FLAGS...] → the final validation loss in $trained
  local build_dir="$1" name="$2" seed="$3"
  local out="build/loss-regression/$name"
  shift 3
  rm -rf "$out"
  "$build_dir/examples/train_llama" --preset "$preset" --data "$data" --device "$device" --out "$out" \
    --steps "$steps" --batch "$batch" --seed "$seed" --eval-interval 0 --checkpoint-interval 0 \
    --log-interval 50 "$@" > "$logs/$name-train.log" 2>&1 || {
    tail -n 20 "$logs/$name-train.log"
    echo "loss_regression.sh: training $name FAILED (log: $logs/$name-train.log)"
    exit 1
  }
  trained=$(sed -nE 's/.*validation loss: .*-> ([0-9.]+) after.*/\1/p' "$logs/$name-train.log" | tail -n 1)
  [ -n "$trained" ] || { echo "loss_regression.sh: $name printed no final validation loss"; exit 1; }
  if [ -f "$out/fp8_casts.json" ]; then
    cp "$out/fp8_casts.json" "$logs/$name-fp8_casts.json"
    fp8_runs+=("$name")
  fi
  rm -rf "$out"  # its checkpoint (16 GB at llama_1b): twelve of them fill the GPU machine's disk
}

[ -n "${OLD_LOSS:-}" ] || [ -n "$self_baseline" ] || build "$old_src" "$(realpath -m build/loss-regression/old-build)" old
new_build="${NEW_BUILD:-build/loss-regression/new-build}"
[ -n "${NEW_BUILD:-}" ] || build . "$new_build" new
[ -x "$new_build/examples/train_llama" ] || { echo "loss_regression.sh: no $new_build/examples/train_llama"; exit 2; }
IFS=';' read -r -a variants <<< "${VARIANT_FLAGS:-}"

results=()  # triples: seed, run name, loss
for seed in "${seeds[@]}"; do
  first=${#results[@]}
  if [ -n "$self_baseline" ]; then
    train "$new_build" "plain-s$seed" "$seed"
    results+=("$seed" "before (this tree, without VARIANT_FLAGS)" "$trained")
  else
    if [ -n "${OLD_LOSS:-}" ]; then
      results+=("$seed" "before (OLD_LOSS, measured earlier)" "$OLD_LOSS")
    else
      train build/loss-regression/old-build "old-s$seed" "$seed"
      results+=("$seed" "before" "$trained")
    fi
    train "$new_build" "new-s$seed" "$seed"
    results+=("$seed" "after" "$trained")
  fi
  for i in "${!variants[@]}"; do
    flags="${variants[$i]}"
    [ -n "${flags// /}" ] || continue
    # shellcheck disable=SC2086  # the flags are words on purpose
    train "$new_build" "variant$((i + 1))-s$seed" "$seed" $flags
    # The index keeps two runs with the same flags (a replay) apart.
    results+=("$seed" "$((i + 1)): after with $(echo $flags)" "$trained")
  done
  line="seed $seed done:"
  for ((i = first; i < ${#results[@]}; i += 3)); do line+=" ${results[i + 1]} ${results[i + 2]};"; done
  echo "$line"
done

# What the FP8 casts could not hold in each run that had them (train_llama prints it at the end
# of a --precision fp8 run: overflow, underflow and NaN counts per operand, and every site that
# saturated), so a loss comparison is read beside its runs' cast health.
for name in "${fp8_runs[@]}"; do
  log="$logs/$name-train.log"
  echo "$name: $(sed -n 's/^fp8 casts over \([0-9]*\) linear layers.*/\1 FP8 linear layers/p' "$log")"
  sed -n '/^fp8 casts over/,$p' "$log" | sed -n '2,$p' | grep -E '^  (x|W|dy|[^ ].*: overflow|[0-9]+ GEMMs)' | head -n 8
done
python3 - "$tolerance" "$preset" "$steps" "$batch" "${results[@]}" <<'EOF'
import math
import sys

tol = float(sys.argv[1])
preset, steps, batch = sys.argv[2:5]
triples = sys.argv[5:]
rows = [(int(s), name, float(loss)) for s, name, loss in zip(triples[::3], triples[1::3], triples[2::3])]
seeds = list(dict.fromkeys(s for s, _, _ in rows))
before = {s: loss for s, name, loss in rows if name.startswith("before")}
names = [n for n in dict.fromkeys(n for _, n, _ in rows) if not n.startswith("before")]
print(f"{preset}, {steps} steps at batch {batch}, validation loss per seed "
      f"(difference from before; tolerance {tol * 100:g}% on the mean over seeds)")
label = next(n for _, n, _ in rows if n.startswith("before"))
print(f"  {'run':<62} " + "  ".join(f"seed {s:<15}" for s in seeds) + "  mean difference")
print(f"  {label:<62} " + "  ".join(f"{before[s]:.4f}{'':<14}" for s in seeds))
ok = True
for name in names:
    losses = {s: loss for s, n, loss in rows if n == name}
    diffs = [(losses[s] - before[s]) / before[s] for s in seeds]
    mean = sum(diffs) / len(diffs)
    spread = ""
    if len(diffs) > 1:
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        spread = f" ± {sd / math.sqrt(len(diffs)):.3%} (standard error)"
    ok = ok and abs(mean) <= tol
    cells = "  ".join(f"{losses[s]:.4f} ({d:+.3%}){'':<4}" for s, d in zip(seeds, diffs))
    print(f"  {name:<62} {cells}  {mean:+.3%}{spread}")
print("losses agree" if ok else f"a run's mean difference is above {tol * 100:g}%")
sys.exit(0 if ok else 1)
EOF
