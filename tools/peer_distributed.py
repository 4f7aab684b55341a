"""--distributed ddp|fsdp2 of tools/peer_train_step.py: the PyTorch peer's step on one node's GPUs.

Run under torchrun, one rank per GPU (peer_train_step.py's docstring has the commands). Each rank
builds the same model (same seed) on cuda:LOCAL_RANK and trains its own micro-batch of random
tokens (seed + rank), so the global batch is world * micro-batch sequences.

  ddp    DistributedDataParallel(model, device_ids=[local_rank], gradient_as_bucket_view=True),
         default bucket size; forward and loss under bf16 autocast, fp32 weights (as on one GPU).
  fsdp2  torch.distributed.fsdp.fully_shard on each decoder layer (model.model.layers), then on the
         whole model, MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32), no autocast.
Either way torch.optim.AdamW(fused=True) on the (for fsdp2: sharded) parameters.

--mode compile: ddp compiles the DDP-wrapped model (DistributedDataParallel's documentation: apply
the wrapper before compiling, so that Dynamo's DDPOptimizer can split the graph at the bucket
boundaries). fsdp2 compiles each decoder layer before sharding it, the order torchtitan's Llama
recipe uses ("per-TransformerBlock compile ... before FSDP", torchtitan/models/llama3/infra/
parallelize.py), as in PyTorch's own FSDP2 compile tests (compile, then fully_shard). The
embedding, final norm, lm_head and loss stay eager there (on one GPU and with ddp, compile covers
the whole model, loss included).

Timing: the warm-up steps, a barrier, then CUDA events around each of --steps steps on every
rank. Step time = max over ranks of each rank's median (all_reduce MAX); tokens/s = world *
micro-batch * seq / step time; per GPU: tokens/s / world and MFU. Peak memory: max over ranks of
max_memory_allocated (and _reserved) over the timed steps. Out of memory on any rank: the ranks
agree (all_reduce of a flag per rank), the mode is reported as out of memory by rank 0 and the
next mode runs (exit status 0). This needs the ranks to run out at the same point, which they do
when the GPUs are alike (same shapes everywhere); a rank left waiting in a collective for one
that failed elsewhere is ended by the process group's timeout (COLLECTIVE_TIMEOUT_S). If the
agreement itself fails, the rows so far are written, the process group is destroyed and the
exit status is 1. Only rank 0 prints the table and writes --out.
"""
import datetime
import json
import os
import shlex
import statistics
import sys

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# Longer than any wait between collectives here (the ranks compile at the same time).
COLLECTIVE_TIMEOUT_S = 300


def torchrun_command(argv):
    script = argv[0] if argv and argv[0].endswith(".py") else "tools/peer_train_step.py"
    return "torchrun --standalone --nproc_per_node 2 " + shlex.join([script] + argv[1:])


def check_args(parser, args):
    """Called from parse_args (no torch needed): exit 2 unless torchrun's environment is set."""
    if args.loss_steps > 0:
        parser.error("--loss-steps is single-GPU only (use --distributed none)")
    missing = [v for v in TORCHRUN_VARS if v not in os.environ]
    if missing:
        sys.stderr.write(
            f"peer_train_step: --distributed {args.distributed} runs one process per GPU under "
            f"torchrun ({', '.join(missing)} not set). For 2 GPUs of this node:\n"
            f"    {torchrun_command(sys.argv)}\n")
        sys.exit(2)


class Context:
    def __init__(self, torch, args):
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self.kind = args.distributed
        self.device = torch.device("cuda", self.local_rank)
        self.mesh = None


def say(ctx, text):
    if ctx.rank == 0:
        print(text, flush=True)


def raise_recompile_limit(torch, layers):
    # The layers share one code object, so Dynamo's recompile limit (8 by default) counts them
    # together; if anything in the guards differs per layer, layers past the limit would run
    # eagerly without a word. Room for two entries per layer keeps every layer compiled.
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), 2 * layers + 8))
            return


