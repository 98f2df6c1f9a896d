"""Plain twin of :func:`gntk_fast.ops.wide_masks.random_mask_packed`: each row
block drawn into a dense bool array, packed with ``np.packbits``."""
from __future__ import annotations

import numpy as np

from . import _generator, block_counts, block_rows

__all__ = ["random_mask_packed"]


def random_mask_packed(n_out: int, n_in: int, kept: int, seed: int) -> np.ndarray:
    """uint8 (n_out, ceil(n_in / 8)), the bits of a uniformly random mask with ``kept`` ones."""
    R = block_rows(n_in)
    counts = block_counts(n_out, n_in, kept, seed)
    out = np.empty((n_out, (n_in + 7) // 8), dtype=np.uint8)
    for b, c in enumerate(counts):
        lo, hi = b * R, min(n_out, (b + 1) * R)
        pos = _generator(seed, b + 1).choice((hi - lo) * n_in, size=int(c), replace=False)
        block = np.zeros((hi - lo) * n_in, dtype=bool)
        block[pos] = True
        out[lo:hi] = np.packbits(block.reshape(hi - lo, n_in), axis=1)
    return out
