"""More graphon estimators for bipartite (rectangular) masks, behind SAS's interface.

Every estimator takes a mask of shape (n_out, n_in) (anything
:func:`gntk_fast.graphon.sas` takes, bool/0-1 arrays, tensors, packed with
``n_in``) and returns a :class:`~gntk_fast.graphon.SASResult`: the estimate
``H`` on blocks of the rows and columns sorted by decreasing degree (stable,
exactly SAS's order and permutations), so ``to_graphon()``, the distances and
the plots work unchanged. Only how ``H`` is made differs:

* :func:`usvt` - universal singular value thresholding (Chatterjee 2015) for
  a rectangular matrix: ``P = M V_r V_r^T`` with V_r the right singular
  vectors of M whose singular values exceed
  ``tau = (1 + eta) (sqrt(n_out) + sqrt(n_in)) sqrt(p (1 - p))`` (p the mask's
  density; (sqrt(n) + sqrt(m)) sigma is the edge of the noise's spectrum),
  clipped to [0, 1], then averaged over SAS's K x K blocks (``K=None``:
  one block per row and column, the full n_out x n_in estimate).
  Computed from the eigen-decomposition of the smaller Gram matrix, only
  the eigenvalues above tau^2 (scipy ``eigh(subset_by_value=...)``).
* :func:`network_histogram` - the network histogram (Olhede and Wolfe 2014)
  on the degree ordering: equal-size blocks of the sorted rows and columns
  (SAS without smoothing) with the block count chosen automatically by
  two-fold cross-validation over entries (ours): the entries are split at
  random into two halves; for each candidate K the block means of one half
  predict the other; the K with the least mean squared prediction error
  (over both folds) is used on the whole mask. The noise variance adds the
  same constant for every K, so this minimises an unbiased estimate of the
  estimator's risk at half the data. Olhede and Wolfe's likelihood search
  over labellings is not done: the labelling is the degree order.
* :func:`largest_gap` - the "largest gap" estimator (Channarond, Daudin and
  Robin 2012): rows sorted by degree are cut at the K_out - 1 largest gaps
  between consecutive normalised degrees (columns likewise), giving blocks
  of unequal sizes; H is the block means. ``row_edges``/``col_edges`` are
  those cuts. Consistent for block-model graphons with distinct block
  degrees; a smooth graphon has no gaps, so its blocks are wherever the
  noise puts the largest spacings.

Plain reference twins (loops, full SVD): :mod:`gntk_fast.graphon.reference`.
Errors and times on the same masks: bench/bench_estimators.py
(bench/results/estimators.json).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._progress import check_progress, progress_bar
from .._validation import check_float, check_int, check_seed
from ._masks import block_edges, coerce_mask, descending_stable_order
from .sas import SASResult

__all__ = ["usvt", "network_histogram", "largest_gap", "ESTIMATORS", "estimate", "default_k_grid", "estimate_error"]


# ------------------------------------------------------------------ common
def _dense(mask: Any, n_in: int | None, name: str = "mask"):
    """(M float64 (n_out, n_in), row degrees, col degrees, row perm, col perm)."""
    from ._masks import check_uint8_values

    m = coerce_mask(mask, n_in=n_in, name=name)
    if not m.checked:
        check_uint8_values(name, m.data)
    M = np.unpackbits(m.data, axis=1, count=m.n_in) if m.packed else m.data
    M = np.asarray(M, dtype=np.float64)
    r = M.sum(1).astype(np.int64)
    c = M.sum(0).astype(np.int64)
    return M, r, c, descending_stable_order(r), descending_stable_order(c)


def _blocks_mean(S: np.ndarray, re: np.ndarray, ce: np.ndarray) -> np.ndarray:
    """Means of the sorted matrix S over the blocks of integer edges re x ce."""
    rows = np.add.reduceat(S, re[:-1], axis=0)
    return np.add.reduceat(rows, ce[:-1], axis=1) / np.outer(np.diff(re), np.diff(ce))


def _result(H, rp, cp, r, c, re, ce, shape) -> SASResult:
    H = np.asarray(H, dtype=np.float64)
    return SASResult(H, H, rp, cp, r, c, np.asarray(re, np.int64), np.asarray(ce, np.int64), tuple(shape), True,
                     None, 1, None)


def _blocks_on_side(name: str, K: Any, n: int) -> int:
    K = check_int(name, K, min_value=1)
    if K > n:
        raise ValueError(f"{name}={K} is larger than the number of neurons on that side (n={n}); use {name} <= {n}")
    return K


# -------------------------------------------------------------------- USVT
def usvt_threshold(n_out: int, n_in: int, p: float, eta: float) -> float:
    """``(1 + eta) (sqrt(n_out) + sqrt(n_in)) sqrt(p (1 - p))``."""
    return (1.0 + eta) * (np.sqrt(n_out) + np.sqrt(n_in)) * np.sqrt(max(p * (1.0 - p), 0.0))


def usvt(mask: Any, K: int | None = 64, K_in: int | None = None, *, eta: float = 0.01,
         n_in: int | None = None) -> SASResult:
    """USVT estimate (see the module docstring), returned on SAS's blocks.

    Parameters
    ----------
    mask : (n_out, n_in) 0/1 mask (as :func:`gntk_fast.graphon.sas`).
    K, K_in : row and column blocks (K_in defaults to K); ``K=None``: the full
        n_out x n_in estimate (one block per row and column) in sorted order.
    eta : the threshold's margin (>= 0).

    Returns a :class:`SASResult`; ``n_trials`` = 1, no smoothing. The rank kept
    is not stored; :func:`usvt_matrix` returns it with the full estimate.
    """
    P, _, (M, r, c, rp, cp) = _usvt_full(mask, eta, n_in)
    n_out, n_inp = M.shape
    S = P[np.ix_(rp, cp)]
    if K is None:
        re, ce = np.arange(n_out + 1), np.arange(n_inp + 1)
    else:
        K = _blocks_on_side("K", K, n_out)
        Ki = _blocks_on_side("K_in", K if K_in is None else K_in, n_inp)
        re, ce = block_edges(n_out, K), block_edges(n_inp, Ki, "K_in")
    return _result(_blocks_mean(S, re, ce), rp, cp, r, c, re, ce, M.shape)


def _usvt_full(mask, eta, n_in):
    from scipy.linalg import eigh

    eta = check_float("eta", eta, min_value=0.0)
    M, r, c, rp, cp = _dense(mask, n_in)
    n_out, n_inp = M.shape
    p = float(M.mean())
    tau = usvt_threshold(n_out, n_inp, p, eta)
    transpose = n_out < n_inp  # Gram of the smaller side
    A = M.T if transpose else M
    G = A.T @ A  # (m, m), m = the smaller side
    try:
        w, V = eigh(G, subset_by_value=(tau * tau, np.inf))
    except Exception:  # pragma: no cover - LAPACK without the subset driver
        w, V = np.linalg.eigh(G)
        keep = w > tau * tau
        w, V = w[keep], V[:, keep]
    P = A @ V @ V.T
    if transpose:
        P = P.T
    return np.clip(P, 0.0, 1.0), int(len(w)), (M, r, c, rp, cp)


def usvt_matrix(mask: Any, *, eta: float = 0.01, n_in: int | None = None) -> tuple[np.ndarray, int]:
    """The full USVT estimate (n_out, n_in) in the mask's own order and the rank kept."""
    P, rank, _ = _usvt_full(mask, eta, n_in)
    return P, rank


