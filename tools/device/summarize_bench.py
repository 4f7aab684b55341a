import json, sys, os
out = os.environ.get("OUT", ".")
def load(name):
    try: return json.load(open(os.path.join(out, name)))
    except Exception as e: print("missing", name, e); return None
a = load("attn.json")
if a:
    for b in a["benchmarks"]:
        if b.get("error_occurred"): print(b["name"], b["error_message"][:100]); continue
        print(f'{b["name"].split("/iterations")[0]:55s} {b.get("TFLOPs", b.get("tflops", 0)):7.1f} TFLOP/s')
t = load("train.json")
if t:
    for b in t["benchmarks"]:
        n = b["name"].split("/iterations")[0]
        if b.get("error_occurred"): print(n, b["error_message"][:120]); continue
        print(f'{n:45s} {b["tokens_per_s"]:9.0f} tok/s MFU {b.get("MFU_pct",0):5.1f}% mem {b.get("memory_GiB",0):6.2f} est {b["estimate_GiB"]:6.2f} attn {b.get("attention_ms",0):7.1f}ms mm {b.get("matmul_ms",0):7.1f}ms emb {b.get("embedding_ms",0):5.1f}ms comm {b.get("communication_ms",0):5.1f}ms idle {b.get("idle_ms",0):6.1f}ms')
