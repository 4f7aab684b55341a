#!/usr/bin/env python3
"""Writes a synthetic sweep (docs/sweep_format.md) with every kind of line, for the report test.

make_sweep_fixture.py TRAIN_LLAMA OUT.jsonl [--only-measured | --single-gpu-measured]

TRAIN_LLAMA: the program whose --list-names gives the presets' shapes (parameters, layers, heads,
hidden size, sequence length and model FLOPs come from there; the toy activation sizes below
are the fixture's own).

--only-measured writes the measured lines alone, llama_1b's without mfu_pct and memory_gib
(as a sweep on the CPU writes them). --single-gpu-measured measures one GPU only (as on a
one-GPU machine): every multi-GPU line is then a prediction.

Numbers come from a toy throughput and memory model, shaped so the answers are known:
- llama_100m on one H100 is fastest as flash/single/mb16 (a larger micro-batch is slower);
  naive attention runs out of memory at large micro-batches (llama_100m at mb64: OOM).
- The designed Flash/Naive pair: llama_100m, one H100, micro-batch 8, measured without the
  wobble below, so flash ÷ naive is exactly 1 / 0.45 = 2.22× at equal global batch.
- The law's answer (fewest dollars to 20 tokens per parameter): measured, one H100 as
  flash/single/mb16 for every llama preset; predicted, one A100-40GB as flash/single/mb16 for
  llama_100m and llama_500m (A100s run 1.25× the H100's MFU at less than a third of its
  price), while llama_1b does not fit one A100-40GB at a good micro-batch: two of them, as
  flash/zero2/mb8.
- The two-GPU case of finding 2: paper_100m is predicted on the two A100s only, the 80GB card
  exactly 1.25× the 40GB one, so the break-even price ratio is 1.25× (prices now 1.43×).
- Finding 3: DDP is fastest for llama_100m and ZeRO-2 for llama_1b, by more than the model's
  error; ZeRO-2 beats ZeRO-3 everywhere (as the paper measured).
- Loss curves: llama_100m and llama_500m have good fits; llama_1b's fit has E = 0 (at its
  bound), so it is unusable. One loss_per_dollar line is a decoy (an absurdly low loss for
  naive mb4): the report must never take a loss per dollar from those lines.
Measured points are the model with a deterministic ±3% wobble; the predictions frozen before
measurement ("before/" keys, with check_key) are 5% high, so the prediction error is not zero and
a frozen prediction would win the predicted tables if the report took it for a current one.
law_cost and best lines are computed as the sweep computes them (include/slm/study/law_cost.hpp).
No randomness: same file each run.
"""

import json
import math
import subprocess
import sys

