"""Kernel-level checks of the paper: finite nets converge to the analytic Graphon
NTK (spec graphon-ntk.md section 4, fact 3), and random pruning's scaling law
(the paper's Appendix B; spec fact 2), each on the eNTK and the analytic kernel.

* :func:`kernel_convergence`: masks ``M ~ Bernoulli(W(u_i, v_j))`` sampled
  from the spec's non-constant graphons (hidden ``0.15 + 0.7 u v``, input
  ``0.15 + 0.7 u (j - 1/2)/d``, read-out ``0.3 + 0.6 v``), d = 32, L = 3,
  Gaussian inputs of norm sqrt(d), float64. Per width the relative Frobenius
  error of the finite net's eNTK to the analytic kernel, averaged over seeds,
  and the log-log slope against width (the spec's expectation: about -1/2).
* :func:`random_scaling`: one wide dense net (``gntk_fast.MLP``, NTK
  parameterisation), randomly pruned at densities c (global scope, the same
  initial weights), eNTK in both conventions on data inputs; the ratio to
  the dense eNTK (``sum(Theta_c) / sum(Theta_1)`` over all pairs) against c,
  the fitted exponent, and the analytic ratio of the constant graphon c
  (``c^(L+1)`` for ``"mask"``, ``c^L`` for ``"all"``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .._validation import MAX_DEPTH, MAX_WIDTH, check_size
from ._tables import loglog_slope

__all__ = ["kernel_convergence", "random_scaling", "spec_graphons"]


def spec_graphons(d: int):
    """The spec's test graphons [input, hidden, hidden, read-out] for L = 3."""
    from ..graphon.objects import FunctionGraphon

    g_in = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v, name="0.15+0.7u(j-1/2)/d")
    g_hid = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v, name="0.15+0.7uv")
    g_out = FunctionGraphon(lambda u, v: 0.3 + 0.6 * v + 0.0 * u, name="0.3+0.6v")
    return [g_in, g_hid, g_hid, g_out]


def kernel_convergence(widths: Sequence[int] = (128, 512, 2048), seeds: int = 3, *, d: int = 32, n_inputs: int = 6,
                       K: int = 512, trainable: str = "mask", seed: int = 0, progress: bool | None = None):
    """Relative error of finite graphon-sampled nets' eNTK to the analytic kernel.

    Returns ``(rows, summary)``: rows ``{width, seed, rel_error}`` and summary
    ``{slope, widths, mean_error}`` (slope of log mean error vs log width).
    """
    from tqdm.auto import tqdm

    from ..models import MLP
    from ..ntk import empirical_ntk, graphon_ntk

    widths = sorted(check_size("widths", w, MAX_WIDTH) for w in widths)
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
                rows.append({"width": n, "seed": s, "trainable": trainable,
                             "rel_error": float(torch.linalg.norm(k - target) / torch.linalg.norm(target))})
                bar.update(1)
    means = [float(np.mean([r["rel_error"] for r in rows if r["width"] == n])) for n in widths]
    return rows, {"slope": loglog_slope(widths, means), "widths": widths, "mean_error": means,
                  "trainable": trainable}


def random_scaling(densities: Sequence[float] = (1.0, 0.5, 0.25, 0.1), *, width: int = 1024, depth: int = 3,
                   x: torch.Tensor | None = None, seeds: int = 2, seed: int = 0, progress: bool | None = None):
    """Random pruning's kernel scaling in both conventions (eNTK and analytic).

    Returns ``(rows, summary)``: rows ``{convention, kernel, density, seed,
    ratio, predicted}`` and per (convention, kernel) the fitted exponent
    ``-slope`` of log ratio vs log c and the predicted exponent (L + 1 or L).
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
                    rows.append({"convention": conv, "kernel": "eNTK", "density": c, "seed": s,
                                 "ratio": float(k.sum() / k_dense.sum()), "predicted": pred})
                    if s == 0:
                        an = graphon_ntk([c] * (depth + 1), x, trainable=conv)
                        rows.append({"convention": conv, "kernel": "analytic", "density": c, "seed": 0,
                                     "ratio": float(an.sum() / dense_an.sum()), "predicted": pred})
                    bar.update(1)
    summary = []
    for conv in ("mask", "all"):
        for kern in ("eNTK", "analytic"):
            sel = [r for r in rows if r["convention"] == conv and r["kernel"] == kern]
            cs = sorted({r["density"] for r in sel})
            mean = [float(np.mean([r["ratio"] for r in sel if r["density"] == c])) for c in cs]
            slope = loglog_slope(cs, mean)
            summary.append({"convention": conv, "kernel": kern, "exponent": slope,
                            "predicted_exponent": depth + 1 if conv == "mask" else depth})
    return rows, summary
