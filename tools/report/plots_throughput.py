"""Throughput plots: (a) tokens/s against GPU count per GPU type, (c) Flash against Naive
attention over the micro-batch, (d) DDP against the ZeRO stages over the GPU count."""

import os
from collections import Counter

import analysis as a
import plot_style as s


def _sources(sweep):
    return (("measured", sweep.measured), ("predicted", a.eligible_predicted(sweep)))


def throughput_vs_gpus(sweep, presets, out_dir):
    """(a) The best configuration's tokens/s per (preset, GPU type, GPU count)."""
    points = sweep.measured + a.eligible_predicted(sweep)
    gpus_types = sorted({p["gpu"] for p in points})
    if not gpus_types:
        return None
    plot = s.Plot("throughput_vs_gpus.png", "(a) Tokens/s against GPU count, best configuration")
    colors = s.palette(presets)
    fig, axes = s.panels(len(gpus_types), plot.title)
    for ax, gpu in zip(axes, gpus_types):
        counts, stars = set(), []
        for preset in presets:
            top = None
            for source, pts in _sources(sweep):
                best = a.best_by_tokens([p for p in pts if p["gpu"] == gpu and p["preset"] == preset])
                if not best:
                    continue
                chosen = sorted(best.values(), key=lambda p: p["gpus"])
                xs = [p["gpus"] for p in chosen]
                s.series(ax, xs, [p["tokens_per_s"] for p in chosen], colors[preset],
                         source == "predicted")
                counts.update(xs)
                if source == "measured":
                    plot.keys.update(p["key"] for p in chosen)
                # The star goes on the measured best where there is one.
                for p in chosen:
                    if top is None or (source == top[0] and p["tokens_per_s"] > top[1]["tokens_per_s"]):
                        top = (source, p)
            if top:
                stars.append((top[1], colors[preset], top[0] == "predicted"))
        ax.set_yscale("log")
        s.thousands_axis(ax)
        s.log2_axis(ax, counts, "GPUs (count, log2 scale)")
        ax.set_ylabel("tokens/s, all GPUs (log scale)")
        ax.set_title(gpu)
        ax.grid(True, which="both", alpha=0.3)
        for p, color, predicted in stars:
            s.best_star(ax, p["gpus"], p["tokens_per_s"], a.config_label(p), color, predicted)
    handles = [s.line_handle(colors[p], p) for p in presets] + s.style_legend()
    s.finish(fig, os.path.join(out_dir, plot.file), handles)
    return plot


def _home_gpu(sweep, preset):
    """The GPU type and smallest count with the most measured points of a preset."""
    counts = Counter(m["gpu"] for m in sweep.measured if m["preset"] == preset)
    if not counts:
        return None, None
    gpu = counts.most_common(1)[0][0]
    return gpu, min(m["gpus"] for m in sweep.measured if m["preset"] == preset and m["gpu"] == gpu)


