"""Our preset table, read from `train_llama --list-names` (include/slm/core/presets.hpp through
include/slm/names.hpp), so the Python tools never keep a copy of it.

SLM_TRAIN_LLAMA names the program; else the first of TRAIN_LLAMA_CANDIDATES that exists,
relative to the repository.
"""
import json
import os
import subprocess

TRAIN_LLAMA_CANDIDATES = ("build/cuda/examples/train_llama", "build/cpu/examples/train_llama",
                          "build/device/examples/train_llama")
_TABLE = None


def table(fail):
    """name -> preset dict (vocab, layers, hidden, heads, kv_heads, ffn, max_seq, rope_theta,
    norm_eps, tied_embeddings, parameters, about); `fail(message)` is called when there is no
    program to ask."""
    global _TABLE
    if _TABLE is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        program = os.environ.get("SLM_TRAIN_LLAMA") or next(
            (os.path.join(root, c) for c in TRAIN_LLAMA_CANDIDATES
             if os.access(os.path.join(root, c), os.X_OK)), None)
        if program is None:
            fail("no train_llama to read the presets from: build it (cmake --preset cuda && cmake "
                 "--build --preset cuda --target train_llama) or set SLM_TRAIN_LLAMA")
        try:
            out = subprocess.run([program, "--list-names"], check=True, capture_output=True,
                                 text=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            fail(f"{program} --list-names failed: {e}")
        _TABLE = {p["name"]: p for p in json.loads(out)["presets"]}
    return _TABLE