def setup(peer, torch, transformers, args, mode, state, ctx):
    """Model, wrapper, optimizer and step function into `state`; returns the parameter count."""
    model = peer.build_model(torch, transformers, args.preset, args.seed)  # on cuda:local_rank
    state["model"] = model
    params = sum(p.numel() for p in model.parameters())
    if ctx.kind == "ddp":
        from torch.nn.parallel import DistributedDataParallel
        wrapped = DistributedDataParallel(model, device_ids=[ctx.local_rank],
                                          gradient_as_bucket_view=True)
        state["wrapped"] = wrapped
        state["optimizer"] = torch.optim.AdamW(wrapped.parameters(), lr=args.lr, fused=True)
        # Documented order for DDP: wrap first, then compile the wrapper (DDPOptimizer).
        state["forward"] = torch.compile(wrapped) if mode == "compile" else wrapped
        autocast = True
    else:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        layers = model.model.layers
        if mode == "compile":
            # Documented order for FSDP2 (torchtitan's Llama recipe, PyTorch's FSDP2 tests):
            # compile each decoder layer, then shard the compiled module; FSDP2's hooks then run
            # eagerly around the compiled layer.
            raise_recompile_limit(torch, len(layers))
            for i in range(len(layers)):
                layers[i] = torch.compile(layers[i])
        for layer in layers:
            fully_shard(layer, mesh=ctx.mesh, mp_policy=policy)
        fully_shard(model, mesh=ctx.mesh, mp_policy=policy)
        # After sharding: the optimizer must see the sharded (DTensor) parameters.
        state["optimizer"] = torch.optim.AdamW(model.parameters(), lr=args.lr, fused=True)
        state["forward"] = model
        autocast = False  # MixedPrecisionPolicy casts the parameters to bf16 instead
    state["step"] = peer.make_step(torch, state["forward"], state["optimizer"], autocast=autocast)
    return params


def measure(peer, torch, transformers, args, mode, state, ctx):
    """This rank's timings; the caller combines them across ranks."""
    import torch.distributed as dist
    params = setup(peer, torch, transformers, args, mode, state, ctx)
    gen = torch.Generator(device=ctx.device).manual_seed(args.seed + ctx.rank)
    ids = torch.randint(0, peer.presets()[args.preset]["vocab"], (args.micro_batch, args.seq), device=ctx.device,
                        generator=gen)
    state["ids"] = ids
    step = state["step"]
    warm = peer.warmup_steps(torch, step, ids, args.warmup, mode, lambda text: say(ctx, text),
                             who=" (rank 0)")
    dist.barrier(device_ids=[ctx.local_rank])
    times, last_loss = peer.timed_steps(torch, step, ids, args.steps)
    return {"params": params, "warmup_s": warm, "times": times,
            "last_loss": float(last_loss.item())}


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_mode(peer, torch, transformers, args, mode, ctx):
    """One mode on every rank. Returns rank 0's row (other ranks: {}), or None if the ranks could
    not agree (the process group is unusable)."""
    import torch.distributed as dist
    state, error, local = {}, None, None
    torch.cuda.reset_peak_memory_stats()
    try:
        local = measure(peer, torch, transformers, args, mode, state, ctx)
    except Exception as e:  # noqa: BLE001 -- only out-of-memory is caught; the rest re-raises
        if not peer.is_oom(torch, e):
            raise
        error = first_line(e)
    # Outside the except block, so that the traceback's frames no longer hold tensors.
    alloc, reserved = torch.cuda.max_memory_allocated() / peer.GIB, \
        torch.cuda.max_memory_reserved() / peer.GIB
    peer.free(torch, state, mode)
    median = statistics.median(local["times"]) if local else 0.0
    # One all_reduce(MAX): [median, -median (-> min over ranks), peak allocated, peak reserved,
    # then one out-of-memory flag per rank].
    stats = [median, -median, alloc, reserved] + [0.0] * ctx.world
    stats[4 + ctx.rank] = 1.0 if error is not None else 0.0
    try:
        combined = torch.tensor(stats, dtype=torch.float64, device=ctx.device)
        dist.all_reduce(combined, op=dist.ReduceOp.MAX)
        combined = combined.tolist()
    except Exception as e:  # noqa: BLE001 -- any failure here leaves the ranks out of step
        print(f"# rank {ctx.rank}: {mode}: the ranks could not agree on the outcome "
              f"({first_line(e)[:200]}); stopping", file=sys.stderr, flush=True)
        return None
    step_s, fastest_s, alloc, reserved = combined[0], -combined[1], combined[2], combined[3]
    oom_ranks = [r for r in range(ctx.world) if combined[4 + r] > 0]
    if ctx.rank != 0:
        return {}
    row = {"preset": args.preset, "mode": mode, "distributed": ctx.kind,
           "world_size": ctx.world, "micro_batch": args.micro_batch, "seq": args.seq}
    if oom_ranks:
        row.update({"error": "out of memory", "oom_ranks": oom_ranks, "detail": error,
                    "peak_allocated_gib": alloc, "peak_reserved_gib": reserved})
        print(f"# {mode}: out of memory on rank(s) {', '.join(map(str, oom_ranks))}"
              + (f" ({error[:200]})" if error else ""), flush=True)
        return row
    warm = local["warmup_s"]
    if mode == "compile" and warm:
        row["compile_s"] = warm[0] - warm[-1] if len(warm) > 1 else warm[0]
        print(f"# compile: compilation took about {row['compile_s']:.1f} s on rank 0 "
              f"(first warm-up step {warm[0]:.1f} s)", flush=True)
    fpt = peer.flops_per_token(args.preset, args.seq)
    per_gpu = args.micro_batch * args.seq / step_s
    times = local["times"]
    row.update({
        "params": local["params"],
        "warmup_s": warm,
        "median_ms": step_s * 1e3,             # the step time: max over ranks of the medians
        "fastest_rank_median_ms": fastest_s * 1e3,
        "rank0_median_ms": median * 1e3,
        "rank0_min_ms": min(times) * 1e3,
        "rank0_max_ms": max(times) * 1e3,
        "rank0_step_ms": [t * 1e3 for t in times],
        "tokens_per_s": ctx.world * per_gpu,    # global
        "tokens_per_s_per_gpu": per_gpu,
        "flops_per_token": fpt,
        "mfu": per_gpu * fpt / (args.peak_tflops * 1e12),  # per GPU
        "peak_allocated_gib": alloc,            # max over ranks
        "peak_reserved_gib": reserved,
        "last_loss": local["last_loss"],        # rank 0's batch
    })
    return row


