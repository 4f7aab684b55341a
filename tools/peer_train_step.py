#!/usr/bin/env python3
"""The PyTorch peer's training step: transformers' LlamaForCausalLM on our presets, one GPU.

The model is transformers.LlamaForCausalLM built from a LlamaConfig equal to our preset
(vocab 32000, untied embeddings, MHA, RMSNorm eps 1e-5, RoPE theta 10000, max position 2048,
attn_implementation "sdpa"), fp32 weights on CUDA, forward and loss under bf16 autocast,
backward outside it, torch.optim.AdamW(fused=True) at lr 3e-4. One step = forward with
labels = input ids (HF shifts them), backward, optimizer.step(), zero_grad(set_to_none=True),
on one fixed batch of random token ids (fixed seed) of shape (micro-batch, seq).

Modes: "sdpa" runs the model as built; "compile" wraps it in torch.compile(model) (default
mode), and the warm-up steps absorb the compilation (their times are printed); "both" runs
sdpa, frees everything, then compile.

Timing: CUDA events around each step after the warm-up, median over --steps. tokens/s =
micro-batch * seq / median seconds. MFU = tokens/s * FLOPs per token / 989e12, with the
model FLOPs of README (core/accounting.hpp): 6*(L*(2d^2 + 2*d*kv + 3*d*ffn) + d*V) + 6*L*T*d. Peak memory:
torch.cuda.max_memory_allocated() (and max_memory_reserved()) over the timed steps, peak
statistics reset after the warm-up, in GiB (2^30 bytes). A mode that runs out of memory is
reported as "out of memory" and the other mode still runs (exit status 0).

    python3 tools/peer_train_step.py --preset llama_100m --micro-batch 32 --seq 2048 \\
        --mode sdpa|compile|both --steps 8 --warmup 3 --out peer.json

Loss curve (--loss-steps N > 0, with --data DIR): instead of timing, train N steps on real
tokens and print the training loss every 50 steps and at the end, to compare with train_llama's
curve (tools/peer_loss_curve.py, which also reads the shard format). Data: the first tokens*.bin
shard (sorted by name) of DIR, from our prepare_data. Row r of step s is window k = s*micro_batch + r: tokens [k*seq, k*seq + seq + 1) of the
shard (consecutive windows in order, adjacent windows sharing one token, so every token is
predicted once); the model reads the first seq tokens and the loss is the mean cross-entropy
against the last seq (computed here in fp32 from the logits, the same as HF's own loss but
over all seq positions). When the shard has fewer windows than N * micro-batch, it starts
over from the beginning (a note is printed). Differences from train_llama's defaults, to keep
in mind when comparing: constant lr (no warmup, no cosine), no gradient clipping, torch's
AdamW weight decay (0.01, on every parameter), HF's initialisation, and the shard is read
without our 5% validation hold-out. The printed loss is the training batch loss.

    python3 tools/peer_train_step.py --preset llama_100m --micro-batch 16 --seq 2048 \\
        --mode sdpa --loss-steps 300 --data data/DIR --out peer_loss.json

Several GPUs of one node (--distributed ddp|fsdp2, one rank per GPU under torchrun; the code is
in tools/peer_distributed.py): every rank trains its own micro-batch of random tokens (seed +
rank). ddp: DistributedDataParallel, bf16 autocast as above; fsdp2: fully_shard on each decoder
layer and then the whole model, bf16 parameters and fp32 gradient reduction (MixedPrecisionPolicy,
no autocast). Step time = max over ranks of each rank's median; tokens/s = world * micro-batch *
seq / step time (also per GPU); MFU per GPU; peak memory = max over ranks. Any --mode. 2 GPUs:

    torchrun --standalone --nproc_per_node 2 tools/peer_train_step.py --preset llama_500m \\
        --micro-batch 8 --distributed ddp --mode sdpa --out peer_ddp.json
    torchrun --standalone --nproc_per_node 2 tools/peer_train_step.py --preset llama_500m \\
        --micro-batch 8 --distributed fsdp2 --mode sdpa --out peer_fsdp2.json

Prints a table and writes a JSON list of rows (one per mode) to --out.
"""
import argparse
import gc
import json
import statistics
import sys
import time

