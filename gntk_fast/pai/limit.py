"""Predicted limit graphons of pruning masks (the Factorised Saliency Model).

For one network at initialisation and a pruning method, the model says that
every layer's saliency factorises,

    log|S_ij| = alpha_i + beta_j + eta_ij      (rows i = outputs, columns j = inputs),

and that the mask of density d converges to the bipartite graphon

    W(u, v) = P(eta > log tau - A(u) - B(v))

with A, B the (1 - u)-quantile functions of the row and column factors and
tau set by the density. :func:`limit_graphon` fits the model to the method's
one-shot scores and returns, per layer, the predicted graphon and the fit.

Conventions (ours, where the model leaves a choice)
---------------------------------------------------
* **Zero scores** (and, for GraSP, scores <= 0: the lowest signed scores are
  pruned, so a non-positive score is never kept while the threshold is
  positive) are kept apart: the fit uses the positive scores only, and the
  probability that position (i, j) holds a positive score is modelled as
  ``p_ij = z_i z_j / z`` (row and column positive fractions over the overall
  one), exact when zeros come from whole dead rows and columns (ReLU units a
  batch never activates). The predicted graphon is ``p(u, v) P(eta > ...)``.
  When the density asks for more weights than there are positive scores, the
  excess is spread uniformly over the non-positive positions and the layer
  is flagged ``in_model=False`` (the model says nothing about their order).
* **Fit**: the two-way additive least-squares fit of ``log|S|`` over the
  positive entries by alternating row and column means (backfitting; one
  sweep is exact when every entry is positive). Centring: the column factors
  have mean 0 over the columns that hold a positive score, the row factors
  carry the grand mean, so ``alpha_i + beta_j`` is the fitted value and the
  residuals have mean 0. ``r2 = 1 - SS_res / SS_tot`` over the positive entries.
* **Residual distribution** F_eta: the empirical distribution of the
  residuals, stored as up to ``n_quantiles`` order statistics (linear
  interpolation between them).
* **Limit positions**: a hidden side of ``n`` neurons is represented by
  ``G = min(n, resolution)`` neurons at evenly spaced ranks of its factor
  (the quantile function at ``u = (g - 1/2) / G``), each carrying its own
  positive fraction. The input layer's columns are the d input coordinates in
  their own order and the read-out layer's rows the k outputs (both finite).
  The graphon's rows and columns are finally sorted by decreasing predicted
  degree (a measure-preserving relabelling; high degree near 0, as SAS sorts).
* **Threshold**: ``tau`` solves ``integral W = d`` per layer (``scope=
  "layerwise"``) or ``sum_l N_l integral W^l = d sum_l N_l`` with one tau for
  all layers (``"global"``; each layer's density is then an output), by
  Brent's method on ``log tau``.

SynFlow with E > 1 iterations uses the graphon-level recursion of
:func:`synflow_recursion` instead of a fit.

Exact limits and the fitted ones
--------------------------------
The limit is a property of the weights' *distribution*, not of one draw.
Where the scores are i.i.d. across positions the limit is known without a
fit, and :func:`limit_graphon` returns it exactly: the constant d for Random
(either scope), for Magnitude in layerwise scope, and for every method at
density 1. For the other methods the factors' quantile functions are
estimated. With ``n_networks = K >= 2`` (the *pooled* prediction) they are
averaged over K independent networks of the model's architecture, never the
model's own weights, so the prediction is the same for every test network,
and its own error (sd over the K single-network predictions / sqrt(K)) is
reported per layer. For one-iteration SynFlow and one-input SNIP the scores
factorise exactly (|w_ij| times the path-sum profiles, or |delta_i| |h_j|):
the pooled prediction reads those profiles off exactly (no fit noise in the
factors, eta = log|w|), so its quantile functions estimate the deterministic
limit, up to that error. With K = 1 they are fitted on the model itself (the same-network
fit): comparing that prediction with the masks of the very network it was
fitted on measures agreement with that
network's noise (falling like 1/n) and is a diagnostic only.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.optimize import brentq

from .._constants import METHODS, SCHEDULES, SCOPE_ALIASES, SCOPES
from .._progress import check_progress, progress_bar
from .._validation import MAX_STEPS, check_choice, check_int, density_from, finite_array
from ..graphon.objects import Graphon, InputGraphon, StepGraphon

__all__ = [
    "ResidualDistribution",
    "LayerLimit",
    "LimitGraphons",
    "limit_graphon",
    "limit_graphon_from_scores",
    "factor_fit",
    "synflow_recursion",
    "block_means",
]


# --------------------------------------------------------------- residuals
@dataclass
class ResidualDistribution:
    """An empirical distribution on the real line, stored as sorted order statistics.

    ``quantiles`` : float64 (Q,), ascending; the CDF is continuous and
    linear between the points ``(quantiles[k], k / (Q - 1))`` (0 at the
    smallest, 1 at the largest; repeated values are atoms). ``mean``, ``std`` : of the full sample the quantiles summarise.
    """

    quantiles: np.ndarray
    mean: float = 0.0
    std: float = 0.0

    @classmethod
    def from_sample(cls, x: np.ndarray, n_quantiles: int = 4096) -> "ResidualDistribution":
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            raise ValueError("the residual sample is empty (no positive score in the layer)")
        if x.size <= n_quantiles:
            q = np.sort(x)
        else:
            q = np.quantile(x, (np.arange(n_quantiles) + 0.5) / n_quantiles)
        return cls(q, float(x.mean()), float(x.std()))

    def _levels(self) -> np.ndarray:
        Q = len(self.quantiles)
        return np.arange(Q) / (Q - 1) if Q > 1 else np.ones(1)

    def cdf(self, t: np.ndarray) -> np.ndarray:
        """P(eta <= t), elementwise."""
        q = self.quantiles
        out = np.interp(t, q, self._levels())
        out = np.where(t < q[0], 0.0, out)
        return np.where(t >= q[-1], 1.0, out)

    def sf(self, t: np.ndarray) -> np.ndarray:
        """P(eta > t) = 1 - cdf(t)."""
        return 1.0 - self.cdf(t)

    def tail_mass(self, t: np.ndarray) -> np.ndarray:
        """E[exp(eta) 1{eta > t}] (with eta = log|w|: the expected kept |w|), from the order statistics."""
        q = self.quantiles
        Q = len(q)
        ex = np.exp(q) / Q
        tail = np.concatenate([np.cumsum(ex[::-1])[::-1], [0.0]])  # tail[k] = sum_{m >= k}
        k = np.searchsorted(q, t, side="right")
        return tail[k]


# -------------------------------------------------------------------- fit
def factor_fit(log_s: np.ndarray, positive: np.ndarray, max_sweeps: int = 200, tol: float = 1e-10):
    """Two-way additive least-squares fit of ``log_s`` over the entries where ``positive``.

    Parameters
    ----------
    log_s : float64 (n_out, n_in); entries outside ``positive`` are ignored.
    positive : bool (n_out, n_in).

    Returns
    -------
    alpha : (n_out,) row factors (NaN for a row without a positive entry),
    beta : (n_in,) column factors with mean 0 over the columns that have one (NaN otherwise),
    residuals : float64 (P,), the fitted residuals of the positive entries (row-major order),
    r2 : float, ``1 - SS_res / SS_tot`` (1.0 when SS_tot = 0).
    """
    pos = np.asarray(positive, dtype=bool)
    Y = np.where(pos, log_s, 0.0)
    w = pos.astype(np.float64)
    nr = w.sum(1)
    nc = w.sum(0)
    okr, okc = nr > 0, nc > 0
    if not okr.any():
        raise ValueError("no positive score: the factor model cannot be fitted")
    beta = np.zeros(Y.shape[1])
    alpha = np.zeros(Y.shape[0])
    complete = bool(pos.all())
    for _ in range(1 if complete else max_sweeps):
        alpha_new = np.where(okr, (Y - w * beta[None, :]).sum(1) / np.maximum(nr, 1), 0.0)
        beta_new = np.where(okc, (Y - w * alpha_new[:, None]).sum(0) / np.maximum(nc, 1), 0.0)
        shift = beta_new[okc].mean()
        beta_new[okc] -= shift
        alpha_new[okr] += shift
        change = max(np.abs(alpha_new - alpha).max(), np.abs(beta_new - beta).max())
        alpha, beta = alpha_new, beta_new
        if change < tol:
            break
    fitted = alpha[:, None] + beta[None, :]
    res = (log_s - fitted)[pos]
    vals = log_s[pos]
    ss_tot = float(((vals - vals.mean()) ** 2).sum())
    r2 = 1.0 - float((res ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    alpha = np.where(okr, alpha, np.nan)
    beta = np.where(okc, beta, np.nan)
    return alpha, beta, res, r2


# ----------------------------------------------------------------- result
@dataclass
class LayerLimit:
    """The prediction for one layer (mask of shape ``(n_out, n_in)``).

    Attributes
    ----------
    name : the layer's module name.
    graphon : StepGraphon (G_out, G_in) rows and columns sorted by decreasing
        predicted degree; an :class:`InputGraphon` (G_out, d) with columns in
        coordinate order for the input layer; rows = the k outputs (in order,
        uniform blocks) for the read-out layer.
    alpha, beta : float64 (n_out,), (n_in,) fitted row and column factors
        (NaN where a row/column has no positive score). For the SynFlow
        recursion: the log backward and forward path sums of the last iteration.
    residuals : :class:`ResidualDistribution` of eta.
    r2 : fit's R^2 (NaN for the recursion, which does not fit).
    density : predicted kept fraction (the target in layerwise scope).
    log_tau : the threshold's log.
    positive_rows, positive_cols : int64 (n_out,), (n_in,) positive scores per row / column.
    feature_density : (d,) predicted kept density per input coordinate
        (input layer only, else None).
    in_model : False when the density exceeds the positive fraction (see module docstring).
    kind : "input", "hidden" or "readout".
    error : the estimate's own error (pooled predictions, ``n_networks >= 2``):
        the RMS over the graphon's grid of the standard error of the mean of
        the single-network predictions, sd_k(W_k) / sqrt(K) (ddof 1); NaN for
        one network and 0 for the exact constant limits.
    """

    name: str
    shape: tuple[int, int]
    graphon: Graphon
    alpha: np.ndarray
    beta: np.ndarray
    residuals: ResidualDistribution
    r2: float
    density: float
    log_tau: float
    positive_rows: np.ndarray
    positive_cols: np.ndarray
    feature_density: np.ndarray | None
    in_model: bool
    kind: str
    error: float = float("nan")


@dataclass
class LimitGraphons:
    """Per-layer predictions of :func:`limit_graphon` (forward order)."""

    layers: list[LayerLimit]
    method: str
    density: float
    scope: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def graphons(self) -> list[Graphon]:
        """The predicted graphons, one per layer (input, hidden..., read-out)."""
        return [l.graphon for l in self.layers]

    @property
    def r2(self) -> list[float]:
        return [l.r2 for l in self.layers]

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> LayerLimit:
        return self.layers[i]


# ------------------------------------------------------------- helpers
def _rank_reps(values: np.ndarray, G: int) -> np.ndarray:
    """Indices of G neurons at evenly spaced ranks of ``values`` in decreasing order
    (NaN last): the neuron at sorted position floor((g + 1/2) n / G)."""
    n = len(values)
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    pos = np.floor((np.arange(G) + 0.5) * n / G).astype(np.int64)
    return order[np.minimum(pos, n - 1)]


@dataclass
class _Grid:
    """One layer on its limit grid: A (R,), B (C,) factors (NaN = no positive score),
    zr (R,), zc (C,) positive fractions, F the residual law, z the overall positive fraction."""

    A: np.ndarray
    B: np.ndarray
    zr: np.ndarray
    zc: np.ndarray
    z: float
    F: ResidualDistribution
    kind: str

    def prob_positive(self) -> np.ndarray:
        if self.z <= 0:
            return np.zeros((len(self.A), len(self.B)))
        return np.clip(np.outer(self.zr, self.zc) / self.z, 0.0, 1.0)

    def values(self, log_tau: float) -> tuple[np.ndarray, np.ndarray]:
        """(W of the positive scores, P(positive)) on the grid at threshold log_tau."""
        A = np.nan_to_num(self.A, nan=-np.inf)
        B = np.nan_to_num(self.B, nan=-np.inf)
        with np.errstate(invalid="ignore"):
            t = log_tau - A[:, None] - B[None, :]
        # NaN: a row or column without a positive score (p = 0 there); -inf: keep all
        W = self.F.sf(np.where(np.isnan(t), np.inf, t))
        p = self.prob_positive()
        return p * W, p

    def mean(self, log_tau: float) -> float:
        return float(self.values(log_tau)[0].mean())


def _bracket(grids: Sequence[_Grid]) -> tuple[float, float]:
    lo, hi = np.inf, -np.inf
    for g in grids:
        s = np.concatenate([g.A[np.isfinite(g.A)], [0.0]]).min() + np.concatenate([g.B[np.isfinite(g.B)], [0.0]]).min()
        S = np.concatenate([g.A[np.isfinite(g.A)], [0.0]]).max() + np.concatenate([g.B[np.isfinite(g.B)], [0.0]]).max()
        lo = min(lo, g.F.quantiles[0] + s - 1.0 - (S - s))
        hi = max(hi, g.F.quantiles[-1] + S + 1.0 + (S - s))
    return lo, hi


def _solve_tau(grids: Sequence[_Grid], weights: Sequence[float], d: float) -> tuple[float, bool]:
    """log tau with sum_l weights_l mean_l(W) = d sum_l weights_l; (log_tau, reachable).

    ``reachable`` is False when even tau -> 0 keeps less than d (too few positive scores):
    then log_tau = -inf (every positive score kept)."""
    wts = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    f = lambda T: sum(w * g.mean(T) for w, g in zip(wts, grids)) - d  # noqa: E731
    lo, hi = _bracket(grids)
    flo, fhi = f(lo), f(hi)
    if fhi > 0:  # even the highest threshold keeps more: only possible for d ~ 0
        return hi, True
    if flo < 0:
        return -np.inf, False
    return float(brentq(f, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=500)), True


def _finish(grid: _Grid, log_tau: float, d_target: float | None, name: str, shape, alpha, beta, r2,
            pos_rows, pos_cols) -> LayerLimit:
    """Graphon values at the solved threshold, the uniform fill beyond the positive
    scores, the degree sort, and the layer's record."""
    W, p = grid.values(log_tau)
    in_model = True
    if d_target is not None and np.isfinite(log_tau) and abs(W.mean() - d_target) > 1e-9:
        # an atom of the residual law at the threshold (tied scores): the tied positions
        # share what is left of the density uniformly
        W_lo = grid.values(log_tau - 1e-7 * max(1.0, abs(log_tau)))[0]
        W_hi = grid.values(log_tau + 1e-7 * max(1.0, abs(log_tau)))[0]
        gap = W_lo.mean() - W_hi.mean()
        if gap > 0:
            lam = float(np.clip((d_target - W_hi.mean()) / gap, 0.0, 1.0))
            W = W_hi + lam * (W_lo - W_hi)
    if d_target is not None and W.mean() < d_target - 1e-9:
        # more weights asked than there are positive scores: fill the rest uniformly
        rest = 1.0 - p
        need = (d_target - W.mean()) / max(rest.mean(), 1e-300)
        W = W + rest * min(1.0, need)
        in_model = False
    W = np.clip(W, 0.0, 1.0)
    feature = None
    if grid.kind == "input":
        order = np.argsort(-W.mean(1), kind="stable")
        W = W[order]
        g = InputGraphon(W)
        feature = g.pixel_density()
    elif grid.kind == "readout":
        order = np.argsort(-W.mean(0), kind="stable")
        g = StepGraphon(W[:, order])
    else:
        ro = np.argsort(-W.mean(1), kind="stable")
        co = np.argsort(-W.mean(0), kind="stable")
        g = StepGraphon(W[np.ix_(ro, co)])
    return LayerLimit(name, tuple(shape), g, alpha, beta, grid.F, r2, float(W.mean()), float(log_tau),
                      pos_rows, pos_cols, feature, in_model, grid.kind)


