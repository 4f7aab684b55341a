"""tools/peer_train_step.py --loss-steps: the peer trained on our token shards (prepare_data's,
include/slm/data/shard.hpp, read with numpy), so its loss curve can be set beside train_llama's
on the same windows.

Format: a 40-byte little-endian header (magic "SLMTOKS\\0", version u32, token width u32 of 2 or
4 bytes, vocab u64, token count u64, FNV-1a checksum u64, not verified here: train_llama does),
then the tokens.
"""
import math
import os
import struct
import sys
import time

SHARD_MAGIC = b"SLMTOKS\0"
SHARD_VERSION = 1
SHARD_HEADER_BYTES = 40


def fail(message):
    sys.exit(f"peer_train_step: {message}")


def first_shard(directory):
    if not os.path.isdir(directory):
        fail(f"data directory '{directory}' does not exist; run prepare_data first")
    names = sorted(n for n in os.listdir(directory) if n.startswith("tokens") and n.endswith(".bin"))
    if not names:
        fail(f"no tokens*.bin shards in '{directory}'; run prepare_data --out {directory} first")
    return os.path.join(directory, names[0])


def open_shard(path):
    """The shard's tokens as a read-only numpy memmap (uint16 or uint32), and its vocab."""
    try:
        import numpy as np
    except ImportError:
        fail("numpy is not installed; --loss-steps reads the token shards with numpy")
    size = os.path.getsize(path)
    if size < SHARD_HEADER_BYTES:
        fail(f"token shard '{path}' is too short ({size} bytes; the header alone is "
             f"{SHARD_HEADER_BYTES})")
    with open(path, "rb") as f:
        header = f.read(SHARD_HEADER_BYTES)
    magic, version, width, vocab, count, _checksum = struct.unpack("<8sIIQQQ", header)
    if magic != SHARD_MAGIC:
        fail(f"'{path}' has a bad magic number (not an SLMTOKS token shard)")
    if version != SHARD_VERSION:
        fail(f"token shard '{path}' has version {version}; this reader knows {SHARD_VERSION}")
    if width not in (2, 4):
        fail(f"token shard '{path}' has token width {width} bytes (must be 2 or 4)")
    if count * width != size - SHARD_HEADER_BYTES:
        fail(f"token shard '{path}' holds {size - SHARD_HEADER_BYTES} token bytes but its header "
             f"says {count} tokens of {width} bytes (truncated or padded)")
    dtype = np.dtype("<u2") if width == 2 else np.dtype("<u4")
    tokens = np.memmap(path, dtype=dtype, mode="r", offset=SHARD_HEADER_BYTES, shape=(count,))
    return tokens, vocab


class ShardWindows:
    """Consecutive windows of seq + 1 tokens (stride seq) of one shard, in order."""

    def __init__(self, path, seq, model_vocab):
        self.path, self.seq = path, seq
        self.tokens, self.vocab = open_shard(path)
        self.windows = (len(self.tokens) - 1) // seq if len(self.tokens) > seq else 0
        if self.windows == 0:
            fail(f"token shard '{path}' has {len(self.tokens)} tokens, fewer than one window of "
                 f"seq + 1 = {seq + 1}")
        if self.vocab > model_vocab:
            fail(f"the data's vocabulary ({self.vocab}) is larger than the model's "
                 f"({model_vocab}); prepare the data with --vocab {model_vocab} or less")

    def batch(self, step, micro_batch):
        """(micro_batch, seq + 1) int64 numpy array for this step."""
        import numpy as np
        rows = []
        for r in range(micro_batch):
            k = (step * micro_batch + r) % self.windows
            rows.append(np.asarray(self.tokens[k * self.seq: k * self.seq + self.seq + 1],
                                   dtype=np.int64))
        return np.stack(rows)


def measure_loss(peer, torch, transformers, args, mode, state):
    """--loss-steps: train `mode` on the shard's windows in order; the row with every loss.
    `peer` is tools/peer_train_step.py (its model setup and constants)."""
    path = first_shard(args.data)
    data = ShardWindows(path, args.seq, peer.presets()[args.preset]["vocab"])
    needed = args.loss_steps * args.micro_batch
    print(f"# data: {path}: {len(data.tokens)} tokens, vocab {data.vocab}, {data.windows} windows "
          f"of {args.seq} + 1", flush=True)
    if needed > data.windows:
        print(f"# note: {args.loss_steps} steps x {args.micro_batch} rows = {needed} windows > "
              f"{data.windows}; the shard is read again from the start "
              f"({needed / data.windows:.2f} passes)", flush=True)
    params = peer.setup(torch, transformers, args, mode, state)
    step = state["step"]
    row = {"preset": args.preset, "mode": mode, "micro_batch": args.micro_batch, "seq": args.seq,
           "params": params, "data": path, "lr": args.lr, "loss_steps": args.loss_steps}
    losses = []
    t0 = time.perf_counter()
    for s in range(args.loss_steps):
        window = torch.from_numpy(data.batch(s, args.micro_batch)).to("cuda", non_blocking=True)
        inputs, targets = window[:, :-1].contiguous(), window[:, 1:].contiguous()
        loss = float(step(inputs, targets=targets).item())
        losses.append(loss)
        if not math.isfinite(loss):
            print(f"{mode}: step {s + 1}: loss {loss}; stopping", flush=True)
            break
        n = s + 1
        if n == 1 or n % peer.LOSS_PRINT_EVERY == 0 or n == args.loss_steps:
            recent = losses[-peer.LOSS_PRINT_EVERY:]
            print(f"{mode}: step {n:5d}  loss {loss:.4f}  (mean of last {len(recent)}: "
                  f"{sum(recent) / len(recent):.4f})  {time.perf_counter() - t0:.0f} s", flush=True)
    row["losses"] = losses
    row["final_loss"] = losses[-1] if losses else None
    row["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / peer.GIB
    row["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / peer.GIB
    print(f"{mode}: final loss {row['final_loss']:.4f} after {len(losses)} steps "
          f"(ln {data.vocab} = {math.log(data.vocab):.4f})", flush=True)
    return row
