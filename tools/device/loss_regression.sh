#!/usr/bin/env bash
# Did an optimisation change what training learns? Trains the same preset for the same steps on
# the same real text with the same seed twice — once with train_llama built from an older source
# tree, once from this one — and compares the final validation losses (fail above 1%).
#
#   git archive <old commit> | tar -x -C build/old-src      # on the machine with git
#   tools/device/loss_regression.sh build/old-src            # on the GPU machine (carry it there)
#
# Environment: PRESET (llama_100m), STEPS (300), BATCH (16), DATA (data/study), DEVICE (cuda),
# TOLERANCE (0.01), VARIANT_FLAGS (empty: none; else a third run, this tree's build with these
# train_llama flags, say "--recompute swiglu", held to the same tolerance). Logs go to $OUT (or
# build/device/logs). Exit status: 0 when the losses agree.
set -uo pipefail
cd "$(dirname "$0")/../.."
old_src="${1:?usage: loss_regression.sh OLD_SOURCE_TREE}"
[ -f "$old_src/CMakeLists.txt" ] || { echo "loss_regression.sh: $old_src has no CMakeLists.txt (make it with git archive)"; exit 2; }
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

build "$old_src" "$(realpath -m build/loss-regression/old-build)" old
build . build/loss-regression/new-build new
old_loss=$(train build/loss-regression/old-build old)
new_loss=$(train build/loss-regression/new-build new)
variant_loss=""
if [ -n "${VARIANT_FLAGS:-}" ]; then
  # shellcheck disable=SC2086  # the flags are words on purpose
  variant_loss=$(train build/loss-regression/new-build variant $VARIANT_FLAGS)
fi
python3 - "$old_loss" "$new_loss" "$tolerance" "$preset" "$steps" "$batch" "$variant_loss" \
  "${VARIANT_FLAGS:-}" <<'EOF'
import sys

old, new, tol = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
preset, steps, batch, variant, variant_flags = sys.argv[4:9]
ok = True
for name, loss in (("after", new), (f"after with {variant_flags}", variant)):
    if loss == "":
        continue
    loss = float(loss)
    diff = (loss - old) / old
    ok = ok and abs(diff) <= tol
    print(f"{preset}, {steps} steps at batch {batch}: validation loss before {old:.4f}, "
          f"{name} {loss:.4f}, difference {diff:+.3%} (tolerance {tol:.0%})")
sys.exit(0 if ok else 1)
EOF
