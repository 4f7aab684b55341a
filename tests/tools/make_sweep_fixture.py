#!/usr/bin/env python3
"""Writes a synthetic sweep (docs/sweep_format.md) with every kind of line, for the report test.

make_sweep_fixture.py TRAIN_LLAMA OUT.jsonl [--only-measured]

TRAIN_LLAMA: the program whose --list-names gives the presets' shapes (parameters, layers, heads
and model FLOPs come from there; the toy activation sizes below are the fixture's own).

--only-measured writes the measured lines alone, llama_1b's without mfu_pct and memory_gib
(as a sweep on the CPU writes them).

Numbers come from a toy throughput and memory model, shaped so the answers are known:
llama_100m on one H100 is fastest as flash/single/mb16 (a larger micro-batch is slower), naive
attention runs out of memory at large micro-batches, and only llama_100m and llama_500m have
loss curves (llama_1b gets no loss-per-dollar lines). Measured points are the model with a
deterministic ±3% wobble; the predictions frozen before measurement ("before/" keys, with
check_key) are 10% high, so the prediction error is not zero and a frozen prediction would win
the predicted tables if the report took it for a current one. No randomness: same file each run.
"""

import json
import math
import subprocess
import sys

GPUS = {  # name: (bf16 TFLOP/s, usable GiB, $/GPU-hour, CUDA device name)
    "H100-80GB": (989, 79.1, 7.39, "NVIDIA H100 80GB HBM3"),
    "A100-80GB": (312, 79.1, 3.27, "NVIDIA A100-SXM4-80GB"),
    "A100-40GB": (312, 39.4, 2.28, "NVIDIA A100-SXM4-40GB"),
}
ACTIVATION_GIB = {"llama_100m": 0.55, "llama_500m": 1.6, "llama_1b": 2.6}  # toy, per sequence
PRESETS = {}  # name: (params, GFLOP per token, layers, heads, activation GiB per sequence)
BASE_MFU = {"llama_100m": 0.34, "llama_500m": 0.38, "llama_1b": 0.42}
NAIVE_FACTOR = {"llama_100m": 0.45, "llama_500m": 0.7, "llama_1b": 0.8}  # finding 1
SCALING = {"ddp": 0.97, "zero1": 0.965, "zero2": 0.955, "zero3": 0.93}  # per doubling
SEQ = 2048
BUDGET, TARGET = 0.05, 4.0
CURVES = {  # preset: (E, A, alpha, global batch, last tokens)
    "llama_100m": (3.1, 410.0, 0.31, 16, 3.0e7),
    "llama_500m": (2.8, 520.0, 0.33, 16, 2.5e6),
}
MEASURED_GPU, MEASURED_COUNTS = "H100-80GB", (1, 2, 4)
PREDICTED_COUNTS = (1, 2, 4, 8, 16, 32, 64)


def memory_gib(preset, attention, parallel, micro_batch, gpus):
    params, _, layers, heads, act = PRESETS[preset]
    state = params * 16 / 2**30  # fp32 master weights, gradients, two AdamW moments
    if parallel == "zero2":
        state = params * (4 + 12 / gpus) / 2**30
    elif parallel == "zero3":
        state = params * 16 / gpus / 2**30
    scores = 0.0
    if attention == "naive":  # materialised (T × T) scores, bf16, per head and layer
        scores = heads * SEQ * SEQ * 2 * layers / 2**30 * 0.35
    return 1.2 + state + micro_batch * (act + scores)


def tokens_per_s(gpu, preset, attention, parallel, micro_batch, gpus):
    peak = GPUS[gpu][0]
    mfu = BASE_MFU[preset] * micro_batch / (micro_batch + 2.5)
    if micro_batch > 16:  # finding 4: filling memory is not free
        mfu *= 0.85 ** math.log2(micro_batch / 16)
    if attention == "naive":
        mfu *= NAIVE_FACTOR[preset]
    if gpu.startswith("A100"):
        mfu *= 1.25  # the older GPU is easier to keep busy
    per_gpu = peak * 1e12 * mfu / (PRESETS[preset][1] * 1e9)
    if gpus > 1:
        per_gpu *= SCALING[parallel] ** math.log2(gpus)
    return per_gpu * gpus