def print_table(rows):
    print(f"{'mode':>8} {'dist':>6} {'GPUs':>4} {'mbatch':>6} {'tokens/s':>10} {'tok/s/GPU':>10} "
          f"{'MFU %':>6} {'peak GiB':>9} {'reserved':>9} {'step ms':>8}")
    for r in rows:
        head = f"{r['mode']:>8} {r['distributed']:>6} {r['world_size']:>4} {r['micro_batch']:>6}"
        if "error" in r:
            print(f"{head} {'out of memory':>10}")
        else:
            print(f"{head} {r['tokens_per_s']:>10,.0f} {r['tokens_per_s_per_gpu']:>10,.0f} "
                  f"{100 * r['mfu']:>6.1f} {r['peak_allocated_gib']:>9.1f} "
                  f"{r['peak_reserved_gib']:>9.1f} {r['median_ms']:>8.1f}")


def main(args, peer):
    """Entry for --distributed ddp|fsdp2 (peer = the peer_train_step module); returns the exit
    status."""
    torch, transformers = peer.import_torch()
    import torch.distributed as dist
    ctx = Context(torch, args)
    if ctx.local_rank >= torch.cuda.device_count():
        peer.fail(f"LOCAL_RANK {ctx.local_rank} but only {torch.cuda.device_count()} CUDA "
                  f"device(s) visible; --nproc_per_node must not exceed the GPUs")
    torch.cuda.set_device(ctx.device)
    dist.init_process_group("nccl", device_id=ctx.device,
                            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    if ctx.kind == "fsdp2":
        from torch.distributed.device_mesh import init_device_mesh
        ctx.mesh = init_device_mesh("cuda", (ctx.world,))
    modes = ["sdpa", "compile"] if args.mode == "both" else [args.mode]
    device = torch.cuda.get_device_name(ctx.device)
    nccl = torch.cuda.nccl.version()  # a tuple (2, 27, 3); an int in old releases
    nccl = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
    say(ctx, f"# {ctx.world} ranks ({args.distributed}, NCCL {nccl}), {device}, torch "
             f"{torch.__version__}, transformers {transformers.__version__}; {args.preset}, "
             f"micro-batch {args.micro_batch} x seq {args.seq} per GPU, "
             + ("bf16 autocast, fp32 weights" if ctx.kind == "ddp" else
                "bf16 parameters, fp32 reduction and master weights")
             + f", fused AdamW lr {args.lr}; max over ranks of the median of {args.steps} "
               f"steps after {args.warmup} warm-up")
    rows, status = [], 0
    for mode in modes:
        row = run_mode(peer, torch, transformers, args, mode, ctx)
        if row is None:
            status = 1
            break
        if ctx.rank == 0:
            row.update({"device": device, "torch": torch.__version__, "nccl": nccl,
                        "transformers": transformers.__version__})
            rows.append(row)
    if ctx.rank == 0:
        print_table(rows)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    dist.destroy_process_group()
    return status
