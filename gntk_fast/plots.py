"""Figures (matplotlib, PNG). Plain functions; each returns a
``matplotlib.figure.Figure`` built with the Agg canvas (no pyplot, no global
backend change) and saves it when ``path`` is given.

Mask/estimate orientation (docs/graphons.md): an estimate H has shape
(K_out, K_in); it is drawn with ``imshow`` so that the x-axis is layer l (the
inputs, columns) and the y-axis is layer l+1 (the outputs, rows, first row at
the top), and every axis says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._io import atomic_path

__all__ = [
    "new_figure",
    "save_figure",
    "plot_estimate",
    "plot_estimate_grid",
    "plot_distance_curves",
    "plot_input_density",
    "plot_spectrum",
]


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None, squeeze: bool = False):
    """A Figure on an Agg canvas with a grid of axes: ``(fig, axes)``, axes (nrows, ncols)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = size or (3.2 * ncols + 0.8, 3.0 * nrows + 0.6)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze)
    return fig, axes


def save_figure(fig, path: str | Path | None, dpi: int = 120) -> Path | None:
    """Save ``fig`` as PNG at ``path`` (parents created) atomically: an
    interrupted write leaves no file. Returns the path, or None for no path."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png; got {path}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _layer_names(layer: int | None) -> tuple[str, str]:
    if layer is None:
        return "layer l", "layer l+1"
    return f"layer {layer}", f"layer {layer + 1}"


def plot_estimate(H: Any, ax=None, *, layer: int | None = None, title: str | None = None, vmin: float = 0.0,
                  vmax: float | None = None, colorbar: bool = True, path: str | Path | None = None):
    """Draw one estimate (array (K_out, K_in) or SAS result): x = layer l (inputs,
    columns), y = layer l+1 (outputs, rows). ``layer`` names l (mask index:
    weights from hidden layer l to l+1). Returns the Figure."""
    H = np.asarray(getattr(H, "H", H), dtype=np.float64)
    if H.ndim != 2 or H.size == 0:
        raise ValueError(f"H must be a non-empty 2-D estimate; got shape {H.shape}")
    if ax is None:
        fig, axes = new_figure(1, 1, size=(4.2, 3.6))
        ax = axes[0, 0]
    fig = ax.figure
    src, dst = _layer_names(layer)
    im = ax.imshow(H, origin="upper", cmap="viridis", vmin=vmin, vmax=vmax if vmax is not None else max(H.max(), 1e-12),
                   aspect="auto", interpolation="nearest")
    ax.set_xlabel(f"{src}: inputs (columns), sorted block")
    ax.set_ylabel(f"{dst}: outputs (rows), sorted block")
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        fig.colorbar(im, ax=ax, label="kept density")
    save_figure(fig, path)
    return fig


def plot_estimate_grid(result, layer: int | None = None, *, path: str | Path | None = None):
    """Grid of averaged estimates, rows = methods, columns = widths, for one
    hidden-to-hidden layer of a :class:`~gntk_fast.experiments.GraphonConvergence`
    (default: the first, ``result.layers[0]``); one shared colour scale."""
    layer = result.layers[0] if layer is None else layer
    if layer not in result.layers:
        raise ValueError(f"layer must be one of {result.layers}; got {layer}")
    li = result.layers.index(layer)
    M, W = len(result.methods), len(result.widths)
    fig, axes = new_figure(M, W)
    vmax = float(result.H[:, :, li].max()) or 1.0
    src, dst = _layer_names(layer)
    im = None
    for m, method in enumerate(result.methods):
        for w, width in enumerate(result.widths):
            ax = axes[m, w]
            im = ax.imshow(result.H[m, w, li], origin="upper", cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto",
                           interpolation="nearest")
            ax.set_title(f"{method}, width {width}", fontsize=9)
            if m == M - 1:
                ax.set_xlabel(f"{src} (inputs, columns)")
            if w == 0:
                ax.set_ylabel(f"{dst} (outputs, rows)")
    fig.colorbar(im, ax=axes, label="kept density", shrink=0.8)
    trials = result.config.get("trials")
    fig.suptitle(f"SAS estimates of hidden layer {layer} -> {layer + 1} "
                 f"(sparsity {result.config.get('sparsity')}, K={result.config.get('K')}, {trials} trials)", fontsize=10)
    save_figure(fig, path)
    return fig


_METRICS = {
    "hist": ("hist", "histogram distance to widest"),
    "hist_norm": ("hist_norm", "histogram distance / K to widest"),
    "cut": ("cut", "cut norm of H - H_widest"),
    "degree_rows": ("degree_rows", "degree-profile distance (rows)"),
    "degree_cols": ("degree_cols", "degree-profile distance (columns)"),
}


def plot_distance_curves(result, layer: int | None = None, metric: str = "hist", *, path: str | Path | None = None):
    """Distance to the widest width's estimate against width, one curve per method.

    ``metric="hist"`` also shows the spread over trials: each trial's estimate's
    distance to the widest averaged estimate, mean +- one standard deviation
    (band). Other metrics ("hist_norm", "cut", "degree_rows", "degree_cols") plot
    the averaged estimates' distances; the cut norm's axis says "lower bound"
    when it was not computed exactly (``result.cut_exact``).
    """
    from ._validation import check_choice

    metric = check_choice("metric", metric, tuple(_METRICS))
    layer = result.layers[0] if layer is None else layer
    if layer not in result.layers:
        raise ValueError(f"layer must be one of {result.layers}; got {layer}")
    li = result.layers.index(layer)
    key, label = _METRICS[metric]
    if metric == "cut" and not bool(np.all(np.asarray(result.cut_exact)[:, :, li])):
        label += " (lower bound)"  # min(K_out, K_in) > 20: alternating maximisation, not enumeration
    widths = np.asarray(result.widths)
    fig, axes = new_figure(1, 1, size=(5.2, 3.8))
    ax = axes[0, 0]
    for m, method in enumerate(result.methods):
        y = np.asarray(getattr(result, key))[m, :, li]
        line = ax.plot(widths, y, marker="o", label=f"{method} (averaged estimate)")[0]
        if metric == "hist":
            tr = result.hist_trials[m, :, li]
            mu, sd = tr.mean(axis=-1), tr.std(axis=-1)
            ax.errorbar(widths, mu, yerr=sd, fmt="s--", color=line.get_color(), alpha=0.7, capsize=3,
                        label=f"{method} (per trial, mean +- sd)")
            ax.fill_between(widths, mu - sd, mu + sd, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("hidden width n")
    ax.set_ylabel(label)
    ax.set_title(f"hidden layer {layer} -> {layer + 1}: convergence to width {widths[-1]}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    return fig


def plot_input_density(result, *, path: str | Path | None = None, image_shape: Sequence[int] | None = None):
    """Per-pixel kept density of the input layer (layer 0 -> 1), rows = methods,
    columns = widths; 28 x 28 for MNIST, 8 x 8 for digits (``result.config["image_shape"]``
    or ``image_shape``); a bar plot per pixel when the input is not an image."""
    shape = image_shape or result.config.get("image_shape")
    M, W = len(result.methods), len(result.widths)
    fig, axes = new_figure(M, W)
    dens = np.asarray(result.input_density)
    vmax = float(dens.max()) or 1.0
    im = None
    for m, method in enumerate(result.methods):
        for w, width in enumerate(result.widths):
            ax = axes[m, w]
            ax.set_title(f"{method}, width {width}", fontsize=9)
            if shape:
                im = ax.imshow(dens[m, w].reshape(tuple(shape)), cmap="magma", vmin=0.0, vmax=vmax,
                               interpolation="nearest")
                ax.set_xlabel("pixel column (input layer 0)")
                ax.set_ylabel("pixel row (input layer 0)")
            else:
                ax.bar(np.arange(dens.shape[-1]), dens[m, w])
                ax.set_xlabel("input pixel j (layer 0, pixel order)")
                ax.set_ylabel("kept fan-out / width")
    if im is not None:
        fig.colorbar(im, ax=axes, label="kept fraction of the pixel's edges to layer 1", shrink=0.8)
    fig.suptitle("input layer: per-pixel kept density (mean over trials)", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_spectrum(spectra: Any, *, labels: Sequence[str] | None = None, fits: bool = True, title: str | None = None,
                  path: str | Path | None = None):
    """Log-log eigenvalue spectrum (lambda_k against k) of one or more kernels.

    ``spectra``: a :class:`gntk_fast.spectral.SpectralMetrics`, a 1-D array of
    eigenvalues (any order; zeros are not drawn), or a list of those;
    ``labels`` names them. With ``fits`` each SpectralMetrics' power-law fit
    (alpha over its fit range) is drawn dashed.
    """
    items = spectra if isinstance(spectra, (list, tuple)) else [spectra]
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"labels must have {len(items)} entries; got {len(labels)}")
    fig, axes = new_figure(1, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    for i, item in enumerate(items):
        ev = np.asarray(getattr(item, "eigenvalues", item), dtype=np.float64).ravel()
        if ev.size == 0 or not np.all(np.isfinite(ev)):
            raise ValueError(f"spectra[{i}] must be a non-empty finite set of eigenvalues")
        ev = np.sort(ev)[::-1]
        k = np.arange(1, ev.size + 1)
        pos = ev > 0
        label = labels[i] if labels is not None else (None if len(items) == 1 else f"kernel {i}")
        line, = ax.loglog(k[pos], ev[pos], ".-", ms=3, lw=1, label=label)
        alpha = getattr(item, "alpha", None)
        fr = getattr(item, "fit_range", None)
        if fits and alpha is not None and fr is not None:
            lo, hi = fr
            kk = np.arange(lo, hi + 1, dtype=np.float64)
            c = np.exp(np.mean(np.log(ev[lo - 1:hi]) + alpha * np.log(kk)))
            ax.loglog(kk, c * kk ** (-alpha), "--", color=line.get_color(), lw=1,
                      label=f"fit alpha={alpha:.3g}" + (f" ({label})" if label else ""))
    ax.set_xlabel("k (eigenvalue index)")
    ax.set_ylabel("lambda_k")
    ax.set_title(title or "kernel eigenvalue spectrum")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return fig
