#!/usr/bin/env bash
# The single-GPU study in one command: builds `sweep` (CUDA when nvcc is there), runs the grid on
# this GPU with the loss curves on data/study (tools/corpus.sh makes it), and turns the JSON lines
# into tables and plots with tools/report. Interrupted or stopped at the time limit, it resumes
# where it left off when run again: run it until it prints "sweep complete".
#
#   tools/study.sh                     # everything, no time limit
#   STUDY_TIME_LIMIT=540 tools/study.sh  # stop cleanly after ~9 minutes (exit 3: run again)
#   STUDY_GPUS=8 tools/study.sh          # then the data-parallel points on 8 GPUs (2, 4, 8 ...)
#
# Environment: STUDY_OUT (default runs/sweep), STUDY_DATA (default data/study), STUDY_TIME_LIMIT
# (seconds for the whole command, build included; 0 = none). Extra arguments go to sweep.
# STUDY_GPUS=N (default 1: the single-GPU study only): once the single-GPU sweep is complete, the
# same sweep runs as N ranks (mpirun when there is one, else sweep --nproc N) with --parallel
# STUDY_PARALLEL (default ddp,zero2,zero3), measuring every grid point under each scheme at N GPUs
# after freezing its prediction (docs/sweep_format.md).
# STUDY_PREDICTED_BEFORE=FILE: an earlier sweep whose predictions of this GPU's points the report
# checks point by point against this run (report --predicted-before).
# STUDY_PRECISION_FROM=FILE: the report's precision section reads that sweep (one run of sweep
# --precision bf16,fp8, both precisions side by side) instead of this one (report --precision-from).
# When $OUT is set (the GPU machine's return folder), the JSON lines and the report are copied there.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out="${STUDY_OUT:-runs/sweep}"
data="${STUDY_DATA:-data/study}"
limit="${STUDY_TIME_LIMIT:-0}"
export PATH="/usr/local/cuda/bin:$PATH"

build=build/study
cuda=OFF
command -v nvcc > /dev/null && cuda=ON
mkdir -p "$out"
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLM_ENABLE_CUDA=$cuda \
      -DCMAKE_CUDA_ARCHITECTURES=90a > "$out/configure.log" 2>&1 ||
   ! cmake --build "$build" -j "$(nproc)" --target sweep > "$out/build.log" 2>&1; then
  tail -n 30 "$out/configure.log" "$out/build.log" 2> /dev/null
  echo "study.sh: building sweep FAILED (logs in $out)"
  exit 1
fi

args=(--out "$out/sweep.jsonl")
if [ -d "$data" ]; then
  args+=(--loss-data "$data")
else
  echo "study.sh: no $data (run tools/corpus.sh $data first): the sweep runs without loss curves"
fi
if [ "$limit" -gt 0 ]; then
  # Leave a minute for the report and the copy back.
  left=$(( limit - ($(date +%s) - start) - 60 ))
  [ "$left" -lt 60 ] && left=60
  args+=(--time-limit "$left")
fi
"$build/examples/sweep" "${args[@]}" "$@"
status=$?

gpus="${STUDY_GPUS:-1}"
if [ "$status" -eq 0 ] && [ "$gpus" -gt 1 ]; then
  ranked=(--out "$out/sweep.jsonl" --parallel "${STUDY_PARALLEL:-ddp,zero2,zero3}")
  if [ "$limit" -gt 0 ]; then
    left=$(( limit - ($(date +%s) - start) - 60 ))
    [ "$left" -lt 30 ] && left=30
    ranked+=(--time-limit "$left")
  fi
  export NCCL_NVLS_ENABLE=0  # NVLink multicast off (the device machines' rule)
  if command -v mpirun > /dev/null; then
    launcher=(mpirun -np "$gpus" --bind-to none -x NCCL_NVLS_ENABLE)
    [ "$(id -u)" -eq 0 ] && launcher+=(--allow-run-as-root)
    "${launcher[@]}" "$build/examples/sweep" "${ranked[@]}" "$@"
  else
    "$build/examples/sweep" --nproc "$gpus" "${ranked[@]}" "$@"
  fi
  status=$?
fi

if [ "$status" -eq 0 ] || [ "$status" -eq 3 ]; then
  report_args=()
  [ -n "${STUDY_PREDICTED_BEFORE:-}" ] && report_args+=(--predicted-before "$STUDY_PREDICTED_BEFORE")
  [ -n "${STUDY_PRECISION_FROM:-}" ] && report_args+=(--precision-from "$STUDY_PRECISION_FROM")
  tools/report/report "$out/sweep.jsonl" "$out/report" "${report_args[@]}" || echo "study.sh: report FAILED"
fi
if [ -n "${OUT:-}" ]; then
  cp "$out/sweep.jsonl" "$OUT/" 2> /dev/null
  [ -d "$out/report" ] && tar -C "$out" -czf "$OUT/report.tar.gz" report
fi
exit "$status"
