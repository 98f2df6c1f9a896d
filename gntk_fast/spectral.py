"""Spectral metrics of kernel matrices and linearised training (docs/graphon-ntk.md section 5).

:func:`spectral_metrics` returns a :class:`SpectralMetrics`; for eigenvalues
lambda_1 >= ... >= lambda_N >= 0 of a symmetric PSD kernel Theta (N x N):

* ``alpha``: minus the least-squares slope of log lambda_k against log k over
  k = k_lo..k_hi (``fit_range``; default k = 1..max(2, m // 2) where m is the
  number of nonzero eigenvalues, lambda_k > N eps lambda_1), with the fit's
  ``alpha_r2`` (scipy.stats.linregress);
* ``effective_rank`` = trace / lambda_1 (0 for the zero kernel);
  ``spectral_gap`` = lambda_1 / lambda_2;
* ``energy_concentration`` = sum_{i <= k} lambda_i / trace;
* ``condition_number`` = lambda_1 / lambda_N (inf where lambda_N = 0 < lambda_1;
  None for the zero kernel);
* ``alignment`` = <Theta, Y Y^T>_F / (||Theta||_F ||Y Y^T||_F) with Y the
  one-hot labels centred over the samples (or the given target matrix, centred).

Checks: a kernel that is not square, not finite or not symmetric (to
sqrt(eps) relative) raises ValueError; eigenvalues below -sqrt(eps) lambda_1
mean the matrix is not PSD (ValueError); smaller negative round-off is clipped
to 0 with a warning (the count is in ``clipped``). ``eps`` is the machine
epsilon of the kernel's own dtype (float32 kernels carry float32 round-off;
integer/bool kernels count as float64).

``method="lanczos"`` computes only the top ``n_eigs`` eigenvalues
(scipy.sparse.linalg.eigsh) and sets ``partial=True``: the trace comes from the
diagonal, so effective rank and energy concentration stay exact; alpha is
fitted on the computed eigenvalues only; the condition number needs
lambda_N and is None (the reason is in ``notes``). Lanczos needs N >= 3
(a smaller kernel is a ValueError naming it; use ``method="full"``).

No returned field is ever NaN: a metric that is undefined for the given
kernel (0/0 for the zero kernel, a gap for N = 1) is None, with the reason in
``notes``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._validation import MAX_STEPS, check_choice, check_float, check_int, check_memory

__all__ = ["SpectralMetrics", "spectral_metrics", "predicted_loss", "label_matrix", "loglog_slope"]


@dataclass
class SpectralMetrics:
    """Spectral summary of one kernel matrix (see module docstring).

    ``eigenvalues`` are descending (all N, or the top ``n_eigs`` when
    ``partial``); metrics that could not be computed are None and ``notes``
    says why.
    """

    eigenvalues: np.ndarray
    n: int
    trace: float
    alpha: float | None
    alpha_r2: float | None
    fit_range: tuple[int, int] | None
    effective_rank: float
    spectral_gap: float | None
    energy_concentration: float | None
    k: int
    condition_number: float | None
    alignment: float | None
    partial: bool = False
    method: str = "full"
    clipped: int = 0
    notes: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (eigenvalues as a list)."""
        d = asdict(self)
        d["eigenvalues"] = [float(x) for x in self.eigenvalues]
        d["fit_range"] = list(self.fit_range) if self.fit_range else None
        return d

    def rows(self) -> list[tuple[str, str]]:
        """(name, formatted value) rows for a table."""

        def fmt(v):
            if v is None:
                return "n/a"
            if isinstance(v, float):
                return "inf" if math.isinf(v) else f"{v:.6g}"
            return str(v)

        fr = f" (k={self.fit_range[0]}..{self.fit_range[1]})" if self.fit_range else ""
        return [
            ("N", str(self.n)),
            ("method", self.method + (" (partial spectrum)" if self.partial else "")),
            ("lambda_1", fmt(float(self.eigenvalues[0]))),
            ("trace", fmt(self.trace)),
            ("decay exponent alpha" + fr, fmt(self.alpha)),
            ("alpha fit R^2", fmt(self.alpha_r2)),
            ("effective rank (trace/lambda_1)", fmt(self.effective_rank)),
            ("spectral gap (lambda_1/lambda_2)", fmt(self.spectral_gap)),
            (f"energy concentration (top {self.k})", fmt(self.energy_concentration)),
            ("condition number", fmt(self.condition_number)),
            ("kernel-target alignment", fmt(self.alignment)),
        ]

    def table(self) -> str:
        """The metrics as an aligned two-column text table (notes appended)."""
        rows = self.rows()
        w = max(len(r[0]) for r in rows)
        lines = [f"{name:<{w}}  {val}" for name, val in rows]
        lines += [f"note: {k}: {v}" for k, v in self.notes.items()]
        return "\n".join(lines)


