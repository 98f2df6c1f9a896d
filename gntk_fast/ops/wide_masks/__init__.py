"""Uniformly random bit-packed masks of an exact kept count, generated in row blocks.

The masks of the "random" pruner without any weights in memory, for layers
too wide to hold as float32 (width 65536: 16 GiB of weights, 512 MiB of
packed mask). A random pruner keeps a uniformly random subset of exactly k
weights (random scores: no ties). Here

* :func:`random_kept_counts` gives the kept count of every layer: per layer
  (layerwise scope) or, for global scope, one uniformly random k-subset of all
  weights split over the layers by a multivariate hypergeometric draw (the
  exact law of the global split); k is the pruner's count: ``round(d * N)``
  (clean rule) or ``N - int((1 - d) * N)`` (Synaptic-Flow rule);
* :func:`split_count` is that multivariate hypergeometric draw for any
  population size (numpy's own is limited to populations below 10**9, a
  single 32768 x 32768 layer): every entry is first kept independently with
  probability k / N (one binomial draw per group), then the excess is
  removed, or the shortfall added, as a uniformly random subset of the kept
  (or unkept) entries (``Generator.choice`` without replacement over that
  many positions, O(excess) memory). The kept set is exchangeable and has
  exactly k entries, so it is a uniformly random k-subset and its group
  counts follow the multivariate hypergeometric law exactly;
* :func:`random_mask_packed` draws one layer: rows cut into blocks of
  :func:`block_rows` rows (a function of ``n_in`` only), the layer's count
  split over the blocks by a multivariate hypergeometric draw, and each
  block's kept positions a uniformly random subset of its entries
  (``Generator.choice(..., replace=False)``); block b uses its own generator
  seeded by ``(seed, b)`` (SeedSequence spawn keys). The result is
  ``np.packbits(M, axis=1)`` of the mask M (uint8 (n_out, ceil(n_in / 8)),
  big bit order: bit 7 of byte j is column 8 j), and depends only on
  ``(n_out, n_in, kept, seed)``.

Backends, in preference order: ``numba`` (sets the bits of each block's
positions straight in the packed output) and ``naive`` (the plain twin:
writes each block into a dense bool array and packs it with
``np.packbits``). They draw the same random numbers and give identical
bytes. Peak memory: the packed output plus one block's positions (at most
``BLOCK_ELEMS`` int64) and, for ``naive``, one dense block.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Sequence

import numpy as np

from ..._constants import COMPAT_MODES, SCOPE_ALIASES, SCOPES
from ..._validation import MAX_WIDTH, check_choice, check_float, check_int, check_memory, check_seed
from .._registry import Op

__all__ = ["random_mask_packed", "random_masks_packed", "random_kept_counts", "split_count", "block_rows",
           "block_counts",
           "BLOCK_ELEMS", "OP"]

#: entries per row block (the bound on a block's temporaries)
BLOCK_ELEMS = 1 << 22


def _numba_missing(**_: Any) -> str | None:
    return None if importlib.util.find_spec("numba") is not None else "numba is not installed"


OP = Op("wide_masks")
OP.register("numba", "gntk_fast.ops.wide_masks.numba:random_mask_packed", devices=("cpu",), check=_numba_missing)
OP.register("naive", "gntk_fast.ops.wide_masks.naive:random_mask_packed", devices=("cpu",))


def block_rows(n_in: int) -> int:
    """Rows per block: ``max(8, BLOCK_ELEMS // n_in)`` (a multiple of 8 is not needed: rows are whole)."""
    return max(8, BLOCK_ELEMS // n_in)


def _generator(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(key))))