# ------------------------------------------------------ network histogram
def default_k_grid(n_out: int, n_in: int) -> list[int]:
    """Candidate block counts: 1, 2, 3, 4, 6, 8, 12, ... up to min(n_out, n_in) // 2 (at least 1)."""
    top = max(1, min(n_out, n_in) // 2)
    ks = {1}
    k = 2
    while k <= top:
        ks.add(k)
        ks.add(min(top, int(round(k * 1.5))))
        k *= 2
    return sorted(x for x in ks if x <= top)


def _cv_errors(S: np.ndarray, ks: Sequence[int], seed: int, progress: bool | None = None) -> np.ndarray:
    """Mean squared held-out error per candidate K (two folds) on the sorted mask S."""
    rng = np.random.default_rng(seed)
    fold = rng.random(S.shape) < 0.5
    n_out, n_in = S.shape
    errs = np.zeros(len(ks))
    with progress_bar(total=2 * len(ks), desc="network_histogram (K by cross-validation)", unit="fit",
                      progress=progress) as bar:
        for f in (fold, ~fold):
            train = np.where(f, S, 0.0)
            cnt = f.astype(np.float64)
            test = ~f
            for i, K in enumerate(ks):
                re, ce = block_edges(n_out, K), block_edges(n_in, K, "K_in")
                num = np.add.reduceat(np.add.reduceat(train, re[:-1], 0), ce[:-1], 1)
                den = np.add.reduceat(np.add.reduceat(cnt, re[:-1], 0), ce[:-1], 1)
                Hk = np.where(den > 0, num / np.maximum(den, 1), S.mean())
                pred = np.repeat(np.repeat(Hk, np.diff(re), 0), np.diff(ce), 1)
                errs[i] += float(((pred - S)[test] ** 2).sum()) / max(int(test.sum()), 1)
                bar.update()
    return errs / 2


def network_histogram(mask: Any, K: Any = "auto", *, k_grid: Sequence[int] | None = None, seed: int = 0,
                      n_in: int | None = None, progress: bool | None = None) -> SASResult:
    """Network histogram with an automatic block count (see the module docstring).

    Parameters
    ----------
    mask : (n_out, n_in) 0/1 mask.
    K : "auto" (cross-validated; the same K on both sides) or an int (then
        this is SAS without smoothing).
    k_grid : candidate K (default :func:`default_k_grid`).
    seed : seed of the entry split.
    progress : tqdm bar over the cross-validation fits: None (default) shows
        it on a terminal once they have taken 2 s, True always, False never.

    Returns a :class:`SASResult` whose ``H`` is K x K (the chosen K).

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import network_histogram
    >>> mask = np.random.default_rng(0).random((40, 30)) < 0.3
    >>> network_histogram(mask, K=4).H.shape
    (4, 4)
    """
    seed = check_seed(seed, allow_none=False)
    progress = check_progress(progress)
    M, r, c, rp, cp = _dense(mask, n_in)
    n_out, n_inp = M.shape
    S = M[np.ix_(rp, cp)]
    if isinstance(K, str):
        if K != "auto":
            raise ValueError(f"K must be 'auto' or a positive int; got {K!r}")
        ks = default_k_grid(n_out, n_inp) if k_grid is None else [
            _blocks_on_side("k_grid entries", k, min(n_out, n_inp)) for k in k_grid]
        if not ks:
            raise ValueError("k_grid must not be empty")
        K = int(ks[int(np.argmin(_cv_errors(S, ks, seed, progress)))])
    K = _blocks_on_side("K", K, min(n_out, n_inp))
    re, ce = block_edges(n_out, K), block_edges(n_inp, K, "K_in")
    return _result(_blocks_mean(S, re, ce), rp, cp, r, c, re, ce, M.shape)


# ------------------------------------------------------------- largest gap
def _gap_edges(deg_sorted_desc: np.ndarray, K: int) -> np.ndarray:
    """Integer edges cutting a descending degree sequence at its K - 1 largest gaps
    (ties between equal gaps: the earliest positions first)."""
    n = len(deg_sorted_desc)
    gaps = deg_sorted_desc[:-1] - deg_sorted_desc[1:]  # >= 0; gap g sits between positions g and g+1
    order = np.lexsort((np.arange(n - 1), -gaps))  # largest gap first, then by position
    cuts = np.sort(order[: K - 1]) + 1
    return np.concatenate([[0], cuts, [n]]).astype(np.int64)


def largest_gap(mask: Any, K: int = 8, K_in: int | None = None, *, n_in: int | None = None) -> SASResult:
    """The largest-gap estimator (see the module docstring).

    Parameters
    ----------
    mask : (n_out, n_in) 0/1 mask.
    K, K_in : blocks per side (K_in defaults to K); K <= n.

    Returns a :class:`SASResult` with blocks cut at the largest degree gaps
    (``row_edges``/``col_edges`` unequal).
    """
    M, r, c, rp, cp = _dense(mask, n_in)
    n_out, n_inp = M.shape
    K = _blocks_on_side("K", K, n_out)
    Ki = _blocks_on_side("K_in", K if K_in is None else K_in, n_inp)
    re = _gap_edges(r[rp] / n_inp, K)
    ce = _gap_edges(c[cp] / n_out, Ki)
    S = M[np.ix_(rp, cp)]
    return _result(_blocks_mean(S, re, ce), rp, cp, r, c, re, ce, M.shape)


# ------------------------------------------------------------ comparisons
ESTIMATORS = ("sas", "usvt", "network_histogram", "largest_gap")


def estimate(method: str, mask: Any, **kwargs: Any) -> SASResult:
    """Run the estimator named ``method`` (one of :data:`ESTIMATORS`) on ``mask``."""
    from .._validation import check_choice
    from .sas import sas

    method = check_choice("method", method, ESTIMATORS)
    fn = {"sas": sas, "usvt": usvt, "network_histogram": network_histogram, "largest_gap": largest_gap}[method]
    return fn(mask, **kwargs)


def estimate_error(est: SASResult, graphon: Any, grid: int = 256) -> float:
    """RMS distance on a ``grid`` x ``grid`` midpoint grid between the estimate (as a
    step graphon) and the degree-sorted version of ``graphon``.

    The degree-sorted version of W: W(u, v) evaluated at the same fine grid with
    rows and columns rearranged by decreasing row/column mean (a measure-
    preserving relabelling; it is W(1 - u, 1 - v) for a W increasing in both).
    """
    from .objects import as_graphon

    grid = check_int("grid", grid, min_value=2)
    g = as_graphon(graphon)
    T = g.matrix(grid, grid)
    T = T[np.argsort(-T.mean(1), kind="stable")][:, np.argsort(-T.mean(0), kind="stable")]
    E = est.to_graphon().matrix(grid, grid)
    return float(np.sqrt(np.mean((E - T) ** 2)))
