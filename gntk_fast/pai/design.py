"""Graphon design: step graphons per layer at a fixed density, optimised through the analytic Graphon NTK.

docs/limit-graphons.md section 5. The network has L hidden layers (infinite
width), input dimension d and a read-out shared by every output. Each layer
gets a parametric step graphon at density ``d_l``:

* input layer: ``K x d`` blocks (rows: K equal blocks of the first hidden
  layer; columns: the d input coordinates in their own order);
* hidden layers: ``K x K`` equal blocks;
* read-out: ``1 x K`` (one row, used for every output);

with values ``sigmoid(theta + s)``: free logits ``theta`` and one shift ``s``
per layer solved (Newton's method, then one differentiable Newton step, so
the gradient is the implicit one) such that the layer's mean value - its
density - is exactly ``d_l``. The ReLU Graphon NTK (``trainable="mask"``,
docs/graphon-ntk.md section 3) of a data batch is computed in torch from these
values (all pairs at once; :func:`design_kernel`, checked against
:func:`gntk_fast.graphon_ntk`) and Adam minimises the chosen objective:

* ``"alignment"``: minus the kernel-target alignment
  ``<Theta, Y Y^T>_F / (||Theta||_F ||Y Y^T||_F)`` with Y the centred one-hot labels;
* ``"loss"``: the linearised squared loss after ``T`` steps of gradient
  descent with learning rate ``kernel_lr`` (gradient flow),
  ``(1/2N) ||exp(-kernel_lr T Theta) Y||_F^2`` with Y the one-hot labels
  (the convention of :func:`gntk_fast.predicted_loss`);
* ``"generalisation"``: the NTK generalisation measure of Arora et al.
  (2019), ``sqrt(2 tr(Y^T Theta^{-1} Y) / N)`` (Y one-hot; a relative jitter
  of 1e-10 x mean diagonal is added to Theta before the solve).

The arc-cosine dual is evaluated with the correlation clipped to
[-1 + 1e-7, 1 - 1e-7] so that its gradient stays finite (the angle's
derivative is infinite at correlation 1); the pairs (x, x) use the exact
values S = q/2, Sd = 1/2, so only two distinct inputs with correlation
beyond 1 - 1e-7 are affected (tested against :func:`gntk_fast.graphon_ntk`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._progress import check_progress, progress_bar
from .._validation import (
    MAX_BLOCKS,
    MAX_DEPTH,
    MAX_STEPS,
    as_float_tensor,
    check_choice,
    check_float,
    check_int,
    check_memory,
    check_seed,
    check_xy,
)

__all__ = ["DesignResult", "design", "design_kernel", "OBJECTIVES", "step_values"]

OBJECTIVES = ("alignment", "loss", "generalisation")
_CLIP = 1e-7


@dataclass
class DesignResult:
    """The designed graphons and the optimisation's record.

    graphons : list of L + 1 graphons ``[InputGraphon (K, d), StepGraphon (K, K)..., StepGraphon (1, K)]``,
        usable by :func:`gntk_fast.graphon_ntk` and ``gntk_fast.prune(..., "graphon", graphons=...)``.
    history : (steps + 1,) objective value before each Adam step and at the end (the value minimised:
        minus the alignment for ``"alignment"``).
    initial, final : the objective at the start (every graphon constant at its density) and at the end.
    objective, densities, config : what was asked.
    """

    graphons: list
    history: np.ndarray
    initial: float
    final: float
    objective: str
    densities: list[float]
    config: dict[str, Any] = field(default_factory=dict)


def _relu_dual(q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor):
    """ReLU's arc-cosine dual ``(S, Sd)`` with a gradient-safe clipped correlation."""
    prod = q11 * q22
    live = prod > 1e-200  # a node with (numerically) no input signal: S = 0, with a zero gradient
    nrm = torch.sqrt(torch.where(live, prod, torch.ones_like(prod)))
    rho = torch.clamp(q12 / nrm, -1 + _CLIP, 1 - _CLIP)
    th = torch.arccos(rho)
    S = torch.where(live, nrm * (torch.sin(th) + (math.pi - th) * rho) / (2 * math.pi), torch.zeros_like(nrm))
    Sd = (math.pi - th) / (2 * math.pi)
    return S, Sd


