"""The precision section: FP8 beside bf16 where the sweep measured both (sweep --precision
bf16,fp8), and the verdict per preset and GPU: does FP8 change the cheapest measured
configuration to the law's target (20 tokens per parameter by default), and by how much.

Measured points only: the verdict rests on what ran. (The sweep also predicts FP8 points on GPUs
with FP8 tensor cores once it measured some; those stay out of the study's tables here.)
A line without "precision" is bf16 (sweeps from before precision was a dimension).
"""

import dataclasses

import analysis as a
import tables


def precision_of(r):
    return r.get("precision", "bf16")


def _same_config(r):
    return (r["preset"], r["gpu"], r["gpus"], r["attention"], r["parallel"], r["micro_batch"], r["seq"])


def pairs(sweep):
    """[(bf16 line, fp8 line)] of measured points that ran in both precisions."""
    bf16 = {_same_config(m): m for m in sweep.measured if precision_of(m) == "bf16"}
    return [(bf16[_same_config(m)], m) for m in sweep.measured
            if precision_of(m) == "fp8" and _same_config(m) in bf16]


def verdicts(sweep):
    """(preset, gpu, gpus) -> (cheapest bf16 law_cost line, cheapest fp8 one), where both exist."""
    measured = sweep.measured_by_key()
    by_precision = {"bf16": [], "fp8": []}
    for r in a.law_lines(sweep, "measured"):
        m = measured.get(r["key"])
        if m is not None:
            by_precision.setdefault(precision_of(m), []).append(r)
    bf16, fp8 = a.cheapest(by_precision["bf16"]), a.cheapest(by_precision["fp8"])
    return {k: (bf16[k], fp8[k]) for k in bf16 if k in fp8}


def section(sweep, presets):
    both = pairs(sweep)
    if not both:
        return tables.note("No point was measured in both bf16 and fp8 (sweep --precision bf16,fp8 "
                           "measures each point in each).")
    rank = {p: i for i, p in enumerate(presets)}
    both.sort(key=lambda t: (rank.get(t[0]["preset"], 99), t[0]["gpu"], t[0]["gpus"], t[0]["attention"],
                             a.parallel_rank(t[0]["parallel"]), t[0]["micro_batch"]))
    rows = [[b["preset"], b["gpu"], b["gpus"], a.config_label(b), a.fmt_int(b["tokens_per_s"]),
             a.fmt_int(f["tokens_per_s"]), f"{f['tokens_per_s'] / b['tokens_per_s']:.3f}×",
             a.fmt(b.get("memory_gib")), a.fmt(f.get("memory_gib"))] for b, f in both]
    md = ["FP8 beside bf16 at the same configuration (measured):", ""]
    md += tables.table(["preset", "GPU", "GPUs", "configuration", "bf16 tokens/s", "fp8 tokens/s",
                        "fp8 / bf16", "bf16 GiB", "fp8 GiB"], rows) + [""]
    found = verdicts(sweep)
    if not found:
        return md + tables.note("No law_cost lines for both precisions: no verdict in dollars.")
    md += ["The verdict: the cheapest measured configuration to the law's target in each precision.", ""]
    rows = []
    for k in a.sort_groups(found, presets):
        b, f = found[k]
        saving = 100.0 * (1.0 - f["dollars_to_target"] / b["dollars_to_target"])
        changes = "yes: fp8" if f["dollars_to_target"] < b["dollars_to_target"] else "no"
        rows.append([k[0], k[1], k[2], a.config_label(b), a.fmt_dollars(b["dollars_to_target"]),
                     a.config_label(f), a.fmt_dollars(f["dollars_to_target"]), f"{saving:+.1f}%", changes])
    md += tables.table(["preset", "GPU", "GPUs", "best bf16", "bf16 $ to target", "best fp8",
                        "fp8 $ to target", "fp8 saves", "FP8 changes the answer"], rows) + [""]
    return md


def bf16_view(sweep):
    """The sweep without its FP8 lines: what the study's answer, findings, tables and plots read
    (the study is bf16, as the paper's was); section() alone reads the FP8 points."""
    keep = lambda r: precision_of(r) == "bf16"  # noqa: E731  (every line of a point carries its precision)
    return dataclasses.replace(
        sweep, measured=[m for m in sweep.measured if keep(m)], predicted=[p for p in sweep.predicted if keep(p)],
        law_cost=[r for r in sweep.law_cost if keep(r)],
        loss_per_dollar=[r for r in sweep.loss_per_dollar if keep(r)], best=[r for r in sweep.best if keep(r)])
