"""Cost plots: (b) the dollars to the scaling law's target against the GPU count, (f) the
measured loss curves with their fits (a check of the law's slope, never a cost)."""

import os

import analysis as a
import curves as curve_check
import plot_style as s


def dollars_to_target_vs_gpus(sweep, presets, out_dir):
    """(b) Per GPU type: each preset's fewest dollars to the law's target (20 tokens per
    parameter) for each GPU count, the best configuration there (law_cost lines). Crosses: the
    global batch is beyond the compute-optimal one, where the law's loss is optimistic."""
    lines = [r for r in sweep.law_cost if r["key"] not in a.frozen_keys(sweep)]
    if not lines:
        return None
    target = a.target_text(sweep)
    plot = s.Plot("dollars_to_target_vs_gpus.png",
                  f"(b) Dollars to {target} against GPU count, best configuration")
    gpu_types = sorted({r["gpu"] for r in lines})
    colors = s.palette(presets)
    fig, axes = s.panels(len(gpu_types), plot.title, share_y=True)
    best_overall = {}  # preset -> {0 measured / 1 predicted: (law line, axis)}
    for ax, gpu in zip(axes, gpu_types):
        counts = set()
        for source in ("measured", "predicted"):
            best = a.best_by_law(sweep, source)
            for preset in presets:
                chosen = sorted((r for k, r in best.items() if k[0] == preset and k[1] == gpu),
                                key=lambda r: r["gpus"])
                if not chosen:
                    continue
                crosses = [i for i, r in enumerate(chosen) if r.get("batch_beyond_optimal")]
                s.series(ax, [r["gpus"] for r in chosen], [r["dollars_to_target"] for r in chosen],
                         colors[preset], source == "predicted", crosses=crosses)
                counts.update(r["gpus"] for r in chosen)
                if source == "measured":
                    plot.keys.update(r["key"] for r in chosen)
                found = best_overall.setdefault(preset, {})
                rank = 0 if source == "measured" else 1
                for r in chosen:
                    if rank not in found or r["dollars_to_target"] < found[rank][0]["dollars_to_target"]:
                        found[rank] = (r, ax)
        s.log2_axis(ax, counts, "GPUs (count, log2 scale)")
        # Log scale: the presets' costs differ by orders of magnitude (D grows with N).
        ax.set_yscale("log")
        ax.set_ylabel(f"$ to {target} (log scale)")
        ax.set_title(gpu)
        ax.grid(True, which="both", alpha=0.3)
    # Per model: a gold star on its cheapest measured configuration and, where a prediction
    # is cheaper still, a hollow star on that one.
    for preset, found in best_overall.items():
        for rank, (r, ax) in sorted(found.items()):
            if rank == 1 and 0 in found and found[0][0]["dollars_to_target"] <= r["dollars_to_target"]:
                continue
            s.best_star(ax, r["gpus"], r["dollars_to_target"],
                        f"{preset}: {r['gpus']}× {a.config_label(r)}", colors[preset], rank == 1)
    handles = [s.line_handle(colors[p], p) for p in presets if any(x["preset"] == p for x in lines)]
    handles += s.style_legend()
    handles.append(s.Line2D([], [], color="grey", marker="x", linestyle="", markersize=8,
                            markeredgewidth=2, label="batch beyond optimal"))
    s.finish(fig, os.path.join(out_dir, plot.file), handles, columns=5)
    return plot


def loss_curves(sweep, presets, out_dir):
    """(f) Validation loss against tokens seen: measured points, the fit over the measured range
    (dashed) and its extrapolation to 4× further (dotted)."""
    curves = [c for c in sweep.loss_curve if any(t > 0 for t, _ in c["points"])]
    if not curves:
        return None
    plot = s.Plot("loss_curves.png", "(f) Validation loss against tokens seen, with fits")
    rank = {p: i for i, p in enumerate(presets)}
    curves.sort(key=lambda c: (rank.get(c["preset"], 99), c["global_batch"]))
    colors = s.palette([f"{c['preset']}/{c['global_batch']}" for c in curves])
    fig, axes = s.panels(1, plot.title)
    ax = axes[0]
    fig.set_size_inches(8.5, 5.6)
    handles = []
    for c in curves:
        color = colors[f"{c['preset']}/{c['global_batch']}"]
        pts = [(t, l) for t, l in c["points"] if t > 0]  # 0 tokens has no place on a log axis
        ax.plot([t for t, _ in pts], [l for _, l in pts], marker="o", linestyle="", color=color,
                markersize=5)
        label = f"{c['preset']}, batch {c['global_batch']}"
        fit = c.get("fit")
        if fit and all(k in fit for k in ("E", "A", "alpha")):
            lo, hi = pts[0][0], pts[-1][0]
            inside = [lo * (hi / lo) ** (i / 60) for i in range(61)]
            beyond = [hi * 4 ** (i / 30) for i in range(31)]
            law = lambda t: fit["E"] + fit["A"] * t ** (-fit["alpha"])  # noqa: E731
            ax.plot(inside, [law(t) for t in inside], color=color, linestyle="--", linewidth=1.3)
            ax.plot(beyond, [law(t) for t in beyond], color=color, linestyle=":", linewidth=1.3)
            rms = fit.get("rms_relative_error")
            problem = curve_check.fit_problem(fit)
            label += (f": {fit['E']:.3g} + {fit['A']:.3g}·$t^{{-{fit['alpha']:.3g}}}$"
                      + ("" if rms is None else f" (fit error {100 * rms:.1f}%)")
                      + (f", unusable: {problem}" if problem else ""))
        handles.append(s.Line2D([], [], color=color, marker="o", linestyle="--", label=label))
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen (log scale)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.grid(True, which="both", alpha=0.3)
    handles.append(s.Line2D([], [], color="grey", linestyle=":", label="fit beyond the measured range"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    s.finish(fig, os.path.join(out_dir, plot.file))
    return plot
