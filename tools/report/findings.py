"""The study's four findings (STUDY.md), each checked against this sweep's numbers: the test it
applies, a table of the evidence, and a verdict as strong as that evidence — measured or
predicted, and its margin against the throughput model's measured error (analysis.verdict).
Findings 1 and 2 are here, 3 and 4 in findings_scale.py."""

import math

import analysis as a
import findings_scale
import tables as t

LARGE_GPUS = ("H100-80GB", "A100-80GB", "H200")  # the study's "expensive GPUs"
# The paper's prices, normalised to the A100-40GB; it had no H200.
PAPER_PRICE = {"A100-40GB": 1.0, "A100-80GB": 1.46, "H100-80GB": 2.53}
# The paper's Token/$ gain from FlashAttention, by model size (its figures, read by eye).
PAPER_FLASH_GAIN = {"100m": "about 2.3–4.4×", "2b": "about 1.5–1.8×"}


def _size(preset):
    return preset.rsplit("_", 1)[-1]


def _attention_share(p):
    """Attention's share of a step: ops_ms.attention ÷ step_ms (or ÷ the ops' sum)."""
    ops = p.get("ops_ms") or {}
    if not isinstance(ops.get("attention"), (int, float)):
        return None
    total = p.get("step_ms") or sum(v for v in ops.values() if isinstance(v, (int, float)))
    return 100.0 * ops["attention"] / total if total else None


def _pairs(sweep, preset, gpu, count):
    """Rows of Flash against Naive at equal global batch (micro-batch × GPUs) and scheme, with
    each Naive that ran out of memory as OOM; returns (rows, ratios, source, points)."""
    points, source = a.group_points(sweep, preset, gpu, count)
    ident = (preset, gpu, count)
    if source == "measured":
        oom = [s for s in sweep.skipped if a.group_key(s) == ident]
    else:
        oom = [p for p in sweep.predicted if a.group_key(p) == ident
               and not p.get("fits", True) and not a.is_check(p)]
    flash = {}
    for p in points:
        if p["attention"] == "flash":
            gb = p["micro_batch"] * p["gpus"]
            if gb not in flash or p["tokens_per_s"] > flash[gb]["tokens_per_s"]:
                flash[gb] = p
    rows, ratios, used = [], [], []
    for gb in sorted(flash):
        f = flash[gb]
        same = (f["parallel"], f["micro_batch"])
        naive = [p for p in points if p["attention"] == "naive" and (p["parallel"], p["micro_batch"]) == same]
        if naive:
            r = f["tokens_per_s"] / naive[0]["tokens_per_s"]
            ratios.append(r)
            used += [f, naive[0]]
            cells = [a.fmt_int(naive[0]["tokens_per_s"]), f"{r:.2f}×"]
        elif any(o["attention"] == "naive" and (o["parallel"], o["micro_batch"]) == same for o in oom):
            cells = ["OOM", "—"]
        else:
            continue  # Naive not tried at this batch
        rows.append([preset, f"{count}× {gpu}", gb, f["parallel"], a.fmt_int(f["tokens_per_s"])]
                    + cells + [source])
    return rows, ratios, source, used


