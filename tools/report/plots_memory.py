"""(e) Peak memory per GPU against the micro-batch, per preset: every measured point, the
predictions of measured configurations, the skipped ones at their estimate, and each GPU's
memory as a horizontal line."""

import os

import analysis as a
import plot_style as s

ATTENTION_SHAPES = {"flash": "o", "naive": "s"}
# Flash points a little left of their micro-batch, Naive a little right, so they do not cover
# each other (the axis is log2: these are ±7%).
ATTENTION_NUDGE = {"flash": 0.93, "naive": 1.07}


def memory_vs_microbatch(sweep, presets, out_dir):
    shown = [p for p in presets
             if any(r["preset"] == p for r in sweep.measured + sweep.skipped)]
    if not shown:
        return None
    plot = s.Plot("memory_vs_microbatch.png", "(e) Peak memory per GPU against the micro-batch")
    schemes = sorted({r["parallel"] for r in sweep.measured + sweep.skipped}, key=a.parallel_rank)
    colors = s.palette(a.PARALLEL_ORDER + [x for x in schemes if x not in a.PARALLEL_ORDER])
    checked = {p["check_key"]: p for p in sweep.predicted if p.get("check_key")}
    fig, axes = s.panels(len(shown), plot.title)
    any_unmeasured = any_limit = False
    for ax, preset in zip(axes, shown):
        measured = [m for m in sweep.measured if m["preset"] == preset]
        skipped = [k for k in sweep.skipped if k["preset"] == preset]
        batches = {r["micro_batch"] for r in measured + skipped}
        for m in measured:
            shape = ATTENTION_SHAPES.get(m["attention"], "D")
            x = m["micro_batch"] * ATTENTION_NUDGE.get(m["attention"], 1)
            if m.get("memory_gib") is not None:
                s.marker(ax, x, m["memory_gib"], colors[m["parallel"]], False, shape)
            elif m.get("estimate_gib") is not None:  # a CPU run measures no memory
                ax.plot(x, m["estimate_gib"], marker="+", linestyle="", markersize=10,
                        markeredgewidth=2, color=colors[m["parallel"]], zorder=4)
                any_unmeasured = True
            else:
                continue
            plot.keys.add(m["key"])
            p = checked.get(m["key"])
            if p is not None:
                s.marker(ax, x, p["memory_gib"], colors[m["parallel"]], True, shape)
        for k in skipped:
            x = k["micro_batch"] * ATTENTION_NUDGE.get(k["attention"], 1)
            ax.plot(x, k["estimate_gib"], marker="X", linestyle="", markersize=9,
                    color=colors.get(k["parallel"], "black"), markeredgecolor="black", zorder=4)
        # Each GPU type's memory, once, labelled at the right end.
        limits = {}
        for r in measured + skipped:
            limit = r.get("memory_limit_gib")
            if limit:
                limits[r["gpu"]] = limit
        any_limit = any_limit or bool(limits)
        for gpu, limit in sorted(limits.items(), key=lambda g: g[1]):
            ax.axhline(limit, color="dimgrey", linestyle="-.", linewidth=1)
            # At the left end: the points there are the small ones, far below the line.
            ax.text(0.01, limit, f" {gpu}: {limit:g} GiB", transform=ax.get_yaxis_transform(),
                    ha="left", va="bottom", fontsize=8, color="dimgrey")
        s.log2_axis(ax, batches, "micro-batch per GPU (sequences, log2 scale)")
        # Log scale: skipped estimates can be several times the GPU's memory and would
        # otherwise squash the measured points into the bottom of the panel.
        s.memory_axis(ax)
        ax.set_ylabel("peak memory per GPU (GiB, log scale)")
        ax.set_title(preset)
        ax.grid(True, which="both", alpha=0.3)
        star = _best_of(sweep, preset)
        star_memory = None if star is None else star.get("memory_gib", star.get("estimate_gib"))
        if star_memory is not None:
            s.best_star(ax, star["micro_batch"] * ATTENTION_NUDGE.get(star["attention"], 1),
                        star_memory,
                        f"best: {star['gpus']}× {star['gpu']} {a.config_label(star)}",
                        corner=(0.98, 0.03))  # memory grows to the right: that corner is free
    handles = [s.line_handle(colors[x], x) for x in schemes]
    handles += [s.Line2D([], [], color="grey", marker=shape, linestyle="", label=name)
                for name, shape in ATTENTION_SHAPES.items()]
    # Legend entries only for what some panel shows.
    if checked:
        handles.append(s.Line2D([], [], color="grey", marker="o", markerfacecolor="white",
                                linestyle="", label="predicted for a measured one"))
    if sweep.skipped:
        handles.append(s.Line2D([], [], color="grey", marker="X", markeredgecolor="black",
                                linestyle="", markersize=9, label="skipped, at its estimate"))
    if any_limit:
        handles.append(s.Line2D([], [], color="dimgrey", linestyle="-.", label="GPU memory"))
    handles.append(s.Line2D([], [], color="black", marker="*", markerfacecolor="gold",
                            markersize=12, linestyle="", label="best configuration (measured)"))
    if any_unmeasured:
        handles.append(s.Line2D([], [], color="grey", marker="+", markeredgewidth=2, linestyle="",
                                markersize=10, label="memory not measured (CPU): at its estimate"))
    for h in handles[:len(schemes)]:
        h.set_linestyle("")
    s.finish(fig, os.path.join(out_dir, plot.file), handles, columns=6)
    return plot


def _best_of(sweep, preset):
    """The measured configuration with the fewest dollars to the scaling law's target, or
    failing law lines, the one with the most tokens/s per GPU."""
    line = a.law_answer(sweep, "measured").get(preset)
    measured = sweep.measured_by_key()
    if line is not None and line["key"] in measured:
        return measured[line["key"]]
    mine = [m for m in sweep.measured if m["preset"] == preset]
    return max(mine, key=lambda m: m["tokens_per_s"] / m["gpus"]) if mine else None
