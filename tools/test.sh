#!/usr/bin/env bash
# README's test command: installs dependencies, builds everything (CUDA translation units too
# when nvcc is found, for sm_90a), and runs every test through ctest. GPU tests report
# "skipped: no GPU" on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
# python3-matplotlib: the report test draws the study's plots (without it that test is skipped).
tools/setup.sh python3-matplotlib
preset=cpu
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  preset=cuda
  export PATH="/usr/local/cuda/bin:$PATH"
fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
