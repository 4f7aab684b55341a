"""The selections the tables and plots share: best configurations, prediction errors, orders.

"Best" follows the study: each plotted point is the best configuration for its parameters.
By tokens/s the highest wins; by loss per dollar the lowest loss at the budget wins. A predicted
point that does not fit in memory is never best.
"""

import re

PARALLEL_ORDER = ["single", "ddp", "zero1", "zero2", "zero3"]


def preset_order(sweep):
    """Presets from small to large: by parameter count where a line gives it, else by the
    size in the name (llama_100m < llama_1b), else by name."""
    params = {}
    names = set()
    for r in sweep.measured + sweep.predicted + sweep.skipped + sweep.loss_curve + sweep.loss_per_dollar:
        names.add(r["preset"])
        if isinstance(r.get("params"), (int, float)):
            params[r["preset"]] = r["params"]

    def size(name):
        if name in params:
            return params[name]
        m = re.search(r"(\d+(?:\.\d+)?)([mb])\b", name.lower())
        if m:
            return float(m.group(1)) * (1e6 if m.group(2) == "m" else 1e9)
        return float("inf")

    return sorted(names, key=lambda n: (size(n), n))


def parallel_rank(name):
    return PARALLEL_ORDER.index(name) if name in PARALLEL_ORDER else len(PARALLEL_ORDER)


def config_label(r):
    """attention/parallel/micro-batch, e.g. flash/ddp/mb16."""
    return f"{r['attention']}/{r['parallel']}/mb{r['micro_batch']}"


def group_key(r):
    return (r["preset"], r["gpu"], r["gpus"])


def frozen_keys(sweep):
    """Keys of predictions made before their point was measured ("before_measurement"): they
    exist to check the model against the measurement, beside the current prediction of the same
    configuration, so they are counted in the prediction error and nowhere else."""
    return {p["key"] for p in sweep.predicted if p.get("before_measurement")}


def eligible_predicted(sweep):
    """Current predictions that fit in memory: the candidates for a best predicted point."""
    return [p for p in sweep.predicted if p.get("fits", True) and not p.get("before_measurement")]


def best_by_tokens(points):
    """(preset, gpu, gpus) -> the point with the most tokens/s."""
    best = {}
    for p in points:
        k = group_key(p)
        if k not in best or p["tokens_per_s"] > best[k]["tokens_per_s"]:
            best[k] = p
    return best


def best_by_loss(sweep, source):
    """(preset, gpu, gpus) -> the loss_per_dollar line with the lowest loss at the budget."""
    best = {}
    frozen = frozen_keys(sweep)
    for r in sweep.loss_per_dollar:
        if r["source"] != source or r["key"] in frozen:
            continue
        k = group_key(r)
        if k not in best or r["loss_at_budget"] < best[k]["loss_at_budget"]:
            best[k] = r
    return best


def point_of(sweep, loss_line):
    """The measured or predicted point a loss_per_dollar line was computed from, or None."""
    table = sweep.measured_by_key() if loss_line["source"] == "measured" else sweep.predicted_by_key()
    return table.get(loss_line["key"])


def loss_lines_by_key(sweep, source):
    return {r["key"]: r for r in sweep.loss_per_dollar if r["source"] == source}


def prediction_errors(sweep):
    """[(predicted, measured, tokens/s error %, memory error % or None)] for every predicted
    point whose check_key names a measured point."""
    measured = sweep.measured_by_key()
    out = []
    for p in sweep.predicted:
        m = measured.get(p.get("check_key"))
        if m is None:
            continue
        tok = 100.0 * (p["tokens_per_s"] - m["tokens_per_s"]) / m["tokens_per_s"]
        mem = None
        if m.get("memory_gib"):
            mem = 100.0 * (p["memory_gib"] - m["memory_gib"]) / m["memory_gib"]
        out.append((p, m, tok, mem))
    rank = {p: i for i, p in enumerate(preset_order(sweep))}
    out.sort(key=lambda e: (rank[e[1]["preset"]], e[1]["gpu"], e[1]["gpus"], e[1]["attention"],
                            parallel_rank(e[1]["parallel"]), e[1]["micro_batch"]))
    return out


def sort_groups(keys, presets):
    """(preset, gpu, gpus) keys in preset size order, then GPU name, then count."""
    rank = {p: i for i, p in enumerate(presets)}
    return sorted(keys, key=lambda k: (rank.get(k[0], len(rank)), k[1], k[2]))


def fmt_int(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_sig(x, digits=3):
    return "—" if x is None else f"{x:.{digits}g}"
