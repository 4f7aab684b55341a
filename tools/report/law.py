"""The cost answer from the scaling law (law_cost lines, docs/sweep_format.md): "## The answer"
(the cheapest configuration per preset and what that choice is sensitive to) and "## Loss per
dollar from the scaling law" (the cheapest per preset, GPU type and count).

Loss per dollar follows the paper (arXiv 2410.19456): Loss/$ = Loss/Token × Token/s × 1/($/s),
with the loss from a scaling law. The sweep computes the law's numbers; this module only picks,
compares and prints them. The loss curves never enter here (curves.py checks the law's slope).
"""

import analysis as a
import tables as t

# Where each published law comes from; a law read from a file is named as the sweep names it.
LAW_SOURCES = {
    "besiroglu2024": "Besiroglu et al. 2024, \u201cChinchilla Scaling: A replication attempt\u201d, "
                     "arXiv 2404.10102",
    "hoffmann2022": "Hoffmann et al. 2022, \u201cTraining Compute-Optimal Large Language "
                    "Models\u201d, arXiv 2203.15556, Approach 3",
}
# The law's data exponent beta (loss = E + A/N^alpha + B/D^beta): what a loss curve's slope over
# tokens is checked against.
LAW_BETA = {"besiroglu2024": 0.3658, "hoffmann2022": 0.28}
MISSING = ("No law_cost lines (a sweep from before the scaling law, or no priced points): no "
           "answer and no loss per dollar; run the sweep again (it rewrites its derived lines) "
           "to add them.")


def laws(sweep):
    return sorted({r["law"] for r in sweep.law_cost})


def citation(sweep):
    """One paragraph: which law, its citation, and what its absolute losses are worth."""
    sources = {r["law"]: r["law_fit"]["source"] for r in sweep.law_cost
               if isinstance(r.get("law_fit"), dict) and r["law_fit"].get("source")}
    named = "; ".join(f"{n} ({sources.get(n) or LAW_SOURCES.get(n, 'a law from the sweep’s --scaling-law file')})"
                      for n in laws(sweep))
    return [f"Loss is the scaling law's, {named}: loss = E + A/N^alpha + B/D^beta for N "
            "parameters trained on D tokens. The law was fitted on other data and tokenizers, so "
            "its absolute losses rank the choices here but do not predict our validation loss. "
            "\"Batch beyond optimal\": the global batch exceeds DeepSeek LLM's compute-optimal "
            "batch (arXiv 2401.02954, B_opt = 0.2920·C^0.3271 tokens); the law assumes a tuned "
            "batch, so there its loss is optimistic.", ""]


def batch_cell(line):
    flag = line.get("batch_beyond_optimal")
    if flag is None:
        return "—"
    return "beyond optimal: the law's loss is optimistic" if flag else "within optimal"


def _winner(sweep, source, preset):
    """The sweep's law_answer line's configuration where it names one of this source's law
    lines, else the report's own choice (a mismatch is noted with the other best lines)."""
    lines = a.law_by_key(sweep, source)
    for b in sweep.best:
        if (b["by"], b["source"], b["preset"]) == ("law_answer", source, preset) and b["key"] in lines:
            return lines[b["key"]]
    return a.law_answer(sweep, source).get(preset)


def price_sensitivity(sweep, win):
    """(runner-up GPU type, break-even price ratio, price ratio now, the cheaper of the two now,
    note). The runner-up type is
    the one, other than the winner's, with the cheapest configuration; the break-even ratio is
    the winner's tokens/s ÷ the runner-up type's best at the winner's GPU count: the winner
    stays cheapest while its $/GPU-hour ÷ the runner-up's stays below it. Both sides come from
    one source: measured where the runner-up type was measured, else both predicted."""
    for source in dict.fromkeys((win["source"], "predicted")):
        others = [r for r in a.law_lines(sweep, source)
                  if r["preset"] == win["preset"] and r["gpu"] != win["gpu"]]
        if not others:
            continue
        rival = min(others, key=lambda r: r["dollars_to_target"])["gpu"]
        same = [r for r in others if r["gpu"] == rival and r["gpus"] == win["gpus"]]
        if not same:
            return rival, "—", "—", "—", f"no {rival} point at {win['gpus']} GPU(s)"
        runner = max(same, key=lambda r: r["tokens_per_s"])
        mine = win if source == win["source"] else a.law_by_key(sweep, source).get(win["key"], win)
        ratio = mine["tokens_per_s"] / runner["tokens_per_s"]
        now = (win["dollars_per_hour"] / win["gpus"]) / (runner["dollars_per_hour"] / runner["gpus"]) \
            if win.get("dollars_per_hour") and runner.get("dollars_per_hour") else None
        note = f"{runner['gpus']}× {rival} {a.config_label(runner)}"
        if source != win["source"]:
            note += " (both predicted: the runner-up type was not measured)"
        cheaper = "—" if now is None else (win["gpu"] if now < ratio else rival)
        return rival, f"{ratio:.2f}×", "—" if now is None else f"{now:.2f}×", cheaper, note
    return "—", "—", "—", "—", "no other GPU type in the sweep"


