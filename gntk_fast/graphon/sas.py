"""SAS (sorting and smoothing) graphon estimation for bipartite pruning masks.

Spec graphons.md, "SAS": for a mask M of shape (n_out, n_in) (rows = output
neurons of layer l+1, columns = input neurons of layer l)

1. row degrees r = M 1 (kept fan-in), column degrees c = M^T 1 (kept fan-out);
2. rows and columns sorted by degree **descending** with a stable sort (ties
   keep index order), columns only when ``sort_cols`` (an input layer keeps its
   pixel order);
3. sorted rows cut into K_out blocks and columns into K_in blocks at the edges
   ``floor(b * n / K)``, b = 0..K (no row or column dropped when K does not
   divide n; K > n is an error);
4. ``H[a, b]`` = mean of M over block (a, b) (the step-graphon estimate);
5. optional total-variation smoothing of H (scikit-image
   ``denoise_tv_chambolle``; ``smooth`` is its ``weight``: larger = smoother;
   0 or None = off);
6. over trials the estimate is the mean of the per-trial H (smoothing, when
   asked, is applied to that mean).

Implementation: two passes over the mask with nogil Numba kernels
(:mod:`gntk_fast.graphon._sas_kernels`) run on row ranges in parallel
threads. Pass 1 counts row and column degrees (column counts accumulate in
uint8 lanes flushed every 255 rows, so the inner loop is a byte-wide SIMD
add). Pass 2 streams the rows in memory order, adds each into the uint8
accumulator of its sorted row block and folds those into the K_in column
blocks. Bit-packed masks use a 256-entry popcount table for row degrees and
a byte -> 8-lane uint64 table so one add counts 8 columns. The plain numpy twin is :func:`gntk_fast.graphon.reference.sas_reference`;
both give bit-identical results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numba
import numpy as np

from .._validation import check_bool, check_float, check_int
from . import _sas_kernels as _k
from ._masks import MaskInput, block_edges, coerce_mask, descending_stable_order

__all__ = ["SASResult", "sas", "sas_trials", "tv_smooth"]


# ---------------------------------------------------------------- result type
@dataclass
class SASResult:
    """A SAS estimate (one mask, or the average over trials).

    Attributes
    ----------
    H : float64 (K_out, K_in)
        The estimate (block means, averaged over trials, smoothed if asked).
    H_raw : float64 (K_out, K_in)
        The unsmoothed mean (``H`` itself when ``smooth`` is off).
    row_perm, col_perm : int64 (n_out,), (n_in,) — or (T, n) for trials
        ``row_perm[t]`` is the original index of the t-th row in sorted order
        (descending degree, stable); ``col_perm`` is ``arange(n_in)`` when
        ``sort_cols`` is False.
    row_degrees, col_degrees : int64 (n_out,), (n_in,) — or (T, n)
        Degrees in the ORIGINAL index order (row = kept fan-in of an output
        neuron, column = kept fan-out of an input neuron).
    row_edges, col_edges : int64 (K_out + 1,), (K_in + 1,)
        Block edges ``floor(b * n / K)`` in sorted positions.
    shape : (n_out, n_in)
    sort_cols : bool
    smooth : float or None
        The TV weight used (None = off).
    n_trials : int
    H_trials : float64 (T, K_out, K_in) or None
        Per-trial unsmoothed estimates (trials form only).
    """

    H: np.ndarray
    H_raw: np.ndarray
    row_perm: np.ndarray
    col_perm: np.ndarray
    row_degrees: np.ndarray
    col_degrees: np.ndarray
    row_edges: np.ndarray
    col_edges: np.ndarray
    shape: tuple[int, int]
    sort_cols: bool = True
    smooth: float | None = None
    n_trials: int = 1
    H_trials: np.ndarray | None = field(default=None, repr=False)

    @property
    def K_out(self) -> int:
        return int(self.H.shape[0])

    @property
    def K_in(self) -> int:
        return int(self.H.shape[1])

    def block_sizes(self) -> np.ndarray:
        """Number of mask entries per block, int64 (K_out, K_in)."""
        return np.outer(np.diff(self.row_edges), np.diff(self.col_edges))

    def density(self) -> float:
        """Kept fraction of the mask(s): block means weighted by block sizes (unsmoothed)."""
        n_out, n_in = self.shape
        return float(np.sum(self.H_raw * self.block_sizes()) / (n_out * n_in))

    def to_graphon(self):
        """This estimate as a step graphon (:func:`gntk_fast.graphon.from_sas`)."""
        from .objects import from_sas

        return from_sas(self)

    def __repr__(self) -> str:
        return (
            f"SASResult(shape={self.shape}, K_out={self.K_out}, K_in={self.K_in}, sort_cols={self.sort_cols}, "
            f"smooth={self.smooth}, n_trials={self.n_trials}, density={self.density():.4g})"
        )


# ------------------------------------------------------------------- kernels
# Masks with fewer bytes than this run on one thread: starting threads costs
# more than a pass over a few MiB.
PARALLEL_MIN_BYTES = 1 << 21
# Largest K_out x row-bytes accumulator per thread of the streaming block kernel;
# above it the per-block kernel (one row accumulator, rows via the permutation) is used.
STREAM_ACC_MAX_BYTES = 1 << 27


def _parts(mask: MaskInput, threads: int | None) -> int:
    if threads is None:
        threads = numba.get_num_threads()
    return threads if mask.data.nbytes >= PARALLEL_MIN_BYTES else 1


def mask_degrees(mask: MaskInput, name: str = "mask", threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row and column degrees (int64) of a coerced mask: one pass, row ranges in parallel threads."""
    m = mask.data
    if mask.packed:
        fn, args = _k.degrees_packed, lambda lo, hi: (m, lo, hi, _k.POPCOUNT, _k.LANES)
    else:
        fn = _k.degrees_bytes if mask.checked else _k.degrees_bytes_checked
        args = lambda lo, hi: (m, lo, hi)  # noqa: E731
    parts = _k.run_rows(fn, mask.n_out, _parts(mask, threads), args)
    rdeg = np.concatenate([r[0] for r in parts])
    cdeg = parts[0][1]
    for r in parts[1:]:
        cdeg += r[1]
    if not mask.packed and not mask.checked and max(int(r[2]) for r in parts) > 1:
        raise ValueError(f"{name} must contain only 0/1 values; found values > 1 (uint8 data)")
    return rdeg, cdeg[: mask.n_in].copy() if mask.packed else cdeg