def flash_vs_naive(sweep, presets, out_dir):
    """(c) Per preset, on its measured GPU at its smallest count: tokens/s per GPU against the
    micro-batch for each attention kernel, the best data-parallel scheme at each point."""
    shown = [p for p in presets if _home_gpu(sweep, p)[0]]
    if not shown:
        return None
    plot = s.Plot("flash_vs_naive.png", "(c) Flash against Naive attention: tokens/s per GPU")
    kernels = sorted({m["attention"] for m in sweep.measured})
    colors = s.palette(kernels)
    fig, axes = s.panels(len(shown), plot.title)
    for ax, preset in zip(axes, shown):
        gpu, count = _home_gpu(sweep, preset)
        batches, best_of = set(), {}
        for source, pts in _sources(sweep):
            for kernel in kernels:
                mine = [p for p in pts if (p["preset"], p["gpu"], p["gpus"], p["attention"]) ==
                        (preset, gpu, count, kernel)]
                by_batch = {}
                for p in mine:
                    b = by_batch.get(p["micro_batch"])
                    if b is None or p["tokens_per_s"] > b["tokens_per_s"]:
                        by_batch[p["micro_batch"]] = p
                chosen = [by_batch[k] for k in sorted(by_batch)]
                s.series(ax, [p["micro_batch"] for p in chosen],
                         [p["tokens_per_s"] / p["gpus"] for p in chosen], colors[kernel],
                         source == "predicted")
                batches.update(by_batch)
                if source == "measured" and chosen:
                    plot.keys.update(p["key"] for p in chosen)
                    best_of[kernel] = max(chosen, key=lambda p: p["tokens_per_s"])
        s.thousands_axis(ax)
        s.log2_axis(ax, batches, "micro-batch per GPU (sequences, log2 scale)")
        ax.set_ylabel("tokens/s per GPU")
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.08)
        ax.set_title(f"{preset} on {count}× {gpu}")
        ax.grid(True, alpha=0.3)
        if best_of:
            top = max(best_of.values(), key=lambda p: p["tokens_per_s"])
            # Written in a corner: beside the point it would cross the other kernel's line.
            s.best_star(ax, top["micro_batch"], top["tokens_per_s"] / top["gpus"],
                        a.config_label(top), corner=(0.98, 0.03))
            if "flash" in best_of and "naive" in best_of:
                ratio = best_of["flash"]["tokens_per_s"] / best_of["naive"]["tokens_per_s"]
                ax.text(0.03, 0.04, f"best flash ÷ best naive: {ratio:.2f}×", fontsize=9,
                        transform=ax.transAxes)
    handles = [s.line_handle(colors[k], k) for k in kernels] + s.style_legend()
    s.finish(fig, os.path.join(out_dir, plot.file), handles)
    return plot


def ddp_vs_zero(sweep, presets, out_dir):
    """(d) Per preset, on its measured GPU type: tokens/s per GPU against the GPU count for each
    data-parallel scheme, the best attention and micro-batch at each point."""
    shown = [p for p in presets if _home_gpu(sweep, p)[0]]
    if not shown:
        return None
    plot = s.Plot("ddp_vs_zero.png", "(d) DDP against ZeRO stages: tokens/s per GPU")
    schemes = sorted({p["parallel"] for p in sweep.measured + sweep.predicted}, key=a.parallel_rank)
    colors = s.palette(a.PARALLEL_ORDER + [x for x in schemes if x not in a.PARALLEL_ORDER])
    fig, axes = s.panels(len(shown), plot.title)
    for ax, preset in zip(axes, shown):
        gpu, _ = _home_gpu(sweep, preset)
        counts, top = set(), None
        for source, pts in _sources(sweep):
            for scheme in schemes:
                mine = [p for p in pts if (p["preset"], p["gpu"], p["parallel"]) == (preset, gpu, scheme)]
                by_count = a.best_by_tokens(mine)
                chosen = sorted(by_count.values(), key=lambda p: p["gpus"])
                per_gpu = [p["tokens_per_s"] / p["gpus"] for p in chosen]
                s.series(ax, [p["gpus"] for p in chosen], per_gpu, colors[scheme],
                         source == "predicted")
                counts.update(p["gpus"] for p in chosen)
                if source == "measured":
                    plot.keys.update(p["key"] for p in chosen)
                    # The star: the most tokens/s of all measured points, i.e. the scheme
                    # that wins at the largest GPU count measured.
                    for p in chosen:
                        if top is None or p["tokens_per_s"] > top["tokens_per_s"]:
                            top = p
        s.thousands_axis(ax)
        s.log2_axis(ax, counts, "GPUs (count, log2 scale)")
        ax.set_ylabel("tokens/s per GPU")
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.08)
        ax.set_title(f"{preset} on {gpu}")
        ax.grid(True, alpha=0.3)
        if top:
            s.best_star(ax, top["gpus"], top["tokens_per_s"] / top["gpus"],
                        f"{top['gpus']}× {a.config_label(top)}", corner=(0.02, 0.03))
    handles = [s.line_handle(colors[x], x) for x in schemes] + s.style_legend()
    s.finish(fig, os.path.join(out_dir, plot.file), handles)
    return plot
