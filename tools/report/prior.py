"""Predictions made before a run, checked against it point by point: an earlier sweep (on another
GPU, on an earlier tree) predicted this GPU's points; this sweep measured them. The earlier
file's predictions are frozen, so the check cannot have been fitted to what it checks.

A ratio above 1 means the run was faster than predicted. The ratio mixes two things the report
cannot separate from these files alone: the throughput model's error across GPU types, and
whatever the code gained (or lost) between the two trees; the report says so beside the numbers.
"""

import statistics

import analysis as a
import tables

SAME = ("gpu", "gpus", "preset", "attention", "parallel", "micro_batch", "seq")


def _key(record):
    return tuple(record[f] for f in SAME)


def matches(earlier, sweep):
    """[(prediction, measured or None, skipped or None)] for every point of this sweep (measured
    or skipped) that the earlier file predicted."""
    predicted = {_key(p): p for p in earlier.predicted}
    out = []
    for m in sweep.measured:
        p = predicted.get(_key(m))
        if p is not None:
            out.append((p, m, None))
    for s in sweep.skipped:
        p = predicted.get(_key(s))
        if p is not None:
            out.append((p, None, s))
    return out


def _summary(pairs):
    ratios = [m["tokens_per_s"] / p["tokens_per_s"] for p, m, _ in pairs]
    within = sum(1 for r in ratios if abs(r - 1) <= 0.10)
    return ratios, within


def remeasured(earlier, sweep, presets):
    """Markdown lines: the points both sweeps measured on the same GPU type (the earlier tree
    against this one, same configuration); empty when there are none."""
    before = {_key(m): m for m in earlier.measured}
    pairs = [(before[_key(m)], m) for m in sweep.measured if _key(m) in before]
    if not pairs:
        return []
    rank = {p: i for i, p in enumerate(presets)}
    pairs.sort(key=lambda t: (rank.get(t[1]["preset"], 99), t[1]["attention"], t[1]["micro_batch"]))
    ratios = [m["tokens_per_s"] / e["tokens_per_s"] for e, m in pairs]
    rows = [[m["preset"], m["gpu"], a.config_label(m), a.fmt_int(e["tokens_per_s"]),
             a.fmt_int(m["tokens_per_s"]), f"{m['tokens_per_s'] / e['tokens_per_s']:.3f}"] for e, m in pairs]
    return ([f"Measured in both sweeps on the same GPU type and configuration: {len(pairs)} points, "
             f"this run ÷ the earlier one: median {statistics.median(ratios):.3f}, range "
             f"{min(ratios):.3f}–{max(ratios):.3f}. That is the code's change between the two "
             "trees (and the two machines' differences), not the model's.", ""]
            + tables.table(["preset", "GPU", "configuration", "earlier tokens/s", "now tokens/s",
                            "now ÷ earlier"], rows) + [""])


def section(earlier, sweep, presets):
    """Markdown lines: the summary per preset and attention, then every point; then the points
    both sweeps measured."""
    if earlier is None:
        return []
    return _predicted(earlier, sweep, presets) + remeasured(earlier, sweep, presets)


def _predicted(earlier, sweep, presets):
    found = matches(earlier, sweep)
    head = [f"The earlier sweep `{earlier.path}` predicted points of this one before it ran "
            f"(its predicted lines, unchanged). Ratio = measured ÷ predicted tokens/s; above 1 the "
            "run was faster than predicted. The ratio holds both the model's error (across GPU "
            "types where the earlier sweep ran on another) and the change of the code between "
            "the two trees.", ""]
    if not found:
        return head + tables.note("No point of this sweep was predicted by the earlier one "
                                  "(no matching GPU, preset, configuration and sequence length).")
    measured = [(p, m, s) for p, m, s in found if m is not None]
    rank = {p: i for i, p in enumerate(presets)}
    groups = {}
    for p, m, _ in measured:
        groups.setdefault((m["preset"], m["attention"]), []).append((p, m, None))
    rows = []
    for (preset, attention) in sorted(groups, key=lambda g: (rank.get(g[0], 99), g[1])):
        ratios, within = _summary(groups[(preset, attention)])
        rows.append([preset, attention, len(ratios), f"{statistics.median(ratios):.3f}",
                     f"{min(ratios):.3f}–{max(ratios):.3f}", f"{within} of {len(ratios)}"])
    lines = head
    if measured:
        ratios, within = _summary(measured)
        lines += [f"Over all {len(ratios)} measured points: median ratio "
                  f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}–{max(ratios):.3f}, "
                  f"{within} within ±10%.", ""]
        lines += tables.table(["preset", "attention", "points", "median ratio", "range",
                               "within ±10%"], rows) + [""]
    memory_wrong = [(p, s) for p, _, s in found if s is not None and p.get("fits")]
    memory_right = [(p, m) for p, m, _ in measured if not p.get("fits")]
    if memory_wrong or memory_right:
        lines += [f"Memory: {len(memory_wrong)} point(s) predicted to fit were skipped here; "
                  f"{len(memory_right)} predicted not to fit ran.", ""]
    detail = []
    for p, m, s in sorted(found, key=lambda t: (rank.get(t[0]["preset"], 99), t[0]["attention"],
                                                t[0]["micro_batch"])):
        if m is not None:
            detail.append([p["preset"], a.config_label(p), a.fmt_int(p["tokens_per_s"]),
                           a.fmt_int(m["tokens_per_s"]), f"{m['tokens_per_s'] / p['tokens_per_s']:.3f}",
                           a.fmt(p.get("memory_gib")), a.fmt(m.get("memory_gib"))])
        else:
            detail.append([p["preset"], a.config_label(p), a.fmt_int(p["tokens_per_s"]),
                           f"skipped: {s['reason']}", "—", a.fmt(p.get("memory_gib")), "—"])
    lines += tables.table(["preset", "configuration", "predicted tokens/s", "measured tokens/s",
                           "ratio", "predicted GiB", "measured GiB"], detail) + [""]
    return lines