def split_count(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """How many of a uniformly random k-subset of ``sum(sizes)`` entries fall in
    each group (int64, like ``sizes``): the multivariate hypergeometric law, for
    any population size (see the module docstring)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    N = int(sizes.sum())
    if not 0 <= k <= N:
        raise ValueError(f"k must be in [0, {N}]; got {k}")
    if N == 0 or len(sizes) == 1:
        return sizes.copy() if k == N else np.array([k], dtype=np.int64)
    counts = rng.binomial(sizes, k / N).astype(np.int64)
    T = int(counts.sum())
    if T != k:
        pool = counts if T > k else sizes - counts  # remove among the kept, or add among the rest
        idx = rng.choice(int(pool.sum()), abs(T - k), replace=False)
        hit = np.bincount(np.searchsorted(np.cumsum(pool), idx, side="right"), minlength=len(sizes))
        counts += -hit if T > k else hit
    return counts


def block_counts(n_out: int, n_in: int, kept: int, seed: int) -> np.ndarray:
    """Kept count of every row block (int64 (n_blocks,), summing to ``kept``): a
    :func:`split_count` draw from the generator ``(seed, 0)``."""
    R = block_rows(n_in)
    sizes = np.full(-(-n_out // R), R * n_in, dtype=np.int64)
    sizes[-1] = (n_out - R * (len(sizes) - 1)) * n_in
    if len(sizes) == 1:
        return np.array([kept], dtype=np.int64)
    return split_count(sizes, kept, _generator(seed, 0))


def random_mask_packed(n_out: int, n_in: int, kept: int, seed: int, *, backend: str = "auto") -> np.ndarray:
    """A uniformly random (n_out, n_in) mask with exactly ``kept`` ones, bit-packed
    (see the module docstring): uint8 (n_out, ceil(n_in / 8)).

    ``n_out``, ``n_in`` in [1, MAX_WIDTH]; ``kept`` in [0, n_out * n_in];
    ``seed`` an int in [0, 2**64 - 1]; ``backend`` "auto", "numba" or "naive".
    """
    n_out = check_int("n_out", n_out, min_value=1, max_value=MAX_WIDTH)
    n_in = check_int("n_in", n_in, min_value=1, max_value=MAX_WIDTH)
    kept = check_int("kept", kept, min_value=0, max_value=n_out * n_in)
    seed = check_seed(seed, allow_none=False)
    check_memory("the packed mask (n_out x ceil(n_in / 8) bytes)", n_out * ((n_in + 7) // 8))
    fn = OP(backend, "cpu")
    return fn(n_out, n_in, kept, seed)


def random_kept_counts(shapes: Sequence[tuple[int, int]], density: float, scope: str = "global",
                       compat: str = "clean", seed: int = 0) -> list[int]:
    """Kept count of every layer of shapes ``[(n_out, n_in), ...]`` for the random
    pruner at kept fraction ``density`` (see the module docstring); the global
    split is drawn from a generator seeded by ``(seed, 1)``."""
    density = check_float("density", density, min_value=0.0, max_value=1.0)
    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    compat = check_choice("compat", compat, COMPAT_MODES)
    seed = check_seed(seed, allow_none=False)
    sizes = [check_int(f"shapes[{i}][0]", a, min_value=1) * check_int(f"shapes[{i}][1]", b, min_value=1)
             for i, (a, b) in enumerate(shapes)]
    if not sizes:
        raise ValueError("shapes must hold at least one layer")

    def count(n: int) -> int:
        return int(round(density * n)) if compat == "clean" else n - int((1.0 - density) * n)

    if scope == "layerwise":
        return [count(n) for n in sizes]
    k = count(sum(sizes))
    return [int(c) for c in split_count(np.array(sizes, dtype=np.int64), k, _generator(seed, 1))]


def random_masks_packed(shapes: Sequence[tuple[int, int]], counts: Sequence[int], seed: int, *,
                        backend: str = "auto") -> list[np.ndarray]:
    """:func:`random_mask_packed` for every layer; layer i is seeded by ``(seed, i)``
    through SeedSequence's state (one 64-bit seed per layer)."""
    seed = check_seed(seed, allow_none=False)
    seeds = np.random.SeedSequence(seed).generate_state(len(shapes), dtype=np.uint64)
    return [random_mask_packed(a, b, int(c), int(s), backend=backend) for (a, b), c, s in zip(shapes, counts, seeds)]