def _kind(l: int, L: int) -> str:
    return "input" if l == 0 else ("readout" if l == L - 1 else "hidden")



def _fit_grids(mats, signed: bool, resolution: int, n_quantiles: int, absw=None):
    """Per layer: the factor fit of one network's scores on its limit grid, and the fit's record.

    With ``absw`` (the layers' |w|, for scores that factorise exactly as
    ``|w_ij| r_i c_j``) the factors are those of ``log|S| - log|w|`` (one sweep,
    exact) and the residual law is that of ``log|w|`` itself."""
    L = len(mats)
    grids, fits = [], []
    for l, S in enumerate(mats):
        pos = S > 0 if signed else S != 0
        logs = np.log(np.abs(np.where(pos, S, 1.0)))
        if absw is None:
            alpha, beta, res, r2 = factor_fit(logs, pos)
        else:
            W = absw[l]
            pos = pos & (W > 0)
            lw = np.log(np.where(pos, W, 1.0))
            alpha, beta, _res, r2 = factor_fit(logs - lw, pos)
            res = lw[pos]
        F = ResidualDistribution.from_sample(res, n_quantiles)
        kind = _kind(l, L) if L > 1 else "input"
        n_out, n_in = S.shape
        zr, zc = pos.mean(1), pos.mean(0)
        if kind in ("hidden", "input") and n_out > resolution:
            ri = _rank_reps(alpha, resolution)
        else:
            ri = np.argsort(-np.nan_to_num(alpha, nan=-np.inf), kind="stable") if kind != "readout" else np.arange(n_out)
        if kind in ("hidden", "readout") and n_in > resolution:
            ci = _rank_reps(beta, resolution)
        elif kind == "input":
            ci = np.arange(n_in)
        else:
            ci = np.argsort(-np.nan_to_num(beta, nan=-np.inf), kind="stable")
        grids.append(_Grid(alpha[ri], beta[ci], zr[ri], zc[ci], float(pos.mean()), F, kind))
        fits.append((alpha, beta, r2, pos.sum(1).astype(np.int64), pos.sum(0).astype(np.int64)))
    return grids, fits


