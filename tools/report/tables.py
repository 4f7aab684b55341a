"""report.md's tables, each a list of markdown lines; an empty input gives a note instead."""

import analysis as a


def table(header, rows):
    def cell(c):
        return str(c).replace("|", "\\|")  # a bar in a value would split the cell
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def note(text):
    return [f"> {text}", ""]


def dollars(x):
    return "—" if x is None else f"${x:g}"


def budget_text(sweep):
    budgets = sorted({r["budget_dollars"] for r in sweep.loss_per_dollar})
    return " / ".join(dollars(b) for b in budgets) if budgets else "the budget"


def loss_cell(line):
    """Loss at the budget, with * when the tokens it takes lie outside the measured curve."""
    if line is None:
        return "—"
    return f"{line['loss_at_budget']:.3f}" + ("*" if line.get("budget_extrapolated") else "")


def target_cell(line):
    if line is None or line.get("dollars_to_target") is None:
        return "—" if line is None else "not reached"
    return f"${line['dollars_to_target']:.3g}" + ("*" if line.get("target_extrapolated") else "")


def best_by_tokens(sweep, source, presets):
    points = sweep.measured if source == "measured" else a.eligible_predicted(sweep)
    if not points:
        return note(f"No {source} points in the sweep.")
    best = a.best_by_tokens(points)
    loss = a.loss_lines_by_key(sweep, source)
    rows = []
    for k in a.sort_groups(best, presets):
        p = best[k]
        rows.append([k[0], k[1], k[2], a.config_label(p), a.fmt_int(p["tokens_per_s"]),
                     a.fmt_int(p.get("tokens_per_s_per_gpu")), a.fmt(p.get("mfu_pct"), 1),
                     a.fmt(p.get("memory_gib")), a.fmt_sig(p.get("dollars_per_mtok"), 4),
                     loss_cell(loss.get(p["key"]))])
    header = ["preset", "GPU", "GPUs", "configuration", "tokens/s", "tokens/s per GPU", "MFU %",
              "memory GiB", "$/Mtok", f"loss at {budget_text(sweep)}"]
    return table(header, rows) + [""] + (EXTRAPOLATED if any("*" in r[-1] for r in rows) else [])


EXTRAPOLATED = ["\\* extrapolated: the tokens lie outside the measured loss curve.", ""]


def best_by_loss(sweep, source, presets):
    best = a.best_by_loss(sweep, source)
    if not best:
        return note(f"No {source} loss_per_dollar lines in the sweep.")
    target = sorted({r.get("target_loss") for r in sweep.loss_per_dollar if r.get("target_loss")})
    target_name = "/".join(f"{t:g}" for t in target) or "target"
    rows = []
    for k in a.sort_groups(best, presets):
        line = best[k]
        p = a.point_of(sweep, line) or {}
        rows.append([k[0], k[1], k[2], a.config_label(line), loss_cell(line),
                     target_cell(line), a.fmt_int(p.get("tokens_per_s")),
                     a.fmt(p.get("mfu_pct"), 1), a.fmt(p.get("memory_gib")),
                     a.fmt_sig(p.get("dollars_per_mtok"), 4)])
    header = ["preset", "GPU", "GPUs", "configuration", f"loss at {budget_text(sweep)}",
              f"$ to loss {target_name}", "tokens/s", "MFU %", "memory GiB", "$/Mtok"]
    return table(header, rows) + [""] + (EXTRAPOLATED if any("*" in r[4] + r[5] for r in rows) else [])


def prediction_error(sweep):
    errors = a.prediction_errors(sweep)
    if not errors:
        return note("No predicted point carries a check_key that names a measured point, so "
                    "the throughput model's error cannot be given.")
    rows = []
    for p, m, tok, mem in errors:
        rows.append([m["preset"], m["gpu"], m["gpus"], a.config_label(m),
                     a.fmt_int(m["tokens_per_s"]), a.fmt_int(p["tokens_per_s"]), f"{tok:+.1f}",
                     a.fmt(m.get("memory_gib")), a.fmt(p["memory_gib"]),
                     "—" if mem is None else f"{mem:+.1f}"])
    # First per preset and GPU type, then every point.
    groups = {}
    for p, m, tok, mem in errors:
        groups.setdefault((m["preset"], m["gpu"]), []).append((abs(tok), None if mem is None else abs(mem)))
    summary = []
    for (preset, gpu), errs in groups.items():
        toks = [t for t, _ in errs]
        mems = [x for _, x in errs if x is not None]
        summary.append([preset, gpu, len(errs), f"{sum(toks) / len(toks):.1f}", f"{max(toks):.1f}",
                        f"{sum(mems) / len(mems):.1f}" if mems else "—",
                        f"{max(mems):.1f}" if mems else "—"])
    header = ["preset", "GPU", "GPUs", "configuration", "measured tokens/s", "predicted tokens/s",
              "tokens/s error %", "measured GiB", "predicted GiB", "memory error %"]
    return (["Error = (predicted − measured) ÷ measured, for each predicted point whose check_key "
             "names a measured one.", ""]
            + table(["preset", "GPU", "points", "mean tokens/s error % (absolute)", "largest",
                     "mean memory error % (absolute)", "largest"], summary)
            + [""] + table(header, rows) + [""])


