#!/usr/bin/env python3
"""report.py SWEEP.jsonl OUT_DIR [--predicted-before EARLIER.jsonl] [--precision-from FP8.jsonl]:
the study's tables (OUT_DIR/report.md) and plots (PNG) from the sweep's JSON lines
(docs/sweep_format.md). With an earlier sweep, its predictions of this sweep's points are checked
against them point by point (prior.py). With --precision-from, the precision section reads that
sweep (one run of `sweep --precision bf16,fp8`, both precisions measured side by side in the same
call) instead of this one; the rest of the report is this sweep's. Run it through
tools/report/report, which finds a python3 with matplotlib.
Exit status: 0 done, 1 bad input, 2 bad command line."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import analysis as a  # noqa: E402
import curves  # noqa: E402
import findings  # noqa: E402
import law  # noqa: E402
import precision  # noqa: E402
import prior  # noqa: E402
import sweep as sweep_io  # noqa: E402
import tables  # noqa: E402

USAGE = "usage: report SWEEP.jsonl OUT_DIR [--predicted-before EARLIER.jsonl] [--precision-from FP8.jsonl]"
KINDS = ("measured", "skipped", "predicted", "law_cost", "loss_curve", "loss_per_dollar", "best")
# loss_per_dollar lines are counted but never used (analysis.py says why): no note when absent.
MISSING = {
    "measured": "No measured points: every table and plot below is the throughput model's.",
    "skipped": "No skipped configurations: every configuration tried fitted in memory.",
    "predicted": "No predicted points: no prediction tables, no prediction error.",
    "law_cost": law.MISSING,
    "loss_curve": "No loss curves yet: plot (f) is left out, and the law's slope goes unchecked.",
    "best": "No best lines: the best configurations below are this report's own choice.",
}


def draw_plots(sweep, presets, out_dir):
    """Every plot that has data; returns (plots drawn, notes for those left out)."""
    import plots_cost
    import plots_memory
    import plots_throughput

    makers = [("(a) tokens/s against GPU count", plots_throughput.throughput_vs_gpus),
              ("(b) dollars to 20 tokens per parameter against GPU count",
               plots_cost.dollars_to_target_vs_gpus),
              ("(c) Flash against Naive", plots_throughput.flash_vs_naive),
              ("(d) DDP against ZeRO", plots_throughput.ddp_vs_zero),
              ("(e) memory against micro-batch", plots_memory.memory_vs_microbatch),
              ("(f) loss curves", plots_cost.loss_curves)]
    drawn, notes = [], []
    for name, make in makers:
        plot = make(sweep, presets, out_dir)
        if plot is None:
            notes.append(f"Plot {name} is left out: the sweep has no points for it.")
        else:
            drawn.append(plot)
    return drawn, notes


def write_report(sweep, presets, plots, plot_notes, out_dir, earlier=None, with_fp8=None, precision_sweep=None):
    """`sweep` without FP8 lines (precision.bf16_view); `with_fp8`, the whole sweep; the precision
    section reads `precision_sweep` when given (--precision-from), else `with_fp8`."""
    drawn_in = {}
    for plot in plots:
        for key in plot.keys:
            drawn_in.setdefault(key, []).append(plot.title.split(")")[0] + ")")
    counts = ", ".join(f"{len(getattr(sweep, k))} {k}" for k in KINDS)
    md = ["# Sweep report", "", f"From `{sweep.path}`: {counts}.", ""]

    notes = [MISSING[k] for k in KINDS if k in MISSING and not getattr(sweep, k)]
    if sweep.loss_per_dollar:
        notes.append(f"{len(sweep.loss_per_dollar)} loss_per_dollar line(s) from the short loss "
                     "curves are not used: loss per dollar comes from the scaling law, the curves "
                     "only check its slope.")
    if len(law.laws(sweep)) > 1:
        notes.append(f"The law_cost lines use {len(law.laws(sweep))} laws "
                     f"({', '.join(law.laws(sweep))}); the cheapest is taken over all of them.")
    notes += [f"{n} line(s) of unknown kind '{k}' were ignored." for k, n in sweep.unknown_kinds.items()]
    if sweep.torn_last_line:
        notes.append(f"Line {sweep.torn_last_line}, the last, is torn (the sweep was stopped while "
                     "writing it) and was left out; the sweep drops it too when it resumes.")
    notes += [f"'{kind}' {ident} appears more than once; the last line is used."
              for kind, ident in sweep.duplicates]
    set_aside = len(with_fp8.measured) - len(sweep.measured) if with_fp8 is not None else 0
    if set_aside:
        notes.append(f"{set_aside} measured FP8 point(s) are read only by the precision section: the "
                     "answer, the findings, the tables and the plots are the study's, in bf16.")
    notes += tables.best_line_mismatches(sweep)
    notes += plot_notes
    undrawn = [m["key"] for m in sweep.measured if m["key"] not in drawn_in]
    if undrawn:
        notes.append(f"{len(undrawn)} measured point(s) are in no plot: {', '.join(undrawn[:10])}")
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]

    md += ["## The answer", ""] + law.answer(sweep, presets)
    md += ["## The study's four findings, from these numbers", ""] + findings.all_findings(sweep, presets)
    md += ["## Loss per dollar from the scaling law", ""] + law.loss_per_dollar(sweep, presets)
    md += ["## Best configuration by tokens/s", "",
           "Per (preset, GPU type, GPU count), the configuration (attention/parallel/micro-batch) "
           "with the most tokens/s. Predicted points that do not fit in memory are not considered.",
           "", "### Measured", ""] + tables.best_by_tokens(sweep, "measured", presets)
    md += ["### Predicted", ""] + tables.best_by_tokens(sweep, "predicted", presets)
    md += ["## Precision: FP8 beside bf16", ""]
    if precision_sweep is not None:
        fp8 = sum(precision.precision_of(m) == "fp8" for m in precision_sweep.measured)
        md += [f"From `{precision_sweep.path}` (--precision-from), not this sweep: "
               f"{len(precision_sweep.measured) - fp8} bf16 and {fp8} fp8 measured points.", ""]
    md += precision.section(precision_sweep or with_fp8 or sweep, presets)
    md += ["## Prediction error", ""] + tables.prediction_error(sweep)
    if earlier is not None:
        md += ["## Predicted before the run, measured in it", ""] + prior.section(earlier, sweep, presets)
    md += ["## Skipped configurations", ""] + tables.skipped(sweep, presets)
    md += ["## Loss curves: a check of the law's slope", ""] + curves.check(sweep, presets)
    md += ["## Plots", ""]
    for plot in plots:
        md += [f"### {plot.title}", "", f"![{plot.title}]({plot.file})", ""]
    md += ["## All measured points", ""] + tables.all_measured(sweep, presets, drawn_in)
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))


def load(path):
    """The sweep at `path`, or None after printing why it cannot be read."""
    try:
        return sweep_io.load(path)
    except FileNotFoundError:
        print(f"report: cannot read '{path}': no such file", file=sys.stderr)
    except (sweep_io.SweepError, UnicodeDecodeError) as e:
        print(f"report: {e}", file=sys.stderr)
    return None


def take_file_option(args, name):
    """The file after `name` in args, both removed from args; None when `name` is absent."""
    if name not in args:
        return None
    at = args.index(name)
    if at + 1 >= len(args):
        raise ValueError(f"{name} needs a file")
    path = args[at + 1]
    del args[at:at + 2]
    return path


def main(argv):
    args = argv[1:]
    if any(x in ("-h", "--help") for x in args):
        print(USAGE)
        return 0
    try:
        earlier_path = take_file_option(args, "--predicted-before")
        precision_path = take_file_option(args, "--precision-from")
    except ValueError as e:
        print(f"report: {e}\n{USAGE}", file=sys.stderr)
        return 2
    if len(args) != 2 or any(x.startswith("--") for x in args):
        print(USAGE, file=sys.stderr)
        return 2
    path, out_dir = args
    sweep = load(path)
    if sweep is None:
        return 1
    earlier = None
    if earlier_path is not None:
        earlier = load(earlier_path)
        if earlier is None:
            return 1
    precision_sweep = None
    if precision_path is not None:
        precision_sweep = load(precision_path)
        if precision_sweep is None:
            return 1
    os.makedirs(out_dir, exist_ok=True)
    presets = a.preset_order(sweep)
    study = precision.bf16_view(sweep)  # the study is bf16; the precision section reads FP8
    plots, plot_notes = draw_plots(study, presets, out_dir)
    write_report(study, presets, plots, plot_notes, out_dir, earlier, with_fp8=sweep, precision_sweep=precision_sweep)
    print(f"report: {os.path.join(out_dir, 'report.md')}"
          + (f" and {len(plots)} plot(s): " + ", ".join(p.file for p in plots) if plots else ", no plots"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