def error_sensitivity(sweep, win, error):
    """The $ margin over the next cheapest configuration of the same source, and whether it
    exceeds the model's measured error (predicted rows) or the repeats' spread (measured)."""
    rest = [r for r in a.law_lines(sweep, win["source"])
            if r["preset"] == win["preset"] and r["key"] != win["key"]]
    if not rest:
        return "no other configuration"
    runner = min(rest, key=lambda r: r["dollars_to_target"])
    margin = a.margin_pct(win["dollars_to_target"], runner["dollars_to_target"])
    text = f"+{margin:.1f}% over {runner['gpus']}× {runner['gpu']} {a.config_label(runner)}: "
    if win["source"] == "measured":
        m = sweep.measured_by_key()
        spread = a.spread_pct([m[k] for k in (win["key"], runner["key"]) if k in m])
        if spread is None:
            return text + "measured (no repeat spread in the sweep)"
        return text + ("beyond" if margin > spread else "within") + f" the repeats' spread ({spread:.1f}%)"
    if error is None:
        return text + "the model's error is unknown"
    return text + ("exceeds" if margin > error else "within") + f" the model's error ({error:.1f}%)"


def answer(sweep, presets):
    """"## The answer": per preset, the cheapest configuration to train to the target."""
    if not sweep.law_cost:
        return t.note(MISSING)
    target = a.target_text(sweep)
    error = a.model_error(sweep)
    rows, sensitive = [], []
    for preset in presets:
        for source in ("measured", "predicted"):
            win = _winner(sweep, source, preset)
            if win is None:
                continue
            rows.append([preset, source, win["gpu"], win["gpus"], win["micro_batch"],
                         win["attention"], win["parallel"], a.fmt_dollars(win["dollars_to_target"]),
                         a.fmt_hours(win["hours_to_target"]), f"{win['loss_at_target']:.3f}"])
            sensitive.append([preset, source, *price_sensitivity(sweep, win),
                              error_sensitivity(sweep, win, error), batch_cell(win)])
    return ([f"Per preset, the configuration with the fewest dollars to train to {target} "
             "(measured where one was measured, and the throughput model's prediction over every "
             "GPU type and count). The sweep's own choice (its law_answer lines) where it gives "
             "one.", ""]
            + t.table(["preset", "source", "GPU", "GPUs", "micro-batch", "attention", "scheme",
                       f"$ to {target}", "hours", "law's loss there"], rows)
            + ["", "What the choice is sensitive to: (a) price — the winner stays the cheapest "
               "while its $/GPU-hour ÷ the runner-up GPU type's stays below the break-even ratio "
               "(its tokens/s ÷ the runner-up type's best at the same GPU count); (b) model error "
               "— the $ margin over the next cheapest configuration against the throughput "
               f"model's largest measured tokens/s error ({a.error_text(error)}); (c) the batch.",
               ""]
            + t.table(["preset", "source", "runner-up GPU type", "break-even price ratio",
                       "price ratio now", "cheaper now", "compared with", "margin (model error)",
                       "batch"],
                      sensitive)
            + [""] + citation(sweep))


def by_group(sweep, source, presets):
    """Per (preset, GPU type, count): the configuration with the fewest dollars to the target,
    the law's loss there and at each budget."""
    best = a.best_by_law(sweep, source)
    if not best:
        return t.note(f"No {source} law_cost lines in the sweep.")
    budgets = sorted({b["dollars"] for r in best.values() for b in r.get("budgets", [])})
    rows = []
    for k in a.sort_groups(best, presets):
        r = best[k]
        at = {b["dollars"]: b for b in r.get("budgets", [])}
        rows.append([k[0], k[1], k[2], a.config_label(r), a.fmt_int(r["tokens_per_s"]),
                     a.fmt_dollars(r["dollars_to_target"]), a.fmt_hours(r["hours_to_target"]),
                     f"{r['loss_at_target']:.3f}"]
                    + [a.fmt(at[d]["loss"], 3) if d in at else "—" for d in budgets]
                    + [batch_cell(r)])
    target = a.target_text(sweep)
    header = (["preset", "GPU", "GPUs", "configuration", "tokens/s", f"$ to {target}", "hours",
               "law's loss there"] + [f"loss at {a.fmt_dollars(d)}" for d in budgets] + ["batch"])
    return t.table(header, rows) + [""]


def loss_per_dollar(sweep, presets):
    """"## Loss per dollar from the scaling law", measured then predicted."""
    if not sweep.law_cost:
        return t.note(MISSING)
    return (["Per (preset, GPU type, GPU count), the configuration with the fewest dollars to "
             f"{a.target_text(sweep)}, the law's loss there, and the loss each budget buys.", ""]
            + citation(sweep)
            + ["### Measured", ""] + by_group(sweep, "measured", presets)
            + ["### Predicted", ""] + by_group(sweep, "predicted", presets))
