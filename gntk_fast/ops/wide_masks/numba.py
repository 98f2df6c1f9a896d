"""Numba backend of :func:`gntk_fast.ops.wide_masks.random_mask_packed`: each
block's kept positions are set as bits straight in the packed output (no dense
block); the random draws are the naive twin's, so the bytes are identical."""
from __future__ import annotations

import numpy as np
from numba import njit

from . import _generator, block_counts, block_rows

__all__ = ["random_mask_packed", "set_bits"]


@njit(cache=True, nogil=True)
def set_bits(out, lo, n_in, pos):  # pragma: no cover - compiled
    """Set bit (lo + p // n_in, p % n_in) of the packed ``out`` for every p in ``pos``."""
    for t in range(pos.shape[0]):
        p = pos[t]
        i = lo + p // n_in
        j = p - (i - lo) * n_in
        out[i, j >> 3] |= np.uint8(0x80 >> (j & 7))


def random_mask_packed(n_out: int, n_in: int, kept: int, seed: int) -> np.ndarray:
    """uint8 (n_out, ceil(n_in / 8)), the bits of a uniformly random mask with ``kept`` ones."""
    R = block_rows(n_in)
    counts = block_counts(n_out, n_in, kept, seed)
    out = np.zeros((n_out, (n_in + 7) // 8), dtype=np.uint8)
    for b, c in enumerate(counts):
        lo, hi = b * R, min(n_out, (b + 1) * R)
        pos = _generator(seed, b + 1).choice((hi - lo) * n_in, size=int(c), replace=False)
        set_bits(out, lo, n_in, pos.astype(np.int64, copy=False))
    return out
