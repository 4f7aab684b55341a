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


def best_by_tokens(sweep, source, presets):
    points = sweep.measured if source == "measured" else a.eligible_predicted(sweep)
    if not points:
        return note(f"No {source} points in the sweep.")
    best = a.best_by_tokens(points)
    law = a.law_by_key(sweep, source)
    rows = []
    for k in a.sort_groups(best, presets):
        p = best[k]
        rows.append([k[0], k[1], k[2], a.config_label(p), a.fmt_int(p["tokens_per_s"]),
                     a.fmt_int(p.get("tokens_per_s_per_gpu")), a.fmt(p.get("mfu_pct"), 1),
                     a.fmt(p.get("memory_gib")), a.fmt_sig(p.get("dollars_per_mtok"), 4),
                     a.fmt_dollars(law.get(p["key"], {}).get("dollars_to_target"))])
    header = ["preset", "GPU", "GPUs", "configuration", "tokens/s", "tokens/s per GPU", "MFU %",
              "memory GiB", "$/Mtok", f"$ to {a.target_text(sweep)} (law)"]
    return table(header, rows) + [""]


def prediction_error(sweep):
    errors = a.prediction_errors(sweep)
    if not errors:
        return note("No predicted point carries a check_key that names a measured point, so "
                    "the throughput model's error cannot be given.")
    def check(p):
        if p.get("out_of_sample"):
            return "current model, out of sample (calibrated on " + ", ".join(p.get("calibrated_on", [])) + ")"
        return "before measurement (calibrated on " + ", ".join(p.get("calibrated_on", [])) + ")"
    rows = []
    for p, m, tok, mem in errors:
        rows.append([check(p), m["preset"], m["gpu"], m["gpus"], a.config_label(m),
                     a.fmt_int(m["tokens_per_s"]), a.fmt_int(p["tokens_per_s"]), f"{tok:+.1f}",
                     a.fmt(m.get("memory_gib")), a.fmt(p["memory_gib"]),
                     "—" if mem is None else f"{mem:+.1f}"])
    # First per preset and GPU type, then every point.
    groups = {}
    for p, m, tok, mem in errors:
        groups.setdefault((check(p), m["preset"], m["gpu"]), []).append((abs(tok), None if mem is None else abs(mem)))
    summary = []
    for (kind, preset, gpu), errs in groups.items():
        toks = [t for t, _ in errs]
        mems = [x for _, x in errs if x is not None]
        summary.append([kind, preset, gpu, len(errs), f"{sum(toks) / len(toks):.1f}", f"{max(toks):.1f}",
                        f"{sum(mems) / len(mems):.1f}" if mems else "—",
                        f"{max(mems):.1f}" if mems else "—"])
    header = ["check", "preset", "GPU", "GPUs", "configuration", "measured tokens/s", "predicted tokens/s",
              "tokens/s error %", "measured GiB", "predicted GiB", "memory error %"]
    return (["Error = (predicted − measured) ÷ measured, for each predicted point whose check_key "
             "names a measured one: predictions frozen before the point was measured, and the "
             "current model's predictions of measured presets it was not calibrated on (its "
             "out-of-sample error, which the verdicts use when there is one).", ""]
            + table(["check", "preset", "GPU", "points", "mean tokens/s error % (absolute)", "largest",
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
    """Notes where the sweep's own `best` lines disagree with what this report computes. The
    curve-based best by loss_per_dollar is not checked: the report no longer computes it."""
    ours = {}
    for source in ("measured", "predicted"):
        points = sweep.measured if source == "measured" else a.eligible_predicted(sweep)
        for k, p in a.best_by_tokens(points).items():
            ours[("tokens_per_s", source) + k] = p["key"]
        for k, line in a.best_by_law(sweep, source).items():
            ours[("law_dollars_to_target", source) + k] = line["key"]
        for preset, line in a.law_answer(sweep, source).items():
            ours[("law_answer", source, preset)] = line["key"]
    notes = []
    for b in sweep.best:
        # A law_answer line's gpu/gpus are its winner's, not a group: it is one per preset.
        group = (b["preset"],) if b["by"] == "law_answer" else (b["preset"], b["gpu"], b["gpus"])
        mine = ours.get((b["by"], b["source"]) + group)
        if mine is not None and mine != b["key"]:
            where = "" if b["by"] == "law_answer" else f" on {b['gpus']}× {b['gpu']}"
            notes.append(f"line {b['_line']}: the sweep's best by {b['by']} ({b['source']}) for "
                         f"{b['preset']}{where} is {b['key']}; this report finds {mine}.")
    return notes