def _assemble(grids, fits, shapes, names, density: float, scope: str) -> list[LayerLimit]:
    """Solve the threshold(s) of the grids and finish every layer's record."""
    L = len(grids)
    sizes = [int(a) * int(b) for a, b in shapes]
    out = []
    if scope == "global":
        T, _ = _solve_tau(grids, sizes, density)
        taus, targets = [T] * L, [None] * L
        tot = sum(w * g.mean(T) for w, g in zip(sizes, grids)) / sum(sizes)
        if tot < density - 1e-9 and not np.isfinite(T):
            # not enough positive scores overall: fill each layer uniformly
            targets = [g.mean(T) + (density - tot) for g in grids]
        elif abs(tot - density) > 1e-9:
            # an atom at the common threshold: every layer takes the same share of its ties
            eps = 1e-7 * max(1.0, abs(T))
            lo = [g.mean(T - eps) for g in grids]
            hi = [g.mean(T + eps) for g in grids]
            gap = sum(w * (a - b) for w, a, b in zip(sizes, lo, hi)) / sum(sizes)
            hi_tot = sum(w * b for w, b in zip(sizes, hi)) / sum(sizes)
            lam = float(np.clip((density - hi_tot) / gap, 0.0, 1.0)) if gap > 0 else 0.0
            targets = [b + lam * (a - b) for a, b in zip(lo, hi)]
    else:
        taus = [_solve_tau([g], [1.0], density)[0] for g in grids]
        targets = [density] * L
    for l, (g, (alpha, beta, r2, pr, pc)) in enumerate(zip(grids, fits)):
        out.append(_finish(g, taus[l], targets[l], names[l], shapes[l], alpha, beta, r2, pr, pc))
    return out


