"""Distances between graphon estimates (docs/graphons.md, "Distances between estimates").

* :func:`histogram_distance` — sqrt(sum_ab (H[a,b] - H_ref[a,b])^2), raw or
  K-normalised (the paper's proxy for the cut distance);
* :func:`cut_norm` — ||D||_cut = max_{S,T} |sum_{S x T} D| / (K_out K_in) of
  D = H - H_ref as step functions on equal blocks; exact by enumeration when
  min(K_out, K_in) <= 20, otherwise a lower bound by alternating maximisation
  with random restarts (``CutNorm.exact`` says which);
* :func:`degree_profile_distance` — half the L1 distance between sorted
  normalised degree profiles, per side (a lower bound of the cut distance);
* :func:`hom_distance` — differences of bipartite homomorphism densities.

Note that estimates are compared *aligned* (both sorted by degree): the cut
norm of H - H_ref is an upper bound of the cut *distance*, which minimises
over measure-preserving relabelings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from .._validation import MAX_STEPS, check_float, check_int, check_seed, finite_array
from .stats import degree_profile, hom_densities

__all__ = [
    "CutNorm",
    "histogram_distance",
    "cut_norm",
    "cut_norm_reference",
    "cut_distance",
    "degree_profile_distance",
    "hom_distance",
    "EXACT_CUT_MAX",
]

EXACT_CUT_MAX = 20  # enumerate 2^min(K_out, K_in) subsets up to this size


def _as_H(name: str, x: Any) -> np.ndarray:
    if hasattr(x, "H") and not isinstance(x, np.ndarray):
        x = x.H
    arr = finite_array(name, x)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (K_out, K_in) matrix; got shape {arr.shape}")
    return arr


def _pair(H: Any, H_ref: Any, max_value: Any = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Two estimates of one shape with values in [0, max_value] (block densities
    of masks lie in [0, 1]; variance graphons pass their own bound)."""
    a, b = _as_H("H", H), _as_H("H_ref", H_ref)
    top = check_float("max_value", max_value, min_value=0.0, min_inclusive=False) if max_value != np.inf else np.inf
    for name, x in (("H", a), ("H_ref", b)):
        if x.min() < 0.0 or x.max() > top:
            raise ValueError(f"{name} must hold values in [0, {top:g}] (block densities); "
                             f"got values in [{x.min():.6g}, {x.max():.6g}]")
    if a.shape != b.shape:
        raise ValueError(f"H and H_ref must have the same shape (same K); got {a.shape} and {b.shape}")
    return a, b


def histogram_distance(H: Any, H_ref: Any, normalized: bool = False, *, max_value: float = 1.0) -> float:
    """sqrt(sum_ab (H[a,b] - H_ref[a,b])^2); with ``normalized`` divided by K
    (sqrt(K_out K_in) for a rectangular estimate, which is K when square).

    H, H_ref: (K_out, K_in) arrays or SAS results, values in [0, ``max_value``]
    (block densities: 1; ``np.inf`` for nonnegative variance graphons); a value
    outside is a ValueError naming the array.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import histogram_distance
    >>> histogram_distance(np.full((2, 2), 0.5), np.full((2, 2), 0.25))
    0.5
    """
    a, b = _pair(H, H_ref, max_value)
    d = float(np.sqrt(np.sum((a - b) ** 2)))
    return d / float(np.sqrt(a.shape[0] * a.shape[1])) if normalized else d


@dataclass(frozen=True)
class CutNorm:
    """A cut norm value: ``exact`` True when found by enumeration, else a lower
    bound (the best of ``restarts`` alternating maximisations). ``rows`` and
    ``cols`` are bool masks of the maximising sets S and T."""

    value: float
    exact: bool
    rows: np.ndarray = field(repr=False)
    cols: np.ndarray = field(repr=False)
    method: str = ""

    def __float__(self) -> float:
        return self.value


