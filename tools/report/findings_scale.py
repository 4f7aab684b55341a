"""Findings 3 (DDP for small models, ZeRO for large ones) and 4 (filling memory is not
necessarily the most cost-efficient); findings.py has 1 and 2 and the shared conventions."""

import analysis as a
import tables as t

NEAR_BEST = 0.02  # finding 4: a micro-batch within 2% of the best tokens/s counts as saturated


def _evidence_error(source, points, error):
    """What a margin must exceed: the model's error for predicted points, the repeats' spread
    (None without repeats) for measured ones."""
    return error if source == "predicted" else a.spread_pct(points)


def _zero_cell(by_scheme, err):
    """Our ZeRO-2 against ZeRO-3 beside the paper's measured "FSDP grad+optimizer > FSDP full"."""
    z2, z3 = by_scheme.get("zero2"), by_scheme.get("zero3")
    if z2 is None or z3 is None:
        return "—", None
    lo, hi = sorted((z2["tokens_per_s"], z3["tokens_per_s"]))
    margin = a.margin_pct(lo, hi)
    if err is not None and margin <= err:
        return f"tie ({margin:.1f}%)", "tie"
    if z2["tokens_per_s"] > z3["tokens_per_s"]:
        return f"zero2 +{margin:.1f}%: agrees", "agrees"
    return f"zero3 +{margin:.1f}%: disagrees", "disagrees"


def best_scheme(sweep, presets):
    """Per preset on its home GPU type: the fastest scheme at one node (the largest measured
    multi-GPU count, else 8 or the largest count up to 8) and at the largest count, its margin
    over the next scheme, and ZeRO-2 against ZeRO-3."""
    error = a.model_error(sweep)
    measured_multi = any(m["gpus"] > 1 for m in sweep.measured)
    rows, node_rows, zero = [], {}, []
    for preset in presets:
        gpu = a.home_gpu(sweep, preset)
        points = [p for p in sweep.measured + a.eligible_predicted(sweep)
                  if (p["preset"], p["gpu"]) == (preset, gpu) and p["gpus"] > 1]
        if not points:
            continue
        counts = sorted({p["gpus"] for p in points})
        measured = sorted({p["gpus"] for p in sweep.measured
                           if (p["preset"], p["gpu"]) == (preset, gpu) and p["gpus"] > 1})
        node = measured[-1] if measured else max([c for c in counts if c <= 8] or counts[:1])
        for count in sorted({node, counts[-1]}):
            pts, source = a.group_points(sweep, preset, gpu, count)
            by_scheme = {}  # scheme -> its best configuration here
            for p in pts:
                if p["tokens_per_s"] > by_scheme.get(p["parallel"], {}).get("tokens_per_s", 0):
                    by_scheme[p["parallel"]] = p
            ranked = sorted(by_scheme.values(), key=lambda p: -p["tokens_per_s"])
            if not ranked:
                continue
            top = ranked[0]
            margin = a.margin_pct(ranked[1]["tokens_per_s"], top["tokens_per_s"]) if len(ranked) > 1 else None
            err = _evidence_error(source, ranked[:2], error)
            tie = margin is not None and err is not None and margin <= err
            zcell, zword = _zero_cell(by_scheme, err)
            if zword:
                zero.append((preset, count, zword))
            rows.append([preset, f"{count}× {gpu}", source,
                         f"tie: {top['parallel']} ≈ {ranked[1]['parallel']}" if tie else top["parallel"],
                         a.config_label(top),
                         a.fmt_int(top["tokens_per_s"]),
                         "—" if margin is None else f"+{margin:.1f}% over {ranked[1]['parallel']}",
                         zcell])
            if count == node and margin is not None:
                node_rows[preset] = (top, margin, source, err)
    verdicts = []
    for fam, members in a.families([p for p in presets if p in node_rows]):
        small, m_small, s_small, e_small = node_rows[members[0]]
        large, m_large, s_large, e_large = node_rows[members[-1]]
        source = "measured" if s_small == s_large == "measured" else "predicted"
        holds = small["parallel"] == "ddp" and large["parallel"].startswith("zero")
        margin = min(m_small, m_large)
        err = max((e for e in (e_small, e_large) if e is not None), default=None)
        v = a.verdict(holds, margin, source, err,
                      tie="a tie: the schemes are within the model's error")
        if source == "predicted" and not measured_multi and "predicted, not measured" not in v:
            v += " (predicted, not measured)"
        verdicts.append(f"{fam}_*: {v} — fastest at {small['gpus']} GPUs: {members[0]} "
                        f"{small['parallel']}, {members[-1]} {large['parallel']}")
    if not verdicts:
        return t.note("3. DDP for small models, FSDP for large ones: cannot tell, the sweep "
                      "needs multi-GPU points for two presets of one family or more.")
    words = [w for _, _, w in zero]
    paper = ("The paper measured FSDP with gradient and optimizer sharding (our ZeRO-2) faster "
             "than full sharding (ZeRO-3). Ours: ZeRO-2 faster in "
             f"{words.count('agrees')}, ZeRO-3 faster in {words.count('disagrees')}, a tie in "
             f"{words.count('tie')} of {len(words)} rows")
    if words.count("disagrees"):
        paper += "; we disagree at " + ", ".join(f"{p} on {c} GPUs" for p, c, w in zero
                                                 if w == "disagrees")
    elif words.count("agrees"):
        paper += ": we agree"
    multi = ("" if measured_multi else " No multi-GPU point was measured: every row is the "
             "throughput model's (predicted, not measured).")
    return ([f"**3. DDP is most efficient for small models, FSDP (ZeRO) for larger ones: "
             f"{'; '.join(verdicts)}**", "",
             "Test: per preset on its home GPU type, each scheme's best tokens/s at one node (the "
             "largest measured multi-GPU count, else 8) and at the largest count. It holds when "
             "a family's smallest preset is fastest with DDP and its largest with a ZeRO stage, "
             f"each by more than the model's error ({a.error_text(error)}) where predicted; a "
             f"margin within it is a tie.{multi}", "",
             paper + ".", ""]
            + t.table(["preset", "GPUs", "source", "fastest scheme", "configuration", "tokens/s",
                       "margin", "ZeRO-2 against ZeRO-3 (paper: ZeRO-2 faster)"], rows) + [""])


