#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the shapes of benchmarks/attention_cuda.cu.

Causal, bf16, B·T = 16384 tokens, hidden 2048 (heads = 2048 // head_dim), head_dim 32, 48, 64,
80, 96, 128 and 256 (or those of --head-dims), seq 512 … 16384, once with the FLASH_ATTENTION backend (FlashAttention-2) and
once with CUDNN_ATTENTION, forward and forward+backward. Timing: CUDA events around each pass, warm-up
first, L2 flushed (256 MB memset) before every timed pass, median over the iterations.
TFLOP/s with the FlashAttention papers' convention, the same as attention_cuda's counters:
forward = 4·B·H·T²·D / 2 (causal half), forward+backward = 3.5 × forward.

    python3 tools/sdpa_bench.py --out sdpa.json [--iters 30] [--warmup 5] [--head-dims 128,256]

Prints a table and writes a JSON list of rows to --out.
"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

TOKENS, HIDDEN = 16384, 2048
SEQS = [512, 1024, 2048, 4096, 8192, 16384]
HEAD_DIMS = [32, 48, 64, 80, 96, 128, 256]
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


def forward_flops(batch, heads, seq, head_dim):
    return 4.0 * batch * heads * seq * seq * head_dim / 2.0


def median_seconds(step, iters, warmup, flush):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for i in range(iters):
        flush.fill_(i & 0xFF)
        start.record()
        step()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def measure(backend, seq, head_dim, iters, warmup, flush):
    batch, heads = TOKENS // seq, HIDDEN // head_dim
    gen = torch.Generator(device="cuda").manual_seed(seq * 1000 + head_dim)

    def tensor():  # (B, H, T, D) as SDPA wants it
        x = torch.randn(batch, heads, seq, head_dim, device="cuda", dtype=torch.bfloat16,
                        generator=gen)
        return x.requires_grad_(True)

    q, k, v = tensor(), tensor(), tensor()
    d_out = torch.randn(batch, heads, seq, head_dim, device="cuda", dtype=torch.bfloat16,
                        generator=gen)
    row = {"backend": backend, "head_dim": head_dim, "seq": seq, "batch": batch, "heads": heads}
    with sdpa_kernel([BACKENDS[backend]]):
        def fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def fwd_bwd():
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            q.grad = k.grad = v.grad = None
            out.backward(d_out)

        flops = forward_flops(batch, heads, seq, head_dim)
        for name, step, mult in (("fwd", fwd, 1.0), ("fwd_bwd", fwd_bwd, 3.5)):
            try:
                t = median_seconds(step, iters, warmup, flush)
                row[name + "_ms"] = t * 1e3
                row[name + "_tflops"] = flops * mult / t / 1e12
            except RuntimeError as e:  # backend unavailable for this shape, or out of memory
                row[name + "_error"] = str(e).splitlines()[0]
                torch.cuda.empty_cache()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--head-dims", default=",".join(map(str, HEAD_DIMS)),
                        help="comma-separated head_dims (default: all of %(default)s)")
    args = parser.parse_args()
    try:
        head_dims = [int(d) for d in args.head_dims.split(",")]
    except ValueError:
        parser.error(f"--head-dims takes comma-separated integers, got '{args.head_dims}'")
    if any(d <= 0 or d > HIDDEN for d in head_dims):
        parser.error(f"--head-dims: every head_dim must be positive and at most {HIDDEN}")
    if not torch.cuda.is_available():
        sys.exit("sdpa_bench: no CUDA device visible to PyTorch")
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    rows = []
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, causal bf16, "
          f"B*T = {TOKENS}, hidden {HIDDEN}; TFLOP/s (median)")
    print(f"{'backend':>8} {'hdim':>5} {'seq':>6} {'fwd':>8} {'fwd+bwd':>8}")
    for backend in BACKENDS:
        for head_dim in head_dims:
            for seq in SEQS:
                row = measure(backend, seq, head_dim, args.iters, args.warmup, flush)
                rows.append(row)

                def cell(name):
                    v = row.get(name + "_tflops")
                    return f"{v:8.1f}" if v is not None else f"{'n/a':>8}"

                print(f"{backend:>8} {head_dim:>5} {seq:>6} {cell('fwd')} {cell('fwd_bwd')}",
                      flush=True)
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
