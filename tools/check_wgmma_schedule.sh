#!/usr/bin/env bash
# Fails when ptxas serializes the warpgroup MMAs of a kernel: it then waits for each MMA before
# the next issues, which ptxas reports only as "Potential Performance Loss" (C7510-C7518) and
# which no test on a GPU would catch except as lost speed. Compiles FILE.cu (every kernel it
# instantiates) for sm_90a with ptxas's report and prints one line per kernel with warpgroup
# MMAs: its registers, its spills, and whether it is serialized.
#
#   tools/check_wgmma_schedule.sh NVCC SOURCE_DIR FILE.cu
#
# Exit status: 0 when no kernel is serialized, 1 when one is (named, with ptxas's reason), 2 on
# bad usage or a failed compile.
set -uo pipefail
[ $# -eq 3 ] || { echo "usage: check_wgmma_schedule.sh NVCC SOURCE_DIR FILE.cu"; exit 2; }
nvcc="$1" src="$2" file="$3"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "$nvcc" --std=c++20 --expt-relaxed-constexpr -O3 -arch=sm_90a -I"$src/include" \
     -diag-suppress 20012 -Xptxas -v -c -x cu "$file" -o "$work/out.o" > "$work/ptxas.log" 2>&1; then
  tail -n 30 "$work/ptxas.log"
  echo "check_wgmma_schedule.sh: compiling $file FAILED"
  exit 2
fi
python3 - "$work/ptxas.log" "$file" <<'PY'
import re
import subprocess
import sys

log, source = open(sys.argv[1]).read().splitlines(), sys.argv[2]
kernels = {}  # mangled name -> {"registers", "spills", "serialized": [reasons]}
serial = re.compile(r"\((C75\d\d)\) Potential Performance Loss: (.*) in the function '([^']+)'")
current = None
for line in log:
    m = re.search(r"Compiling entry function '([^']+)'", line)
    if m:
        current = kernels.setdefault(m.group(1), {"registers": "?", "spills": "?", "serialized": []})
        continue
    m = serial.search(line)
    if m:
        kernels.setdefault(m.group(3), {"registers": "?", "spills": "?", "serialized": []})[
            "serialized"].append(f"{m.group(1)}: {m.group(2)}")
        continue
    if current is None:
        continue
    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m:
        current["spills"] = f"{m.group(1)}/{m.group(2)}"
    m = re.search(r"Used (\d+) registers", line)
    if m:
        current["registers"] = m.group(1)

def readable(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                             check=True).stdout.splitlines()
        return dict(zip(names, out))
    except (OSError, subprocess.CalledProcessError):
        return {n: n for n in names}

# Kernels with warpgroup MMAs: those whose names say so, and any ptxas spoke of.
chosen = [n for n, k in kernels.items()
          if k["serialized"] or re.search(r"warpgroup|tma|serialized", n)]
names = readable(chosen)
bad = 0
for n in sorted(chosen, key=lambda n: names[n]):
    k = kernels[n]
    state = "SERIALIZED" if k["serialized"] else "ok"
    print(f"{state:10} registers {k['registers']:>3}  spill stores/loads {k['spills']:>7}  "
          f"{names[n][:120]}")
    for reason in k["serialized"]:
        print(f"           {reason}")
    bad += bool(k["serialized"])
print(f"check_wgmma_schedule.sh: {len(chosen)} kernels with warpgroup MMAs in {source}, "
      f"{bad} serialized")
sys.exit(1 if bad else 0)
PY