def flash_gain(sweep, presets):
    error = a.model_error(sweep)
    rows, summary, gains = [], [], {}  # gains: preset -> (geometric mean, source, points)
    for preset in presets:
        gpu = a.home_gpu(sweep, preset)
        if gpu is None:
            continue
        counts = sorted({m["gpus"] for m in sweep.measured if (m["preset"], m["gpu"]) == (preset, gpu)})
        counts = counts or [min(p["gpus"] for p in a.eligible_predicted(sweep)
                                if (p["preset"], p["gpu"]) == (preset, gpu))]
        ratios, sources, used = [], set(), []
        for count in counts:
            r, x, source, pts = _pairs(sweep, preset, gpu, count)
            rows += r
            ratios += x
            used += pts
            if x:
                sources.add(source)
        first, _ = a.group_points(sweep, preset, gpu, counts[0])
        share = {k: _attention_share(max((p for p in first if p["attention"] == k),
                                         key=lambda p: p["tokens_per_s"], default={}))
                 for k in ("flash", "naive")}
        gain = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None
        if gain is not None:
            gains[preset] = (gain, "measured" if sources == {"measured"} else "predicted", used)
        summary.append([preset, f"{counts[0]}× {gpu}", a.fmt(share["flash"], 1),
                        a.fmt(share["naive"], 1), "—" if gain is None else f"{gain:.2f}×",
                        PAPER_FLASH_GAIN.get(_size(preset), "—")])
    verdicts = []
    for fam, members in a.families([p for p in presets if p in gains]):
        small, large = gains[members[0]], gains[members[-1]]
        source = "measured" if small[1] == large[1] == "measured" else "predicted"
        err = error if source == "predicted" else a.spread_pct(small[2] + large[2])
        v = a.verdict(small[0] > large[0], a.margin_pct(min(small[0], large[0]), max(small[0], large[0])),
                      source, err)
        verdicts.append(f"{fam}_*: {v} — {members[0]} {small[0]:.2f}× against {members[-1]} "
                        f"{large[0]:.2f}×")
    if not verdicts:
        return t.note("1. Flash matters more for small models: cannot tell, the sweep needs "
                      "Flash and Naive points of one family for two presets or more.")
    return ([f"**1. FlashAttention matters more for small models than for large ones: "
             f"{'; '.join(verdicts)}**", "",
             "Test: per preset (on the GPU type it was measured on) and GPU count, Flash against "
             "Naive at the same global batch and scheme; a preset's gain is the geometric mean of "
             "its flash ÷ naive ratios. It holds when the smallest preset of a family gains more "
             "than the largest, by more than the model's error "
             f"({a.error_text(error)}) where the points are predicted. OOM: Naive ran out of "
             "memory (skipped) where Flash ran.", ""]
            + t.table(["preset", "GPUs", "global batch", "scheme", "flash tokens/s",
                       "naive tokens/s", "flash ÷ naive", "source"], rows) + [""]
            + t.table(["preset", "GPUs", "attention's share of the step, flash %", "naive %",
                       "flash ÷ naive (geometric mean)", "paper's Token/$ gain"], summary) + [""])


def _prices(sweep):
    """GPU type -> its $/GPU-hour as the sweep's points carry them."""
    prices = {}
    for p in sweep.measured + sweep.predicted:
        if p.get("dollars_per_gpu_hour"):
            prices.setdefault(p["gpu"], set()).add(p["dollars_per_gpu_hour"])
    return {g: sorted(v) for g, v in prices.items()}


def _ratio(table, fast, slow):
    if fast in table and slow in table:
        return table[fast] / table[slow]
    return None


