#!/usr/bin/env python3
"""plot_run.py RUN [RUN ...] [--out FILE.png] [--x steps|tokens]: one PNG of training runs —
train loss, validation loss, tokens/s, learning rate and gradient norm — several runs overlaid.
A RUN is a run directory of train_llama (its metrics.jsonl is read) or a metrics.jsonl itself.
Writes RUN/run.png for one run, plot_run.png in the current directory for several, or --out.
Run it through tools/plot_run, which finds a python3 with matplotlib.
Exit status: 0 written, 1 bad input (a missing file, a line that is not JSON, no metrics),
2 bad command line."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plot_run_metrics as metrics  # noqa: E402

USAGE = "plot_run RUN [RUN ...] [--out FILE.png] [--x steps|tokens]"


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"usage: {USAGE}\nplot_run: {message}\n")


def arguments(argv):
    p = Parser(prog="plot_run", usage=USAGE, allow_abbrev=False,
               description="Draws training runs of train_llama as one PNG.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a run directory (train_llama --out) or a metrics.jsonl")
    p.add_argument("--out", metavar="FILE.png",
                   help="the PNG to write (default: RUN/run.png for one run, ./plot_run.png for several)")
    p.add_argument("--x", choices=("steps", "tokens"), default="steps",
                   help="the x axis: optimizer steps (default) or tokens seen")
    args = p.parse_args(argv)
    if args.out is not None and not args.out.lower().endswith(".png"):
        p.error(f"--out {args.out}: the file must end in .png")
    return args


def default_out(runs):
    if len(runs) == 1:
        return os.path.join(os.path.dirname(runs[0].path) or ".", "run.png")
    return "plot_run.png"


def main(argv):
    args = arguments(argv)
    try:
        runs = [metrics.read_run(arg) for arg in args.runs]
    except metrics.MetricsError as e:
        print(f"plot_run: {e}", file=sys.stderr)
        return 1
    for run in runs:
        for warning in run.warnings:
            print(f"plot_run: warning: {warning}", file=sys.stderr)
    empty = [run.path for run in runs if not run.has_metrics()]
    if empty:
        print(f"plot_run: {', '.join(empty)}: no metrics (no train or validation lines); "
              "a run writes its first at its first evaluation", file=sys.stderr)
        return 1
    labels = [run.label for run in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = run.path  # the same directory name twice: tell them apart by file
    if args.x == "tokens":
        unknown = [run.path for run in runs if not run.tokens_per_step]
        if unknown:
            print(f"plot_run: {', '.join(unknown)}: tokens per step unknown (it is estimated from "
                  "two timed train lines of one attempt, or one after a fresh run's first "
                  "evaluation); draw against --x steps", file=sys.stderr)
            return 1
        for run in runs:
            how = "from its train lines" if run.tokens_exact else \
                "estimated from tokens/s and elapsed time: an older log without \"tokens\""
            print(f"{run.label}: {run.tokens_per_step:,.0f} tokens per step ({how})")
    out = args.out or default_out(runs)
    import plot_run_draw  # matplotlib only once the input is known to be good
    try:
        plot_run_draw.draw(runs, args.x, out)
    except OSError as e:
        print(f"plot_run: cannot write {out}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
