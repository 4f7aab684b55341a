#!/usr/bin/env bash
# Nsight Compute on our Flash kernels at one shape of benchmarks/attention_cuda: the forward and
# backward warpgroup kernels (or any kernel whose name matches KERNELS) of one forward+backward,
# with the full section set, so a change to a kernel starts from its stall reasons and pipe
# utilisations rather than from a guess. Expects attention_cuda built in build/device.
#
#   tools/device/attention_profile.sh 128 2048            # head_dim, seq
#   KERNELS='flash_backward' tools/device/attention_profile.sh 64 2048
#
# Writes $OUT/ncu_hd<D>_seq<T>.txt (the details page) and prints the lines most read.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 2 ] || { echo "usage: attention_profile.sh HEAD_DIM SEQ" >&2; exit 2; }
export PATH="/usr/local/cuda/bin:$PATH"
logs="${OUT:-build/device/logs}"
mkdir -p "$logs"
bench=build/device/benchmarks/attention_cuda
[ -x "$bench" ] || { echo "attention_profile.sh: $bench is not built" >&2; exit 2; }
kernels="${KERNELS:-flash_(forward|backward)_warpgroup}"
report="$logs/ncu_hd$1_seq$2.txt"
# --clock-control none: the device notes say to leave the clocks alone. One launch of each
# kernel (the first forward+backward iteration after the benchmark's warm-up is enough).
ncu --clock-control none --set full --import-source no -k "regex:$kernels" --launch-skip 2 \
  --launch-count 2 --page details \
  "$bench" --benchmark_filter="^attention/flash/fwd_bwd/hdim:$1/seq:$2/" > "$report" 2>&1
status=$?
grep -E '^  [a-z_]+.*\(|Duration|Registers Per|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Achieved Occupancy|Issue Slots Busy|Stall|Warp Cycles Per Issued|Theoretical Occupancy|Block Limit' "$report" | head -n 60
exit $status
