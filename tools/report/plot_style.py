"""The look every plot shares: measured points are filled markers on solid lines, predicted ones
hollow markers on dashed lines, extrapolated loss-per-dollar points are crosses, and the best
configuration of a model is a star with its configuration written beside it."""

import math
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (FixedLocator, FuncFormatter, LogLocator,  # noqa: E402
                               NullFormatter, NullLocator)

DPI = 110
PANEL_W, PANEL_H = 5.2, 4.2
MAX_COLUMNS = 3


@dataclass
class Plot:
    file: str
    title: str
    keys: set = field(default_factory=set)  # measured points drawn
    notes: list = field(default_factory=list)


def palette(names):
    """A fixed colour per name (preset, scheme), the same in every plot."""
    colors = plt.get_cmap("tab10").colors
    return {n: colors[i % len(colors)] for i, n in enumerate(names)}


def panels(count, title, share_y=False):
    """A figure of `count` panels, at most MAX_COLUMNS a row; returns (figure, axes list).
    share_y: one y scale for all, where panels are compared value for value."""
    cols = min(count, MAX_COLUMNS)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_W * cols, PANEL_H * rows + 0.6),
                             squeeze=False, sharey=share_y)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=13)
    return fig, flat[:count]


def series(ax, xs, ys, color, predicted, label=None, crosses=()):
    """A line through points sorted by x. crosses: indices drawn as 'x' (extrapolated).
    Predicted lines sit under measured ones, so a filled marker is never hidden."""
    if not xs:
        return
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    xs = [xs[i] for i in order]
    ys = [ys[i] for i in order]
    crossed = {order.index(i) for i in crosses}
    ax.plot(xs, ys, color=color, linestyle="--" if predicted else "-", linewidth=1.4,
            alpha=0.9, label=label, zorder=2 if predicted else 3)
    for i, (x, y) in enumerate(zip(xs, ys)):
        if i in crossed:
            ax.plot(x, y, marker="x", color=color, markersize=8, markeredgewidth=2, linestyle="",
                    zorder=2.5 if predicted else 3.5)
        else:
            marker(ax, x, y, color, predicted)


def marker(ax, x, y, color, predicted, shape="o", size=6.5):
    ax.plot(x, y, marker=shape, linestyle="", markersize=size, markeredgewidth=1.4,
            markeredgecolor=color, markerfacecolor="white" if predicted else color,
            zorder=2.5 if predicted else 3.5)


def _fraction(ax, value, axis):
    """Where `value` sits between the axis limits, 0 to 1, in the axis's own scale."""
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if (ax.get_xscale() if axis == "x" else ax.get_yscale()) == "log":
        lo, hi, value = math.log(lo), math.log(hi), math.log(value)
    return (value - lo) / (hi - lo) if hi != lo else 0.5


def best_star(ax, x, y, text, color="black", predicted=False, corner=None):
    """A star on the best point, gold when measured and hollow when predicted, and its
    configuration beside it turned inwards so the text stays inside the panel; or, with
    corner=(x, y) in axes fractions, written there instead (for crowded panels). Call it
    after the axes' scales and limits are set."""
    ax.plot(x, y, marker="*", markersize=17, markerfacecolor="white" if predicted else "gold",
            markeredgecolor="black", linestyle="", zorder=5)
    box = dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor=color, alpha=0.85)
    if corner is not None:
        ax.text(corner[0], corner[1], "\u2605 " + text, transform=ax.transAxes, fontsize=8,
                color=color, zorder=6, ha="right" if corner[0] > 0.5 else "left",
                va="top" if corner[1] > 0.5 else "bottom", bbox=box)
        return
    right = _fraction(ax, x, "x") > 0.55
    high = _fraction(ax, y, "y") > 0.8
    ax.annotate(text, (x, y), xytext=(-10 if right else 10, -14 if high else 10),
                textcoords="offset points", fontsize=8, color=color, zorder=6,
                ha="right" if right else "left", va="top" if high else "bottom", bbox=box)


def log2_axis(ax, values, label):
    """A log2 x axis with ticks at the values that occur (GPU counts, micro-batches)."""
    ticks = sorted({v for v in values if v and v > 0})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        lo, hi = ticks[0], ticks[-1]
        ax.set_xlim(lo / 1.4, hi * 1.4)
    ax.set_xlabel(label)


def thousands_axis(ax):
    """Tokens/s ticks as 25k, 1.2M instead of 2.5e4."""
    def short(v, _):
        if v >= 1e6:
            return f"{v / 1e6:g}M"
        if v >= 1e3:
            return f"{v / 1e3:g}k"
        return f"{v:g}"
    ax.yaxis.set_major_formatter(FuncFormatter(short))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def memory_axis(ax):
    """A log y axis in GiB with ticks at 1, 2, 5, 10, 20, 50, ..."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def style_legend():
    """Legend entries for the marker convention itself."""
    return [Line2D([], [], color="grey", marker="o", linestyle="-", label="measured"),
            Line2D([], [], color="grey", marker="o", markerfacecolor="white", linestyle="--",
                   label="predicted"),
            Line2D([], [], color="black", marker="*", markerfacecolor="gold", markersize=12,
                   linestyle="", label="best configuration"),
            Line2D([], [], color="black", marker="*", markerfacecolor="white", markersize=12,
                   linestyle="", label="best, predicted")]


def finish(fig, path, legend_handles=None, columns=6):
    """Writes the figure with one legend under the panels."""
    if legend_handles:
        # As many columns as the figure is wide for (about 1.9 inches an entry).
        ncol = max(1, min(columns, len(legend_handles), int(fig.get_figwidth() / 1.9)))
        fig.legend(handles=legend_handles, loc="lower center", ncol=ncol, fontsize=9,
                   frameon=False)
        rows = math.ceil(len(legend_handles) / ncol)
        fig.tight_layout(rect=(0, min(0.5, (0.25 * rows + 0.1) / fig.get_figheight()), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def line_handle(color, label, predicted=False, shape="o"):
    return Line2D([], [], color=color, marker=shape, linestyle="--" if predicted else "-",
                  markerfacecolor="white" if predicted else color, label=label)