def design_kernel(values: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """The ReLU Graphon NTK (``trainable="mask"``, one output) of uniform-block step graphons, all pairs.

    Parameters
    ----------
    values : ``[A (K_1, d), B_2 (K_2, K_1), ..., B_L (K_L, K_{L-1}), R (1, K_L)]`` block values
        (equal blocks on every hidden layer, the input coordinates in order).
    X : (N, d) inputs.

    Returns the (N, N) kernel, differentiable with respect to ``values``.
    """
    A, Bs, R = values[0], values[1:-1], values[-1]
    N, d = X.shape
    w = [torch.full((v.shape[0],), 1.0 / v.shape[0], dtype=X.dtype) for v in [A, *Bs]]
    s = torch.einsum("ik,jk,ak->ija", X, X, A) / d  # (N, N, K_1)
    pres, dots = [], []
    L = len(w)
    eye = torch.eye(N, dtype=torch.bool)[:, :, None]
    for l in range(L):
        diag = torch.diagonal(s, dim1=0, dim2=1).T  # (N, K)
        S, Sd = _relu_dual(diag[:, None, :], diag[None, :, :], s)
        # the pairs (x, x) exactly: S = q / 2, Sd = 1 / 2
        S = torch.where(eye, 0.5 * s, S)
        Sd = torch.where(eye, torch.full_like(Sd, 0.5), Sd)
        pres.append(s)
        dots.append(Sd)
        if l + 1 < L:
            s = torch.einsum("ijb,ab->ija", S * w[l], Bs[l])
        else:
            nngp = torch.einsum("ijb,b->ij", S * w[l], R.sum(0))
    G = dots[-1] * R.sum(0)
    theta = nngp + torch.einsum("ija,a->ij", G * pres[-1], w[-1])
    for l in range(L - 2, -1, -1):
        G = dots[l] * torch.einsum("ijb,ba->ija", G * w[l + 1], Bs[l])
        theta = theta + torch.einsum("ija,a->ij", G * pres[l], w[l])
    return 0.5 * (theta + theta.T)


def step_values(logits: torch.Tensor, density: float, iterations: int = 200) -> torch.Tensor:
    """``sigmoid(logits + s)`` with the shift s solved so the mean is exactly ``density``.

    s is found without gradient by Newton's method safeguarded by bisection
    (the mean is increasing in s; the bracket [-max(logits) - 40,
    -min(logits) + 40] holds the root); one more Newton step is then taken
    with gradient, which gives the implicit derivative ds/dlogits."""
    with torch.no_grad():
        z = logits.detach()
        lo, hi = float(-z.max()) - 40.0, float(-z.min()) + 40.0
        s = min(max(float(torch.logit(torch.tensor(density, dtype=z.dtype)) - z.mean()), lo), hi)
        for _ in range(iterations):
            p = torch.sigmoid(z + s)
            f = float(p.mean()) - density
            if abs(f) < 1e-14:
                break
            if f > 0:
                hi = s
            else:
                lo = s
            g = float((p * (1 - p)).mean())
            nxt = s - f / g if g > 0 else lo - 1.0
            s = nxt if lo < nxt < hi else 0.5 * (lo + hi)
        s = torch.tensor(s, dtype=logits.dtype)
    p = torch.sigmoid(logits + s)
    g = torch.clamp((p * (1 - p)).mean(), min=1e-300)
    s = s - (p.mean() - density) / g
    return torch.sigmoid(logits + s)


def _one_hot(y: torch.Tensor, dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, int(y.max()) + 1).to(dtype)


def _objective(name: str, K: torch.Tensor, Y: torch.Tensor, kernel_lr: float, T: int) -> torch.Tensor:
    N = K.shape[0]
    if name == "alignment":
        Yc = Y - Y.mean(0, keepdim=True)
        YY = Yc @ Yc.T
        return -(K * YY).sum() / (torch.linalg.norm(K) * torch.linalg.norm(YY))
    if name == "loss":
        E = torch.linalg.matrix_exp(-kernel_lr * T * K)
        return 0.5 * (E @ Y).pow(2).sum() / N
    jit = 1e-10 * torch.diagonal(K).mean()
    Z = torch.linalg.solve(K + jit * torch.eye(N, dtype=K.dtype), Y)
    return torch.sqrt(2.0 * (Y * Z).sum() / N)


def design(
    x: Any,
    y: Any,
    depth: int,
    density: Any,
    *,
    K: int = 8,
    objective: str = "alignment",
    steps: int = 200,
    lr: float = 0.05,
    kernel_lr: float = 0.01,
    T: int = 100,
    seed: int = 0,
    init_scale: float = 0.01,
    progress: bool | None = None,
) -> DesignResult:
    """Optimise one step graphon per layer at fixed densities for ``objective`` (see the module docstring).

    Parameters
    ----------
    x : (N, d) inputs (the data batch the kernel is computed on); y : (N,) int labels.
    depth : L >= 1 hidden layers.
    density : one density in (0, 1) for every layer, or a list of L + 1 of them.
    K : blocks per hidden layer.
    objective : "alignment", "loss" or "generalisation".
    steps : Adam steps; lr : Adam's learning rate on the logits.
    kernel_lr, T : learning rate and steps of the linearised loss (``"loss"``).
    seed : seed of the logits' small random initialisation (``init_scale`` x N(0, 1);
        zero logits would be a saddle of the symmetric problem).
    progress : tqdm bar over the Adam steps: None (default) shows it on a
        terminal once the run has taken 2 s, True always, False never.

    Returns a :class:`DesignResult`.

    Examples
    --------
    >>> import torch
    >>> from gntk_fast.pai import design
    >>> x = torch.randn(8, 4, dtype=torch.float64)
    >>> r = design(x, torch.arange(8) % 2, depth=1, density=0.3, K=2, steps=2)
    >>> len(r.graphons), r.history.shape
    (2, (3,))
    """
    X, y, _ = check_xy(as_float_tensor("x", x, ndim=2).to(torch.float64), y, dtype=torch.float64)
    N, d = X.shape
    if N < 2:
        raise ValueError(f"x must hold at least 2 inputs; got {N}")
    Y = _one_hot(y, torch.float64)
    depth = check_int("depth", depth, min_value=1, max_value=MAX_DEPTH)
    K = check_int("K", K, min_value=1, max_value=MAX_BLOCKS)
    objective = check_choice("objective", objective, OBJECTIVES)
    steps = check_int("steps", steps, min_value=0, max_value=MAX_STEPS)
    lr = check_float("lr", lr, min_value=0.0, min_inclusive=False)
    kernel_lr = check_float("kernel_lr", kernel_lr, min_value=0.0, min_inclusive=False)
    T = check_int("T", T, min_value=1, max_value=MAX_STEPS)
    progress = check_progress(progress)
    seed = check_seed(seed, allow_none=False)
    init_scale = check_float("init_scale", init_scale, min_value=0.0)
    if isinstance(density, (list, tuple, np.ndarray)):
        dens = [check_float(f"density[{i}]", v, min_value=0.0, max_value=1.0, min_inclusive=False,
                            max_inclusive=False) for i, v in enumerate(density)]
        if len(dens) != depth + 1:
            raise ValueError(f"density must be one number or a list of depth + 1 = {depth + 1}; got {len(dens)}")
    else:
        dens = [check_float("density", density, min_value=0.0, max_value=1.0, min_inclusive=False,
                            max_inclusive=False)] * (depth + 1)
    shapes = [(K, d)] + [(K, K)] * (depth - 1) + [(1, K)]
    check_memory("K and depth (the step graphons' logits, values and Adam state)",
                 4 * 8 * (K * d + (depth - 1) * K * K + K) + 8 * N * N * (depth + 1))
    gen = torch.Generator().manual_seed(seed & ((1 << 63) - 1))
    logits = [torch.nn.Parameter(init_scale * torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    opt = torch.optim.Adam(logits, lr=lr)

    def value() -> torch.Tensor:
        vals = [step_values(t, dv) for t, dv in zip(logits, dens)]
        return _objective(objective, design_kernel(vals, X), Y, kernel_lr, T)

    with torch.no_grad():
        vals0 = [torch.full(s, dv, dtype=torch.float64) for s, dv in zip(shapes, dens)]
        initial = float(_objective(objective, design_kernel(vals0, X), Y, kernel_lr, T))
    hist = []
    with progress_bar(total=steps, desc=f"design {objective}", unit="step", progress=progress) as bar:
        for _ in range(steps):
            opt.zero_grad()
            f = value()
            if not torch.isfinite(f):
                raise ValueError(f"the objective became non-finite (lr={lr} too large?)")
            f.backward()
            opt.step()
            hist.append(float(f.detach()))
            bar.update()
    with torch.no_grad():
        final = float(value())
    hist.append(final)
    from ..graphon.objects import InputGraphon, StepGraphon

    with torch.no_grad():
        vals = [step_values(t, dv).numpy().clip(0.0, 1.0) for t, dv in zip(logits, dens)]
    graphons = [InputGraphon(vals[0])] + [StepGraphon(v) for v in vals[1:]]
    return DesignResult(graphons, np.array(hist), initial, final, objective, dens,
                        {"K": K, "depth": depth, "steps": steps, "lr": lr, "kernel_lr": kernel_lr, "T": T,
                         "seed": seed, "N": N, "d": d})