import slm_presets  # tools/, next to this file

def presets():
    """Our preset table (train_llama --list-names): name -> dict of the preset's fields."""
    return slm_presets.table(fail)


GIB = float(1 << 30)
LOSS_PRINT_EVERY = 50


NAME = "peer_train_step"


def fail(message):
    sys.exit(f"{NAME}: {message}")


def flops_per_token(preset, seq):
    p = presets()[preset]
    layers, d, ffn, vocab = p["layers"], p["hidden"], p["ffn"], p["vocab"]
    kv = d * p["kv_heads"] // p["heads"]
    return 6.0 * (layers * (2 * d * d + 2 * d * kv + 3 * d * ffn) + d * vocab) + 6.0 * layers * seq * d


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", required=True, help="a preset of train_llama --list-names")
    p.add_argument("--micro-batch", type=int, required=True, help="sequences per step")
    p.add_argument("--seq", type=int, default=2048, help="tokens per sequence (<= the preset's max_seq)")
    p.add_argument("--mode", choices=["sdpa", "compile", "both"], default="sdpa",
                   help="sdpa: the model as built; compile: torch.compile(model); both: sdpa then "
                        "compile")
    p.add_argument("--steps", type=int, default=8, help="timed steps (median over them)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first (they absorb torch.compile's compilation)")
    p.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate (constant)")
    p.add_argument("--seed", type=int, default=1234, help="seed for the weights and the tokens")
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="dense bf16 peak for MFU (H100/H200 SXM: 989)")
    p.add_argument("--loss-steps", type=int, default=0,
                   help="if > 0: train this many steps on --data and print the loss instead of "
                        "timing")
    p.add_argument("--data", default=None,
                   help="directory with tokens*.bin from prepare_data (for --loss-steps)")
    p.add_argument("--distributed", choices=["none", "ddp", "fsdp2"], default="none",
                   help="none: one GPU; ddp or fsdp2: one rank per GPU, under torchrun (above)")
    p.add_argument("--out", required=True, help="JSON file for the results")
    args = p.parse_args()
    if args.micro_batch < 1:
        p.error("--micro-batch must be >= 1")
    if args.preset not in presets():
        p.error(f"--preset {args.preset!r} is not one of {', '.join(presets())}")
    max_seq = presets()[args.preset]["max_seq"]
    if not 1 <= args.seq <= max_seq:
        p.error(f"--seq must be in [1, {max_seq}] (the preset's max_seq)")
    if args.steps < 1 or args.warmup < 0:
        p.error("need --steps >= 1 and --warmup >= 0")
    if args.loss_steps < 0:
        p.error("--loss-steps must be >= 0")
    if args.loss_steps > 0 and not args.data:
        p.error("--loss-steps needs --data DIR (token shards from prepare_data)")
    if not args.lr > 0:
        p.error("--lr must be > 0")
    if args.loss_steps == 0 and args.mode != "sdpa" and args.warmup < 1:
        p.error("--mode compile/both needs --warmup >= 1 (the first step compiles)")
    if args.distributed != "none":
        import peer_distributed  # tools/, next to this file; imports no torch at load time
        peer_distributed.check_args(p, args)
    return args


# ------------------------------------------------------------------------------------- torch

def import_torch():
    """torch and transformers, imported only after the arguments are read (so --help works)."""
    try:
        import torch
    except ImportError:
        fail("PyTorch is not installed here; run this on the GPU machine (PyTorch 2.11 + CUDA)")
    try:
        import transformers
    except ImportError:
        fail("transformers is not installed here; run this on the GPU machine "
             "(transformers 5.x)")
    if not torch.cuda.is_available():
        fail(f"no CUDA device visible to PyTorch {torch.__version__} "
             f"(torch.version.cuda = {torch.version.cuda})")
    return torch, transformers


def oom_types(torch):
    types = []
    for owner, name in ((torch, "OutOfMemoryError"), (torch.cuda, "OutOfMemoryError")):
        t = getattr(owner, name, None)
        if t is not None and t not in types:
            types.append(t)
    return tuple(types)


