"""SAS (sorting and smoothing) graphon estimation for bipartite pruning masks.

docs/graphons.md, "SAS": for a mask M of shape (n_out, n_in) (rows = output
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

Steps 1-4 are the operation :func:`gntk_fast.ops.sas_blocks.sas_blocks`
(backends: ``numba``, nogil kernels over row ranges in threads; ``naive``,
the plain numpy twin; bit-identical results). :func:`sas_reference`
(:mod:`gntk_fast.graphon.reference`) is :func:`sas` on the naive backend.

A conv mask (C_out, C_in, kh, kw) is estimated through its channel
connectivity (:mod:`gntk_fast.graphon.channels`): ``taps="pooled"`` (the kept
fraction of each channel pair's taps) or ``taps="per-tap"`` (one estimate per
tap).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .._validation import check_bool, check_choice, check_float
from ..ops import sas_blocks as _blocks
from ._masks import block_edges, coerce_mask, descending_stable_order, ordered_block_means
from .._masks import count_taps
from .channels import TAPS, conv_mask, is_conv_mask

__all__ = ["SASResult", "sas", "sas_trials", "tv_smooth", "channel_sas", "channel_sas_trials", "sas_from_counts"]


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
    taps : int
        Taps per channel pair of a pooled conv-mask estimate (then ``shape``
        is (C_out, C_in), degrees count kept taps and ``H`` is the kept
        fraction of the block's taps); 1 for a 2-D mask.
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
    taps: int = 1

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
            f"smooth={self.smooth}, n_trials={self.n_trials}, "
            + (f"taps={self.taps}, " if self.taps != 1 else "")
            + f"density={self.density():.4g})"
        )


# --------------------------------------------------------------- validation
def _smooth_weight(smooth: Any) -> float | None:
    if smooth is None:
        return None
    w = check_float("smooth", smooth, min_value=0.0)
    return None if w == 0.0 else w



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
def sas(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
    threads: int | None = None,
    backend: str = "auto",
    taps: str = "pooled",
) -> SASResult:
    """SAS estimate of one mask, or of several (then the trials average, see :func:`sas_trials`).

    Parameters
    ----------
    mask : array (n_out, n_in) of 0/1 (bool, uint8, int, float; numpy or torch),
        or packed uint8 (n_out, ceil(n_in/8)) from ``np.packbits(M, axis=1)`` with
        ``n_in`` given; a list of arrays/tensors or a 3-D array (T, n_out, n_in)
        means trials (a nested list of numbers is one mask). A 4-D conv mask
        (C_out, C_in, kh, kw), or a list of them (trials), is estimated
        through its channel connectivity (see ``taps``).
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
    backend : str
        Backend of the block averaging (:func:`gntk_fast.ops.sas_blocks.sas_blocks`):
        "auto" (numba when installed), "numba" or "naive" (the numpy twin);
        identical results.
    taps : "pooled" | "per-tap"
        Conv masks only (:func:`gntk_fast.graphon.channel_sas`): one estimate of
        the kept fraction of each channel pair's taps, or a list of one
        estimate per tap (row-major). A 2-D mask is a single tap: ignored.

    Returns
    -------
    SASResult (a list of them for a conv mask with ``taps="per-tap"``)

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import sas
    >>> rng = np.random.default_rng(0)
    >>> sas(rng.random((100, 80)) < 0.3, K=8).H.shape
    (8, 8)
    >>> sas(rng.random((32, 16, 3, 3)) < 0.3, K=4).taps
    9
    """
    sort_cols = check_bool("sort_cols", sort_cols)
    taps = check_choice("taps", taps, TAPS)
    if is_conv_mask(mask):
        if n_in is not None:
            raise ValueError("n_in (bit-packed masks) does not apply to a 4-D conv mask")
        return channel_sas(mask, K, K_in, smooth, sort_cols, taps=taps, backend=backend)
    if isinstance(mask, (list, tuple)) and len(mask) > 0 and all(is_conv_mask(m) for m in mask):
        return channel_sas_trials(mask, K, K_in, smooth, sort_cols, taps=taps, backend=backend)
    is_trials = getattr(mask, "ndim", 0) == 3 or (
        isinstance(mask, (list, tuple)) and len(mask) > 0 and all(hasattr(m, "ndim") for m in mask)
    )
    if is_trials:
        return sas_trials(mask, K=K, K_in=K_in, smooth=smooth, sort_cols=sort_cols, n_in=n_in, threads=threads,
                          backend=backend)
    m = coerce_mask(mask, n_in=n_in)
    b = _blocks.sas_blocks(m, K, K_in, sort_cols, backend=backend, threads=threads)
    smooth = _smooth_weight(smooth)
    Hs = tv_smooth(b.H, smooth) if smooth is not None else b.H
    return SASResult(Hs, b.H, b.row_perm, b.col_perm, b.row_degrees, b.col_degrees, b.row_edges, b.col_edges,
                     (m.n_out, m.n_in), sort_cols, smooth, 1, None)


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
    backend: str = "auto",
    taps: str = "pooled",
) -> SASResult:
    """SAS over trials: the mean of the per-trial H (docs/graphons.md, SAS step 6).

    ``masks`` is a sequence (or iterator) of masks of one shape, or a 3-D
    array (T, n_out, n_in) (or (T, n_out, nbytes) packed with ``n_in``). The
    result's ``H_trials`` holds every trial's H (T, K_out, K_in); ``row_perm``,
    ``col_perm``, ``row_degrees``, ``col_degrees`` are stacked (T, n). Smoothing,
    when asked, is applied to the mean. A list of 4-D conv masks is estimated
    through :func:`gntk_fast.graphon.channel_sas_trials` (``taps``). Other
    arguments as in :func:`sas`.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import sas_trials
    >>> rng = np.random.default_rng(0)
    >>> sas_trials([rng.random((40, 30)) < 0.5 for _ in range(4)], K=4).H_trials.shape
    (4, 4, 4)
    """
    sort_cols = check_bool("sort_cols", sort_cols)
    smooth = _smooth_weight(smooth)
    taps = check_choice("taps", taps, TAPS)
    if is_conv_mask(masks) or (
        isinstance(masks, (list, tuple)) and len(masks) > 0 and all(is_conv_mask(m) for m in masks)
    ):
        if is_conv_mask(masks):
            raise ValueError("masks: a single 4-D conv mask is one mask; pass a list of conv masks for trials")
        return channel_sas_trials(masks, K, K_in, smooth, sort_cols, taps=taps, backend=backend)
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
    blocks: list[_blocks.SASBlocks] = []
    shape = None
    for t, mk in enumerate(it):
        name = f"masks[{t}]"
        m = coerce_mask(mk, n_in=n_in, name=name)
        if shape is None:
            shape = (m.n_out, m.n_in)
        elif (m.n_out, m.n_in) != shape:
            raise ValueError(f"{name} has shape {(m.n_out, m.n_in)}; every trial must have shape {shape}")
        blocks.append(_blocks.sas_blocks(m, K, K_in, sort_cols, name=name, backend=backend, threads=threads))
    H_trials = np.stack([b.H for b in blocks])
    H_mean = H_trials.mean(axis=0)
    Hs_ = tv_smooth(H_mean, smooth) if smooth is not None else H_mean
    stack = lambda field: np.stack([getattr(b, field) for b in blocks])  # noqa: E731
    return SASResult(
        Hs_, H_mean, stack("row_perm"), stack("col_perm"), stack("row_degrees"), stack("col_degrees"),
        blocks[0].row_edges, blocks[0].col_edges, shape, sort_cols, smooth, len(blocks), H_trials,
    )


# ------------------------------------------------------------ conv masks (channel connectivity)
def sas_from_counts(counts: np.ndarray, T: int, K: Any, K_in: Any, smooth: Any, sort_cols: bool) -> SASResult:
    """SAS of pooled tap counts: the kept taps of each channel pair, out of ``T``.

    The pooled estimate of :func:`channel_sas` from counts already summed
    over the taps (rows and columns sorted by their count degrees, block
    means divided by ``T``), for callers that hold the counts.

    Parameters
    ----------
    counts : int64 array (C_out, C_in)
        Kept taps per channel pair, each in [0, T].
    T : int
        Taps per channel pair (kh kw).
    K, K_in, smooth, sort_cols
        As in :func:`sas`.

    Returns
    -------
    SASResult
        ``taps = T``; ``H`` holds kept fractions in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> r = sas_from_counts(np.array([[9, 0], [0, 9]]), 9, 1, 1, None, True)
    >>> float(r.H[0, 0])
    0.5
    """
    n_out, n_in = counts.shape
    K, K_in = _blocks.resolve_blocks(K, K_in, sort_cols, n_out, n_in)
    smooth = _smooth_weight(smooth)
    row_degrees = counts.sum(axis=1, dtype=np.int64)
    col_degrees = counts.sum(axis=0, dtype=np.int64)
    row_perm = descending_stable_order(row_degrees)
    col_perm = descending_stable_order(col_degrees) if sort_cols else np.arange(n_in, dtype=np.int64)
    row_edges, col_edges = block_edges(n_out, K, "K"), block_edges(n_in, K_in, "K_in")
    H = ordered_block_means(counts, row_perm, col_perm, row_edges, col_edges) / T
    Hs = tv_smooth(H, smooth) if smooth is not None else H
    return SASResult(Hs, H, row_perm, col_perm, row_degrees, col_degrees, row_edges, col_edges,
                     (n_out, n_in), sort_cols, smooth, 1, None, taps=T)


def channel_sas(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    taps: str = "pooled",
    backend: str = "auto",
):
    """SAS estimate of a conv mask's channel connectivity (pooled, or one per tap).

    Parameters
    ----------
    mask : array or tensor (C_out, C_in, kh, kw) of 0/1
    K, K_in, smooth, sort_cols
        As in :func:`gntk_fast.graphon.sas`, over channels: K blocks of output
        channels, K_in of input channels (default K, or one block per input
        channel when ``sort_cols`` is False: an input layer's image channels).
    taps : "pooled" | "per-tap"
        "pooled": one estimate of W(u, v) = mean over taps (module docstring);
        its ``row_degrees``/``col_degrees`` count kept taps and ``taps`` is T.
        "per-tap": a list of T estimates, ``sas`` of each tap's 0/1 matrix in
        row-major tap order (each sorted by its own degrees).
    backend : str
        Backend of the per-tap SAS (:func:`gntk_fast.graphon.sas`); the pooled
        estimate is a numpy reduction to the (C_out, C_in) count matrix.

    Returns
    -------
    SASResult, or a list of T SASResult for ``taps="per-tap"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import channel_sas
    >>> rng = np.random.default_rng(0)
    >>> m = rng.random((32, 16, 3, 3)) < 0.3
    >>> est = channel_sas(m, K=4)
    >>> est.H.shape, est.taps
    ((4, 4), 9)
    >>> len(channel_sas(m, K=4, taps="per-tap"))
    9
    """
    taps = check_choice("taps", taps, TAPS)
    sort_cols = check_bool("sort_cols", sort_cols)
    m = conv_mask(mask)
    if taps == "per-tap":
        kh, kw = m.shape[2:]
        return [sas(m[:, :, t // kw, t % kw], K, K_in, smooth, sort_cols, backend=backend) for t in range(kh * kw)]
    counts = count_taps(m)
    return sas_from_counts(counts, int(m.shape[2] * m.shape[3]), K, K_in, smooth, sort_cols)


def _combine_trials(results: list, smooth: Any):
    smooth = _smooth_weight(smooth)
    H_trials = np.stack([r.H_raw for r in results])
    H = H_trials.mean(axis=0)
    Hs = tv_smooth(H, smooth) if smooth is not None else H
    stack = lambda f: np.stack([getattr(r, f) for r in results])  # noqa: E731
    r0 = results[0]
    return SASResult(Hs, H, stack("row_perm"), stack("col_perm"), stack("row_degrees"), stack("col_degrees"),
                     r0.row_edges, r0.col_edges, r0.shape, r0.sort_cols, smooth, len(results), H_trials, taps=r0.taps)


def channel_sas_trials(
    masks: Sequence[Any],
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    taps: str = "pooled",
    backend: str = "auto",
):
    """:func:`channel_sas` over trials (masks of one shape): the mean of the per-trial
    estimates, smoothed afterwards when asked; per tap, one trials average per tap.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import channel_sas_trials
    >>> rng = np.random.default_rng(0)
    >>> est = channel_sas_trials([rng.random((8, 8, 3, 3)) < 0.5 for _ in range(3)], K=2)
    >>> est.n_trials, est.H_trials.shape
    (3, (3, 2, 2))
    """
    taps = check_choice("taps", taps, TAPS)
    if not isinstance(masks, (list, tuple)):
        masks = list(masks)
    if len(masks) == 0:
        raise ValueError("masks must contain at least one mask")
    shape = None
    per = []
    for t, mk in enumerate(masks):
        m = conv_mask(mk, f"masks[{t}]")
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"masks[{t}] has shape {m.shape}; every trial must have shape {shape}")
        per.append(channel_sas(m, K, K_in, None, sort_cols, taps=taps, backend=backend))
    if taps == "pooled":
        return _combine_trials(per, smooth)
    return [_combine_trials([p[t] for p in per], smooth) for t in range(len(per[0]))]
