"""The study's four findings (STUDY.md), each checked against this sweep's numbers: a short
table of the evidence and a verdict, or a note when the sweep cannot tell. Measured points are
used where there are any; otherwise the throughput model's."""

from collections import Counter

import analysis as a
import tables as t

LARGE_GPUS = ("H100-80GB", "A100-80GB", "H200")  # the study's "expensive GPUs"


def _points(sweep):
    if sweep.measured:
        return sweep.measured, "measured"
    return a.eligible_predicted(sweep), "predicted"


def _home(points, preset):
    """The GPU type with the most points of a preset, and its smallest GPU count there."""
    mine = [p for p in points if p["preset"] == preset]
    if not mine:
        return None, None
    gpu = Counter(p["gpu"] for p in mine).most_common(1)[0][0]
    return gpu, min(p["gpus"] for p in mine if p["gpu"] == gpu)


def flash_gain(sweep, presets):
    points, source = _points(sweep)
    rows, ratios = [], []
    for preset in presets:
        gpu, count = _home(points, preset)
        best = {}
        for p in points:
            if (p["preset"], p["gpu"], p["gpus"]) == (preset, gpu, count):
                if p["tokens_per_s"] > best.get(p["attention"], {}).get("tokens_per_s", 0):
                    best[p["attention"]] = p
        if "flash" in best and "naive" in best:
            r = best["flash"]["tokens_per_s"] / best["naive"]["tokens_per_s"]
            ratios.append(r)
            rows.append([preset, f"{count}× {gpu}", a.fmt_int(best["flash"]["tokens_per_s"]),
                         a.fmt_int(best["naive"]["tokens_per_s"]), f"{r:.2f}×"])
    if len(ratios) < 2:
        return t.note("1. Flash matters more for small models: cannot tell, the sweep needs "
                      "Flash and Naive points for two presets or more.")
    if all(x >= y for x, y in zip(ratios, ratios[1:])):
        verdict = "holds"
    elif ratios[0] > ratios[-1]:
        verdict = "holds from the smallest preset to the largest, though not step by step"
    else:
        verdict = "does not hold"
    return ([f"**1. FlashAttention matters more for small models than for large ones: {verdict}** "
             f"({source}; best of each kernel, smallest GPU count)", ""]
            + t.table(["preset", "GPUs", "best flash tokens/s", "best naive tokens/s",
                       "flash ÷ naive"], rows) + [""])


def cheapest_gpu(sweep, presets):
    """Per preset and GPU count, the GPU type whose best configuration buys the lowest loss for
    the budget (or, without loss lines, the lowest $/Mtok)."""
    by_loss = {}
    for source in ("measured", "predicted"):
        for k, line in a.best_by_loss(sweep, source).items():
            if k not in by_loss or line["loss_at_budget"] < by_loss[k]["loss_at_budget"]:
                by_loss[k] = line
    if by_loss:
        metric, score = f"loss at {t.budget_text(sweep)}", lambda r: r["loss_at_budget"]
        candidates = by_loss
    else:
        metric = "$/Mtok"
        candidates = {}
        for p in sweep.measured + a.eligible_predicted(sweep):
            if p.get("dollars_per_mtok") is None:
                continue
            k = a.group_key(p)
            if k not in candidates or p["dollars_per_mtok"] < candidates[k]["dollars_per_mtok"]:
                candidates[k] = p
        score = lambda r: r["dollars_per_mtok"]  # noqa: E731
    winners = {}
    for (preset, gpu, gpus), r in candidates.items():
        w = winners.get((preset, gpus))
        if w is None or score(r) < score(w):
            winners[(preset, gpus)] = r
    gpu_types = {k[1] for k in candidates}
    if len(gpu_types) < 2:
        return t.note("2. Expensive GPUs are not always the most cost-effective: cannot tell, "
                      "the sweep covers one GPU type.")
    rows = [[preset, gpus, r["gpu"], a.config_label(r), f"{score(r):.4g}"]
            for (preset, gpus), r in sorted(winners.items(),
                                            key=lambda kv: (presets.index(kv[0][0]), kv[0][1]))]
    cheap_wins = [r for r in winners.values() if r["gpu"] not in LARGE_GPUS]
    verdict = "holds" if cheap_wins else "does not hold"
    return ([f"**2. The expensive GPUs are not always the most cost-effective: {verdict}** "
             f"(GPU type with the best {metric} per preset and GPU count, measured or predicted)",
             ""] + t.table(["preset", "GPUs", "cheapest GPU type", "configuration", metric], rows)
            + [""])


def best_scheme(sweep, presets):
    """The fastest scheme per preset on its home GPU type, at one node (8 GPUs, or the largest
    count up to 8) and at the largest count. Measured multi-GPU points when there are any, else
    the throughput model's (the one-GPU machine cannot measure schemes)."""
    points, source = _points(sweep)
    if not any(p["gpus"] > 1 for p in points):
        points, source = a.eligible_predicted(sweep), "predicted"
    rows = []
    for preset in presets:
        gpu, _ = _home(points, preset)
        multi = [p for p in points if p["preset"] == preset and p["gpu"] == gpu and p["gpus"] > 1]
        if not multi:
            continue
        counts = sorted({p["gpus"] for p in multi})
        node = max([c for c in counts if c <= 8] or counts[:1])
        for count in sorted({node, counts[-1]}):
            top = max((p for p in multi if p["gpus"] == count), key=lambda p: p["tokens_per_s"])
            rows.append([preset, f"{count}× {gpu}", top["parallel"], a.config_label(top),
                         a.fmt_int(top["tokens_per_s"])])
    if len({r[0] for r in rows}) < 2:
        return t.note("3. DDP for small models, FSDP for large ones: cannot tell, the sweep "
                      "needs multi-GPU points for two presets or more.")
    schemes = [r[2] for r in rows]  # smallest preset first, largest last
    holds = schemes[0] == "ddp" and schemes[-1].startswith("zero")
    verdict = "holds" if holds else "does not hold"
    return ([f"**3. DDP is most efficient for small models, FSDP (ZeRO) for larger ones: "
             f"{verdict}** ({source}; the fastest scheme in one node and at the largest GPU count)", ""]
            + t.table(["preset", "GPUs", "fastest scheme", "configuration", "tokens/s"], rows)
            + [""])


def fill_memory(sweep, presets):
    points, source = _points(sweep)
    rows, smaller = [], 0
    for k, best in sorted(a.best_by_tokens(points).items(),
                          key=lambda kv: (presets.index(kv[0][0]), kv[0][1], kv[0][2])):
        largest = max(p["micro_batch"] for p in points if a.group_key(p) == k
                      and p["attention"] == best["attention"] and p["parallel"] == best["parallel"])
        smaller += best["micro_batch"] < largest
        rows.append([k[0], f"{k[2]}× {k[1]}", a.config_label(best), largest])
    if not rows:
        return t.note("4. Filling GPU memory: cannot tell, no points.")
    verdict = "holds" if smaller else "does not hold"
    return ([f"**4. Filling GPU memory (the largest micro-batch) is not necessarily the most "
             f"cost-efficient: {verdict}** ({source}; in {smaller} of {len(rows)} groups the "
             "fastest micro-batch is below the largest that ran)", ""]
            + t.table(["preset", "GPUs", "fastest configuration", "largest micro-batch that ran"],
                      rows) + [""])


def all_findings(sweep, presets):
    return (flash_gain(sweep, presets) + cheapest_gpu(sweep, presets)
            + best_scheme(sweep, presets) + fill_memory(sweep, presets))
