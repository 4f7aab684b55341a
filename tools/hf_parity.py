#!/usr/bin/env python3
"""hf_parity: does transformers' LlamaForCausalLM compute what slm computes, from the same weights?

DIR comes from examples/parity_dump: model.safetensors + config.json (our export) and
reference.json (our fp32 CPU forward/backward on fixed token ids). This loads DIR with
LlamaForCausalLM.from_pretrained, checks that every weight in the file arrived unchanged, runs the
same ids, and compares:

  logits     normwise relative error ||ours - hf|| / ||hf|| at each dumped position
  loss       |ours - hf| / |hf| of the mean cross-entropy against the next ids
  gradients  per tensor: relative error of ||dL/dW||, and of g.W scaled by ||g||·||W|| (which
             catches a gradient of the right size pointing the wrong way)

Tolerances follow the compute dtype of the HF side (--dtype; default: the file's dtype):
  float32   logits 1e-4, loss 1e-3, gradients 1e-3  (only summation order differs; the
            gradient of a small tensor, e.g. a norm gain, sums fewer terms and wanders most)
  bfloat16  logits 2e-2, loss 1e-3, gradients 5e-2  (HF computes in bf16, we in fp32 on the
            same bf16-rounded weights: HF's own bf16 error, ~3 significant digits per op and
            compounding over layers, is all that is measured; llama_100m on an H100 gave
            logits 1.02e-2, loss 7e-5, gradients <= 2e-3)
--dtype float32 on a bf16 export compares at fp32 tolerances: both sides then compute in fp32
from identical (bf16-representable) weights.

Prints a table; exits 0 when everything is within tolerance, 1 when not (or the weights did not
load cleanly), 2 on bad input.

  python3 tools/hf_parity.py /tmp/parity [--device cuda] [--dtype auto|float32|bfloat16]
                             [--attn eager|sdpa] [--no-grads] [--verbose]
"""
import argparse
import json
import math
import os
import sys