def _pool_grids(per_net: list[list[_Grid]], n_quantiles: int) -> list[_Grid]:
    """The pooled grid of every layer: the factors' quantile functions averaged over the
    networks at equal ranks (hidden sides; the input coordinates and the outputs, which are
    finite and labelled, position by position), the positive fractions likewise, and the
    residual law of all networks' order statistics together."""
    out = []
    for l in range(len(per_net[0])):
        gs = [net[l] for net in per_net]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a rank where every network has a dead neuron
            A = np.nanmean(np.stack([g.A for g in gs]), axis=0)
            B = np.nanmean(np.stack([g.B for g in gs]), axis=0)
        zr = np.mean(np.stack([g.zr for g in gs]), axis=0)
        zc = np.mean(np.stack([g.zc for g in gs]), axis=0)
        q = np.concatenate([g.F.quantiles for g in gs])
        F = ResidualDistribution.from_sample(q, n_quantiles)
        F.mean, F.std = float(np.mean([g.F.mean for g in gs])), float(np.mean([g.F.std for g in gs]))
        out.append(_Grid(A, B, zr, zc, float(np.mean([g.z for g in gs])), F, gs[0].kind))
    return out


def _graphon_values(layer: LayerLimit) -> np.ndarray:
    return np.asarray(layer.graphon.H, dtype=np.float64)


def _pool_error(singles: list[list[LayerLimit]]) -> list[float]:
    """Per layer: RMS over the grid of sd_k(W_k) / sqrt(K) (ddof 1) of the single-network predictions."""
    K = len(singles)
    out = []
    for l in range(len(singles[0])):
        Ws = np.stack([_graphon_values(net[l]) for net in singles])
        out.append(float(np.sqrt(np.mean(Ws.std(axis=0, ddof=1) ** 2)) / np.sqrt(K)))
    return out


def _pool_models(model: Any, n_networks: int, seed: int | None, networks: Any) -> list[Any]:
    """The pool: ``networks(seed_k)`` for K seeds derived from ``seed``, or copies of ``model``
    re-initialised by each submodule's ``reset_parameters`` under those seeds."""
    import torch

    base = 0 if seed is None else int(seed)
    seeds = [int(s) for s in np.random.SeedSequence([base, 0x5EED]).generate_state(n_networks, dtype=np.uint32)]
    out = []
    for k, sk in enumerate(seeds):
        if networks is not None:
            m = networks(sk)
        else:
            m = copy.deepcopy(model)
            found = False
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sk)
                for mod in m.modules():
                    if mod is not m and hasattr(mod, "reset_parameters"):
                        mod.reset_parameters()
                        found = True
            if not found:
                raise ValueError("networks: the model has no submodule with reset_parameters(); pass networks="
                                 "a function seed -> a fresh model of the same architecture")
        out.append(m)
    return out


