"""Kernel-level checks of the paper: finite nets converge to the analytic Graphon
NTK (docs/graphon-ntk.md section 4, fact 3), and random pruning's scaling law
(the paper's Appendix B; docs/graphon-ntk.md section 4, fact 2), each on the eNTK and the analytic kernel.

* :func:`kernel_convergence`: masks ``M ~ Bernoulli(W(u_i, v_j))`` sampled
  from the non-constant test graphons (hidden ``0.15 + 0.7 u v``, input
  ``0.15 + 0.7 u (j - 1/2)/d``, read-out ``0.3 + 0.6 v``), d = 32, L = 3,
  Gaussian inputs of norm sqrt(d), float64. Per width the relative Frobenius
  error of the finite net's eNTK to the analytic kernel, averaged over seeds,
  and the log-log slope against width (expected: about -1/2).
* :func:`random_scaling`: one wide dense net (``gntk_fast.MLP``, NTK
  parameterisation), randomly pruned at densities c (global scope, the same
  initial weights), eNTK in both conventions on data inputs; the ratio to
  the dense eNTK (``sum(Theta_c) / sum(Theta_1)`` over all pairs) against c,
  the fitted exponent, and the analytic ratio of the constant graphon c
  (``c^(L+1)`` for ``"mask"``, ``c^L`` for ``"all"``).
* :func:`pruned_kernel_convergence`: for nets actually pruned by a method,
  the distance of the analytic kernels of their graphons (mask graphons, and
  with the variance graphons of the kept weights) to their eNTK, by width.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .._validation import MAX_DEPTH, MAX_WIDTH, check_size, check_sizes
from ._tables import loglog_slope
from .metrics import (DENSITY, EXPONENT, MEAN_REL_DIST, PREDICTED_EXPONENT, PREDICTED_RATIO, RATIO, REL_DIST,
                      SLOPE_REL_DIST, TRAINABLE)

__all__ = ["kernel_convergence", "random_scaling", "pruned_kernel_convergence", "spec_graphons"]


def spec_graphons(d: int):
    """The test graphons of docs/graphon-ntk.md section 4 [input, hidden, hidden, read-out] for L = 3."""
    from ..graphon.objects import FunctionGraphon

    g_in = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v, name="0.15+0.7u(j-1/2)/d")
    g_hid = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v, name="0.15+0.7uv")
    g_out = FunctionGraphon(lambda u, v: 0.3 + 0.6 * v + 0.0 * u, name="0.3+0.6v")
    return [g_in, g_hid, g_hid, g_out]


def kernel_convergence(widths: Sequence[int] = (128, 512, 2048), seeds: int = 3, *, d: int = 32, n_inputs: int = 6,
                       K: int = 512, trainable: str = "mask", seed: int = 0, progress: bool | None = None):
    """Relative error of finite graphon-sampled nets' eNTK to the analytic kernel.

    Returns ``(rows, summary)``: rows ``{width, seed, trainable, rel_dist}`` and summary
    ``{slope_rel_dist, widths, mean_rel_dist, trainable}`` (slope of log mean distance vs log width).
    """
    from tqdm.auto import tqdm

    from ..models import MLP
    from ..ntk import empirical_ntk, graphon_ntk

    widths = check_sizes("widths", widths, MAX_WIDTH)
    seeds = check_size("seeds", seeds, 1000)
    gs = spec_graphons(d)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_inputs, d, generator=g, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * d**0.5
    target = graphon_ntk(gs, x, K=K, trainable=trainable)
    rows = []
    show = True if progress is None else bool(progress)
    with tqdm(total=len(widths) * seeds, desc="kernel convergence", disable=not show) as bar:
        for n in widths:
            for s in range(seeds):
                model = MLP(d, n, 3, seed=int(np.random.SeedSequence([seed, n, s]).generate_state(1)[0]),
                            dtype=torch.float64)
                masks = []
                for li, layer in enumerate(model.layers):
                    n_out, n_in = layer.weight.shape
                    masks.append(torch.from_numpy(gs[li].sample(n_out, n_in, seed=1000 * s + 10 * li + n)))
                model.set_masks(masks)
                k = empirical_ntk(model, x, trainable=trainable)
                rows.append({"width": n, "seed": s, TRAINABLE: trainable,
                             REL_DIST: float(torch.linalg.norm(k - target) / torch.linalg.norm(target))})
                bar.update(1)
    means = [float(np.mean([r[REL_DIST] for r in rows if r["width"] == n])) for n in widths]
    return rows, {SLOPE_REL_DIST: loglog_slope(widths, means), "widths": widths, MEAN_REL_DIST: means,
                  TRAINABLE: trainable}


def random_scaling(densities: Sequence[float] = (1.0, 0.5, 0.25, 0.1), *, width: int = 1024, depth: int = 3,
                   x: torch.Tensor | None = None, seeds: int = 2, seed: int = 0, progress: bool | None = None):
    """Random pruning's kernel scaling in both conventions (eNTK and analytic).

    Returns ``(rows, summary)``: rows ``{trainable, kernel, density, seed,
    ratio, predicted_ratio}`` and per (trainable, kernel) the fitted ``exponent``
    (the slope of log ratio vs log c) and the ``predicted_exponent`` (L + 1 or L).
    """
    from tqdm.auto import tqdm

    from ..models import MLP
    from ..ntk import empirical_ntk, graphon_ntk
    from ..pruning import prune

    width = check_size("width", width, MAX_WIDTH)
    depth = check_size("depth", depth, MAX_DEPTH)
    seeds = check_size("seeds", seeds, 1000)
    dens = sorted({float(c) for c in densities} | {1.0}, reverse=True)
    if any(not (0 < c <= 1) for c in dens):
        raise ValueError(f"densities must lie in (0, 1]; got {list(densities)}")
    if x is None:
        from .. import data as gdata

        x, _ = gdata.load("digits", n=16, seed=seed)
    x = x.to(torch.float64)
    d = x.shape[1]
    rows = []
    show = True if progress is None else bool(progress)
    with tqdm(total=len(dens) * seeds * 2, desc="random-pruning scaling", disable=not show) as bar:
        for conv in ("mask", "all"):
            dense_an = graphon_ntk([1.0] * (depth + 1), x, trainable=conv)
            for s in range(seeds):
                base = MLP(d, width, depth, seed=int(np.random.SeedSequence([seed, s]).generate_state(1)[0]),
                           dtype=torch.float64)
                k_dense = empirical_ntk(base, x, trainable=conv)
                for c in dens:
                    pred = c ** (depth + 1) if conv == "mask" else c**depth
                    if c == 1.0:
                        k = k_dense
                    else:
                        m = MLP(d, width, depth, seed=0, dtype=torch.float64)
                        m.load_state_dict(base.state_dict())
                        prune(m, "random", 1.0 - c, seed=s, progress=False)
                        k = empirical_ntk(m, x, trainable=conv)
                    rows.append({TRAINABLE: conv, "kernel": "eNTK", DENSITY: c, "seed": s,
                                 RATIO: float(k.sum() / k_dense.sum()), PREDICTED_RATIO: pred})
                    if s == 0:
                        an = graphon_ntk([c] * (depth + 1), x, trainable=conv)
                        rows.append({TRAINABLE: conv, "kernel": "analytic", DENSITY: c, "seed": 0,
                                     RATIO: float(an.sum() / dense_an.sum()), PREDICTED_RATIO: pred})
                    bar.update(1)
    summary = []
    for conv in ("mask", "all"):
        for kern in ("eNTK", "analytic"):
            sel = [r for r in rows if r[TRAINABLE] == conv and r["kernel"] == kern]
            cs = sorted({r[DENSITY] for r in sel})
            mean = [float(np.mean([r[RATIO] for r in sel if r[DENSITY] == c])) for c in cs]
            slope = loglog_slope(cs, mean)
            summary.append({TRAINABLE: conv, "kernel": kern, EXPONENT: slope,
                            PREDICTED_EXPONENT: depth + 1 if conv == "mask" else depth})
    return rows, summary


def pruned_kernel_convergence(methods: Sequence[str] = ("snip", "synflow"), widths: Sequence[int] = (128, 256, 512),
                              *, sparsity: float = 0.8, depth: int = 3, seeds: int = 2, K: int = 32,
                              data: str = "digits", data_dir=None, n_inputs: int = 48, seed: int = 0,
                              progress: bool | None = None):
    """How far the analytic kernels of a pruned net's graphons are from its eNTK, by width.

    For each method, width and seed a ``gntk_fast.MLP`` (``depth`` hidden layers,
    NTK parameterisation) is pruned at initialisation on the data's pruning batch
    and three kernels of ``n_inputs`` data inputs are compared: (a) its eNTK,
    (c) the analytic kernel of its network graphon (K blocks per hidden layer)
    and (d) the same with the variance graphons ``E[w^2 m]`` of its weights.
    Rows ``{method, width, seed, kernel, rel_dist}`` (relative Frobenius distance
    to (a)); summary per (method, kernel): mean distance per width and the
    log-log slope against width (about -1/2 if the kernel is the limit, about 0
    if it is not).
    """
    from tqdm.auto import tqdm

    from .. import data as gdata
    from ..models import MLP
    from ..ntk import empirical_ntk, graphon_ntk
    from ..pai.network import network_graphon
    from ..pruning import prune

    widths = check_sizes("widths", widths, MAX_WIDTH)
    seeds = check_size("seeds", seeds, 1000)
    x, _ = gdata.load(data, split="all" if data == "digits" else "test", n=n_inputs, seed=seed, data_dir=data_dir)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = gdata.pruning_batch(data, 10, data_dir=data_dir, seed=seed,
                                    split="all" if data == "digits" else None)
    classes = gdata.num_classes(data)
    x64 = x.to(torch.float64)
    rows = []
    show = True if progress is None else bool(progress)
    with tqdm(total=len(methods) * len(widths) * seeds, desc="pruned-net kernels vs width", disable=not show) as bar:
        for m in methods:
            for n in widths:
                for s in range(seeds):
                    s_init = int(np.random.SeedSequence([seed, n, s]).generate_state(1)[0])
                    model = MLP(x.shape[1], n, depth, classes, seed=s_init, dtype=torch.float64)
                    prune(model, m, sparsity, data=batch, seed=s_init, progress=False)
                    a = empirical_ntk(model, x64)
                    ng = network_graphon([t.cpu().numpy() for t in model.masks], min(K, n),
                                         weights=[w.detach().cpu().numpy() for w in model.weights])
                    kc = graphon_ntk(ng, x64, n_outputs=classes)
                    kd = graphon_ntk(ng, x64, n_outputs=classes, variance_graphons=ng.variance_graphons)
                    for name, k in (("gntk_mask", kc), ("gntk_variance", kd)):
                        rows.append({"method": m, "width": n, "seed": s, "kernel": name,
                                     REL_DIST: float(torch.linalg.norm(k - a) / torch.linalg.norm(a))})
                    bar.update(1)
    summary = []
    for m in methods:
        for name in ("gntk_mask", "gntk_variance"):
            mean = [float(np.mean([r[REL_DIST] for r in rows if r["method"] == m and r["kernel"] == name
                                   and r["width"] == n])) for n in widths]
            summary.append({"method": m, "kernel": name, "widths": list(widths), MEAN_REL_DIST: mean,
                            SLOPE_REL_DIST: loglog_slope(widths, mean)})
    return rows, summary
