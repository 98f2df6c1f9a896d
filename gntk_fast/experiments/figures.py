"""Figures of the paper's studies from their tidy tables (PNG, matplotlib Agg).

Every function takes rows (lists of dicts, see :mod:`gntk_fast.experiments.pruned_study`
and :mod:`gntk_fast.experiments.kernel_checks`), draws one figure, saves it
atomically at ``path`` and returns the Figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..plots import new_figure, save_figure
from ._tables import group_mean, group_series
from .metrics import (DENSITY, DIVERGED, MEAN_REL_DIST, MEASURED_LOSS, PREDICTED_LOSS, P_VALUE, RATIO, REL_DIST, RHO,
                      SLOPE_REL_DIST, TRAINABLE)

__all__ = [
    "plot_training_curves", "plot_kernel_metric", "plot_correlations", "plot_linearised",
    "plot_kernel_convergence", "plot_random_scaling", "plot_scope_density", "plot_pruned_kernels",
]

_COLORS = {"dense": "black", "random": "tab:gray", "magnitude": "tab:brown", "snip": "tab:blue",
           "grasp": "tab:green", "synflow": "tab:red"}


def _methods(rows: Sequence[dict]) -> list[str]:
    seen = []
    for r in rows:
        if r["method"] not in seen:
            seen.append(r["method"])
    order = list(_COLORS)
    return sorted(seen, key=lambda m: order.index(m) if m in order else len(order))


def plot_training_curves(train_rows: Sequence[dict], *, path: str | Path | None = None, metric: str = "loss",
                         title: str = "training curves of pruned nets (Adam; mean +- sd over seeds)",
                         ylabel: str | None = None, sharey: bool = True):
    """Training loss (mean over seeds, band = +-1 sd) against steps: one panel per
    pruning method, one line per sparsity, the dense net in every panel (Fig. 2/10).
    ``sharey``: one y axis for every panel (default: the panels are compared)."""
    import matplotlib

    methods = [m for m in _methods(train_rows) if m != "dense"]
    stats = group_mean(train_rows, ("method", "sparsity", "step"), metric)
    fig, axes = new_figure(1, max(1, len(methods)), size=(3.1 * max(1, len(methods)) + 0.6, 3.3))
    sps = sorted({r["sparsity"] for r in train_rows if r["method"] != "dense"})
    cmap = matplotlib.colormaps["viridis"]
    for j, (ax, m) in enumerate(zip(axes[0], methods)):
        if sharey and j:
            ax.sharey(axes[0][0])
        for i, sp in enumerate([None] + sps):
            series = group_series(stats, *(("dense", 0.0) if sp is None else (m, sp)))
            if series is None:
                continue
            s, mu, sd = series
            color = "black" if sp is None else cmap(i / max(1, len(sps)))
            ax.plot(s, mu, color=color, lw=1.4, ls="--" if sp is None else "-",
                    label="dense" if sp is None else f"s={sp:g}")
            ax.fill_between(s, mu - sd, mu + sd, color=color, alpha=0.15, lw=0)
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel or f"training {metric} (full training subset)")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
    return fig


def plot_kernel_metric(kernel_rows: Sequence[dict], metric: str, kernels: Sequence[str], labels: dict[str, str], *,
                       path: str | Path | None = None, ylabel: str | None = None):
    """A kernel metric against sparsity: one panel per kernel, one line per method
    (mean +- sd over seeds); the dense net as a horizontal line (Fig. 3)."""
    stats = group_mean(kernel_rows, ("kernel", "method", "sparsity"), metric)
    methods = [m for m in _methods(kernel_rows) if m != "dense"]
    fig, axes = new_figure(1, len(kernels), size=(3.1 * len(kernels) + 0.6, 3.3))
    for ax, kern in zip(axes[0], kernels):
        for m in methods:
            series = group_series(stats, kern, m)
            if series is None:
                continue
            s, mu, sd = series
            ax.errorbar(s, mu, yerr=sd, color=_COLORS.get(m), marker="o", ms=3, lw=1.2, capsize=2, label=m)
        dense = stats.get((kern, "dense", 0.0))
        if dense:
            ax.axhline(dense[0], color="black", ls="--", lw=1, label="dense")
        ax.set_title(labels.get(kern, kern), fontsize=9)
        ax.set_xlabel("sparsity")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel or metric)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"{ylabel or metric} of four kernels of the pruned nets (mean +- sd over seeds)", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_correlations(corr_rows: Sequence[dict], kernels: Sequence[str], metrics: Sequence[str], step: int,
                      labels: dict[str, str], *, path: str | Path | None = None):
    """Heat map of Spearman's rho between each kernel metric and the training loss
    at ``step`` across (method, sparsity); p-values printed in the cells."""
    fig, axes = new_figure(1, 1, size=(1.9 * len(kernels) + 2.4, 0.55 * len(metrics) + 1.8))
    ax = axes[0][0]
    R = np.full((len(metrics), len(kernels)), np.nan)
    P = np.full_like(R, np.nan)
    for r in corr_rows:
        if r["step"] == step and r["kernel"] in kernels and r["metric"] in metrics:
            i, j = metrics.index(r["metric"]), kernels.index(r["kernel"])
            R[i, j] = np.nan if r[RHO] is None else r[RHO]
            P[i, j] = np.nan if r[P_VALUE] is None else r[P_VALUE]
    im = ax.imshow(R, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(metrics)):
        for j in range(len(kernels)):
            txt = "n/a" if np.isnan(R[i, j]) else f"{R[i, j]:+.2f}\np={P[i, j]:.2g}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(kernels)), [labels.get(k, k).replace(", ", ",\n") for k in kernels], fontsize=7)
    ax.set_yticks(range(len(metrics)), metrics, fontsize=8)
    fig.colorbar(im, ax=ax, label="Spearman rho with training loss")
    ax.set_title(f"kernel metric vs training loss at step {step} (across method x sparsity)", fontsize=9)
    save_figure(fig, path)
    return fig


def plot_linearised(linear_rows: Sequence[dict], *, path: str | Path | None = None):
    """Measured full-batch GD loss (squared) beside the linearised prediction of the
    eNTK: one panel per method, lines per sparsity (diverged runs marked)."""
    import matplotlib

    methods = _methods(linear_rows)
    fig, axes = new_figure(1, len(methods), size=(3.0 * len(methods) + 0.6, 3.2))
    cmap = matplotlib.colormaps["viridis"]
    for ax, m in zip(axes[0], methods):
        sps = sorted({r["sparsity"] for r in linear_rows if r["method"] == m})
        for i, sp in enumerate(sps):
            sel = sorted((r for r in linear_rows if r["method"] == m and r["sparsity"] == sp), key=lambda r: r["step"])
            c = cmap(i / max(1, len(sps)))
            s = [r["step"] for r in sel]
            ax.plot(s, [r[PREDICTED_LOSS] for r in sel], color=c, ls="--", lw=1)
            meas = [(r["step"], r[MEASURED_LOSS]) for r in sel if r[MEASURED_LOSS] is not None]
            lab = f"s={sp:g}" + (" (diverged)" if sel and sel[0].get(DIVERGED) else "")
            if meas:
                ax.plot([p[0] for p in meas], [p[1] for p in meas], color=c, lw=1.4, label=lab)
            else:
                ax.plot([], [], color=c, lw=1.4, label=lab)
        ax.set_yscale("log")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("GD step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("squared loss: measured (solid), predicted (dashed)")
    fig.suptitle("linearised prediction (eNTK of the pruned net) vs measured full-batch GD", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_kernel_convergence(rows: Sequence[dict], summaries: Sequence[dict], *, path: str | Path | None = None):
    """Relative error of graphon-sampled nets' eNTK to the analytic kernel vs width
    (log-log, per seed and mean), with the fitted slope and an n^-1/2 guide."""
    fig, axes = new_figure(1, 1, size=(4.6, 3.6))
    ax = axes[0][0]
    for summ, color in zip(summaries, ("tab:blue", "tab:orange")):
        conv = summ[TRAINABLE]
        sel = [r for r in rows if r[TRAINABLE] == conv]
        ax.scatter([r["width"] for r in sel], [r[REL_DIST] for r in sel], s=10, color=color, alpha=0.5)
        slope = summ[SLOPE_REL_DIST]
        ax.plot(summ["widths"], summ[MEAN_REL_DIST], "o-", color=color,
                label=f'trainable="{conv}": slope {slope:.2f}' if slope is not None else conv)
    w = np.array(summaries[0]["widths"], dtype=float)
    ax.plot(w, summaries[0][MEAN_REL_DIST][0] * (w / w[0]) ** -0.5, "k--", lw=1, label="n^-1/2")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width n")
    ax.set_ylabel("||eNTK - Graphon NTK||_F / ||Graphon NTK||_F")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.set_title("finite graphon-sampled nets -> analytic kernel", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_random_scaling(rows: Sequence[dict], depth: int, *, path: str | Path | None = None,
                        other_law: bool = True, floor_ylim: bool = False,
                        title: str = "random pruning scales the NTK (L = {depth} hidden layers)"):
    """Random pruning: kernel ratio to dense vs density c, both conventions, eNTK
    (points) and analytic (lines), with the convention's law (c^(L+1) for "mask",
    c^L for "all") and, with ``other_law``, the other one dotted; ``floor_ylim``
    sets the y range to [min ratio / 2, 2] on both panels; ``title`` is formatted
    with ``depth``."""
    fig, axes = new_figure(1, 2, size=(8.0, 3.5))
    lo = min(r[RATIO] for r in rows)
    for ax, conv in zip(axes[0], ("mask", "all")):
        sel = [r for r in rows if r[TRAINABLE] == conv]
        e = [r for r in sel if r["kernel"] == "eNTK"]
        a = sorted((r for r in sel if r["kernel"] == "analytic"), key=lambda r: r[DENSITY])
        ax.scatter([r[DENSITY] for r in e], [r[RATIO] for r in e], color="tab:blue", s=18, label="eNTK (seeds)")
        ax.plot([r[DENSITY] for r in a], [r[RATIO] for r in a], color="tab:orange", lw=1.5, label="analytic")
        c = np.linspace(min(r[DENSITY] for r in sel), 1, 50)
        p = depth + 1 if conv == "mask" else depth
        ax.plot(c, c**p, "k--", lw=1, label=f"c^{p}")
        if other_law:
            ax.plot(c, c ** (depth if conv == "mask" else depth + 1), ":", color="gray", lw=1,
                    label=f"c^{depth if conv == 'mask' else depth + 1}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if floor_ylim:
            ax.set_ylim(lo / 2, 2)
        ax.set_xlabel("density c")
        ax.set_title(f'trainable="{conv}"', fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("sum(Theta_c) / sum(Theta_dense)")
    fig.suptitle(title.format(depth=depth), fontsize=10)
    save_figure(fig, path)
    return fig


def plot_scope_density(rows: Sequence[dict], *, path: str | Path | None = None):
    """Kept density of each hidden-to-hidden layer vs width, global vs layerwise
    scope, one panel per method."""
    methods = _methods(rows)
    fig, axes = new_figure(1, len(methods), size=(3.0 * len(methods) + 0.6, 3.2))
    for ax, m in zip(axes[0], methods):
        for scope, ls in (("global", "-"), ("layerwise", "--")):
            sel = [r for r in rows if r["method"] == m and r["scope"] == scope]
            for layer in sorted({r["layer"] for r in sel}):
                pts = sorted((r["width"], r[DENSITY]) for r in sel if r["layer"] == layer)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], ls, marker="o", ms=3,
                        color=f"C{layer}", label=f"{scope}: layer {layer}->{layer + 1}")
        ax.set_xscale("log")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("width")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("kept fraction of the layer")
    axes[0][-1].legend(fontsize=6)
    fig.suptitle("per-layer density: global scope drifts with width, layerwise stays fixed", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_pruned_kernels(rows: Sequence[dict], summary: Sequence[dict], *, path: str | Path | None = None):
    """Distance of the analytic kernels (c) and (d) of pruned nets to their eNTK vs
    width, one panel per method (points: seeds; lines: means with slopes)."""
    methods = _methods(rows)
    fig, axes = new_figure(1, len(methods), size=(3.1 * len(methods) + 0.6, 3.3))
    styles = {"gntk_mask": ("tab:blue", "(c) mask graphons"), "gntk_variance": ("tab:orange", "(d) variance graphons")}
    for ax, m in zip(axes[0], methods):
        for s in summary:
            if s["method"] != m:
                continue
            color, label = styles[s["kernel"]]
            pts = [r for r in rows if r["method"] == m and r["kernel"] == s["kernel"]]
            ax.scatter([r["width"] for r in pts], [r[REL_DIST] for r in pts], s=10, color=color, alpha=0.5)
            slope = "" if s[SLOPE_REL_DIST] is None else f", slope {s[SLOPE_REL_DIST]:.2f}"
            ax.plot(s["widths"], s[MEAN_REL_DIST], "o-", color=color, label=label + slope)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("width n")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("||Theta_analytic - eNTK||_F / ||eNTK||_F")
    fig.suptitle("analytic kernels of pruned nets' graphons vs their own eNTK", fontsize=10)
    save_figure(fig, path)
    return fig