# ----------------------------------------------------------- public entries
def limit_graphon_from_scores(
    scores: Sequence[Any],
    density: float,
    *,
    scope: str = "layerwise",
    signed: bool = False,
    resolution: int = 256,
    n_quantiles: int = 4096,
    names: Sequence[str] | None = None,
    method: str = "custom",
) -> LimitGraphons:
    """The predicted limit graphons from one-shot scores (see the module docstring).

    Parameters
    ----------
    scores : list of L arrays/tensors, scores[l] of shape (n_{l+1}, n_l), forward
        order (the first is the input layer, the last the read-out layer).
        Higher = kept first. With ``signed`` (GraSP) the sign matters and only
        positive scores are modelled; otherwise |scores| is used.
    density : kept fraction in (0, 1].
    scope : "layerwise" (each layer at ``density``) or "global" (one tau).
    resolution : G, the largest number of positions per hidden side.
    n_quantiles : order statistics kept of the residual distribution.
    names, method : labels stored in the result.

    Returns
    -------
    :class:`LimitGraphons`.
    """
    import torch

    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    resolution = check_int("resolution", resolution, min_value=1)
    n_quantiles = check_int("n_quantiles", n_quantiles, min_value=2)
    if not isinstance(density, (int, float)) or isinstance(density, bool) or not (0.0 < float(density) <= 1.0):
        raise ValueError(f"density must be a number in (0, 1]; got {density!r}")
    density = float(density)
    if isinstance(scores, (np.ndarray, torch.Tensor)) or not hasattr(scores, "__len__") or len(scores) < 1:
        raise TypeError("scores must be a non-empty list of 2-D score matrices (one per layer)")
    mats = []
    for l, s in enumerate(scores):
        a = finite_array(f"scores[{l}]", s, ndim=2)
        if a.size == 0:
            raise ValueError(f"scores[{l}] must be a non-empty real 2-D matrix; got shape {a.shape}")
        if l > 0 and a.shape[1] != mats[-1].shape[0]:
            raise ValueError(f"scores[{l}] has {a.shape[1]} columns but scores[{l - 1}] has {mats[-1].shape[0]} rows")
        mats.append(a)
    L = len(mats)
    names = [f"layer{l}" for l in range(L)] if names is None else [str(n) for n in names]
    grids, fits = _fit_grids(mats, signed, resolution, n_quantiles)
    out = _assemble(grids, fits, [S.shape for S in mats], names, density, scope)
    return LimitGraphons(out, method, density, scope,
                         {"resolution": resolution, "n_quantiles": n_quantiles, "signed": bool(signed)})


def limit_graphon(
    model: Any,
    method: str,
    sparsity: float | None = None,
    data: Any = None,
    scope: str = "layerwise",
    *,
    iterations: int | None = 1,
    schedule: str = "exponential",
    compression: float | None = None,
    seed: int | None = 0,
    resolution: int = 256,
    n_quantiles: int = 4096,
    n_networks: int = 1,
    networks: Any = None,
) -> LimitGraphons:
    """Predicted limit graphon of every layer of ``model`` pruned by ``method``.

    Where the limit is known exactly it is returned without looking at the
    weights: the constant d for Random (either scope), for Magnitude in
    layerwise scope, and for every method at density 1 (sparsity 0: every
    weight kept). Otherwise the model is not modified: its one-shot scores are
    computed on a private copy with :func:`gntk_fast.prune` (clean mode, one
    iteration) and fitted by :func:`limit_graphon_from_scores`: the factors'
    quantile functions are then estimated from this one network, so the
    prediction carries that network's sampling error (compare it with masks of
    *independent* networks; a comparison with this network's own masks is a
    diagnostic of agreement, not of convergence). For ``method="synflow"`` with
    ``iterations`` E > 1 the prediction is the graphon-level recursion
    :func:`synflow_recursion` seeded with the network's own path sums.

    Parameters
    ----------
    model : a ``gntk_fast.MLP`` or an nn.Module of Linear layers (e.g. ``gntk_fast.fc``).
    method : "random", "magnitude", "snip", "grasp" or "synflow".
    sparsity / compression : exactly one (density d = 1 - sparsity or 10**-compression).
    data : the pruning batch (x, y) for snip and grasp (see :func:`gntk_fast.prune`).
    scope : "layerwise" (default) or "global".
    iterations : 1 (default; every method) or E > 1 (synflow only; None = 1).
    schedule : density schedule of the recursion ("exponential" or "linear").
    seed : seed of the random scores (method "random").
    resolution, n_quantiles : see :func:`limit_graphon_from_scores`.
    n_networks : K. With K = 1 (default) the factors are fitted on ``model``
        itself (the same-network fit). With K >= 2 the prediction is *pooled*
        and does not look at ``model``'s weights: K independent networks of
        its architecture (seeds derived from ``seed``) are scored and fitted,
        the factors' quantile functions A(u), B(v) averaged at equal ranks,
        the positive fractions likewise and the residual law F_eta pooled,
        and the threshold solved on the pooled grid. ``layers[l].error`` is
        then the estimate's own error (sd over the K single-network
        predictions / sqrt(K), RMS over the grid). For SynFlow with E > 1 the
        K recursions' degree-sorted graphons are averaged. For one-iteration
        SynFlow and one-input SNIP the scores factorise exactly
        (|w_ij| times a row and a column profile: dR/dz_i and h_j of the
        |.|-network on all-ones inputs, or |delta_i| and |h_j|): the factors
        are then read off exactly (the fit of log|S| - log|w|, R^2 = 1) and
        the residual law is that of log|w| (``config["factors"] = "exact"``),
        so the pooled quantile functions estimate the deterministic limit of
        those profiles; otherwise the factors are fitted (``"fitted"``).
    networks : optional function ``seed -> model`` building the pool's
        networks; default: copies of ``model`` re-initialised by every
        submodule's ``reset_parameters()`` under ``torch.manual_seed(seed_k)``
        (PyTorch's default initialisation, e.g. :func:`gntk_fast.fc`).

    Returns
    -------
    :class:`LimitGraphons`: ``.layers[l]`` has ``graphon`` (usable by
    :func:`gntk_fast.graphon_ntk` and ``.sample``), ``alpha``, ``beta``,
    ``residuals``, ``r2``, ``density``, ``error`` and, for the input layer,
    ``feature_density`` (d,). ``config["reference"]`` is "exact", "pooled"
    or "same network".

    Examples
    --------
    >>> import numpy as np, gntk_fast as gf
    >>> from gntk_fast.pai import limit_graphon
    >>> m = gf.fc(16, 64, 2, 4, seed=0)
    >>> round(float(limit_graphon(m, "magnitude", 0.8)[1].graphon.H.mean()), 12)  # exact: the constant d
    0.2
    >>> lg = limit_graphon(m, "synflow", 0.8, n_networks=3, resolution=32)
    >>> lg.config["reference"], bool(lg[1].error > 0)
    ('pooled', True)
    """
    from ..pruning import prune
    from ..pruning.layers import find_prunable

    method = check_choice("method", method, METHODS)
    d = density_from(sparsity, compression)
    E = 1 if iterations is None else check_int("iterations", iterations, min_value=1)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    if E > 1 and method != "synflow":
        raise ValueError(f"iterations > 1 is implemented for method 'synflow' only; got method {method!r}")
    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    n_quantiles = check_int("n_quantiles", n_quantiles, min_value=2)
    K = check_int("n_networks", n_networks, min_value=1, max_value=1024)
    if networks is not None and not callable(networks):
        raise TypeError(f"networks must be a function seed -> model or None; got {type(networks).__name__}")
    layers = find_prunable(model)
    if d == 1.0 or method == "random" or (method == "magnitude" and scope == "layerwise"):
        out = _constant_limits(layers, d, method, scope, n_quantiles, seed)
        for layer in out.layers:
            layer.error = 0.0
        return out
    if K > 1:
        return _pooled(model, method, d, data, scope, E, schedule, seed, resolution, n_quantiles, K, networks)
    if E > 1:
        out = synflow_recursion(model, d, E, scope=scope, schedule=schedule, resolution=resolution,
                                n_quantiles=n_quantiles)
        out.config["reference"] = "same network"
        return out
    work = copy.deepcopy(model)
    res = prune(work, method, 1.0 - d if d < 1.0 else 0.0, data=data, scope=scope, iterations=1, seed=seed,
                progress=False)
    out = limit_graphon_from_scores([s.reshape(l.shape) for s, l in zip(res.scores, layers)], d, scope=scope,
                                    signed=method == "grasp", resolution=resolution, n_quantiles=n_quantiles,
                                    names=[l.name for l in layers], method=method)
    out.config.update({"iterations": 1, "seed": seed, "reference": "same network"})
    return out


