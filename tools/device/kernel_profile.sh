#!/usr/bin/env bash
# Which kernels a training step spends its time in: runs one train_step_cuda configuration
# (flash, seq 2048) under Nsight Systems and prints the kernels by total GPU time, a finer view
# than the trainer's per-op breakdown (which groups a GEMM with the op that called it).
#
#   tools/device/kernel_profile.sh llama_100m 32          # preset, micro-batch
#
# Builds train_step_cuda in build/device if needed. The report and the CSV go to $OUT (or
# build/device/logs). Exit status: non-zero when nsys is missing or the run failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
preset="${1:?usage: kernel_profile.sh PRESET MICRO_BATCH}"
batch="${2:?usage: kernel_profile.sh PRESET MICRO_BATCH}"
export PATH="/usr/local/cuda/bin:$PATH"
build=build/device
logs="${OUT:-$build/logs}"
mkdir -p "$logs"
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2> /dev/null | head -n 1)
[ -n "$nsys" ] || { echo "kernel_profile.sh: no nsys on this machine (Nsight Systems is needed)"; exit 2; }

if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
         > "$logs/configure.log" 2>&1 &&
       cmake --build "$build" -j "$(nproc)" --target train_step_cuda > "$logs/build.log" 2>&1; }; then
  tail -n 30 "$logs/build.log"
  echo "kernel_profile.sh: build FAILED"
  exit 1
fi

report="$logs/step_${preset}_${batch}"
if ! "$nsys" profile --trace=cuda --sample=none --cpuctxsw=none --force-overwrite=true -o "$report" \
    "$build/benchmarks/train_step_cuda" \
    --benchmark_filter="^train_step/flash/${preset}/batch:${batch}/seq:2048/" > "$logs/profile.log" 2>&1; then
  tail -n 20 "$logs/profile.log"
  echo "kernel_profile.sh: the profiled run FAILED"
  exit 1
fi
# The report's name differs between Nsight Systems versions.
for name in cuda_gpu_kern_sum gpukernsum; do
  "$nsys" stats --report "$name" --format csv --force-export=true -o "$report" "$report.nsys-rep" \
    > "$logs/stats.log" 2>&1 && break
done
csv=$(ls "$report"_*kern*sum*.csv 2> /dev/null | head -n 1)
[ -n "$csv" ] || { tail -n 20 "$logs/stats.log"; echo "kernel_profile.sh: no kernel summary"; exit 1; }

# Columns: Time (%), Total Time (ns), Instances, Avg, Med, Min, Max, StdDev, Name. The benchmark
# runs 3 warm-up and 8 timed steps (plus its memory probe), so totals are over ~12 steps.
python3 - "$csv" <<'EOF'
import csv
import sys

with open(sys.argv[1]) as f:
    rows = list(csv.DictReader(f))
total = sum(float(r["Total Time (ns)"]) for r in rows)
print(f"{'share':>6} {'total ms':>9} {'calls':>6} {'avg us':>8}  kernel")
for r in rows[:30]:
    t = float(r["Total Time (ns)"])
    name = r["Name"][:110]
    print(f"{100 * t / total:6.1f} {t / 1e6:9.1f} {int(r['Instances']):6d} "
          f"{float(r['Avg (ns)']) / 1e3:8.1f}  {name}")
print(f"all kernels: {total / 1e6:.1f} ms")
EOF