def wobble(key):
    """A fixed ±3% factor per key: measured is never exactly the model."""
    h = sum((i + 1) * ord(c) for i, c in enumerate(key))
    return 1 + 0.03 * math.sin(h)


def configs(gpus):
    schemes = ("single",) if gpus == 1 else ("ddp", "zero2", "zero3")
    for preset in PRESETS:
        for attention in ("flash", "naive"):
            for parallel in schemes:
                for micro_batch in (4, 8, 16, 32, 64):
                    yield preset, attention, parallel, micro_batch


def point(kind, gpu, gpus, preset, attention, parallel, micro_batch, scale=1.0):
    peak, limit, price, device = GPUS[gpu]
    key = f"{gpu}/{gpus}/{preset}/{attention}/{parallel}/{micro_batch}/{SEQ}"
    tps = tokens_per_s(gpu, preset, attention, parallel, micro_batch, gpus) * scale
    mem = memory_gib(preset, attention, parallel, micro_batch, gpus)
    flops = PRESETS[preset][1] * 1e9
    tpd = tps * 3600 / (gpus * price)
    rec = {"kind": kind, "key": key, "gpu": gpu, "device_name": device, "gpus": gpus,
           "preset": preset, "params": PRESETS[preset][0], "attention": attention,
           "parallel": parallel, "micro_batch": micro_batch, "seq": SEQ, "grad_accum": 1,
           "global_batch": micro_batch * gpus,
           "step_ms": round(1000 * micro_batch * SEQ * gpus / tps, 2),
           "tokens_per_s": round(tps), "tokens_per_s_per_gpu": round(tps / gpus),
           "mfu_pct": round(100 * tps / gpus * flops / (peak * 1e12), 2),
           "memory_gib": round(mem * (scale if kind == "measured" else 1), 2),
           "estimate_gib": round(mem, 2), "memory_limit_gib": limit,
           "dollars_per_gpu_hour": price, "tokens_per_dollar": round(tpd),
           "dollars_per_mtok": round(1e6 / tpd, 6),
           "ops_ms": {"matmul": 0.6, "attention": 0.25, "norm": 0.05, "idle": 0.1}}
    return rec, mem <= limit


def loss_line(rec, source):
    E, A, alpha, _, last = CURVES[rec["preset"]]
    first = last / 16
    tpd = rec["tokens_per_dollar"]
    tokens = BUDGET * tpd
    target_tokens = (A / (TARGET - E)) ** (1 / alpha)
    return {"kind": "loss_per_dollar", "key": rec["key"], "source": source, "gpu": rec["gpu"],
            "gpus": rec["gpus"], "preset": rec["preset"], "attention": rec["attention"],
            "parallel": rec["parallel"], "micro_batch": rec["micro_batch"],
            "budget_dollars": BUDGET, "loss_at_budget": round(E + A * tokens ** -alpha, 5),
            "budget_extrapolated": not first <= tokens <= last, "target_loss": TARGET,
            "dollars_to_target": round(target_tokens / tpd, 6),
            "target_extrapolated": not first <= target_tokens <= last}