def _as_matrix(kernel: Any) -> tuple[np.ndarray, float]:
    """``(K, eps)``: the checked kernel symmetrised in float64, and the machine
    epsilon of its input dtype (the scale of its round-off)."""
    try:
        import torch

        if isinstance(kernel, torch.Tensor):
            kernel = kernel.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(kernel, np.ndarray):
        raise TypeError(f"kernel must be a numpy array or torch tensor; got {type(kernel).__name__}")
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] < 1:
        raise ValueError(f"kernel must be a square (N, N) matrix with N >= 1; got shape {kernel.shape}")
    if not np.issubdtype(kernel.dtype, np.floating):
        if np.issubdtype(kernel.dtype, np.integer) or kernel.dtype == bool:
            kernel = kernel.astype(np.float64)
        else:
            raise TypeError(f"kernel must be real-valued; got dtype {kernel.dtype}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"kernel contains {int((~np.isfinite(kernel)).sum())} non-finite value(s) (NaN or inf)")
    scale = float(np.abs(kernel).max())
    tol = math.sqrt(np.finfo(kernel.dtype).eps) * max(scale, np.finfo(kernel.dtype).tiny)
    asym = float(np.abs(kernel - kernel.T).max())
    if asym > tol:
        raise ValueError(f"kernel must be symmetric; max |K - K^T| = {asym:.3g} > {tol:.3g}")
    eps = float(np.finfo(kernel.dtype).eps)
    return 0.5 * (kernel.astype(np.float64) + kernel.astype(np.float64).T), eps


def label_matrix(y: Any, n: int, *, center: bool) -> np.ndarray:
    """Targets as an (n, C) float matrix: int labels (n,) -> one-hot over the
    classes 0..max; a float vector (n,) -> one column; a matrix (n, C) as is.
    ``center`` subtracts the column means."""
    try:
        import torch

        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    y = np.asarray(y)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) (labels) or ({n}, C) (targets); got {y.shape}")
    if y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        if y.min() < 0:
            raise ValueError(f"y labels must be >= 0; got min {int(y.min())}")
        Y = np.zeros((n, int(y.max()) + 1))
        Y[np.arange(n), y.astype(np.int64)] = 1.0
    elif np.issubdtype(y.dtype, np.number):
        Y = y.astype(np.float64).reshape(n, -1)
    else:
        raise TypeError(f"y must be numeric; got dtype {y.dtype}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("y contains non-finite values (NaN or inf)")
    return Y - Y.mean(0, keepdims=True) if center else Y


def _clip(ev: np.ndarray, lam_max: float, eps: float) -> tuple[np.ndarray, int]:
    tol = math.sqrt(eps) * max(lam_max, 0.0)
    if ev.size and ev.min() < -tol:
        raise ValueError(
            f"kernel is not positive semi-definite: smallest eigenvalue {ev.min():.4g} < -{tol:.3g} "
            f"(sqrt(eps) x lambda_1)"
        )
    neg = int((ev < 0).sum())
    if neg:
        warnings.warn(
            f"kernel has {neg} slightly negative eigenvalue(s) (min {ev.min():.3g}, round-off); clipped to 0",
            RuntimeWarning,
            stacklevel=3,
        )
        ev = np.maximum(ev, 0.0)
    return ev, neg


def _eigenvalues(K: np.ndarray, method: str, n_eigs: Any, notes: dict[str, str]) -> tuple[np.ndarray, bool]:
    """``(ev, partial)``: the descending eigenvalues (all N for "full", the top
    ``n_eigs`` for "lanczos"), before clipping."""
    n = K.shape[0]
    if method == "full":
        if n_eigs is not None:
            raise ValueError(f"n_eigs is only used by method='lanczos'; got n_eigs={n_eigs!r} with method='full'")
        return np.linalg.eigvalsh(K)[::-1].copy(), False
    if n < 3:
        raise ValueError(f"kernel must be at least 3 x 3 for method='lanczos'; got {n} x {n} (use method='full')")
    if n_eigs is None:
        n_eigs = min(n - 1, 100)
    n_eigs = check_int("n_eigs", n_eigs, min_value=1, max_value=n - 1)
    notes["condition_number"] = "needs lambda_N, not computed by method='lanczos' (use method='full')"
    notes["alpha"] = f"fitted on the top {n_eigs} eigenvalues computed by Lanczos"
    if not K.any():  # the zero kernel: ARPACK cannot start (K v = 0 for every start vector)
        return np.zeros(n_eigs), True
    from scipy.sparse.linalg import eigsh

    ev = eigsh(K, k=n_eigs, which="LA", return_eigenvectors=False)
    return np.sort(ev)[::-1].copy(), True


def _fit_bounds(fit_range: Any, nz: int, n_ev: int, partial: bool) -> tuple[int, int]:
    """The 1-based inclusive (k_lo, k_hi) of the decay fit from ``fit_range``
    (default 1..max(2, nz // 2) with nz the number of nonzero eigenvalues)."""
    if fit_range is None:
        return 1, max(2, nz // 2)
    if isinstance(fit_range, (int, np.integer)) and not isinstance(fit_range, bool):
        lo, hi = 1, check_int("fit_range", fit_range, min_value=2)
    else:
        try:
            lo, hi = (int(v) for v in fit_range)
        except (TypeError, ValueError):
            raise TypeError(f"fit_range must be None, an int k_max or a pair (k_lo, k_hi); got {fit_range!r}") from None
        if not 1 <= lo < hi:
            raise ValueError(f"fit_range must satisfy 1 <= k_lo < k_hi; got {fit_range!r}")
    if hi > n_ev and not partial:
        raise ValueError(f"fit_range k_hi = {hi} exceeds the number of eigenvalues {n_ev}")
    return lo, hi


def _decay_exponent(
    ev: np.ndarray, lo: int, hi: int, zero_tol: float, nz: int, notes: dict[str, str]
) -> tuple[float | None, float | None, tuple[int, int] | None]:
    """``(alpha, r2, (k_lo, k_hi used))``: the log-log least-squares fit over
    k = lo..min(hi, len(ev)), or Nones (with a note) without 2 positive eigenvalues there."""
    hi_eff = min(hi, len(ev))
    seg = ev[lo - 1:hi_eff]
    if hi_eff - lo + 1 < 2 or np.any(seg <= zero_tol) or ev[0] <= 0:
        notes["alpha"] = (
            f"needs >= 2 positive eigenvalues in k = {lo}..{hi_eff}; the spectrum has {nz} nonzero eigenvalue(s)"
        )
        return None, None, None
    from scipy.stats import linregress

    kk = np.arange(lo, hi_eff + 1, dtype=np.float64)
    fit = linregress(np.log(kk), np.log(seg))
    r2 = float(fit.rvalue**2) if np.isfinite(fit.rvalue) else 1.0
    return float(-fit.slope), r2, (lo, hi_eff)


def _ratios(ev: np.ndarray, trace: float, k: int, partial: bool, notes: dict[str, str]) -> dict[str, Any]:
    """Effective rank, spectral gap, energy concentration and condition number
    (None with a note where undefined; the zero kernel has effective rank 0)."""
    lam1 = float(ev[0])
    out: dict[str, Any] = {"k": k}
    if lam1 > 0:
        out["effective_rank"] = trace / lam1
    else:
        out["effective_rank"] = 0.0
        notes["effective_rank"] = "lambda_1 = 0 (zero kernel): rank 0"
    out["spectral_gap"] = None
    if len(ev) < 2:
        notes["spectral_gap"] = "needs N >= 2"
    elif lam1 <= 0:
        notes["spectral_gap"] = "lambda_1 = lambda_2 = 0 (zero kernel)"
    else:
        out["spectral_gap"] = lam1 / float(ev[1]) if ev[1] > 0 else float("inf")
    out["energy_concentration"] = float(ev[: out["k"]].sum() / trace) if trace > 0 else None
    if trace <= 0:
        notes["energy_concentration"] = "trace is 0"
    out["condition_number"] = None
    if not partial:
        if lam1 <= 0:
            notes["condition_number"] = "lambda_1 = lambda_N = 0 (zero kernel)"
        else:
            out["condition_number"] = lam1 / float(ev[-1]) if ev[-1] > 0 else float("inf")
    return out


def _alignment(K: np.ndarray, y: Any, notes: dict[str, str]) -> float | None:
    """Kernel-target alignment with the centred targets of ``y`` (None without y)."""
    if y is None:
        return None
    Y = label_matrix(y, K.shape[0], center=True)
    yy = np.linalg.norm(Y.T @ Y)
    kn = np.linalg.norm(K)
    if yy == 0 or kn == 0:
        notes["alignment"] = "y (centred) or the kernel is zero"
        return None
    return float(np.trace(Y.T @ K @ Y) / (kn * yy))


def spectral_metrics(
    kernel: Any,
    y: Any = None,
    k: int | None = None,
    fit_range: Any = None,
    method: str = "full",
    n_eigs: int | None = None,
) -> SpectralMetrics:
    """Spectral metrics of a symmetric PSD kernel matrix (see module docstring).

    Parameters
    ----------
    kernel : (N, N) array or tensor; N >= 1 for "full", N >= 3 for "lanczos"
    y : labels (N,) ints, or targets (N,) / (N, C) floats, or None (no alignment)
    k : the top-k of the energy concentration: an int in [1, N] (at most
        ``n_eigs`` for "lanczos"); None (default) is min(5, the eigenvalues computed)
    fit_range : None, int k_max (fit k = 1..k_max) or (k_lo, k_hi), 1-based inclusive
    method : "full" (numpy eigh) or "lanczos" (top ``n_eigs`` by scipy eigsh)
    n_eigs : eigenvalues for "lanczos", an int in [1, N - 1] (default min(N - 1, 100));
        must be None for "full"

    Degenerate kernels give finite numbers or None, never NaN: a 1 x 1 kernel
    has effective rank 1, condition number 1 and no gap or alpha; the zero
    kernel (either method) has effective rank 0 and no gap, alpha, energy
    concentration, condition number or alignment (``notes`` says why).
    """
    K, eps = _as_matrix(kernel)
    n = K.shape[0]
    if k is not None:
        k = check_int("k", k, min_value=1, max_value=n)
    method = check_choice("method", method, ("full", "lanczos"))
    notes: dict[str, str] = {}
    trace = float(np.trace(K))
    ev, partial = _eigenvalues(K, method, n_eigs, notes)
    if k is None:
        k = min(5, len(ev))
    elif k > len(ev):
        raise ValueError(f"k must be <= n_eigs = {len(ev)} (the eigenvalues computed by 'lanczos'); got {k}")
    ev, clipped = _clip(ev, max(float(ev[0]), float(np.abs(K).max())), eps)
    lam1 = float(ev[0])
    zero_tol = n * eps * lam1  # eigenvalues at or below are round-off zeros (eps of the kernel's dtype)
    nz = int((ev > zero_tol).sum()) if lam1 > 0 else 0
    lo, hi = _fit_bounds(fit_range, nz, len(ev), partial)
    alpha, r2, used = _decay_exponent(ev, lo, hi, zero_tol, nz, notes)
    ratios = _ratios(ev, trace, k, partial, notes)
    return SpectralMetrics(
        eigenvalues=ev,
        n=n,
        trace=trace,
        alpha=alpha,
        alpha_r2=r2,
        fit_range=used,
        effective_rank=float(ratios["effective_rank"]),
        spectral_gap=ratios["spectral_gap"],
        energy_concentration=ratios["energy_concentration"],
        k=ratios["k"],
        condition_number=ratios["condition_number"],
        alignment=_alignment(K, y, notes),
        partial=partial,
        method=method,
        clipped=clipped,
        notes=notes,
    )


def predicted_loss(kernel: Any, y: Any, lr: float, steps: Any, *, f0: Any = None) -> np.ndarray:
    """Predicted training loss of the linearised network under gradient flow.

    With Theta = sum_k lambda_k u_k u_k^T and initial residual r0 = f0 - Y
    (f0 = 0 by default: the infinite-width network's mean output), the
    residual at time t is exp(-lr Theta t) r0 and::

        loss(t) = (1 / 2N) sum_k exp(-2 lr lambda_k t) ||u_k^T r0||^2

    (summed over the target columns). Discrete gradient descent with step lr
    matches this at t = number of steps while lr lambda_1 << 1.

    Parameters
    ----------
    kernel : (N, N) symmetric PSD matrix (training-set kernel)
    y : int labels (N,) -> one-hot targets (not centred), or targets (N,) / (N, C)
    lr : float > 0
    steps : int T -> times t = 0, 1, ..., T; or a 1-D array of times >= 0
    f0 : optional initial outputs, same shape as the target matrix

    Returns
    -------
    loss : (len(t),) float64 array
    """
    K, eps = _as_matrix(kernel)
    n = K.shape[0]
    lr = check_float("lr", lr, min_value=0.0, min_inclusive=False)
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool):
        steps = check_int("steps", steps, min_value=0, max_value=MAX_STEPS)
        check_memory("steps (a (steps + 1) x N matrix of decays)", 8 * (steps + 1) * n)
        t = np.arange(steps + 1, dtype=np.float64)
    else:
        t = np.asarray(steps, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise ValueError(f"steps must be an int or a non-empty 1-D array of times; got shape {t.shape}")
        if not np.all(np.isfinite(t)) or t.min() < 0:
            raise ValueError("steps (times) must be finite and >= 0")
        check_memory("steps (a len(steps) x N matrix of decays)", 8 * t.size * n)
    Y = label_matrix(y, n, center=False)
    r0 = -Y
    if f0 is not None:
        try:
            F = np.asarray(f0.detach().cpu().numpy() if hasattr(f0, "detach") else f0, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"f0 must be a numeric array of the targets' shape {Y.shape}; got {type(f0).__name__}") from None
        if F.size != Y.size or F.ndim == 0 or F.shape[0] != n:
            raise ValueError(f"f0 must have the targets' shape {Y.shape}; got {F.shape}")
        F = F.reshape(n, -1)
        if F.shape != Y.shape:
            raise ValueError(f"f0 must have the targets' shape {Y.shape}; got {F.shape}")
        if not np.all(np.isfinite(F)):
            raise ValueError("f0 contains non-finite values")
        r0 = F - Y
    lam, U = np.linalg.eigh(K)
    lam, _ = _clip(lam, max(float(lam.max()), float(np.abs(K).max())), eps)
    proj = ((U.T @ r0) ** 2).sum(1)  # (N,)
    return np.exp(-2.0 * lr * np.outer(t, lam)) @ proj / (2.0 * n)


def loglog_slope(x: Any, y: Any, *, missing: Any = None) -> Any:
    """Least-squares slope of ``log y`` against ``log x``: the exponent of a power law ``y ~ x^slope``.

    The package's one log-log fit (convergence rates against width, time and
    memory scaling). Only the pairs with both values finite and positive
    enter the fit.

    Parameters
    ----------
    x, y : sequences of numbers (None counts as missing)
    missing : the value returned when fewer than two usable pairs remain or
        their ``x`` values are all equal (default None; e.g. ``float("nan")``).

    Returns
    -------
    float, or ``missing``.

    Examples
    --------
    >>> from gntk_fast.spectral import loglog_slope
    >>> round(loglog_slope([1, 2, 4, 8], [1.0, 0.5, 0.25, 0.125]), 12)
    -1.0
    >>> loglog_slope([1, 2], [1.0, float("nan")]) is None
    True
    """
    a = np.asarray([np.nan if v is None else v for v in x], dtype=np.float64)
    b = np.asarray([np.nan if v is None else v for v in y], dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"x and y must be two sequences of the same length; got shapes {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if ok.sum() < 2 or np.ptp(np.log(a[ok])) == 0:
        return missing
    return float(np.polyfit(np.log(a[ok]), np.log(b[ok]), 1)[0])