def skipped(sweep, presets):
    if not sweep.skipped:
        return note("No skipped configurations.")
    rank = {p: i for i, p in enumerate(presets)}
    rows = []
    for s in sorted(sweep.skipped, key=lambda s: (rank.get(s["preset"], 99), s["gpu"], s["gpus"],
                                                  s["micro_batch"], s["key"])):
        rows.append([s["preset"], s["gpu"], s["gpus"], a.config_label(s), s["reason"],
                     a.fmt(s["estimate_gib"]), a.fmt(s["memory_limit_gib"])])
    header = ["preset", "GPU", "GPUs", "configuration", "reason", "estimate GiB", "limit GiB"]
    return table(header, rows) + [""]


def loss_curves(sweep, presets):
    if not sweep.loss_curve:
        return note("No loss curves yet: loss at a budget and loss per dollar need them.")
    rank = {p: i for i, p in enumerate(presets)}
    rows = []
    for c in sorted(sweep.loss_curve, key=lambda c: (rank.get(c["preset"], 99), c["global_batch"])):
        fit = c.get("fit") or {}
        tokens = [t for t, _ in c["points"]]
        span = f"{min(tokens):,.0f} – {max(tokens):,.0f}" if tokens else "—"
        rows.append([c["preset"], c["global_batch"], c.get("seq", "—"), len(c["points"]), span,
                     a.fmt_sig(fit.get("E"), 4), a.fmt_sig(fit.get("A"), 4),
                     a.fmt_sig(fit.get("alpha"), 4),
                     "—" if fit.get("rms_relative_error") is None
                     else f"{100 * fit['rms_relative_error']:.2f}%"])
    header = ["preset", "global batch", "seq", "points", "tokens seen", "E", "A", "alpha",
              "fit RMS relative error"]
    return ["Fit: loss = E + A · tokens^(−alpha).", ""] + table(header, rows) + [""]


def all_measured(sweep, presets, drawn_in):
    """Every measured point, with the plots it appears in."""
    if not sweep.measured:
        return note("No measured points.")
    rank = {p: i for i, p in enumerate(presets)}
    rows = []
    ordered = sorted(sweep.measured, key=lambda m: (rank.get(m["preset"], 99), m["gpu"], m["gpus"],
                                                    m["attention"], a.parallel_rank(m["parallel"]),
                                                    m["micro_batch"]))
    for m in ordered:
        rows.append([m["preset"], m["gpu"], m["gpus"], m["attention"], m["parallel"],
                     m["micro_batch"], m["seq"], a.fmt(m.get("step_ms"), 1),
                     a.fmt_int(m["tokens_per_s"]), a.fmt_int(m.get("tokens_per_s_per_gpu")),
                     a.fmt(m.get("mfu_pct"), 1), a.fmt(m.get("memory_gib")), a.fmt(m.get("estimate_gib")),
                     a.fmt_sig(m.get("dollars_per_mtok"), 4),
                     ", ".join(drawn_in.get(m["key"], [])) or "—"])
    header = ["preset", "GPU", "GPUs", "attention", "parallel", "micro-batch", "seq", "step ms",
              "tokens/s", "tokens/s per GPU", "MFU %", "memory GiB", "estimate GiB", "$/Mtok",
              "plots"]
    return table(header, rows) + [""]


def best_line_mismatches(sweep):
    """Notes where the sweep's own `best` lines disagree with what this report computes."""
    ours = {}
    for source in ("measured", "predicted"):
        points = sweep.measured if source == "measured" else a.eligible_predicted(sweep)
        for k, p in a.best_by_tokens(points).items():
            ours[("tokens_per_s", source) + k] = p["key"]
        for k, line in a.best_by_loss(sweep, source).items():
            ours[("loss_per_dollar", source) + k] = line["key"]
    notes = []
    for b in sweep.best:
        mine = ours.get((b["by"], b["source"], b["preset"], b["gpu"], b["gpus"]))
        if mine is not None and mine != b["key"]:
            notes.append(f"line {b['_line']}: the sweep's best by {b['by']} ({b['source']}) for "
                         f"{b['preset']} on {b['gpus']}× {b['gpu']} is {b['key']}; this report "
                         f"finds {mine}.")
    return notes