def load_presets(program):
    """PRESETS from `program --list-names` (train_llama): our preset table, not a copy."""
    out = subprocess.run([program, "--list-names"], check=True, capture_output=True, text=True)
    table = {p["name"]: p for p in json.loads(out.stdout)["presets"]}
    for name, act in ACTIVATION_GIB.items():
        p = table[name]
        d, kv = p["hidden"], p["hidden"] * p["kv_heads"] // p["heads"]
        matmul = p["layers"] * (2 * d * d + 2 * d * kv + 3 * d * p["ffn"]) + p["vocab"] * d
        gflop = round((6 * matmul + 6 * p["layers"] * SEQ * d) / 1e9, 3)
        PRESETS[name] = (p["parameters"], gflop, p["layers"], p["heads"], act)


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    load_presets(argv[1])
    argv = argv[1:]
    only_measured = argv[2:] == ["--only-measured"]
    lines, measured = [], {}
    for gpus in MEASURED_COUNTS:
        for preset, attention, parallel, mb in configs(gpus):
            rec, fits = point("measured", MEASURED_GPU, gpus, preset, attention, parallel, mb)
            if not fits:
                lines.append({k: rec[k] for k in ("key", "gpu", "gpus", "preset", "attention",
                                                  "parallel", "micro_batch", "seq", "estimate_gib",
                                                  "memory_limit_gib")}
                             | {"kind": "skipped", "reason": "does not fit"})
                continue
            rec, _ = point("measured", MEASURED_GPU, gpus, preset, attention, parallel, mb,
                           wobble(rec["key"]))
            lines.append(rec)
            measured[rec["key"]] = rec
    if only_measured:
        lines = [r for r in lines if r["kind"] == "measured"]
        for r in lines:  # llama_1b as a CPU sweep writes it: no MFU, no measured memory
            if r["preset"] == "llama_1b":
                del r["mfu_pct"], r["memory_gib"]
    else:
        for gpu in GPUS:
            for gpus in PREDICTED_COUNTS:
                for preset, attention, parallel, mb in configs(gpus):
                    rec, fits = point("predicted", gpu, gpus, preset, attention, parallel, mb)
                    rec["ops_ms"]["communication"] = 0.0 if gpus == 1 else 0.04
                    rec |= {"fits": fits, "calibrated_on": ["llama_100m", "llama_500m"]}
                    lines.append(rec)
                    if rec["key"] in measured:
                        # As the sweep does: the prediction frozen before the point was measured,
                        # beside the current one. 10% optimistic, so that a report that took it
                        # for a current prediction would show it as the best.
                        frozen, _ = point("predicted", gpu, gpus, preset, attention, parallel, mb, 1.1)
                        frozen |= {"key": "before/" + rec["key"], "check_key": rec["key"],
                                   "before_measurement": True, "fits": fits,
                                   "calibrated_on": ["llama_100m"]}
                        lines.append(frozen)
        for preset, (E, A, alpha, batch, last) in CURVES.items():
            tokens = [0] + [last / 16 * k for k in range(1, 17)]
            points = [[0, 10.41]] + [[t, round((E + A * t ** -alpha) * wobble(f"{t}") ** 0.2, 5)]
                                     for t in tokens[1:]]
            lines.append({"kind": "loss_curve", "preset": preset, "global_batch": batch,
                          "seq": SEQ, "points": points,
                          "fit": {"form": "E + A * tokens^-alpha", "E": E, "A": A, "alpha": alpha,
                                  "rms_relative_error": 0.004},
                          "max_tokens": last})
        for r in list(lines):
            if r["kind"] in ("measured", "predicted") and r["preset"] in CURVES \
                    and r.get("fits", True):
                lines.append(loss_line(r, r["kind"]))
        groups = {}
        for r in lines:
            if r["kind"] == "measured":
                k = (r["preset"], r["gpu"], r["gpus"])
                if k not in groups or r["tokens_per_s"] > groups[k]["tokens_per_s"]:
                    groups[k] = r
        for (preset, gpu, gpus), r in groups.items():
            lines.append({"kind": "best", "by": "tokens_per_s", "source": "measured",
                          "preset": preset, "gpu": gpu, "gpus": gpus, "key": r["key"],
                          "value": r["tokens_per_s"]})
        lines.append({"kind": "calibration", "note": "a kind this report does not know"})
    with open(argv[1], "w", encoding="utf-8") as f:
        for r in lines:
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
