"""Numba backend of :func:`gntk_fast.ops.sas_blocks.sas_blocks`: two passes over the mask.

Pass 1 counts row and column degrees; pass 2 sums the kept entries of every
(row block, column block) pair. Every kernel works on the rows ``lo:hi`` of a
C-contiguous uint8 mask and releases the GIL (``nogil``), so :func:`run_rows`
runs them on contiguous row ranges in parallel threads and reduces the
partial results (integer sums: identical for any thread count). Threads over
nogil kernels are used instead of ``prange`` because on a busy shared machine
an OpenMP parallel region waits for its slowest thread at the barrier, and
the serial loops vectorise best.

Counting tricks
---------------
* bytes: column counts accumulate in uint8 lanes (one byte-wide SIMD add per
  mask byte) flushed every 255 rows; row sums accumulate in uint32 lanes.
* bit-packed bytes: ``LANES[b]`` spreads the 8 bits of byte b over the 8
  bytes of a uint64 (bit 7 -> byte 0 = column 8k, np.packbits' big bit
  order), so one 64-bit add counts 8 columns; ``POPCOUNT[b]`` gives row sums.
* block sums stream the rows in their original order, adding row i into the
  uint8 accumulator of its row block (K_out x n_in bytes), and fold a block's
  accumulator into ``S[a, col_block[j]]`` every 255 rows; when that
  accumulator would be too large (huge K_out), the per-block kernels instead
  visit each block's rows through the row permutation with one accumulator.

The results are bit-identical to the numpy twin
(:mod:`gntk_fast.ops.sas_blocks.naive`); the tests check every path.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba
import numpy as np
from numba import njit

from ..._masks import MaskInput, block_edges, descending_stable_order

__all__ = [
    "POPCOUNT", "LANES", "degrees_bytes", "degrees_packed", "block_sums_bytes", "block_sums_packed",
    "block_sums_bytes_by_block", "block_sums_packed_by_block", "run_rows", "split", "mask_degrees", "block_sums",
    "sas_blocks", "PARALLEL_MIN_BYTES", "STREAM_ACC_MAX_BYTES",
]

# Masks with fewer bytes than this run on one thread: starting threads costs
# more than a pass over a few MiB.
PARALLEL_MIN_BYTES = 1 << 21
# Largest K_out x row-bytes accumulator per thread of the streaming block kernel;
# above it the per-block kernel (one row accumulator, rows via the permutation) is used.
STREAM_ACC_MAX_BYTES = 1 << 27


def _make_tables() -> tuple[np.ndarray, np.ndarray]:
    b = np.arange(256, dtype=np.uint8)
    bits = np.unpackbits(b[:, None], axis=1)  # (256, 8), bits[:, t] = column 8k + t
    pop = bits.sum(axis=1).astype(np.uint8)
    lanes = np.zeros(256, dtype=np.uint64)
    for t in range(8):
        lanes |= bits[:, t].astype(np.uint64) << np.uint64(8 * t)
    return pop, lanes


POPCOUNT, LANES = _make_tables()


# ------------------------------------------------------------------ degrees
@njit(cache=True, nogil=True)
def _flush_bytes(acc8, cdeg):  # pragma: no cover - compiled
    for j in range(acc8.shape[0]):
        cdeg[j] += acc8[j]
        acc8[j] = 0


@njit(cache=True, nogil=True)
def degrees_bytes(m, lo, hi, check):  # pragma: no cover - compiled
    """Rows lo:hi of a 0/1 byte mask -> (row sums (hi-lo,), column sums (p,), OR of
    the bytes when ``check`` else 0). The OR (a value > 1 means the uint8 input
    was not 0/1) more than doubles the inner loop's time, so input that is 0/1 by
    construction (bool) runs with ``check=False``; the branch is outside the
    inner loops, which vectorise either way."""
    p = m.shape[1]
    rdeg = np.empty(hi - lo, np.int64)
    cdeg = np.zeros(p, np.int64)
    acc8 = np.zeros(p, np.uint8)
    o = np.uint8(0)
    cnt = 0
    for i in range(lo, hi):
        s = np.uint32(0)
        if check:
            for j in range(p):
                x = m[i, j]
                acc8[j] += x
                o |= x
                s = np.uint32(s + np.uint32(x))
        else:
            for j in range(p):
                x = m[i, j]
                acc8[j] += x
                s = np.uint32(s + np.uint32(x))
        rdeg[i - lo] = s
        cnt += 1
        if cnt == 255:
            _flush_bytes(acc8, cdeg)
            cnt = 0
    _flush_bytes(acc8, cdeg)
    return rdeg, cdeg, o


@njit(cache=True, nogil=True)
def _flush_lanes(acc64, cdeg):  # pragma: no cover - compiled
    for k in range(acc64.shape[0]):
        w = acc64[k]
        for t in range(8):
            cdeg[8 * k + t] += np.int64((w >> np.uint64(8 * t)) & np.uint64(0xFF))
        acc64[k] = np.uint64(0)


@njit(cache=True, nogil=True)
def degrees_packed(m, lo, hi, pop, lanes):  # pragma: no cover - compiled
    """Rows lo:hi of a bit-packed mask -> (row sums, column sums (8 * nbytes,), 0)."""
    nb = m.shape[1]
    rdeg = np.empty(hi - lo, np.int64)
    cdeg = np.zeros(8 * nb, np.int64)
    acc64 = np.zeros(nb, np.uint64)
    cnt = 0
    for i in range(lo, hi):
        s = np.uint32(0)
        for k in range(nb):
            x = m[i, k]
            acc64[k] += lanes[x]
            s = np.uint32(s + np.uint32(pop[x]))
        rdeg[i - lo] = s
        cnt += 1
        if cnt == 255:
            _flush_lanes(acc64, cdeg)
            cnt = 0
    _flush_lanes(acc64, cdeg)
    return rdeg, cdeg, np.uint8(0)


# --------------------------------------------------------------- block sums
@njit(cache=True, nogil=True)
def block_sums_bytes(m, lo, hi, row_block, col_block, K_out, K_in):  # pragma: no cover - compiled
    """S[a, b] = number of ones of rows lo:hi in row block a and column block b (original order)."""
    p = m.shape[1]
    S = np.zeros((K_out, K_in), np.int64)
    acc8 = np.zeros((K_out, p), np.uint8)
    cnt = np.zeros(K_out, np.int64)
    for i in range(lo, hi):
        a = row_block[i]
        for j in range(p):
            acc8[a, j] += m[i, j]
        cnt[a] += 1
        if cnt[a] == 255:
            for j in range(p):
                S[a, col_block[j]] += acc8[a, j]
                acc8[a, j] = 0
            cnt[a] = 0
    for a in range(K_out):
        if cnt[a] > 0:
            for j in range(p):
                S[a, col_block[j]] += acc8[a, j]
    return S


@njit(cache=True, nogil=True)
def _fold_lanes(acc64, a, S, col_block):  # pragma: no cover - compiled
    n_in = col_block.shape[0]
    for k in range(acc64.shape[1]):
        w = acc64[a, k]
        if w != 0:
            for t in range(8):
                j = 8 * k + t
                if j < n_in:
                    S[a, col_block[j]] += np.int64((w >> np.uint64(8 * t)) & np.uint64(0xFF))
        acc64[a, k] = np.uint64(0)


@njit(cache=True, nogil=True)
def block_sums_packed(m, lo, hi, row_block, col_block, K_out, K_in, lanes):  # pragma: no cover - compiled
    """Bit-packed twin of :func:`block_sums_bytes`."""
    nb = m.shape[1]
    S = np.zeros((K_out, K_in), np.int64)
    acc64 = np.zeros((K_out, nb), np.uint64)
    cnt = np.zeros(K_out, np.int64)
    for i in range(lo, hi):
        a = row_block[i]
        for k in range(nb):
            acc64[a, k] += lanes[m[i, k]]
        cnt[a] += 1
        if cnt[a] == 255:
            _fold_lanes(acc64, a, S, col_block)
            cnt[a] = 0
    for a in range(K_out):
        if cnt[a] > 0:
            _fold_lanes(acc64, a, S, col_block)
    return S


@njit(cache=True, nogil=True)
def block_sums_bytes_by_block(m, a_lo, a_hi, row_perm, row_edges, col_block, K_in):  # pragma: no cover - compiled
    """Rows of blocks a_lo:a_hi through the permutation, one (p,) accumulator (for huge K_out)."""
    p = m.shape[1]
    S = np.zeros((row_edges.shape[0] - 1, K_in), np.int64)
    acc8 = np.zeros(p, np.uint8)
    for a in range(a_lo, a_hi):
        cnt = 0
        for t in range(row_edges[a], row_edges[a + 1]):
            i = row_perm[t]
            for j in range(p):
                acc8[j] += m[i, j]
            cnt += 1
            if cnt == 255 or t == row_edges[a + 1] - 1:
                for j in range(p):
                    S[a, col_block[j]] += acc8[j]
                    acc8[j] = 0
                cnt = 0
    return S


@njit(cache=True, nogil=True)
def block_sums_packed_by_block(m, a_lo, a_hi, row_perm, row_edges, col_block, K_in, lanes):  # pragma: no cover
    """Bit-packed twin of :func:`block_sums_bytes_by_block`."""
    nb = m.shape[1]
    K_out = row_edges.shape[0] - 1
    S = np.zeros((K_out, K_in), np.int64)
    acc64 = np.zeros((1, nb), np.uint64)
    S1 = np.zeros((1, K_in), np.int64)
    for a in range(a_lo, a_hi):
        cnt = 0
        for t in range(row_edges[a], row_edges[a + 1]):
            i = row_perm[t]
            for k in range(nb):
                acc64[0, k] += lanes[m[i, k]]
            cnt += 1
            if cnt == 255 or t == row_edges[a + 1] - 1:
                _fold_lanes(acc64, 0, S1, col_block)
                cnt = 0
        for b in range(K_in):
            S[a, b] = S1[0, b]
            S1[0, b] = 0
    return S


# ------------------------------------------------------------------- drivers
def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering 0..n (floor(c n / parts) edges)."""
    parts = max(1, min(parts, n))
    return [(c * n // parts, (c + 1) * n // parts) for c in range(parts)]


def run_rows(fn: Callable, n: int, parts: int, args_for: Callable[[int, int], tuple]) -> list:
    """Run ``fn(*args_for(lo, hi))`` over ``parts`` row ranges (threads when parts > 1)."""
    ranges = split(n, parts)
    if len(ranges) == 1:
        return [fn(*args_for(*ranges[0]))]
    with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
        return list(pool.map(lambda r: fn(*args_for(*r)), ranges))


def _parts(mask: MaskInput, threads: int | None) -> int:
    if threads is None:
        threads = numba.get_num_threads()
    return threads if mask.data.nbytes >= PARALLEL_MIN_BYTES else 1


def mask_degrees(mask: MaskInput, name: str = "mask", threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row and column degrees, int64 (n_out,), (n_in,), of a coerced mask: one pass,
    row ranges in parallel threads. Unchecked uint8 data with a value > 1 is a
    ValueError naming ``name``."""
    m = mask.data
    if mask.packed:
        fn, args = degrees_packed, lambda lo, hi: (m, lo, hi, POPCOUNT, LANES)
    else:
        fn, check = degrees_bytes, not mask.checked
        args = lambda lo, hi: (m, lo, hi, check)  # noqa: E731
    parts = run_rows(fn, mask.n_out, _parts(mask, threads), args)
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
            fn, args = block_sums_packed, lambda lo, hi: (m, lo, hi, row_block, col_block, K_out, K_in, LANES)
        else:
            fn, args = block_sums_bytes, lambda lo, hi: (m, lo, hi, row_block, col_block, K_out, K_in)
        res = run_rows(fn, mask.n_out, parts, args)
    else:
        if mask.packed:
            fn, args = block_sums_packed_by_block, lambda lo, hi: (m, lo, hi, row_perm, row_edges, col_block, K_in, LANES)
        else:
            fn, args = block_sums_bytes_by_block, lambda lo, hi: (m, lo, hi, row_perm, row_edges, col_block, K_in)
        res = run_rows(fn, K_out, parts, args)
    S = res[0]
    for r in res[1:]:
        S += r
    return S


def sas_blocks(mask: MaskInput, K: int, K_in: int, sort_cols: bool, name: str = "mask", threads: int | None = None):
    """Numba SAS blocks of a coerced mask (arguments validated by the entry):
    ``(H, row_perm, col_perm, row_degrees, col_degrees, row_edges, col_edges)``."""
    rdeg, cdeg = mask_degrees(mask, name, threads)
    row_perm = descending_stable_order(rdeg)
    col_perm = descending_stable_order(cdeg) if sort_cols else np.arange(mask.n_in, dtype=np.int64)
    row_edges = block_edges(mask.n_out, K, "K")
    col_edges = block_edges(mask.n_in, K_in, "K_in")
    S = block_sums(mask, row_perm, row_edges, col_perm, col_edges, threads)
    H = S / np.outer(np.diff(row_edges), np.diff(col_edges))
    return H, row_perm, col_perm, rdeg, cdeg, row_edges, col_edges
