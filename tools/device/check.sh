#!/usr/bin/env bash
# The GPU machine's one command: configure (Ninja, Release, sm_90a), build with every core, run
# every test through ctest (the CUDA tests run for real there), then any extra commands given as
# arguments — benchmarks, parity scripts — each with its own log. Logs are written under $OUT
# when it is set (what comes back from the device machine), else under build/device/logs.
# The ctest summary line is printed last. Carry build/deps (tools/device/deps.sh makes it: the
# machine has no xxhash.h or CLI11 of its own).
#
#   tools/device/check.sh                                   # build and test
#   tools/device/check.sh 'build/device/benchmarks/x --benchmark_format=json > "$OUT/x.json"'
#
# Exit status: non-zero when the build, a test or an extra command failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=build/device
logs="${OUT:-$build/logs}"
mkdir -p "$logs"

if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    > "$logs/configure.log" 2>&1; then
  tail -n 40 "$logs/configure.log"
  echo "check.sh: configure FAILED (log: $logs/configure.log)"
  exit 1
fi
if ! cmake --build "$build" -j "$(nproc)" > "$build/build.log" 2>&1; then
  cp "$build/build.log" "$logs/build.log"
  grep -E "error|FAILED" "$build/build.log" | head -n 40
  echo "check.sh: build FAILED (log: $logs/build.log)"
  exit 1
fi

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi

# Serial on purpose: the CPU reference tests use every core through OpenMP, and GPU tests
# sharing one card would disturb each other's memory use.
ctest --test-dir "$build" --output-on-failure --timeout 1200 > "$logs/ctest.log" 2>&1
ctest_status=$?
grep -E "\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run" "$logs/ctest.log" | head -n 40

# ---- extra commands (benchmarks and the like): one log each --------------------------------
status=$ctest_status
index=0
for command in "$@"; do
  index=$((index + 1))
  log="$logs/extra-$index.log"
  if bash -c "$command" > "$log" 2>&1; then
    echo "extra $index: ok ($command)"
  else
    echo "extra $index: FAILED, exit $? ($command); last lines:"
    tail -n 20 "$log"
    status=1
  fi
done

echo "skipped: $(grep -c '(Skipped)' "$logs/ctest.log") test(s) (log: $logs/ctest.log)"
summary=$(grep -E "tests passed.* out of" "$logs/ctest.log" | tail -n 1)
echo "${summary:-ctest gave no summary (exit $ctest_status): see $logs/ctest.log}"
exit "$status"
