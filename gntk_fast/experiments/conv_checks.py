"""The paper's questions on convolutional nets (:class:`gntk_fast.ConvNet`).

* :func:`conv_graphon_convergence`: ConvNets of growing channel count C
  pruned at initialisation by each method (global scope); the pooled
  channel-SAS estimate (:func:`gntk_fast.graphon.sas`, ``taps="pooled"``: the
  kept fraction of each channel pair's taps, K x K blocks) of every hidden
  conv-to-conv layer, and its RMS distance over the K x K grid to the same
  trial's estimate at the widest C (the paper's Fig. 1 for conv nets).
* :func:`conv_kernel_convergence`: masks sampled per tap,
  ``M[o, i, a, b] ~ Bernoulli(W(u_o, v_i))`` with channel o of a C-channel
  layer at u_o = (o - 1/2)/C, from a constant graphon (0.5 everywhere) and a
  non-constant one (conv layers ``0.15 + 0.7 u v``, read-out ``0.3 + 0.6 v``);
  the relative Frobenius error of the finite net's eNTK (float64,
  ``trainable="mask"``) to :func:`gntk_fast.graphon_cntk` with
  ``input_masks="bernoulli"`` (the limit of nets whose input-layer masks are
  sampled), per C and seed (expected to fall like C^-1/2).
* :func:`conv_kernel_mean_convergence`: the same nets, many per C, and the
  error of their MEAN eNTK (which falls like 1/C, the finite-width bias, until
  it meets the sampling error of the mean) beside the per-net error (its
  fluctuation, like C^-1/2), against both input-layer treatments of
  :func:`gntk_fast.graphon_cntk` (``"bernoulli"`` and ``"mean"``).
* :func:`conv_random_scaling`: one dense ConvNet, randomly pruned (global
  scope, the same initial weights) at densities c; the ratio
  ``sum(Theta_c) / sum(Theta_1)`` of the eNTK (``trainable="mask"``: a conv
  net's eNTK is over its kept weights), and of the analytic Graphon CNTK of
  the constant graphon c in both conventions, with the fitted exponent of c
  (predicted: L + 1 for ``"mask"``, L for ``"all"``).

Each returns tidy rows (lists of dicts); the ``plot_*`` functions draw them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .._validation import MAX_DEPTH, MAX_WIDTH, check_size
from ._tables import loglog_slope
from .metrics import DENSITY, EXPONENT, PREDICTED_EXPONENT, PREDICTED_RATIO, RATIO, REL_DIST, RMS, TRAINABLE

__all__ = ["load_images", "conv_graphon_convergence", "conv_kernel_convergence", "conv_kernel_mean_convergence",
           "conv_random_scaling",
           "kernel_graphons", "sample_conv_masks", "plot_conv_convergence", "plot_conv_kernel_convergence",
           "plot_conv_random_scaling"]

_COLORS = {"random": "tab:gray", "magnitude": "tab:brown", "snip": "tab:blue", "grasp": "tab:green",
           "synflow": "tab:red"}


def _seed(*parts) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def load_images(data: str = "digits", n: int = 16, *, seed: int = 0, data_dir=None):
    """``n`` standardised images (n, C, H, W) in float64 and their labels."""
    from .. import data as gdata

    x, y = gdata.load(data, n=n, seed=seed, data_dir=data_dir, shape="image")
    return x.to(torch.float64), y


def _conv_graphon(u, v):
    return 0.15 + 0.7 * u * v


def _readout_graphon(u, v):
    return 0.3 + 0.6 * v + 0.0 * u


def kernel_graphons(kind: str, depth: int):
    """The graphons ``[W_1, ..., W_L, R]`` of the kernel-convergence check: "constant" (0.5 everywhere)
    or "non-constant" (conv layers ``0.15 + 0.7 u v``, read-out ``0.3 + 0.6 v``)."""
    if kind == "constant":
        return [0.5] * (depth + 1)
    if kind == "non-constant":
        return [_conv_graphon] * depth + [_readout_graphon]
    raise ValueError(f"kind must be 'constant' or 'non-constant'; got {kind!r}")


def _prob(g, n_out: int, n_in: int) -> np.ndarray:
    u = (np.arange(n_out) + 0.5) / n_out
    v = (np.arange(n_in) + 0.5) / n_in
    if callable(g):
        return np.clip(np.asarray(g(u[:, None], v[None, :]), dtype=np.float64) * np.ones((n_out, n_in)), 0, 1)
    return np.full((n_out, n_in), float(g))


def sample_conv_masks(net, graphons, seed: int) -> list[torch.Tensor]:
    """Masks of ``net`` (a ConvNet) sampled per tap: ``M[o, i, a, b] ~ Bernoulli(W(u_o, v_i))`` for conv layers,
    and for the read-out every weight of channel i (every pixel of it, for "flatten") ~ Bernoulli(R(u_c, v_i))."""
    rng = np.random.default_rng(seed)
    masks = []
    for g, m in zip(graphons[:-1], net.masks[:-1]):
        c_out, c_in, kh, kw = m.shape
        p = _prob(g, c_out, c_in)
        masks.append(torch.from_numpy(rng.random((c_out, c_in, kh, kw)) < p[:, :, None, None]))
    n_out, n_in = net.masks[-1].shape
    c_last = net.widths[-2]
    p = np.repeat(_prob(graphons[-1], n_out, c_last), n_in // c_last, axis=1)  # (channel, pixel) order
    masks.append(torch.from_numpy(rng.random((n_out, n_in)) < p))
    return masks


def conv_graphon_convergence(methods: Sequence[str], channels: Sequence[int], *, depth: int = 3,
                             sparsity: float = 0.9, trials: int = 1, K: int = 8, data: str = "digits",
                             data_dir=None, n_data: int = 64, seed: int = 0, progress: bool | None = None):
    """RMS distance of each hidden conv layer's pooled channel-SAS estimate to the widest channel count's.

    Returns rows ``{method, channels, layer, trial, rms, density}`` (layer l = 2..L: the conv layer
    from l - 1 to l; rms 0 at the widest C, the reference).
    """
    from tqdm.auto import tqdm

    from ..graphon import sas
    from ..models import ConvNet
    from ..pruning import prune

    channels = sorted({check_size("channels", c, MAX_WIDTH) for c in channels})
    depth = check_size("depth", depth, MAX_DEPTH)
    if depth < 2:
        raise ValueError(f"depth must be >= 2 (a hidden conv-to-conv layer); got {depth}")
    if K > channels[0]:
        raise ValueError(f"K must be at most the smallest channel count {channels[0]}; got {K}")
    x, y = load_images(data, n_data, seed=seed, data_dir=data_dir)
    x = x.to(torch.float32)
    rows = []
    show = True if progress is None else bool(progress)
    with tqdm(total=len(methods) * trials * len(channels), desc="conv graphon convergence", disable=not show) as bar:
        for mi, method in enumerate(methods):
            for t in range(trials):
                est = {}
                for c in channels:
                    net = ConvNet(x.shape[1], c, depth, 10, image_size=tuple(x.shape[2:]), seed=_seed(seed, mi, t, c))
                    prune(net, method, sparsity, data=(x, y), seed=_seed(seed, t, c), progress=False)
                    for layer in range(2, depth + 1):
                        mask = net.masks[layer - 1].numpy()
                        est[c, layer] = (sas(mask, K=K, taps="pooled").H, float(mask.mean()))
                    bar.update(1)
                for (c, layer), (H, dens) in est.items():
                    ref = est[channels[-1], layer][0]
                    rows.append({"method": method, "channels": c, "layer": layer, "trial": t,
                                 RMS: float(np.sqrt(np.mean((H - ref) ** 2))), DENSITY: dens})
    return rows


def conv_kernel_convergence(channels: Sequence[int], seeds: int = 2, *, depth: int = 2, K: int = 8,
                            readouts: Sequence[str] = ("flatten",), n_images: int = 8, gap_images: int = 4,
                            data: str = "digits", data_dir=None, seed: int = 0, progress: bool | None = None,
                            input_masks: str = "bernoulli"):
    """Relative Frobenius error of graphon-sampled ConvNets' eNTK to the analytic Graphon CNTK.

    The target is ``graphon_cntk(..., input_masks="bernoulli")`` by default: the input layer's fan-in
    (C_0 k^2) stays finite, so its sampled masks are averaged exactly (docs/graphon-cntk.md section 3;
    ``"mean"`` gives the kernel these nets do not approach). ``K = 8``
    Gauss-Legendre nodes already integrate these polynomial graphons to 1e-14.

    Returns rows ``{graphon, readout, channels, seed, n_images, rel_dist}``.
    """
    from tqdm.auto import tqdm

    from ..models import ConvNet
    from ..ntk import empirical_ntk, graphon_cntk

    channels = sorted({check_size("channels", c, MAX_WIDTH) for c in channels})
    depth = check_size("depth", depth, MAX_DEPTH)
    seeds = check_size("seeds", seeds, 1000)
    x_all, _ = load_images(data, max(n_images, gap_images), seed=seed, data_dir=data_dir)
    rows = []
    show = True if progress is None else bool(progress)
    kinds = ("constant", "non-constant")
    with tqdm(total=len(kinds) * len(readouts) * len(channels) * seeds, desc="conv kernel convergence",
              disable=not show) as bar:
        for kind in kinds:
            gs = kernel_graphons(kind, depth)
            for ro in readouts:
                x = x_all[: (gap_images if ro == "gap" else n_images)]
                target = graphon_cntk(gs, x, readout=ro, K=K, input_masks=input_masks, progress=False)
                for c in channels:
                    for s in range(seeds):
                        net = ConvNet(x.shape[1], c, depth, 1, readout=ro, image_size=tuple(x.shape[2:]),
                                      seed=_seed(seed, c, s), dtype=torch.float64)
                        net.set_masks(sample_conv_masks(net, gs, _seed(seed, 7, c, s)))
                        k = empirical_ntk(net, x, trainable="mask")
                        rows.append({"graphon": kind, "readout": ro, "channels": c, "seed": s, "n_images": len(x),
                                     REL_DIST: float(torch.linalg.norm(k - target) / torch.linalg.norm(target))})
                        bar.update(1)
    return rows


def conv_kernel_mean_convergence(channels: Sequence[int] = (64, 128, 256, 512), nets: int = 20, *, depth: int = 2,
                                 K: int = 8, readout: str = "flatten", padding: str = "circular", n_images: int = 6,
                                 kinds: Sequence[str] = ("constant", "non-constant"), data: str = "digits",
                                 data_dir=None, seed: int = 0, progress: bool | None = None):
    """Mean and per-net eNTK of graphon-sampled ConvNets against the Graphon CNTK, per channel count.

    For each graphon kind and C, ``nets`` ConvNets (float64, independent weights and per-tap masks from
    :func:`sample_conv_masks`) and their eNTKs Theta_1..Theta_n (``trainable="mask"``), against the targets
    T = ``graphon_cntk(..., input_masks=im)`` for im = "bernoulli" and "mean":

    * ``err_mean`` = ||mean_i Theta_i - T|| / ||T||;
    * ``err_per_net`` (mean over nets) and ``err_per_net_sd``: ||Theta_i - T|| / ||T||;
    * ``se_mean`` = s / sqrt(n) / ||T||, s^2 = sum_i ||Theta_i - mean||^2 / (n - 1): the sampling error of
      the mean (what ``err_mean`` would be with no bias);
    * ``bias`` = sqrt(|err_mean^2 - se_mean^2|), signed like err_mean^2 - se_mean^2: the estimated
      ||E Theta - T|| / ||T||.

    Returns rows ``{graphon, readout, padding, input_masks, channels, nets, n_images, err_mean, se_mean, bias,
    err_per_net, err_per_net_sd, sum_ratio}`` (sum_ratio = sum of the mean eNTK's entries over T's).
    """
    from tqdm.auto import tqdm

    from ..models import ConvNet
    from ..ntk import empirical_ntk, graphon_cntk

    channels = sorted({check_size("channels", c, MAX_WIDTH) for c in channels})
    depth = check_size("depth", depth, MAX_DEPTH)
    nets = check_size("nets", nets, 100_000)
    if nets < 2:
        raise ValueError(f"nets must be at least 2 (the spread of the eNTK over nets is measured); got {nets}")
    for k in kinds:
        kernel_graphons(k, depth)  # validates the kind
    x, _ = load_images(data, n_images, seed=seed, data_dir=data_dir)
    rows = []
    show = True if progress is None else bool(progress)
    with tqdm(total=len(kinds) * len(channels) * nets, desc="conv eNTK mean convergence", disable=not show) as bar:
        for kind in kinds:
            gs = kernel_graphons(kind, depth)
            targets = {im: graphon_cntk(gs, x, readout=readout, padding=padding, K=K, input_masks=im,
                                        progress=False) for im in ("bernoulli", "mean")}
            for c in channels:
                ks = []
                for s in range(nets):
                    net = ConvNet(x.shape[1], c, depth, 1, readout=readout, padding=padding,
                                  image_size=tuple(x.shape[2:]), seed=_seed(seed, 11, c, s), dtype=torch.float64)
                    net.set_masks(sample_conv_masks(net, gs, _seed(seed, 12, c, s)))
                    ks.append(empirical_ntk(net, x, trainable="mask"))
                    bar.update(1)
                ks = torch.stack(ks)
                mean = ks.mean(0)
                s2 = float(((ks - mean) ** 2).sum()) / (nets - 1)
                for im, t in targets.items():
                    nt = float(torch.linalg.norm(t))
                    per = [float(torch.linalg.norm(k - t)) / nt for k in ks]
                    err = float(torch.linalg.norm(mean - t)) / nt
                    se = float(np.sqrt(s2 / nets)) / nt
                    d = err**2 - se**2
                    rows.append({"graphon": kind, "readout": readout, "padding": padding, "input_masks": im,
                                 "channels": c, "nets": nets, "n_images": len(x), "err_mean": err, "se_mean": se,
                                 "bias": float(np.sign(d) * np.sqrt(abs(d))), "err_per_net": float(np.mean(per)),
                                 "err_per_net_sd": float(np.std(per, ddof=1)),
                                 "sum_ratio": float(mean.sum() / t.sum())})
    return rows


def conv_random_scaling(densities: Sequence[float] = (1.0, 0.5, 0.25, 0.1), *, channels: int = 128, depth: int = 2,
                        seeds: int = 2, n_images: int = 8, readout: str = "flatten", data: str = "digits",
                        data_dir=None, seed: int = 0, progress: bool | None = None):
    """Random pruning's kernel scaling for conv nets: the eNTK (``trainable="mask"``) and the analytic kernel
    (both conventions).

    Returns ``(rows, fit)``: rows ``{trainable, kernel, density, seed, ratio, predicted_ratio}`` and per
    (trainable, kernel) the fitted ``exponent`` (slope of log mean ratio vs log c) and the ``predicted_exponent``.
    """
    from tqdm.auto import tqdm

    from ..models import ConvNet
    from ..ntk import empirical_ntk, graphon_cntk
    from ..pruning import prune

    channels = check_size("channels", channels, MAX_WIDTH)
    depth = check_size("depth", depth, MAX_DEPTH)
    seeds = check_size("seeds", seeds, 1000)
    dens = sorted({float(c) for c in densities} | {1.0}, reverse=True)
    if any(not (0 < c <= 1) for c in dens):
        raise ValueError(f"densities must lie in (0, 1]; got {list(densities)}")
    x, _ = load_images(data, n_images, seed=seed, data_dir=data_dir)
    rows = []
    show = True if progress is None else bool(progress)
    kw = dict(readout=readout, image_size=tuple(x.shape[2:]), dtype=torch.float64)
    with tqdm(total=seeds * len(dens), desc="conv random-pruning scaling", disable=not show) as bar:
        for conv in ("mask", "all"):  # the analytic kernel of the constant graphon c, both conventions
            dense_an = graphon_cntk([1.0] * (depth + 1), x, readout=readout, trainable=conv, progress=False)
            for c in dens:
                an = graphon_cntk([c] * (depth + 1), x, readout=readout, trainable=conv, progress=False)
                rows.append({TRAINABLE: conv, "kernel": "analytic", DENSITY: c, "seed": 0,
                             RATIO: float(an.sum() / dense_an.sum()),
                             PREDICTED_RATIO: c ** (depth + 1) if conv == "mask" else c**depth})
        for s in range(seeds):  # the eNTK of a conv net is over its kept weights: trainable="mask" only
            base = ConvNet(x.shape[1], channels, depth, 1, seed=_seed(seed, s), **kw)
            k_dense = empirical_ntk(base, x, trainable="mask")
            for c in dens:
                if c == 1.0:
                    k = k_dense
                else:
                    m = ConvNet(x.shape[1], channels, depth, 1, seed=0, **kw)
                    m.load_state_dict(base.state_dict())
                    prune(m, "random", 1.0 - c, seed=_seed(seed, s, round(1e6 * c)), progress=False)
                    k = empirical_ntk(m, x, trainable="mask")
                rows.append({TRAINABLE: "mask", "kernel": "eNTK", DENSITY: c, "seed": s,
                             RATIO: float(k.sum() / k_dense.sum()), PREDICTED_RATIO: c ** (depth + 1)})
                bar.update(1)
    fit = []
    for conv in ("mask", "all"):
        for kern in ("eNTK", "analytic"):
            sel = [r for r in rows if r[TRAINABLE] == conv and r["kernel"] == kern]
            if not sel:
                continue
            cs = sorted({r[DENSITY] for r in sel})
            mean = [float(np.mean([r[RATIO] for r in sel if r[DENSITY] == c])) for c in cs]
            fit.append({TRAINABLE: conv, "kernel": kern, EXPONENT: loglog_slope(cs, mean),
                        PREDICTED_EXPONENT: depth + 1 if conv == "mask" else depth})
    return rows, fit


# ------------------------------------------------------------------- figures
def plot_conv_convergence(rows: Sequence[dict], *, path: str | Path | None = None):
    """Distance of the pooled channel-SAS estimate to the widest C's against C (log-log), one line per method,
    mean over hidden layers and trials (the widest C, distance 0, is left out)."""
    from ..plots import new_figure, save_figure

    fig, axes = new_figure(1, 1, size=(4.6, 3.4))
    ax = axes[0][0]
    for m in [m for m in _COLORS if any(r["method"] == m for r in rows)]:
        sel = [r for r in rows if r["method"] == m]
        widest = max(r["channels"] for r in sel)
        cs = sorted({r["channels"] for r in sel if r["channels"] < widest})
        mu = [np.mean([r[RMS] for r in sel if r["channels"] == c]) for c in cs]
        ax.plot(cs, mu, marker="o", ms=4, color=_COLORS[m], label=m)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("channels C")
    ax.set_ylabel(f"RMS distance to C={max(r['channels'] for r in rows)} estimate")
    ax.set_title("conv masks: pooled channel-SAS convergence", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save_figure(fig, path)
    return fig


def plot_conv_kernel_convergence(rows: Sequence[dict], *, path: str | Path | None = None):
    """Relative error of the eNTK to the Graphon CNTK against C (log-log), one panel per graphon
    (shared axes), one line per readout, with a C^-1/2 guide."""
    from ..plots import new_figure, save_figure

    kinds = [k for k in ("constant", "non-constant") if any(r["graphon"] == k for r in rows)]
    fig, axes = new_figure(1, len(kinds), size=(3.6 * len(kinds) + 0.6, 3.4))
    lo = min(r[REL_DIST] for r in rows)
    hi = max(r[REL_DIST] for r in rows)
    for ax, kind in zip(axes[0], kinds):
        for i, ro in enumerate(sorted({r["readout"] for r in rows if r["graphon"] == kind})):
            sel = [r for r in rows if r["graphon"] == kind and r["readout"] == ro]
            cs = sorted({r["channels"] for r in sel})
            mu = [np.mean([r[REL_DIST] for r in sel if r["channels"] == c]) for c in cs]
            ax.scatter([r["channels"] for r in sel], [r[REL_DIST] for r in sel], s=10, color=f"C{i}", alpha=0.5)
            ax.plot(cs, mu, marker="o", ms=4, color=f"C{i}", label=f"{ro} (N={sel[0]['n_images']})")
            ax.plot(cs, mu[0] * (np.asarray(cs) / cs[0]) ** -0.5, "k--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylim(lo / 1.5, hi * 1.5)
        ax.set_xlabel("channels C")
        ax.set_title(f"{kind} graphon", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("||eNTK - Graphon CNTK|| / ||Graphon CNTK||")
    fig.suptitle("graphon-sampled conv nets -> Graphon CNTK (dashed: C^-1/2)", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_conv_random_scaling(rows: Sequence[dict], depth: int, *, path: str | Path | None = None):
    """Kernel ratio to dense vs density c for randomly pruned conv nets, both conventions (shared axes)."""
    from .figures import plot_random_scaling

    return plot_random_scaling(rows, depth, path=path, other_law=False, floor_ylim=True,
                               title="random pruning scales the conv NTK (L = {depth} conv layers)")