def _block_of(perm: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Block index of each ORIGINAL index, int64 (n,), given the sort permutation and edges."""
    block_of_pos = np.repeat(np.arange(len(edges) - 1, dtype=np.int64), np.diff(edges))
    out = np.empty(perm.shape[0], dtype=np.int64)
    out[perm] = block_of_pos
    return out


def block_sums(mask: MaskInput, row_perm, row_edges, col_perm, col_edges, threads: int | None = None) -> np.ndarray:
    """S[a, b] = number of kept entries in block (a, b), int64 (K_out, K_in): one pass."""
    m = mask.data
    K_out, K_in = len(row_edges) - 1, len(col_edges) - 1
    col_block = _block_of(col_perm, col_edges)
    parts = _parts(mask, threads)
    row_bytes = m.shape[1] * (8 if mask.packed else 1)
    if K_out * row_bytes <= STREAM_ACC_MAX_BYTES:
        row_block = _block_of(row_perm, row_edges)
        if mask.packed:
            fn, args = _k.block_sums_packed, lambda lo, hi: (m, lo, hi, row_block, col_block, K_out, K_in, _k.LANES)
        else:
            fn, args = _k.block_sums_bytes, lambda lo, hi: (m, lo, hi, row_block, col_block, K_out, K_in)
        res = _k.run_rows(fn, mask.n_out, parts, args)
    else:
        if mask.packed:
            fn, args = _k.block_sums_packed_by_block, lambda lo, hi: (m, lo, hi, row_perm, row_edges, col_block, K_in, _k.LANES)
        else:
            fn, args = _k.block_sums_bytes_by_block, lambda lo, hi: (m, lo, hi, row_perm, row_edges, col_block, K_in)
        res = _k.run_rows(fn, K_out, parts, args)
    S = res[0]
    for r in res[1:]:
        S += r
    return S


# --------------------------------------------------------------- validation
def _resolve_K(K: Any, K_in: Any, sort_cols: bool, n_out: int, n_in: int) -> tuple[int, int]:
    K = check_int("K", K, min_value=1)
    if K_in is None:
        K_in = K if sort_cols else n_in
    K_in = check_int("K_in", K_in, min_value=1)
    if K > n_out:
        raise ValueError(f"K={K} is larger than the number of rows (n_out={n_out}); use K <= {n_out}")
    if K_in > n_in:
        raise ValueError(f"K_in={K_in} is larger than the number of columns (n_in={n_in}); use K_in <= {n_in}")
    return K, K_in


def _check_smooth(smooth: Any) -> float | None:
    if smooth is None:
        return None
    w = check_float("smooth", smooth, min_value=0.0)
    return None if w == 0.0 else w


def _check_threads(threads: Any) -> int | None:
    return None if threads is None else check_int("threads", threads, min_value=1)




def tv_smooth(H: np.ndarray, weight: float) -> np.ndarray:
    """Total-variation denoising of an estimate (scikit-image ``denoise_tv_chambolle``).

    ``weight`` > 0 is the denoising weight: larger = smoother (flatter
    blocks), smaller = closer to ``H``. The result is clipped to [0, 1].
    Needs scikit-image (``pip install gntk_fast[smooth]``).
    """
    weight = check_float("weight", weight, min_value=0.0, min_inclusive=False)
    try:
        from skimage.restoration import denoise_tv_chambolle
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "SAS smoothing needs scikit-image (pip install 'gntk_fast[smooth]' or scikit-image); "
            "or call sas(..., smooth=None)"
        ) from exc
    out = denoise_tv_chambolle(np.asarray(H, dtype=np.float64), weight=weight, channel_axis=None)
    return np.clip(out, 0.0, 1.0)


# ------------------------------------------------------------------ public API
def _sas_one(mask: MaskInput, K: int, K_in: int, sort_cols: bool, name: str, threads: int | None = None):
    rdeg, cdeg = mask_degrees(mask, name, threads)
    row_perm = descending_stable_order(rdeg)
    col_perm = descending_stable_order(cdeg) if sort_cols else np.arange(mask.n_in, dtype=np.int64)
    row_edges = block_edges(mask.n_out, K, "K")
    col_edges = block_edges(mask.n_in, K_in, "K_in")
    S = block_sums(mask, row_perm, row_edges, col_perm, col_edges, threads)
    sizes = np.outer(np.diff(row_edges), np.diff(col_edges))
    H = S / sizes
    return H, row_perm, col_perm, rdeg, cdeg, row_edges, col_edges


def sas(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
    threads: int | None = None,
) -> SASResult:
    """SAS estimate of one mask, or of several (then the trials average, see :func:`sas_trials`).

    Parameters
    ----------
    mask : array (n_out, n_in) of 0/1 (bool, uint8, int, float; numpy or torch),
        or packed uint8 (n_out, ceil(n_in/8)) from ``np.packbits(M, axis=1)`` with
        ``n_in`` given; a list of arrays/tensors or a 3-D array (T, n_out, n_in)
        means trials (a nested list of numbers is one mask).
    K : int
        Row blocks K_out (default 64, the paper's); also the column blocks when
        ``K_in`` is None and ``sort_cols``.
    K_in : int, optional
        Column blocks. Default: ``K`` when ``sort_cols``, else ``n_in`` (one
        block per input neuron: the input layer's per-pixel map).
    smooth : float, optional
        TV weight (:func:`tv_smooth`; larger = smoother). None/0 = off.
    sort_cols : bool
        Sort columns by degree (True, hidden layers) or keep their order
        (False, the input layer: pixel identity).
    n_in : int, optional
        Number of columns of a bit-packed mask (marks ``mask`` as packed).
    threads : int, optional
        Threads over row ranges for masks of >= 2 MiB (default
        ``numba.get_num_threads()``; results are identical for any value).

    Returns
    -------
    SASResult
    """
    sort_cols = check_bool("sort_cols", sort_cols)
    is_trials = getattr(mask, "ndim", 0) == 3 or (
        isinstance(mask, (list, tuple)) and len(mask) > 0 and all(hasattr(m, "ndim") for m in mask)
    )
    if is_trials:
        return sas_trials(mask, K=K, K_in=K_in, smooth=smooth, sort_cols=sort_cols, n_in=n_in, threads=threads)
    m = coerce_mask(mask, n_in=n_in)
    K, K_in = _resolve_K(K, K_in, sort_cols, m.n_out, m.n_in)
    smooth = _check_smooth(smooth)
    threads = _check_threads(threads)
    H, rp, cp, rd, cd, re, ce = _sas_one(m, K, K_in, sort_cols, "mask", threads)
    Hs = tv_smooth(H, smooth) if smooth is not None else H
    return SASResult(Hs, H, rp, cp, rd, cd, re, ce, (m.n_out, m.n_in), sort_cols, smooth, 1, None)


def sas_trials(
    masks: Iterable[Any] | np.ndarray,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
    progress: bool = False,
    threads: int | None = None,
) -> SASResult:
    """SAS over trials: the mean of the per-trial H (spec step 6).

    ``masks`` is a sequence (or iterator) of masks of one shape, or a 3-D
    array (T, n_out, n_in) (or (T, n_out, nbytes) packed with ``n_in``). The
    result's ``H_trials`` holds every trial's H (T, K_out, K_in); ``row_perm``,
    ``col_perm``, ``row_degrees``, ``col_degrees`` are stacked (T, n). Smoothing,
    when asked, is applied to the mean.
    """
    sort_cols = check_bool("sort_cols", sort_cols)
    smooth = _check_smooth(smooth)
    threads = _check_threads(threads)
    try:
        import torch

        if isinstance(masks, torch.Tensor):
            masks = list(masks.unbind(0)) if masks.ndim == 3 else masks
    except ImportError:  # pragma: no cover
        pass
    if isinstance(masks, np.ndarray):
        if masks.ndim != 3:
            raise ValueError(f"masks as an array must be 3-D (trials, n_out, n_in); got shape {masks.shape}")
        masks = list(masks)
    if not isinstance(masks, (list, tuple)):
        masks = list(masks)
    if len(masks) == 0:
        raise ValueError("masks must contain at least one mask")
    it = masks
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(masks, desc="SAS trials", leave=False)
    Hs, rps, cps, rds, cds = [], [], [], [], []
    shape = None
    for t, mk in enumerate(it):
        name = f"masks[{t}]"
        m = coerce_mask(mk, n_in=n_in, name=name)
        if shape is None:
            shape = (m.n_out, m.n_in)
            Kr, Kc = _resolve_K(K, K_in, sort_cols, *shape)
        elif (m.n_out, m.n_in) != shape:
            raise ValueError(f"{name} has shape {(m.n_out, m.n_in)}; every trial must have shape {shape}")
        H, rp, cp, rd, cd, re, ce = _sas_one(m, Kr, Kc, sort_cols, name, threads)
        Hs.append(H)
        rps.append(rp)
        cps.append(cp)
        rds.append(rd)
        cds.append(cd)
    H_trials = np.stack(Hs)
    H_mean = H_trials.mean(axis=0)
    Hs_ = tv_smooth(H_mean, smooth) if smooth is not None else H_mean
    return SASResult(
        Hs_, H_mean, np.stack(rps), np.stack(cps), np.stack(rds), np.stack(cds), re, ce, shape, sort_cols, smooth,
        len(Hs), H_trials,
    )