GPUS = {  # name: (bf16 TFLOP/s, usable GiB, $/GPU-hour, CUDA device name)
    "H100-80GB": (989, 79.1, 7.39, "NVIDIA H100 80GB HBM3"),
    "A100-80GB": (312, 79.1, 3.27, "NVIDIA A100-SXM4-80GB"),
    "A100-40GB": (312, 39.4, 2.28, "NVIDIA A100-SXM4-40GB"),
    "H200": (989, 131.0, 7.27, "NVIDIA H200"),
}
ACTIVATION_GIB = {"llama_100m": 0.55, "llama_500m": 1.6, "llama_1b": 2.6, "paper_100m": 0.3}
PRESETS = {}  # name: (params, GFLOP per token, layers, heads, hidden, seq, activation GiB/seq)
BASE_MFU = {"llama_100m": 0.34, "llama_500m": 0.38, "llama_1b": 0.42, "paper_100m": 0.34}
NAIVE_FACTOR = {"llama_100m": 0.45, "llama_500m": 0.7, "llama_1b": 0.8, "paper_100m": 0.5}
FLASH_ATTENTION_SHARE = {"llama_100m": 0.25, "llama_500m": 0.15, "llama_1b": 0.10, "paper_100m": 0.2}
# Tokens/s per GPU kept per doubling of GPUs (finding 3). Each step costs more than the ±3%
# wobble can hide, so one GPU stays the cheapest measured configuration of every preset.
SCALING = {
    "llama_100m": {"ddp": 0.93, "zero2": 0.89, "zero3": 0.85},
    "llama_500m": {"ddp": 0.93, "zero2": 0.89, "zero3": 0.85},
    "llama_1b": {"ddp": 0.85, "zero2": 0.93, "zero3": 0.89},
}
TWO_GPU_CASE = {"A100-40GB": 1.0, "A100-80GB": 1.25}  # paper_100m's GPUs and speed factors
MEASURED = ("llama_100m", "llama_500m", "llama_1b")
EXACT = {f"H100-80GB/1/llama_100m/{k}/single/8/2048" for k in ("flash", "naive")}
FROZEN_HIGH = 1.05
BUDGET, TARGET = 0.05, 4.0  # of the curve-based loss_per_dollar lines (never used by the report)
CURVES = {  # preset: (E, A, alpha, global batch, last tokens, fit RMS relative error)
    "llama_100m": (3.1, 410.0, 0.31, 16, 3.0e7, 0.004),
    "llama_500m": (2.8, 520.0, 0.33, 16, 2.5e6, 0.006),
    "llama_1b": (0.0, 21.3, 0.077, 16, 3.2e6, 0.009),  # degenerate: E at its bound
}
LAW = {"name": "besiroglu2024", "E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
TOKENS_PER_PARAMETER, LAW_BUDGETS = 20, (10, 100, 1000)
MEASURED_GPU, MEASURED_COUNTS = "H100-80GB", (1, 2, 4)
PREDICTED_COUNTS = (1, 2, 4, 8, 16, 32, 64)


def memory_gib(preset, attention, parallel, micro_batch, gpus):
    params, _, layers, heads, _, seq, act = PRESETS[preset]
    state = params * 16 / 2**30  # fp32 master weights, gradients, two AdamW moments
    if parallel == "zero2":
        state = params * (4 + 12 / gpus) / 2**30
    elif parallel == "zero3":
        state = params * 16 / gpus / 2**30
    scores = 0.0
    if attention == "naive":  # materialised (T × T) scores, bf16, per head and layer
        scores = heads * seq * seq * 2 * layers / 2**30 * 0.35
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
    if preset == "paper_100m":
        mfu *= TWO_GPU_CASE[gpu]
    per_gpu = peak * 1e12 * mfu / (PRESETS[preset][1] * 1e9)
    if gpus > 1:
        per_gpu *= SCALING[preset][parallel] ** math.log2(gpus)
    return per_gpu * gpus


def wobble(key):
    """A fixed ±3% factor per key: measured is never exactly the model."""
    if key in EXACT:
        return 1.0
    h = sum((i + 1) * ord(c) for i, c in enumerate(key))
    return 1 + 0.03 * math.sin(h)


def configs(gpus, presets):
    schemes = ("single",) if gpus == 1 else ("ddp", "zero2", "zero3")
    for preset in presets:
        for attention in ("flash", "naive"):
            for parallel in schemes:
                for micro_batch in (4, 8, 16, 32, 64):
                    yield preset, attention, parallel, micro_batch


def ops_ms(preset, attention, step_ms):
    """The step split by op, attention's share as the toy model makes it: Naive's extra time is
    all attention."""
    flash_step = step_ms * (NAIVE_FACTOR[preset] if attention == "naive" else 1.0)
    att = FLASH_ATTENTION_SHARE[preset] * flash_step + (step_ms - flash_step)
    rest = step_ms - att
    return {"matmul": round(0.7 * rest, 3), "attention": round(att, 3), "norm": round(0.1 * rest, 3),
            "optimizer": round(0.1 * rest, 3), "idle": round(0.1 * rest, 3)}


def point(kind, gpu, gpus, preset, attention, parallel, micro_batch, scale=1.0):
    peak, limit, price, device = GPUS[gpu]
    seq = PRESETS[preset][5]
    key = f"{gpu}/{gpus}/{preset}/{attention}/{parallel}/{micro_batch}/{seq}"
    tps = tokens_per_s(gpu, preset, attention, parallel, micro_batch, gpus) * scale
    mem = memory_gib(preset, attention, parallel, micro_batch, gpus)
    flops = PRESETS[preset][1] * 1e9
    tpd = tps * 3600 / (gpus * price)
    step_ms = round(1000 * micro_batch * seq * gpus / tps, 2)
    rec = {"kind": kind, "key": key, "gpu": gpu, "device_name": device, "gpus": gpus,
           "preset": preset, "params": PRESETS[preset][0], "attention": attention,
           "parallel": parallel, "micro_batch": micro_batch, "seq": seq, "grad_accum": 1,
           "global_batch": micro_batch * gpus, "step_ms": step_ms,
           "tokens_per_s": round(tps), "tokens_per_s_per_gpu": round(tps / gpus),
           "mfu_pct": round(100 * tps / gpus * flops / (peak * 1e12), 2),
           "memory_gib": round(mem * (scale if kind == "measured" else 1), 2),
           "estimate_gib": round(mem, 2), "memory_limit_gib": limit,
           "dollars_per_gpu_hour": price, "tokens_per_dollar": round(tpd),
           "dollars_per_mtok": round(1e6 / tpd, 6), "ops_ms": ops_ms(preset, attention, step_ms)}
    return rec, mem <= limit


def loss_line(rec, source):
    E, A, alpha, _, last, _ = CURVES[rec["preset"]]
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


def law_line(rec):
    """The sweep's law_cost line for a measured or current predicted point (law_cost.hpp)."""
    params, _, layers, _, hidden, seq, _ = PRESETS[rec["preset"]]
    tps, per_hour = rec["tokens_per_s"], rec["dollars_per_gpu_hour"] * rec["gpus"]

    def loss(tokens):
        return LAW["E"] + LAW["A"] / params ** LAW["alpha"] + LAW["B"] / tokens ** LAW["beta"]

    tokens = TOKENS_PER_PARAMETER * params
    hours = tokens / tps / 3600
    budgets = []
    for dollars in LAW_BUDGETS:
        bought = dollars / per_hour * 3600 * tps
        budgets.append({"dollars": dollars, "tokens": bought, "hours": dollars / per_hour,
                        "loss": loss(bought)})
    # DeepSeek LLM 2024: C = M·D with M = 72·layers·hidden² + 12·layers·hidden·seq.
    compute = (72 * layers * hidden ** 2 + 12 * layers * hidden * seq) * tokens
    optimal = 0.2920 * compute ** 0.3271
    line = {"kind": "law_cost", "key": rec["key"],
            "source": "measured" if rec["kind"] == "measured" else "predicted"}
    for f in ("gpu", "gpus", "preset", "params", "attention", "parallel", "micro_batch",
              "global_batch", "seq", "tokens_per_s"):
        line[f] = rec[f]
    return line | {"law": LAW["name"], "dollars_per_hour": per_hour,
                   "tokens_per_parameter": TOKENS_PER_PARAMETER, "target_tokens": tokens,
                   "hours_to_target": hours, "dollars_to_target": hours * per_hour,
                   "loss_at_target": loss(tokens), "budgets": budgets,
                   "global_batch_tokens": rec["global_batch"] * seq,
                   "optimal_batch_tokens": optimal,
                   "batch_beyond_optimal": rec["global_batch"] * seq > optimal}


def law_best_lines(law_lines):
    """best by law_dollars_to_target per (source, preset, gpu, gpus) and law_answer per
    (source, preset), as study::best_by_law writes them."""
    best = {}
    for r in law_lines:
        for group in ((r["source"], r["preset"], r["gpu"], r["gpus"]), (r["source"], r["preset"])):
            if group not in best or r["dollars_to_target"] < best[group]["dollars_to_target"]:
                best[group] = r
    out = []
    for group, r in best.items():
        b = {"kind": "best", "by": "law_dollars_to_target" if len(group) == 4 else "law_answer",
             "source": r["source"], "preset": r["preset"], "key": r["key"]}
        for f in ("gpu", "gpus", "attention", "parallel", "micro_batch", "global_batch", "law",
                  "hours_to_target", "loss_at_target", "batch_beyond_optimal"):
            b[f] = r[f]
        out.append(b | {"value": r["dollars_to_target"]})
    return out


def load_presets(program):
    """PRESETS from `program --list-names` (train_llama): our preset table, not a copy."""
    out = subprocess.run([program, "--list-names"], check=True, capture_output=True, text=True)
    table = {p["name"]: p for p in json.loads(out.stdout)["presets"]}
    for name, act in ACTIVATION_GIB.items():
        p = table[name]
        d, kv, seq = p["hidden"], p["hidden"] * p["kv_heads"] // p["heads"], p["max_seq"]
        matmul = p["layers"] * (2 * d * d + 2 * d * kv + 3 * d * p["ffn"]) + p["vocab"] * d
        gflop = round((6 * matmul + 6 * p["layers"] * seq * d) / 1e9, 3)
        PRESETS[name] = (p["parameters"], gflop, p["layers"], p["heads"], d, seq, act)


def measured_lines(counts):
    lines, measured = [], {}
    for gpus in counts:
        for preset, attention, parallel, mb in configs(gpus, MEASURED):
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
    return lines, measured


def predicted_lines(measured):
    lines = []
    grid = [(gpu, gpus, MEASURED) for gpu in GPUS for gpus in PREDICTED_COUNTS]
    grid += [(gpu, 1, ("paper_100m",)) for gpu in TWO_GPU_CASE]
    for gpu, gpus, presets in grid:
        for preset, attention, parallel, mb in configs(gpus, presets):
            rec, fits = point("predicted", gpu, gpus, preset, attention, parallel, mb)
            rec["ops_ms"]["communication"] = 0.0 if gpus == 1 else 0.04
            rec |= {"fits": fits, "calibrated_on": ["llama_100m", "llama_500m"]}
            lines.append(rec)
            if rec["key"] in measured:
                # As the sweep does: the prediction frozen before the point was measured, beside
                # the current one. 5% optimistic, so that a report that took it for a current
                # prediction would show it as the best.
                frozen, _ = point("predicted", gpu, gpus, preset, attention, parallel, mb, FROZEN_HIGH)
                frozen |= {"key": "before/" + rec["key"], "check_key": rec["key"],
                           "before_measurement": True, "fits": fits, "calibrated_on": ["llama_100m"]}
                lines.append(frozen)
    return lines


def curve_lines():
    lines = []
    for preset, (E, A, alpha, batch, last, rms) in CURVES.items():
        tokens = [last / 16 * k for k in range(1, 17)]
        points = [[0, 10.41]] + [[t, round((E + A * t ** -alpha) * wobble(f"{t}") ** 0.2, 5)]
                                 for t in tokens]
        lines.append({"kind": "loss_curve", "preset": preset, "global_batch": batch,
                      "seq": PRESETS[preset][5], "points": points,
                      "fit": {"form": "E + A * tokens^-alpha", "E": E, "A": A, "alpha": alpha,
                              "rms_relative_error": rms}, "max_tokens": last})
    return lines


def main(argv):
    modes = ([], ["--only-measured"], ["--single-gpu-measured"])
    if len(argv) not in (3, 4) or argv[3:] not in modes:
        print(__doc__, file=sys.stderr)
        return 2
    load_presets(argv[1])
    counts = (1,) if argv[3:] == ["--single-gpu-measured"] else MEASURED_COUNTS
    lines, measured = measured_lines(counts)
    if argv[3:] == ["--only-measured"]:
        lines = [r for r in lines if r["kind"] == "measured"]
        for r in lines:  # llama_1b as a CPU sweep writes it: no MFU, no measured memory
            if r["preset"] == "llama_1b":
                del r["mfu_pct"], r["memory_gib"]
    else:
        lines += predicted_lines(measured) + curve_lines()
        rated = [r for r in lines if r["kind"] == "measured"
                 or (r["kind"] == "predicted" and r["fits"] and not r.get("before_measurement"))]
        for r in rated:
            if r["preset"] in CURVES:
                decoy = loss_line(r, r["kind"])
                if r["key"] == "H100-80GB/1/llama_100m/naive/single/4/2048" and r["kind"] == "measured":
                    decoy |= {"loss_at_budget": 1.0, "dollars_to_target": 1e-6}
                lines.append(decoy)
        laws = [law_line(r) for r in rated]
        lines += laws
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
        lines += law_best_lines(laws)
        lines.append({"kind": "calibration", "note": "a kind this report does not know"})
    with open(argv[2], "w", encoding="utf-8") as f:
        for r in lines:
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