def is_oom(torch, error):
    if isinstance(error, oom_types(torch)):
        return True
    # Inside compiled code (Triton, Inductor) an allocation failure may arrive wrapped.
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def build_model(torch, transformers, preset, seed):
    p = presets()[preset]
    rope_theta = float(p["rope_theta"])
    config = transformers.LlamaConfig(
        vocab_size=p["vocab"],
        hidden_size=p["hidden"],
        intermediate_size=p["ffn"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"],
        head_dim=p["hidden"] // p["heads"],
        max_position_embeddings=p["max_seq"],
        rms_norm_eps=float(p["norm_eps"]),
        # transformers 4.x reads rope_theta, 5.x rope_parameters (as our hf_config.hpp writes)
        rope_theta=rope_theta,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        tie_word_embeddings=bool(p["tied_embeddings"]),
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        use_cache=False,  # training: no KV cache
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(config)
    model = model.to(device="cuda", dtype=torch.float32)
    model.train()
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != "sdpa":
        fail(f"the model's attention implementation is {attn!r}, not 'sdpa'")
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    if tied != bool(p["tied_embeddings"]):
        fail(f"the embeddings came out {'tied' if tied else 'untied'}; preset {preset} says otherwise")
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32 or not p.is_cuda]
    if bad:
        fail(f"parameters not fp32 on CUDA: {', '.join(bad[:5])}")
    return model


def make_step(torch, forward, optimizer, autocast=True):
    def step(input_ids, labels=None, targets=None):
        """One training step; returns the loss tensor (not synchronised)."""
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            if targets is None:
                loss = forward(input_ids=input_ids, labels=labels, use_cache=False).loss
            else:
                logits = forward(input_ids=input_ids, use_cache=False).logits
                loss = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def warmup_steps(torch, step, ids, steps, mode, say, who=""):
    """`steps` untimed steps, each synchronised: their wall times in seconds. With torch.compile,
    each step's time is reported through say() (the first includes the compilation)."""
    warm = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(ids, labels=ids)
        torch.cuda.synchronize()
        warm.append(time.perf_counter() - t0)
        if mode == "compile":
            what = " (includes compilation)" if i == 0 else ""
            say(f"# compile: warm-up step {i + 1}{who}: {warm[-1]:.2f} s{what}")
    return warm


def timed_steps(torch, step, ids, steps):
    """Peak memory statistics reset, then `steps` steps each timed by CUDA events: (seconds per
    step, the last step's loss)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, last_loss = [], None
    for _ in range(steps):
        start.record()
        last_loss = step(ids, labels=ids)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return times, last_loss


def setup(torch, transformers, args, mode, state):
    """Builds model, optimizer and step function into `state` (so the caller can free them)."""
    state["model"] = build_model(torch, transformers, args.preset, args.seed)
    params = sum(p.numel() for p in state["model"].parameters())
    expected = presets()[args.preset]["parameters"]
    if params != expected:
        print(f"# warning: {params} parameters, train_llama counts {expected}",
              flush=True)
    state["optimizer"] = torch.optim.AdamW(state["model"].parameters(), lr=args.lr, fused=True)
    state["forward"] = torch.compile(state["model"]) if mode == "compile" else state["model"]
    state["step"] = make_step(torch, state["forward"], state["optimizer"])
    return params


def measure_speed(torch, transformers, args, mode, state):
    params = setup(torch, transformers, args, mode, state)
    gen = torch.Generator(device="cuda").manual_seed(args.seed)
    ids = torch.randint(0, presets()[args.preset]["vocab"], (args.micro_batch, args.seq), device="cuda", generator=gen)
    state["ids"] = ids
    step = state["step"]
    row = {"preset": args.preset, "mode": mode, "micro_batch": args.micro_batch, "seq": args.seq,
           "params": params}

    warm = warmup_steps(torch, step, ids, args.warmup, mode, lambda text: print(text, flush=True))
    row["warmup_s"] = warm
    if mode == "compile" and warm:
        # compilation = the first step beyond a normal step (the last warm-up step's time)
        row["compile_s"] = warm[0] - warm[-1] if len(warm) > 1 else warm[0]
        print(f"# compile: compilation took about {row['compile_s']:.1f} s "
              f"(first warm-up step {warm[0]:.1f} s)", flush=True)

    times, last_loss = timed_steps(torch, step, ids, args.steps)
    median = statistics.median(times)
    tokens_per_s = args.micro_batch * args.seq / median
    row.update({
        "median_ms": median * 1e3,
        "min_ms": min(times) * 1e3,
        "max_ms": max(times) * 1e3,
        "step_ms": [t * 1e3 for t in times],
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops_per_token(args.preset, args.seq),
        "mfu": tokens_per_s * flops_per_token(args.preset, args.seq) / (args.peak_tflops * 1e12),
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / GIB,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / GIB,
        "last_loss": float(last_loss.item()),
    })
    return row


def free(torch, state, mode):
    state.clear()
    if mode == "compile":
        torch._dynamo.reset()  # drop the compiled graphs and what they hold
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def run_mode(torch, transformers, args, mode):
    state = {}
    error = None
    torch.cuda.reset_peak_memory_stats()
    try:
        if args.loss_steps > 0:
            import peer_loss_curve  # tools/, next to this file
            row = peer_loss_curve.measure_loss(sys.modules[__name__], torch, transformers, args,
                                               mode, state)
        else:
            row = measure_speed(torch, transformers, args, mode, state)
    except Exception as e:  # noqa: BLE001 -- only out-of-memory is caught; the rest re-raises
        if not is_oom(torch, e):
            raise
        error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # Outside the except block: the traceback (and the frames holding tensors) is gone now.
    if error is None:
        free(torch, state, mode)
        return row
    row = {"preset": args.preset, "mode": mode, "micro_batch": args.micro_batch, "seq": args.seq,
           "error": "out of memory", "detail": error,
           "peak_allocated_gib": torch.cuda.max_memory_allocated() / GIB,
           "peak_reserved_gib": torch.cuda.max_memory_reserved() / GIB}
    free(torch, state, mode)
    print(f"# {mode}: out of memory ({error[:200]})", flush=True)
    return row


def print_table(rows, loss_mode):
    if loss_mode:
        print(f"{'mode':>8} {'mbatch':>6} {'steps':>6} {'final loss':>10} {'peak GiB':>9}")
        for r in rows:
            if "error" in r:
                print(f"{r['mode']:>8} {r['micro_batch']:>6} {'':>6} {'out of memory':>10}")
            else:
                print(f"{r['mode']:>8} {r['micro_batch']:>6} {len(r['losses']):>6} "
                      f"{r['final_loss']:>10.4f} {r['peak_allocated_gib']:>9.1f}")
        return
    print(f"{'mode':>8} {'mbatch':>6} {'tokens/s':>10} {'MFU %':>6} {'peak GiB':>9} "
          f"{'reserved':>9} {'median ms':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['mode']:>8} {r['micro_batch']:>6} {'out of memory':>10}")
        else:
            print(f"{r['mode']:>8} {r['micro_batch']:>6} {r['tokens_per_s']:>10,.0f} "
                  f"{100 * r['mfu']:>6.1f} {r['peak_allocated_gib']:>9.1f} "
                  f"{r['peak_reserved_gib']:>9.1f} {r['median_ms']:>10.1f}")


def main():
    args = parse_args()
    if args.distributed != "none":
        import peer_distributed
        sys.exit(peer_distributed.main(args, sys.modules[__name__]))
    torch, transformers = import_torch()
    modes = ["sdpa", "compile"] if args.mode == "both" else [args.mode]
    what = (f"loss curve, {args.loss_steps} steps on {args.data}" if args.loss_steps > 0 else
            f"median of {args.steps} steps after {args.warmup} warm-up")
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}; {args.preset}, micro-batch {args.micro_batch} x seq "
          f"{args.seq}, bf16 autocast, fp32 weights, fused AdamW lr {args.lr}; {what}",
          flush=True)
    rows = []
    for mode in modes:
        row = run_mode(torch, transformers, args, mode)
        row.update({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "transformers": transformers.__version__})
        rows.append(row)
    print_table(rows, args.loss_steps > 0)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
