#!/usr/bin/env python3
"""Ours against PyTorch's SDPA backends, one row per shape, from one device call's two files.

    python3 tools/device/attention_vs_sdpa.py ATTENTION_CUDA.json SDPA.json [--name flash]

ATTENTION_CUDA.json: Google Benchmark JSON of benchmarks/attention_cuda (at least the
attention/<name>/fwd and attention/<name>/fwd_bwd lines); SDPA.json: tools/sdpa_bench.py --out.
Prints TFLOP/s (causal counted as half, forward+backward = 3.5 x forward, the convention of both
programs), our forward+backward over FA2's and cuDNN's, and, where ATTENTION_CUDA.json has them
(attention/<name>_deterministic/fwd_bwd), our deterministic mode's forward+backward over the
default's, with the shapes where it is more than 15% slower. Exit status 1 when a shape with
seq >= 1024 has ours below FA2 or a number is missing, so a call can gate on it.
"""
import argparse
import json
import re
import sys


def ours_by_shape(path, name):
    with open(path) as f:
        benchmarks = json.load(f)["benchmarks"]
    pattern = re.compile(rf"^attention/{re.escape(name)}/(fwd|bwd|fwd_bwd)/hdim:(\d+)/seq:(\d+)")
    table = {}
    for b in benchmarks:
        m = pattern.match(b["name"])
        if not m or b.get("error_occurred") or "TFLOPs" not in b:
            continue
        table[(int(m.group(2)), int(m.group(3)), m.group(1))] = b["TFLOPs"]
    return table


def sdpa_by_shape(path):
    with open(path) as f:
        data = json.load(f)
    table = {}
    for r in data["rows"]:
        for p in ("fwd", "fwd_bwd"):
            if r.get(p + "_tflops") is not None:
                table[(r["backend"], r["head_dim"], r["seq"], p)] = r[p + "_tflops"]
    return table, data.get("device", "?")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ours")
    parser.add_argument("sdpa")
    parser.add_argument("--name", default="flash", help="kernel name in attention_cuda's labels")
    args = parser.parse_args()
    try:
        ours = ours_by_shape(args.ours, args.name)
        deterministic = ours_by_shape(args.ours, args.name + "_deterministic")
        sdpa, device = sdpa_by_shape(args.sdpa)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"attention_vs_sdpa: cannot read the inputs: {e}")

    def fmt(v, spec="{:6.1f}"):
        return spec.format(v) if v is not None else f"{'n/a':>6}"

    print(f"# {device}: TFLOP/s, causal, B*T = 16384, hidden 2048 (heads = 2048 // head_dim)")
    print("| head_dim | seq | ours fwd | ours fwd+bwd | FA2 fwd | FA2 fwd+bwd | cuDNN fwd | "
          "cuDNN fwd+bwd | ours/FA2 | ours/cuDNN | deterministic/ours |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    failures, slow_deterministic = [], []
    shapes = sorted({(hd, seq) for (hd, seq, _) in ours} |
                    {(hd, seq) for (_, hd, seq, _) in sdpa})
    for hd, seq in shapes:
        o_f, o_fb = ours.get((hd, seq, "fwd")), ours.get((hd, seq, "fwd_bwd"))
        f_f, f_fb = sdpa.get(("flash", hd, seq, "fwd")), sdpa.get(("flash", hd, seq, "fwd_bwd"))
        c_f, c_fb = sdpa.get(("cudnn", hd, seq, "fwd")), sdpa.get(("cudnn", hd, seq, "fwd_bwd"))
        r_fa2 = o_fb / f_fb if o_fb and f_fb else None
        r_cudnn = o_fb / c_fb if o_fb and c_fb else None
        d_fb = deterministic.get((hd, seq, "fwd_bwd"))
        r_det = d_fb / o_fb if d_fb and o_fb else None
        print(f"| {hd} | {seq} | {fmt(o_f)} | {fmt(o_fb)} | {fmt(f_f)} | {fmt(f_fb)} | "
              f"{fmt(c_f)} | {fmt(c_fb)} | {fmt(r_fa2, '{:5.2f}')} | {fmt(r_cudnn, '{:5.2f}')} | "
              f"{fmt(r_det, '{:5.2f}')} |")
        if seq >= 1024 and r_det is not None and r_det < 0.85:
            slow_deterministic.append(f"hd{hd} seq {seq}: {r_det:.2f}")
        if seq >= 1024 and (r_fa2 is None or r_fa2 < 1.0):
            failures.append(f"hd{hd} seq {seq}: ours/FA2 = {r_fa2}")
    if deterministic:
        print("deterministic more than 15% slower than the default at seq >= 1024: " +
              ("; ".join(slow_deterministic) if slow_deterministic else "none"))
    if failures:
        print("below FA2 (or missing) at seq >= 1024: " + "; ".join(failures))
        return 1
    print("ours >= FA2 at every shape with seq >= 1024")
    return 0


if __name__ == "__main__":
    sys.exit(main())