def _best_cols(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For partial sums P (batch, m): best |sum over T| and its sign choice."""
    pos = np.where(P > 0, P, 0.0).sum(axis=1)
    neg = -np.where(P < 0, P, 0.0).sum(axis=1)
    return np.maximum(pos, neg), pos >= neg


def _cut_exact(D: np.ndarray, chunk: int = 1 << 15) -> tuple[float, np.ndarray, np.ndarray]:
    """Enumerate every subset S of the rows (D has the smaller side as rows)."""
    k, m = D.shape
    best, best_s = -1.0, 0
    total = 1 << k
    bits = np.arange(k, dtype=np.int64)
    for start in range(0, total, chunk):
        idx = np.arange(start, min(total, start + chunk), dtype=np.int64)
        S = ((idx[:, None] >> bits[None, :]) & 1).astype(np.float64)  # (chunk, k)
        P = S @ D  # (chunk, m): column partial sums for each S
        vals, _ = _best_cols(P)
        i = int(np.argmax(vals))
        if vals[i] > best:
            best, best_s = float(vals[i]), int(idx[i])
    s = ((best_s >> bits) & 1).astype(bool)
    p = s.astype(np.float64) @ D
    pos, neg = p[p > 0].sum(), -p[p < 0].sum()
    t = p > 0 if pos >= neg else p < 0
    return best, s, t


def _cut_alternating(D: np.ndarray, restarts: int, seed: int | None, max_iter: int = 100):
    """Alternating maximisation over 0/1 indicator vectors, both signs, vectorised over restarts."""
    rng = np.random.default_rng(seed)
    k, m = D.shape
    best, best_s, best_t = -1.0, None, None
    for sign in (1.0, -1.0):
        Ds = sign * D
        T = rng.random((m, restarts)) < 0.5  # random initial column sets
        for _ in range(max_iter):
            S = (Ds @ T) > 0  # best rows for these columns
            T_new = (Ds.T @ S) > 0  # best columns for these rows
            if np.array_equal(T_new, T):
                break
            T = T_new
        S = (Ds @ T) > 0
        vals = np.einsum("kr,km,mr->r", S.astype(np.float64), Ds, T.astype(np.float64))
        r = int(np.argmax(vals))
        if vals[r] > best:
            best, best_s, best_t = float(vals[r]), S[:, r].copy(), T[:, r].copy()
    return max(best, 0.0), best_s, best_t


def cut_norm(
    D: Any,
    *,
    exact: bool | None = None,
    restarts: int = 200,
    seed: int | None = 0,
) -> CutNorm:
    """Cut norm of a step function D (K_out, K_in) on equal blocks:
    max over row sets S and column sets T of |sum_{a in S, b in T} D[a, b]| / (K_out K_in).

    ``exact=None`` enumerates all 2^min(K_out, K_in) subsets of the smaller
    side when min(K_out, K_in) <= 20 (for fixed S the best T takes every column
    whose partial sum has the sign of the total) and otherwise returns a lower
    bound from alternating maximisation (S = {D t > 0}, T = {D^T s > 0}, and the
    same for -D) with ``restarts`` random starts (deterministic for a seed).
    ``exact=True`` forces enumeration (at most 2^24 subsets), ``exact=False``
    forces the bound. D must be real (complex input is a TypeError naming D).
    """
    D = _as_H("D", D)
    restarts = check_int("restarts", restarts, min_value=1, max_value=MAX_STEPS)
    seed = check_seed(seed)
    if exact is not None and not isinstance(exact, (bool, np.bool_)):
        raise TypeError(f"exact must be None or a bool; got {type(exact).__name__}")
    k_small = min(D.shape)
    if exact is None:
        exact = k_small <= EXACT_CUT_MAX
    if exact and k_small > 24:
        raise ValueError(f"exact cut norm enumerates 2^{k_small} subsets; use exact=False (min side <= 24 for exact)")
    transposed = D.shape[0] > D.shape[1]
    Dk = D.T if transposed else D
    if exact:
        val, s, t = _cut_exact(Dk)
        method = "enumeration"
    else:
        val, s, t = _cut_alternating(Dk, restarts, seed)
        method = f"alternating maximisation, {restarts} restarts (lower bound)"
    rows, cols = (t, s) if transposed else (s, t)
    return CutNorm(float(val) / D.size + 0.0, bool(exact), rows, cols, method)


def cut_norm_reference(D: Any) -> float:
    """Brute force over every pair (S, T) of subsets (tiny D only, <= 12 per side)."""
    D = _as_H("D", D)
    if max(D.shape) > 12:
        raise ValueError(f"D is too large for brute force (max side 12); got shape {D.shape}")
    best = 0.0
    for s in product((0.0, 1.0), repeat=D.shape[0]):
        for t in product((0.0, 1.0), repeat=D.shape[1]):
            best = max(best, abs(float(np.asarray(s) @ D @ np.asarray(t))))
    return best / D.size


def cut_distance(H: Any, H_ref: Any, *, max_value: float = 1.0, **kwargs: Any) -> CutNorm:
    """:func:`cut_norm` of ``H - H_ref`` (aligned estimates; see module note);
    values in [0, ``max_value``] as in :func:`histogram_distance`."""
    a, b = _pair(H, H_ref, max_value)
    return cut_norm(a - b, **kwargs)


def _l1_sorted_steps(v1: np.ndarray, w1: np.ndarray, v2: np.ndarray, w2: np.ndarray) -> float:
    """Integral of |f - g| over [0, 1] for step functions with values v and widths w."""
    e1 = np.concatenate([[0.0], np.cumsum(w1)])
    e2 = np.concatenate([[0.0], np.cumsum(w2)])
    e1[-1] = e2[-1] = 1.0
    edges = np.union1d(e1, e2)
    mids = 0.5 * (edges[:-1] + edges[1:])
    f = v1[np.clip(np.searchsorted(e1, mids, side="right") - 1, 0, len(v1) - 1)]
    g = v2[np.clip(np.searchsorted(e2, mids, side="right") - 1, 0, len(v2) - 1)]
    return float(np.sum(np.abs(f - g) * np.diff(edges)))


def degree_profile_distance(a: Any, b: Any) -> dict[str, float]:
    """Half the L1 distance between sorted normalised degree profiles, per side.

    ``a``, ``b``: masks (any sizes) or step graphons / SAS results / block
    matrices. Returns ``{"rows": ..., "cols": ...}``; each is a lower bound of
    the cut distance between the two graphons.
    """
    pa, pb = degree_profile(a), degree_profile(b)
    return {side: 0.5 * _l1_sorted_steps(*pa[side], *pb[side]) for side in ("rows", "cols")}


def hom_distance(a: Any, b: Any) -> dict[str, float]:
    """Absolute differences |t(F, a) - t(F, b)| for the five motifs of
    :func:`~gntk_fast.graphon.stats.hom_densities`."""
    ha, hb = hom_densities(a).as_dict(), hom_densities(b).as_dict()
    return {k: abs(ha[k] - hb[k]) for k in ha}