def _groups(sweep, presets):
    """(preset, gpu, gpus) groups for finding 4: every measured one, and for a preset with no
    measured point, one GPU per GPU type from the model."""
    keys = {a.group_key(m) for m in sweep.measured}
    measured_presets = {k[0] for k in keys}
    keys |= {a.group_key(p) for p in a.eligible_predicted(sweep)
             if p["gpus"] == 1 and p["preset"] not in measured_presets}
    return a.sort_groups(keys, presets)


def fill_memory(sweep, presets):
    error = a.model_error(sweep)
    rows, decisive = [], []
    for preset, gpu, gpus in _groups(sweep, presets):
        pts, source = a.group_points(sweep, preset, gpu, gpus)
        if not pts:
            continue
        best = max(pts, key=lambda p: p["tokens_per_s"])
        # The micro-batch dimension alone: the best configuration's attention and scheme.
        line = sorted((p for p in pts if (p["attention"], p["parallel"]) ==
                       (best["attention"], best["parallel"])), key=lambda p: p["micro_batch"])
        near = next(p for p in line if p["tokens_per_s"] >= (1 - NEAR_BEST) * best["tokens_per_s"])
        largest = line[-1]
        measured_memory = near.get("memory_gib") is not None
        memory = near["memory_gib"] if measured_memory else near.get("estimate_gib")
        spread = near.get("tokens_per_s_spread")
        rows.append([preset, f"{gpus}× {gpu}", source, a.config_label(best),
                     a.fmt_int(best["tokens_per_s"]), near["micro_batch"],
                     a.fmt(memory) + ("" if measured_memory or memory is None else " (estimate)"),
                     largest["micro_batch"], a.fmt_int(largest["tokens_per_s"]),
                     "—" if spread is None else f"{spread:,.0f}"
                     + (f" ({near['repeats']} runs)" if near.get("repeats") else "")])
        if largest["micro_batch"] > best["micro_batch"]:
            decisive.append((a.margin_pct(largest["tokens_per_s"], best["tokens_per_s"]), source,
                             _evidence_error(source, [best, largest], error)))
    if not rows:
        return t.note("4. Filling GPU memory: cannot tell, no points.")
    if decisive:
        margin, source, err = max(decisive, key=lambda d: (d[1] == "measured", d[0]))
        v = a.verdict(True, margin, source, err)
    else:
        v = "does not hold: the largest micro-batch that fits is the fastest everywhere"
    return ([f"**4. Filling GPU memory (the largest micro-batch) is not necessarily the most "
             f"cost-efficient: {v}**", "",
             "Test: per preset, GPU type and count (measured; one GPU per type from the model for "
             "presets not measured), the micro-batch sweep of the fastest configuration's "
             "attention and scheme. Saturation: the smallest micro-batch within "
             f"{100 * NEAR_BEST:.0f}% of the best tokens/s, and its memory. It holds when the "
             "largest micro-batch that fits is slower than the best by more than the model's "
             f"error ({a.error_text(error)}) where predicted ({len(decisive)} of {len(rows)} "
             "groups are slower at the largest micro-batch; the measured one decides where "
             "there is one).", ""]
            + t.table(["preset", "GPUs", "source", "fastest configuration", "tokens/s",
                       f"smallest micro-batch within {100 * NEAR_BEST:.0f}%", "its memory GiB",
                       "largest micro-batch that fits", "its tokens/s", "tokens/s spread"], rows)
            + [""])