def cheapest_gpu(sweep, presets):
    """Per preset: the GPU type with the lowest $ per token at the smallest GPU count two types
    share, against every other type: the break-even price ratio at which the faster type
    becomes the cheaper, our price ratio and the paper's."""
    prices = _prices(sweep)
    if len(prices) < 2:
        return t.note("2. Expensive GPUs are not always the most cost-effective: cannot tell, "
                      "the sweep prices one GPU type or none.")
    price = {g: v[0] for g, v in prices.items()}
    base = price.get("A100-40GB")
    price_rows = [[g, " / ".join(f"${x:g}" for x in prices[g]),
                   "—" if base is None else f"{price[g] / base:.2f}",
                   "—" if g not in PAPER_PRICE else f"{PAPER_PRICE[g]:.2f}"] for g in sorted(prices)]
    error = a.model_error(sweep)
    rows, decisive = [], []
    for preset in presets:
        best = _best_per_gpu(sweep, preset, price)
        if best is None:
            continue
        count, source, tops = best
        cost = {g: price[g] / p["tokens_per_s"] for g, p in tops.items()}
        winner = min(cost, key=cost.get)
        margins = {}
        for other in sorted(g for g in tops if g != winner):
            fast, slow = sorted((winner, other), key=lambda g: -tops[g]["tokens_per_s"])
            even = tops[fast]["tokens_per_s"] / tops[slow]["tokens_per_s"]
            now, paper = _ratio(price, fast, slow), _ratio(PAPER_PRICE, fast, slow)
            margins[other] = a.margin_pct(cost[winner], cost[other])
            within = source == "predicted" and (error is None or margins[other] <= error)
            rows.append([preset, count, source, fast, slow, f"{even:.2f}×", f"{now:.2f}×",
                         "—" if paper is None else f"{paper:.2f}×", fast if now < even else slow,
                         "—" if paper is None else (fast if paper < even else slow),
                         f"+{margins[other]:.1f}% " + ("within the model's error" if within
                                                       else "beyond the model's error"
                                                       if source == "predicted" else "(measured)")])
        rivals = [m for g, m in margins.items() if (g in LARGE_GPUS) != (winner in LARGE_GPUS)]
        if rivals:
            decisive.append((winner not in LARGE_GPUS, min(rivals), source, tops))
    if not decisive:
        return t.note("2. Expensive GPUs are not always the most cost-effective: cannot tell, "
                      "no preset has points on both an expensive and a cheaper GPU type.")
    cheap = [d for d in decisive if d[0]]
    holds, margin, source, tops = max(cheap or decisive, key=lambda d: d[1] if d[0] else -d[1])
    err = error if source == "predicted" else a.spread_pct(list(tops.values()))
    v = a.verdict(holds, margin, source, err)
    return ([f"**2. The expensive GPUs are not always the most cost-effective: {v}**", "",
             "Test: per preset at the smallest GPU count two GPU types share, each type's best "
             "tokens/s (both sides measured where both were, else both predicted). The faster "
             "type is the cheaper while its price ÷ the slower's is below the break-even ratio "
             "(faster ÷ slower tokens/s). It holds when a cheaper GPU type (not "
             f"{', '.join(LARGE_GPUS)}) beats every expensive one by more than the model's error "
             f"({a.error_text(error)}) for predicted points. Prices per GPU-hour:", ""]
            + t.table(["GPU type", "$/GPU-hour (sweep)", "÷ A100-40GB", "paper's ÷ A100-40GB"],
                      price_rows) + [""]
            + t.table(["preset", "GPUs", "source", "faster", "slower", "break-even price ratio",
                       "price ratio now", "paper's price ratio", "cheaper now",
                       "cheaper at the paper's prices", "$ margin of the cheapest"], rows) + [""])


def _best_per_gpu(sweep, preset, price):
    """(count, source, {gpu: best point}) at the smallest GPU count with two priced GPU types;
    measured only where every type there was measured."""
    points = [p for p in sweep.measured + a.eligible_predicted(sweep)
              if p["preset"] == preset and p["gpu"] in price]
    counts = sorted({p["gpus"] for p in points})
    for count in counts:
        types = sorted({p["gpu"] for p in points if p["gpus"] == count})
        if len(types) < 2:
            continue
        groups = {g: a.group_points(sweep, preset, g, count) for g in types}
        source = "measured" if all(s == "measured" for _, s in groups.values()) else "predicted"
        tops = {}
        for g in types:
            pts = groups[g][0] if source == "measured" else a.group_points_predicted(sweep, preset, g, count)
            if pts:
                tops[g] = max(pts, key=lambda p: p["tokens_per_s"])
        return (count, source, tops) if len(tops) >= 2 else None
    return None


def all_findings(sweep, presets):
    return (flash_gain(sweep, presets) + cheapest_gpu(sweep, presets)
            + findings_scale.best_scheme(sweep, presets) + findings_scale.fill_memory(sweep, presets))