def _pooled(model, method, d, data, scope, E, schedule, seed, resolution, n_quantiles, K, networks) -> LimitGraphons:
    """The pooled prediction of :func:`limit_graphon` (``n_networks`` K >= 2)."""
    from ..pruning import prune
    from ..pruning.layers import find_prunable

    import torch

    pool = _pool_models(model, K, seed, networks)
    # scores that factorise exactly as |w_ij| r_i c_j: SynFlow (r = dR/dz_i, c = h_j of the |.|-network on
    # all-ones inputs) and SNIP with one input (r = |delta_i|, c = |h_j|)
    n_data = None if data is None or not isinstance(data, (tuple, list)) else len(data[0])
    exact = method == "synflow" or (method == "snip" and n_data == 1)
    names = [l.name for l in find_prunable(model)]
    shapes = [tuple(l.shape) for l in find_prunable(model)]
    singles, per_grids, fits0 = [], [], None
    for k, m in enumerate(pool):
        if [tuple(l.shape) for l in find_prunable(m)] != shapes:
            raise ValueError("networks: every pooled network must have the model's layer shapes")
        if E > 1:
            singles.append(synflow_recursion(m, d, E, scope=scope, schedule=schedule, resolution=resolution,
                                             n_quantiles=n_quantiles).layers)
            continue
        absw = [np.abs(l.theta.detach().to(torch.float64).cpu().numpy()).reshape(shp)
                for l, shp in zip(find_prunable(m), shapes)] if exact else None
        res = prune(m, method, 1.0 - d, data=data, scope=scope, iterations=1, seed=seed, progress=False)
        mats = [(s.detach().cpu().numpy() if hasattr(s, "detach") else np.asarray(s)).astype(np.float64).reshape(shp)
                for s, shp in zip(res.scores, shapes)]
        grids, fits = _fit_grids(mats, method == "grasp", resolution, n_quantiles, absw)
        per_grids.append(grids)
        fits0 = fits0 or fits
        singles.append(_assemble(grids, fits, shapes, names, d, scope))
    errors = _pool_error(singles)
    if E > 1:
        layers = []
        for l, first in enumerate(singles[0]):
            W = np.mean(np.stack([_graphon_values(net[l]) for net in singles]), axis=0)
            g, feat = _finish_values(W, first.kind)
            layers.append(LayerLimit(first.name, first.shape, g, first.alpha, first.beta, first.residuals,
                                     float("nan"), float(W.mean()), first.log_tau, first.positive_rows,
                                     first.positive_cols, feat, True, first.kind, errors[l]))
        return LimitGraphons(layers, "synflow", d, scope, {"iterations": E, "schedule": schedule, "recursion": True,
                                                         "resolution": resolution, "reference": "pooled",
                                                         "n_networks": K, "seed": seed})
    pooled = _pool_grids(per_grids, n_quantiles)
    # the record's per-neuron factors are those of the pool's first network; r2 the pool's mean
    fits = [(a, b, float(np.nanmean([net[l].r2 for net in singles])), pr, pc)
            for l, (a, b, _r, pr, pc) in enumerate(fits0)]
    layers = _assemble(pooled, fits, shapes, names, d, scope)
    for l, layer in enumerate(layers):
        layer.error = errors[l]
    return LimitGraphons(layers, method, d, scope, {"iterations": 1, "seed": seed, "resolution": resolution,
                                                    "n_quantiles": n_quantiles, "signed": method == "grasp",
                                                    "reference": "pooled", "n_networks": K,
                                                    "factors": "exact" if exact else "fitted"})


