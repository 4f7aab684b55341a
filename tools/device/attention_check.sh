#!/usr/bin/env bash
# The attention kernels' loop on the GPU machine, in one call and a fraction of check.sh's build:
# configure build/device (Ninja, Release, sm_90a), build slm_cuda_attention_tests and
# attention_cuda only, run the attention GPU cases under a time limit (a kernel whose CTAs wait on
# one another hangs rather than fails, and a hang must not eat the call), print their summary,
# then, unless TESTS_ONLY is set, tools/device/attention_table.sh. Logs under $OUT (or
# build/device/logs). Carry build/deps.
#
#   tools/device/attention_check.sh                  # build, tests, the table (about 5 minutes)
#   TESTS_ONLY=1 tools/device/attention_check.sh     # build and tests (about 2 minutes)
#
# Environment: TEST_TIMEOUT (seconds for the tests, 240), TESTS_ONLY, JOBS (build jobs: every core),
# EXTRA_TARGETS (more targets for the same build, e.g. train_step_cuda).
# Exit status: 0 when everything passed; 1 when the build, a test or the table failed, or there
# is no GPU to run the cases on; 124 when the tests ran past TEST_TIMEOUT; 2 on bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
test_timeout="${TEST_TIMEOUT:-240}"
[[ "$test_timeout" =~ ^[1-9][0-9]*$ ]] ||
  { echo "attention_check.sh: TEST_TIMEOUT must be a positive number of seconds, got '$test_timeout'"; exit 2; }
mkdir -p "$logs"
source tools/device/build_tree.bash
start=$(date +%s)
build_tree . build/device attention "slm_cuda_attention_tests attention_cuda ${EXTRA_TARGETS:-}" \
  -DCMAKE_CUDA_ARCHITECTURES=90a || exit 1
echo "attention_check.sh: built in $(( $(date +%s) - start )) s"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi

timeout "$test_timeout" build/device/tests/slm_cuda_attention_tests > "$logs/attention_tests.log" 2>&1
status=$?
grep -E "test cases:|assertions:|ERROR|FAILED" "$logs/attention_tests.log" | head -n 30
if grep -q "skipped: no GPU" "$logs/attention_tests.log"; then
  grep -m 1 "skipped: no GPU" "$logs/attention_tests.log"
  echo "attention_check.sh: the GPU cases were skipped: this machine has no usable GPU"
  exit 1
elif [ $status -eq 124 ]; then
  echo "attention_check.sh: the attention tests ran past ${test_timeout} s (a kernel waiting" \
       "forever?); log: $logs/attention_tests.log"
  exit 124
elif [ $status -ne 0 ]; then
  echo "attention_check.sh: the attention tests FAILED (log: $logs/attention_tests.log)"
  exit 1
fi
echo "attention_check.sh: tests passed after $(( $(date +%s) - start )) s"
[ -n "${TESTS_ONLY:-}" ] && exit 0
tools/device/attention_table.sh || exit 1