TOLERANCES = {  # compute dtype -> (logits, loss, gradients)
    "float32": (1e-4, 1e-3, 1e-3),
    "bfloat16": (2e-2, 1e-3, 5e-2),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dir", help="directory written by examples/parity_dump")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="dtype HF loads and computes in (auto: the file's)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--attn", default="eager", choices=["eager", "sdpa"],
                   help="HF attention implementation")
    p.add_argument("--no-grads", action="store_true", help="skip the gradient comparison")
    p.add_argument("--logits-tol", type=float, default=None)
    p.add_argument("--loss-tol", type=float, default=None)
    p.add_argument("--grad-tol", type=float, default=None)
    p.add_argument("--verbose", action="store_true", help="print every gradient row")
    return p.parse_args()


def load_model(directory, dtype, attn):
    import transformers
    from packaging.version import Version
    from transformers import LlamaForCausalLM

    # transformers renamed torch_dtype= to dtype= in 4.56.
    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    kwargs = {key: dtype, "attn_implementation": attn, "output_loading_info": True}
    return LlamaForCausalLM.from_pretrained(directory, **kwargs)


def check_loading(model, info, directory, tied):
    """Problems with how the weights arrived: missing/unexpected keys, or changed values."""
    import torch
    from safetensors.torch import load_file

    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        items = [k for k in (info or {}).get(kind, []) if "inv_freq" not in str(k)]
        if items:
            problems.append(f"{kind}: {items[:5]}{' ...' if len(items) > 5 else ''}")
    params = dict(model.named_parameters())
    for name, tensor in load_file(os.path.join(directory, "model.safetensors")).items():
        p = params.get(name)
        if p is None:
            problems.append(f"file tensor {name} is not a parameter of the HF model")
        elif tuple(p.shape) != tuple(tensor.shape):
            problems.append(f"{name}: HF shape {tuple(p.shape)}, file {tuple(tensor.shape)}")
        elif not torch.equal(p.detach().cpu(), tensor.to(p.dtype)):
            problems.append(f"{name}: HF holds different values than the file")
    if tied and model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        problems.append("config ties the embeddings but HF's lm_head is a separate tensor")
    return problems


def main():
    args = parse_args()
    for f in ("reference.json", "config.json", "model.safetensors"):
        if not os.path.isfile(os.path.join(args.dir, f)):
            print(f"hf_parity: {args.dir}/{f} is missing; run examples/parity_dump --out {args.dir}",
                  file=sys.stderr)
            return 2
    with open(os.path.join(args.dir, "reference.json")) as f:
        ref = json.load(f)
    if ref.get("format") != "slm-parity-1":
        print(f"hf_parity: {args.dir}/reference.json is not an slm-parity-1 file", file=sys.stderr)
        return 2
    with open(os.path.join(args.dir, "config.json")) as f:
        tied = bool(json.load(f).get("tie_word_embeddings", False))

    import torch
    import torch.nn.functional as F
    import transformers

    # fp32 means fp32: no TF32 in matmuls or convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    dtype_name = args.dtype if args.dtype != "auto" else {"f32": "float32", "bf16": "bfloat16"}[ref["dtype"]]
    tol_logits, tol_loss, tol_grad = TOLERANCES[dtype_name]
    tol_logits = args.logits_tol if args.logits_tol is not None else tol_logits
    tol_loss = args.loss_tol if args.loss_tol is not None else tol_loss
    tol_grad = args.grad_tol if args.grad_tol is not None else tol_grad
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"hf_parity: {args.dir}: ours = {ref['backend']} on {ref['dtype']} weights; "
          f"HF = transformers {transformers.__version__}, torch {torch.__version__}, {device}, "
          f"{dtype_name}, attn {args.attn}; seq {ref['seq']}")

    model, info = load_model(args.dir, getattr(torch, dtype_name), args.attn)
    problems = check_loading(model, info, args.dir, tied)
    if problems:
        print("FAIL: the HF model did not load the file's weights unchanged:")
        for p in problems:
            print("  " + p)
        return 1
    model.to(device)
    model.eval()

    ids = torch.tensor(ref["input_ids"], dtype=torch.long, device=device)[None]
    targets = torch.tensor(ref["target_ids"], dtype=torch.long, device=device)
    with torch.set_grad_enabled(not args.no_grads):
        logits = model(input_ids=ids, use_cache=False).logits[0].float()  # (T, V)
        loss = F.cross_entropy(logits, targets)
    if not args.no_grads:
        loss.backward()

    rows = []  # (what, error, tolerance)
    ours_all, theirs_all = [], []
    for p, values in zip(ref["logits"]["positions"], ref["logits"]["values"]):
        ours = torch.tensor(values, dtype=torch.float64)
        theirs = logits[p].detach().double().cpu()
        ours_all.append(ours)
        theirs_all.append(theirs)
        err = ((ours - theirs).norm() / theirs.norm().clamp_min(1e-30)).item()
        same_top = int(ours.argmax()) == int(theirs.argmax())
        rows.append((f"logits @ position {p}{'' if same_top else ' (argmax differs)'}", err, tol_logits))
    ours, theirs = torch.cat(ours_all), torch.cat(theirs_all)
    rows.append(("logits, all dumped positions",
                 ((ours - theirs).norm() / theirs.norm().clamp_min(1e-30)).item(), tol_logits))
    hf_loss = loss.item()
    rows.append((f"loss (ours {ref['loss']:.6f}, HF {hf_loss:.6f})",
                 abs(ref["loss"] - hf_loss) / max(abs(hf_loss), 1e-30), tol_loss))

    grad_rows = []
    if not args.no_grads:
        params = dict(model.named_parameters())
        for name, g_ref in ref["gradients"].items():
            p = params.get(name)
            if p is None or p.grad is None:
                grad_rows.append((f"grad {name}: HF has no gradient", math.inf, tol_grad))
                continue
            g = p.grad.detach().double()
            w = p.detach().double()
            norm = g.norm().item()
            dot = (g * w).sum().item()
            scale = max(norm * w.norm().item(), 1e-30)
            grad_rows.append((f"grad norm {name}", abs(g_ref["norm"] - norm) / max(norm, 1e-30), tol_grad))
            grad_rows.append((f"grad dir  {name}", abs(g_ref["dot_weight"] - dot) / scale, tol_grad))

    failed = [r for r in rows + grad_rows if not (r[1] <= r[2])]
    width = max(len(r[0]) for r in rows + grad_rows)
    print(f"{'quantity':<{width}}  {'error':>10}  {'tolerance':>9}  status")
    shown = rows + (grad_rows if args.verbose else sorted(grad_rows, key=lambda r: -r[1])[:10])
    for what, err, tol in shown:
        print(f"{what:<{width}}  {err:>10.3e}  {tol:>9.1e}  {'ok' if err <= tol else 'FAIL'}")
    if grad_rows and not args.verbose:
        print(f"(gradients: the 10 largest of {len(grad_rows)} rows; --verbose prints all)")
    if failed:
        print(f"hf_parity: FAIL: {len(failed)} of {len(rows) + len(grad_rows)} comparisons above tolerance")
        return 1
    print(f"hf_parity: PASS: {len(rows) + len(grad_rows)} comparisons within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
