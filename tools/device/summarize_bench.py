"""One line per benchmark from Google Benchmark JSON files, for the end of a device call's output.

    python3 tools/device/summarize_bench.py $OUT/train.json $OUT/loss.json ...

Prints the counters our benchmarks report that a given line has (tokens/s, MFU, memory and the
per-op milliseconds of train_step_*; TFLOP/s, GB/s and the median of the kernel benchmarks).
A missing or unreadable file is named and skipped.
"""
import json
import sys

# (counter, label, format) in print order; a line shows the ones it has.
COUNTERS = [
    ("tokens_per_s", "tok/s", "{:9.0f}"), ("MFU_pct", "MFU%", "{:5.1f}"),
    ("memory_GiB", "GiB", "{:6.2f}"), ("median_ms", "ms", "{:8.3f}"),
    ("TFLOPs", "TFLOP/s", "{:6.1f}"), ("GBps", "GB/s", "{:7.1f}"),
    ("matmul_ms", "mm", "{:6.1f}"), ("attention_ms", "attn", "{:6.1f}"), ("loss_ms", "loss", "{:5.1f}"),
    ("norm_ms", "norm", "{:5.1f}"), ("swiglu_ms", "swiglu", "{:5.1f}"), ("rope_ms", "rope", "{:4.1f}"),
    ("optimizer_ms", "opt", "{:4.1f}"), ("communication_ms", "comm", "{:5.1f}"), ("idle_ms", "idle", "{:5.1f}"),
]

for path in sys.argv[1:]:
    try:
        with open(path) as f:
            benchmarks = json.load(f)["benchmarks"]
    except (OSError, ValueError, KeyError) as e:
        print(f"{path}: no benchmarks ({e})")
        continue
    for b in benchmarks:
        name = b["name"].split("/iterations")[0].split("/manual_time")[0]
        if b.get("error_occurred"):
            print(f"{name}: {b.get('error_message', 'error')[:120]}")
            continue
        parts = [f"{label} " + fmt.format(b[key]) for key, label, fmt in COUNTERS if key in b]
        print(f"{name:60s} " + "  ".join(parts))