def _constant_limits(layers, d: float, method: str, scope: str, n_quantiles: int, seed) -> LimitGraphons:
    """The exact limit of a method whose scores do not depend on the position: every
    layer's graphon is the constant d (Random in either scope: i.i.d. uniform scores;
    Magnitude in layerwise scope: i.i.d. |w| within a layer; any method at d = 1:
    every weight kept). Nothing is fitted: the residual law is the exact one
    (eta = log U for Random, log|Z| of a standard normal for Magnitude, at the
    levels (k + 1/2) / Q), the factors are 0, the threshold is its (1 - d)-quantile."""
    from scipy.stats import norm

    Q = int(n_quantiles)
    levels = (np.arange(Q) + 0.5) / Q
    eta = np.log(norm.ppf(0.5 + levels / 2)) if method == "magnitude" else np.log(levels)
    F = ResidualDistribution(eta, float(eta.mean()), float(eta.std()))
    if d == 1.0:
        log_tau = -np.inf
    elif method == "magnitude":
        log_tau = float(np.log(norm.ppf(1.0 - d / 2)))
    else:
        log_tau = float(np.log(1.0 - d))
    L = len(layers)
    out = []
    for l, layer in enumerate(layers):
        n_out, n_in = layer.shape
        kind = _kind(l, L) if L > 1 else "input"
        feature = None
        if kind == "input":
            g = InputGraphon(np.full((1, n_in), d))
            feature = g.pixel_density()
        elif kind == "readout":
            g = StepGraphon(np.full((n_out, 1), d))
        else:
            g = StepGraphon(np.full((1, 1), d))
        out.append(LayerLimit(layer.name, (n_out, n_in), g, np.zeros(n_out), np.zeros(n_in), F, float("nan"), d,
                              log_tau, np.full(n_out, n_in, dtype=np.int64), np.full(n_in, n_out, dtype=np.int64),
                              feature, True, kind))
    return LimitGraphons(out, method, d, scope, {"exact": "constant", "iterations": 1, "seed": seed,
                                                 "n_quantiles": Q, "reference": "exact"})


# ------------------------------------------------------- SynFlow recursion
def _layer_scale(layer) -> float:
    return float(getattr(layer.module, "weight_scale", 1.0))


class _ExactLaw:
    """A finite side's weights, carried exactly: ``sf(c)`` = 1{log|w| > c}, ``tail_mass(c)`` = |w| 1{log|w| > c}."""

    def __init__(self, absw: np.ndarray):
        self.absw = absw
        with np.errstate(divide="ignore"):
            self.logw = np.log(absw)

    def sf(self, c):
        return (self.logw > c).astype(np.float64)

    def tail_mass(self, c):
        return np.where(self.logw > c, self.absw, 0.0)


