#!/usr/bin/env bash
# Did an optimisation change what training learns? Trains the same preset for the same steps on
# the same real text with the same seed twice — once with train_llama built from an older source
# tree, once from this one — and compares the final validation losses (fail above 1%).
#
#   git archive <old commit> | tar -x -C build/old-src      # on the machine with git
#   tools/device/loss_regression.sh build/old-src            # on the GPU machine (carry it there)
#
#   OLD_LOSS=4.8488 tools/device/loss_regression.sh -        # the old tree's loss measured before
#
# OLD_LOSS holds only for the same token shards, byte for byte, and the same kind of GPU (the
# GEMM algorithms, and so the bits, are the GPU's): the old tree gave 4.8774 on 2026-11-25 (an
# H100, that session's data/study) and 4.8488 on 12-02 (an H200, a data/study made anew), so
# otherwise train the old tree again.
#
# Environment: PRESET (llama_100m), STEPS (300), BATCH (16), DATA (data/study), DEVICE (cuda),
# TOLERANCE (0.01), OLD_LOSS (set: the old tree's loss, neither built nor trained here),
# VARIANT_FLAGS (empty: none; else more runs of this tree's build, one per ';'-separated group of
# train_llama flags, in order, say "--recompute swiglu" or, twice, "--gemm-candidates 8
# --gemm-choices $OUT/picks.txt" (timed picks kept, then replayed), each held to the same
# tolerance), NEW_BUILD (set: a build directory of this tree with train_llama built, say
# build/device, used instead of building one). Logs go to $OUT (or build/device/logs). Exit status: 0 when the losses agree.
set -uo pipefail
cd "$(dirname "$0")/../.."
old_src="${1:?usage: loss_regression.sh OLD_SOURCE_TREE (or OLD_LOSS=... loss_regression.sh -)}"
[ -n "${OLD_LOSS:-}" ] || [ -f "$old_src/CMakeLists.txt" ] || { echo "loss_regression.sh: $old_src has no CMakeLists.txt (make it with git archive)"; exit 2; }
preset="${PRESET:-llama_100m}" steps="${STEPS:-300}" batch="${BATCH:-16}"
data="${DATA:-data/study}" device="${DEVICE:-cuda}" tolerance="${TOLERANCE:-0.01}"
[ -d "$data" ] || { echo "loss_regression.sh: no token shards in $data (tools/corpus.sh $data makes them)"; exit 2; }
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
cuda_arch=(-DSLM_ENABLE_CUDA=OFF)
[ "$device" = cuda ] && cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90a)

build() {  # build SOURCE_DIR BUILD_DIR NAME
  if ! { cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_arch[@]}" > "$logs/$3-configure.log" 2>&1 &&
         cmake --build "$2" -j "$(nproc)" --target train_llama > "$logs/$3-build.log" 2>&1; }; then
    tail -n 20 "$logs/$3-build.log"
    echo "loss_regression.sh: building $3 ($1) FAILED"
    exit 1
  fi
}

train() {  # train BUILD_DIR NAME [FLAGS...] → prints the final validation loss
  local out="build/loss-regression/$2" build_dir="$1" name="$2"
  shift 2
  rm -rf "$out"
  "$build_dir/examples/train_llama" --preset "$preset" --data "$data" --device "$device" --out "$out" \
    --steps "$steps" --batch "$batch" --seed 1234 --eval-interval 0 --checkpoint-interval 0 \
    --log-interval 50 "$@" > "$logs/$name-train.log" 2>&1 || {
    tail -n 20 "$logs/$name-train.log" >&2
    echo "loss_regression.sh: training with the $name build FAILED" >&2
    exit 1
  }
  sed -nE 's/.*validation loss: .*-> ([0-9.]+) after.*/\1/p' "$logs/$name-train.log" | tail -n 1
}

if [ -n "${OLD_LOSS:-}" ]; then
  old_loss="$OLD_LOSS"
else
  build "$old_src" "$(realpath -m build/loss-regression/old-build)" old
fi
new_build="${NEW_BUILD:-build/loss-regression/new-build}"
[ -n "${NEW_BUILD:-}" ] || build . "$new_build" new
[ -x "$new_build/examples/train_llama" ] || { echo "loss_regression.sh: no $new_build/examples/train_llama"; exit 2; }
[ -n "${OLD_LOSS:-}" ] || old_loss=$(train build/loss-regression/old-build old)
new_loss=$(train "$new_build" new)
results=("after" "$new_loss")
IFS=';' read -r -a variants <<< "${VARIANT_FLAGS:-}"
for i in "${!variants[@]}"; do
  flags="${variants[$i]}"
  [ -n "${flags// /}" ] || continue
  # shellcheck disable=SC2086  # the flags are words on purpose
  results+=("after with ${flags}" "$(train "$new_build" "variant$((i + 1))" $flags)")
done
python3 - "$old_loss" "$tolerance" "$preset" "$steps" "$batch" "${OLD_LOSS:+given}" "${results[@]}" <<'EOF'
import sys

old, tol = float(sys.argv[1]), float(sys.argv[2])
preset, steps, batch, given = sys.argv[3:7]
runs = sys.argv[7:]
print(f"{preset}, {steps} steps at batch {batch}, validation loss before: {old:.4f}"
      + (" (OLD_LOSS, measured earlier)" if given else ""))
ok = True
for name, loss in zip(runs[::2], runs[1::2]):
    loss = float(loss)
    diff = (loss - old) / old
    ok = ok and abs(diff) <= tol
    print(f"  {' '.join(name.split()):<64} {loss:.4f}  {diff:+.3%} (tolerance {tol:.0%})")
sys.exit(0 if ok else 1)
EOF
