"""The selections the tables and plots share: best configurations, prediction errors, orders,
and how strong a verdict the evidence allows.

"Best" follows the study: each plotted point is the best configuration for its parameters.
By tokens/s the highest wins; by the scaling law the fewest dollars to 20 tokens per parameter
wins (law_cost lines). A predicted point that does not fit in memory is never best. The
loss_per_dollar lines from the short loss curves are never used for a loss per dollar: their
fits are often degenerate, so the curves only check the law's slope.
"""

import math
import re
from collections import Counter

PARALLEL_ORDER = ["single", "ddp", "zero1", "zero2", "zero3"]


def preset_order(sweep):
    """Presets from small to large: by parameter count where a line gives it, else by the
    size in the name (llama_100m < llama_1b), else by name."""
    params = {}
    names = set()
    for r in (sweep.measured + sweep.predicted + sweep.skipped + sweep.loss_curve
              + sweep.loss_per_dollar + sweep.law_cost):
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
    """attention/parallel/micro-batch, e.g. flash/ddp/mb16; /fp8 added for an FP8 point."""
    precision = r.get("precision", "bf16")
    return f"{r['attention']}/{r['parallel']}/mb{r['micro_batch']}" + ("" if precision == "bf16" else f"/{precision}")


def group_key(r):
    return (r["preset"], r["gpu"], r["gpus"])


def is_check(p):
    """A predicted line that exists only to check the model against a measured point: made
    before the point was measured ("before_measurement", frozen), or the current model's
    prediction of a measured preset it was not calibrated on ("out_of_sample")."""
    return bool(p.get("before_measurement") or p.get("out_of_sample"))


def frozen_keys(sweep):
    """Keys of the check lines (is_check): they sit beside the current prediction of the same
    configuration, so they are counted in the prediction error and nowhere else."""
    return {p["key"] for p in sweep.predicted if is_check(p)}


def eligible_predicted(sweep):
    """Current predictions that fit in memory: the candidates for a best predicted point."""
    return [p for p in sweep.predicted if p.get("fits", True) and not is_check(p)]


def best_by_tokens(points):
    """(preset, gpu, gpus) -> the point with the most tokens/s."""
    best = {}
    for p in points:
        k = group_key(p)
        if k not in best or p["tokens_per_s"] > best[k]["tokens_per_s"]:
            best[k] = p
    return best


def home_gpu(sweep, preset):
    """The GPU type a preset was measured on most, else the one with the most current
    predictions (ties by name): where a finding reads the preset's trends."""
    for points in (sweep.measured, eligible_predicted(sweep)):
        counts = Counter(p["gpu"] for p in points if p["preset"] == preset)
        if counts:
            return min(counts, key=lambda g: (-counts[g], g))
    return None


def group_points(sweep, preset, gpu, gpus):
    """(points, source) of one (preset, GPU type, count): the measured ones where there are
    any, else the current predictions that fit."""
    measured = [p for p in sweep.measured if group_key(p) == (preset, gpu, gpus)]
    if measured:
        return measured, "measured"
    return group_points_predicted(sweep, preset, gpu, gpus), "predicted"


def group_points_predicted(sweep, preset, gpu, gpus):
    return [p for p in eligible_predicted(sweep) if group_key(p) == (preset, gpu, gpus)]


def target_text(sweep):
    """"20 tokens/parameter", from the law lines (the sweep's --tokens-per-parameter)."""
    ratios = sorted({r.get("tokens_per_parameter", 20) for r in sweep.law_cost}) or [20]
    return "/".join(f"{x:g}" for x in ratios) + " tokens/parameter"


def law_lines(sweep, source):
    """The law_cost lines of one source; a line for a frozen prediction is never a candidate."""
    frozen = frozen_keys(sweep)
    return [r for r in sweep.law_cost if r["source"] == source and r["key"] not in frozen]


def cheapest(lines, group=group_key):
    """group(line) -> the line with the fewest dollars to the law's target."""
    best = {}
    for r in lines:
        k = group(r)
        if k not in best or r["dollars_to_target"] < best[k]["dollars_to_target"]:
            best[k] = r
    return best


def best_by_law(sweep, source):
    """(preset, gpu, gpus) -> the law_cost line with the fewest dollars to the target."""
    return cheapest(law_lines(sweep, source))


def law_answer(sweep, source):
    """preset -> the law_cost line with the fewest dollars to the target over every GPU type
    and count: the configuration a user who came for one model should rent."""
    return cheapest(law_lines(sweep, source), lambda r: r["preset"])


def law_by_key(sweep, source):
    return {r["key"]: r for r in law_lines(sweep, source)}


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


def model_error(sweep):
    """The throughput model's largest |tokens/s error| in percent over the checked predictions,
    or None when none is checked: a predicted margin smaller than this proves nothing. The
    current model's out-of-sample checks when there are any (they check the model that made
    the predicted lines), else the frozen before-measurement ones."""
    errors = prediction_errors(sweep)
    current = [e for e in errors if e[0].get("out_of_sample")]
    errors = current or errors
    return max(abs(tok) for _, _, tok, _ in errors) if errors else None


def spread_pct(points):
    """The largest repeat spread (max − min tokens/s over repeats) of measured points, in
    percent of their tokens/s; None when no point carries one (a single timing)."""
    spreads = [100.0 * p["tokens_per_s_spread"] / p["tokens_per_s"] for p in points
               if p.get("tokens_per_s_spread") is not None]
    return max(spreads) if spreads else None


def margin_pct(low, high):
    """How much larger `high` is than `low`, in percent: the distance from a tie."""
    return 100.0 * (high / low - 1.0)


def verdict(holds, margin, source, error, tie="within the model's error"):
    """A verdict as strong as its evidence (STUDY.md): "holds (measured)", "holds (predicted,
    not measured)" or `tie` — never a bare "holds" from a prediction or from a tie. margin: the
    deciding comparison's distance from a tie, in percent; error: for predicted evidence the
    model's largest error, for measured evidence the repeats' spread (None: unknown)."""
    outcome = "holds" if holds else "does not hold"
    if source == "predicted":
        if error is None:
            return f"{outcome} (predicted, not measured; the model's error is unknown)"
        return f"{outcome} (predicted, not measured)" if margin > error else tie
    if error is not None and margin <= error:
        return tie.replace("the model's error", "the measurements' spread")
    return f"{outcome} (measured)"


def error_text(error):
    return "unknown" if error is None else f"{error:.1f}%"


def family(preset):
    """llama_100m -> llama: presets of one family share a sequence length and a design, so
    trends over model size are read within a family."""
    return preset.rsplit("_", 1)[0] if "_" in preset else preset


def families(presets):
    """(family, its presets small to large) for each family with two presets or more: a trend
    over model size needs two sizes."""
    groups = {}
    for p in presets:
        groups.setdefault(family(p), []).append(p)
    return [(f, ps) for f, ps in groups.items() if len(ps) >= 2]


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


def fmt_dollars(x):
    """$1,234 for large sums, $0.0123 for small ones: three significant digits at least."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"${x:,.0f}" if x >= 100 else f"${x:#.3g}"


def fmt_hours(x):
    if x is None:
        return "—"
    return f"{x:,.0f} h" if x >= 100 else f"{x:#.3g} h"
