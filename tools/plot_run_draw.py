"""Draws runs (plot_run_metrics.Run) as one PNG: a panel each for train loss, validation loss,
tokens/s, learning rate and gradient norm, against steps or tokens. Each run has its own colour;
a panel no run has data for is left out. Checkpoints are triangles along the foot of the train
loss panel, and a resume is a dotted vertical line in the run's colour on every panel."""

import math
import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

DPI = 110
PANEL_W, PANEL_H = 6.0, 3.6
LOG_SPAN = 30  # a gradient-norm panel whose values span more than this factor is drawn log


def train_field(key):
    return lambda run: {step: values[key] for step, values in run.train.items()}


# (name, title, y label, a run's values by step)
PANELS = (
    ("train", "train loss (the logged step's batch)", "loss", train_field("loss")),
    ("validation", "validation loss", "loss", lambda run: dict(run.validation)),
    ("speed", "throughput (training time only)", "tokens/s", train_field("tokens_per_s")),
    ("lr", "learning rate", "learning rate", train_field("lr")),
    ("grad_norm", "gradient norm", "global gradient norm (before clipping)", train_field("grad_norm")),
)


def short_number(v, _=None):
    """Ticks as 25k, 1.2M, 3G instead of 2.5e4."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{suffix}"
    return f"{v:g}"


def x_of(run, axis):
    """The x value of a step: the step itself, or the tokens seen after it."""
    if axis == "tokens":
        return lambda step: step * run.tokens_per_step
    return lambda step: step


def finite(values):
    return [v for v in values if not math.isnan(v)]


def draw_panel(ax, title, ylabel, runs, colors, values_of, axis):
    """Each run's line; returns every finite value drawn (for the panel's scale)."""
    drawn = []
    for run in runs:
        points = values_of(run)
        if not finite(points.values()):
            continue
        steps = sorted(points)
        to_x = x_of(run, axis)
        few = len(steps) <= 40  # markers where the points are few enough to see one by one
        ax.plot([to_x(s) for s in steps], [points[s] for s in steps], color=colors[run.label],
                linewidth=1.5, marker="o" if few else None, markersize=3.5, label=run.label)
        drawn += finite(points.values())
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("tokens" if axis == "tokens" else "step")
    ax.grid(True, alpha=0.3)
    if axis == "tokens":
        ax.xaxis.set_major_formatter(FuncFormatter(short_number))
    return drawn


def mark_checkpoints(ax, runs, colors, axis):
    """Triangles at the foot of the panel at each checkpoint's step."""
    for run in runs:
        to_x = x_of(run, axis)
        xs = [to_x(s) for s in sorted(run.checkpoints)]
        if xs:
            ax.plot(xs, [0.03] * len(xs), linestyle="", marker="^", markersize=6,
                    color=colors[run.label], transform=ax.get_xaxis_transform(), clip_on=False)


def mark_resumes(axes, runs, colors, axis):
    for run in runs:
        to_x = x_of(run, axis)
        for step in run.resumed_at:
            for ax in axes:
                ax.axvline(to_x(step), color=colors[run.label], linestyle=":", linewidth=1.4,
                           alpha=0.8)


def summary(run, axis):
    """The run in two short lines: steps and last losses; speed, resumes, tokens per step."""
    steps = sorted(set(run.train) | set(run.validation))
    first = [f"steps {steps[0]}\u2013{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"]
    losses = finite([run.train[s]["loss"] for s in sorted(run.train)])
    if losses:
        first.append(f"last loss {losses[-1]:.4g}")
    validation = finite([run.validation[s] for s in sorted(run.validation)])
    if validation:
        first.append(f"last validation {validation[-1]:.4g}")
    second = []
    speeds = sorted(finite([v["tokens_per_s"] for v in run.train.values()]))
    if speeds:
        second.append(f"median {speeds[len(speeds) // 2]:,.0f} tokens/s")
    if run.resumed_at:
        second.append(f"resumed {len(run.resumed_at)}\u00d7")
    if axis == "tokens":
        second.append(f"{run.tokens_per_step:,.0f} tokens/step" + ("" if run.tokens_exact else " (estimated)"))
    return "\n".join(" \u00b7 ".join(parts) for parts in (first, second) if parts)


def legend_handles(runs, colors, axis):
    """A line per run (its directory and summary), then the markers' meanings."""
    handles = []
    for run in runs:
        label = f"{run.label}\n{summary(run, axis)}"
        handles.append(Line2D([], [], color=colors[run.label], linewidth=2.5, label=label))
    if any(run.checkpoints for run in runs):
        handles.append(Line2D([], [], color="grey", linestyle="", marker="^",
                              label="checkpoint saved (foot of the train loss panel)"))
    if any(run.resumed_at for run in runs):
        handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1.4,
                              label="resumed from the checkpoint here; later lines win"))
    return handles


def draw(runs, axis, out):
    """Writes the figure to `out` (through a temporary file, renamed: never half a PNG)."""
    palette = plt.get_cmap("tab10").colors
    colors = {run.label: palette[i % len(palette)] for i, run in enumerate(runs)}
    shown = [p for p in PANELS if any(finite(p[3](run).values()) for run in runs)]
    cols = 2
    rows = math.ceil((len(shown) + 1) / cols)  # one more cell: the legend
    fig, grid = plt.subplots(rows, cols, figsize=(PANEL_W * cols, PANEL_H * rows + 0.5),
                             squeeze=False)
    cells = [ax for row in grid for ax in row]
    axes = cells[:len(shown)]
    for ax, (name, title, ylabel, values_of) in zip(axes, shown):
        values = draw_panel(ax, title, ylabel, runs, colors, values_of, axis)
        if name == "train":
            mark_checkpoints(ax, runs, colors, axis)
        if name == "grad_norm" and values and min(values) > 0 and max(values) / min(values) > LOG_SPAN:
            ax.set_yscale("log")
        if name == "speed":
            ax.yaxis.set_major_formatter(FuncFormatter(short_number))
            ax.set_ylim(0, max(values) * 1.12 if values else None)
        if name == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    for ax in axes[1:]:
        ax.sharex(axes[0])  # one x range for every panel, tick labels kept on each
    mark_resumes(axes, runs, colors, axis)
    key = cells[len(shown)]
    key.axis("off")
    key.legend(handles=legend_handles(runs, colors, axis), loc="upper left", fontsize=8.5,
               frameon=False, labelspacing=0.9)
    for ax in cells[len(shown) + 1:]:
        ax.set_visible(False)
    estimated = any(not run.tokens_exact for run in runs)
    against = ("tokens seen (step \u00d7 tokens per step, estimated)" if estimated else "tokens seen") \
        if axis == "tokens" else "optimizer step"
    fig.suptitle(f"{len(runs)} run{'s' if len(runs) > 1 else ''} against {against}", fontsize=12)
    fig.tight_layout()
    directory, name = os.path.split(os.path.abspath(out))
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(temp, dpi=DPI)
        os.replace(temp, out)
    finally:
        plt.close(fig)
        if os.path.exists(temp):
            os.remove(temp)