def _bisect(f, lo: float, hi: float, iters: int = 80) -> float:
    """T in [lo, hi] where the non-increasing f crosses 0 (f(lo) >= 0 >= f(hi))."""
    if f(lo) < 0:
        return lo
    if f(hi) > 0:
        return hi
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) >= 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def synflow_recursion(
    model: Any,
    density: float,
    iterations: int = 100,
    *,
    scope: str = "layerwise",
    schedule: str = "exponential",
    resolution: int = 256,
    n_quantiles: int = 4096,
    progress: bool | None = None,
) -> LimitGraphons:
    """Iterative SynFlow in the graphon limit (a recursion over the kept weights).

    Neurons of a hidden layer are represented by ``G = min(n, resolution)``
    grid neurons of the network (evenly spaced ranks of their initial
    ``log a + log b``, see below). The input dimension d and the k outputs stay
    finite as the width grows, so a first-hidden-layer neuron keeps its own d
    incoming weights and a last-hidden-layer neuron its own k outgoing weights
    in the limit: those layers (the input and read-out masks) are carried
    exactly at the grid neurons. Hidden-to-hidden layers are carried by
    their limit: per layer a threshold ``c^l(u, v)`` on ``eta = log|w|`` (a
    weight at (u, v) is kept while ``log|w| > c``; c = -inf before pruning),
    ``W^l = P(eta > c)`` and the expected kept magnitude
    ``m^l = E[|w| 1{eta > c}]`` under the layer's own |w| distribution. The
    path sums of the limit network are then

        a^{l+1}(u) = s_l n_l  mean_v m^l(u, v) a^l(v),      a^0 = 1
        b^l(v)     = s_l n_{l+1} mean_u m^l(u, v) b^{l+1}(u), b^{L+1} = 1

    (exact sums over the d inputs / k outputs on the finite sides; s_l the
    layer's forward weight scale; biases neglected: their share of a path sum
    is O(1/n)). Iteration t scores ``log|w| + log s_l + log b^{l+1}(u) +
    log a^l(v)``, solves ``tau_t`` (by bisection) for the schedule's density
    d_t (per layer, or one for all layers with ``scope="global"``) and
    tightens ``c <- max(c, log tau_t - log s_l - log b(u) - log a(v))`` (masks
    are nested). The first iteration's path sums are the finite network's own
    (exact dense sums, float64).

    ``alpha``/``beta`` of each layer record log b^{l+1} (rows) and log a^l
    (columns) of the last iteration at the grid neurons. Returns a
    :class:`LimitGraphons` (``r2`` NaN: nothing is fitted). ``progress``: a
    bar over the iterations (None: shown on a terminal once the work has run
    for a few seconds; True/False force it).
    """
    import torch

    from ..pruning.core import schedule_density
    from ..pruning.layers import find_prunable

    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    E = check_int("iterations", iterations, min_value=1, max_value=MAX_STEPS)
    progress = check_progress(progress)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    resolution = check_int("resolution", resolution, min_value=1)
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not (0.0 < float(density) <= 1.0):
        raise ValueError(f"density must be a number in (0, 1]; got {density!r}")
    layers = find_prunable(model)
    Ls = len(layers)
    absW = [l.theta.detach().to(torch.float64).abs().cpu().numpy() * l.current_mask().cpu().numpy() for l in layers]
    scales = [_layer_scale(l) for l in layers]
    for l in range(1, Ls):
        if absW[l].shape[1] != absW[l - 1].shape[0]:
            raise ValueError("model: the prunable layers must form a chain (layer l's inputs = layer l-1's outputs)")
    # exact dense path sums of the finite network
    a = [np.ones(absW[0].shape[1])]
    for l in range(Ls):
        a.append(scales[l] * absW[l] @ a[-1])
    b = [None] * (Ls + 1)
    b[Ls] = np.ones(absW[-1].shape[0])
    for l in range(Ls - 1, -1, -1):
        b[l] = scales[l] * absW[l].T @ b[l + 1]
    reps = []
    for s in range(Ls + 1):
        n = len(a[s])
        if s in (0, Ls) or n <= resolution:
            reps.append(np.arange(n))
        else:
            with np.errstate(divide="ignore"):
                reps.append(_rank_reps(np.log(a[s]) + np.log(b[s]), resolution))
    widths = [len(x) for x in a]
    with np.errstate(divide="ignore"):
        la = [np.log(a[s][reps[s]]) for s in range(Ls + 1)]
        lb = [np.log(b[s][reps[s]]) for s in range(Ls + 1)]
    laws, Fs = [], []
    for l in range(Ls):
        w = absW[l][absW[l] > 0]
        Fs.append(ResidualDistribution.from_sample(np.log(w), n_quantiles))
        finite = l == 0 or l == Ls - 1
        laws.append(_ExactLaw(absW[l][np.ix_(reps[l + 1], reps[l])]) if finite else Fs[l])
    c = [np.full((len(reps[l + 1]), len(reps[l])), -np.inf) for l in range(Ls)]
    sizes = [W.size for W in absW]
    taus = [0.0] * Ls
    start = float(sum((W > 0).sum() for W in absW)) / sum(sizes)
    for e in progress_bar(range(1, E + 1), total=E, desc="synflow recursion", unit="iteration", progress=progress):
        d_e = schedule_density(float(density), e, E, schedule, start)
        if e > 1:  # path sums of the current limit network
            m = [laws[l].tail_mass(c[l]) for l in range(Ls)]
            av = [np.ones(widths[0])]
            for l in range(Ls):
                n_in = widths[l] if l > 0 else 1  # exact sum over the d inputs
                red = (m[l] * av[-1][None, :]).sum(1) if l == 0 else n_in * (m[l] * av[-1][None, :]).mean(1)
                av.append(scales[l] * red)
            bv = [None] * (Ls + 1)
            bv[Ls] = np.ones(widths[Ls])
            for l in range(Ls - 1, -1, -1):
                red = (m[l] * bv[l + 1][:, None]).sum(0) if l == Ls - 1 else \
                    widths[l + 1] * (m[l] * bv[l + 1][:, None]).mean(0)
                bv[l] = scales[l] * red
            with np.errstate(divide="ignore"):
                la = [np.log(x) for x in av]
                lb = [np.log(x) for x in bv]
        base = [-np.log(scales[l]) - lb[l + 1][:, None] - la[l][None, :] for l in range(Ls)]
        fin = [np.isfinite(x) for x in base]

        def thr(l, T):
            return np.maximum(c[l], np.where(fin[l], T + np.where(fin[l], base[l], 0.0), np.inf))

        def solve(ls, target):
            wts = np.array([sizes[l] for l in ls], dtype=np.float64)
            wts /= wts.sum()
            f = lambda T: sum(w * float(laws[l].sf(thr(l, T)).mean()) for w, l in zip(wts, ls)) - target  # noqa: E731
            bs = [base[l][fin[l]] for l in ls if fin[l].any()]
            if not bs:
                return 0.0
            lo = min(F.quantiles[0] for F in (Fs[l] for l in ls)) - max(x.max() for x in bs) - 1.0
            hi = max(F.quantiles[-1] for F in (Fs[l] for l in ls)) - min(x.min() for x in bs) + 1.0
            return _bisect(f, lo, hi)

        if scope == "global":
            T = solve(list(range(Ls)), d_e)
            taus = [T] * Ls
        else:
            taus = [solve([l], d_e) for l in range(Ls)]
        c = [thr(l, taus[l]) for l in range(Ls)]
    out = []
    for l in range(Ls):
        W = laws[l].sf(c[l])
        kind = _kind(l, Ls)
        g, feat = _finish_values(W, kind)
        out.append(LayerLimit(layers[l].name, tuple(absW[l].shape), g, lb[l + 1], la[l], Fs[l], float("nan"),
                              float(W.mean()), float(taus[l]),
                              (absW[l] > 0).sum(1).astype(np.int64), (absW[l] > 0).sum(0).astype(np.int64),
                              feat, True, kind))
    return LimitGraphons(out, "synflow", float(density), scope,
                         {"iterations": E, "schedule": schedule, "resolution": resolution, "recursion": True})


def _finish_values(W: np.ndarray, kind: str):
    """(graphon, feature density or None) of grid values W, rows/cols sorted by degree."""
    W = np.clip(W, 0.0, 1.0)
    if kind == "input":
        g = InputGraphon(W[np.argsort(-W.mean(1), kind="stable")])
        return g, g.pixel_density()
    if kind == "readout":
        return StepGraphon(W[:, np.argsort(-W.mean(0), kind="stable")]), None
    ro = np.argsort(-W.mean(1), kind="stable")
    co = np.argsort(-W.mean(0), kind="stable")
    return StepGraphon(W[np.ix_(ro, co)]), None


# ------------------------------------------------------- comparison helper
def block_means(graphon: Any, n_out: int, n_in: int, K: int = 64, K_in: int | None = None,
                sort_cols: bool = True) -> np.ndarray:
    """The block averages of ``graphon`` at width (n_out, n_in) on SAS's blocks.

    ``W(u_i, v_j)`` at the neuron positions averaged over the blocks with edges
    ``floor(b n / K)`` (rows; columns likewise with ``K_in``, or one block per
    column when ``sort_cols`` is False): the quantity a SAS estimate (K_out,
    K_in) of masks sampled from a degree-sorted ``graphon`` estimates.
    Returns float64 (K, K_in).
    """
    from .._masks import block_edges
    from ..graphon.objects import as_graphon

    g = as_graphon(graphon)
    M = g.matrix(n_out, n_in)
    re = block_edges(n_out, K)
    if not sort_cols:
        K_in = n_in
    ce = block_edges(n_in, K if K_in is None else K_in, "K_in")
    rows = np.add.reduceat(M, re[:-1], axis=0) / np.diff(re)[:, None]
    return np.add.reduceat(rows, ce[:-1], axis=1) / np.diff(ce)[None, :]
