"""Tidy tables (lists of flat dict rows) and their files, shared by the experiments.

A table is a list of dicts with the same keys whose values are str, int,
float, bool or None. Files: JSON (always; ``allow_nan`` off, NaN written as
null) and Parquet (pyarrow, when installed). Both are written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._io import atomic_path, clean, jsonable, write_text  # clean, jsonable: re-exported
from ..spectral import loglog_slope  # re-exported: the experiments' log-log fit

__all__ = ["clean", "jsonable", "write_table", "read_table", "spearman", "loglog_slope", "group_mean", "group_series"]


def _rows(rows: Iterable[dict]) -> list[dict]:
    return [{k: clean(v) for k, v in r.items()} for r in rows]


def write_table(rows: Sequence[dict], path: str | Path, *, parquet: bool = True) -> list[Path]:
    """Write ``rows`` to ``path.json`` (and ``path.parquet`` when pyarrow is installed
    and ``parquet``); returns the paths written. ``path`` is given without suffix."""
    path = Path(path)
    rows = _rows(rows)
    written = [write_text(path.with_suffix(".json"), json.dumps(rows, indent=1, allow_nan=False) + "\n")]
    if parquet:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - depends on the environment
            return written
        table = pa.Table.from_pylist(rows) if rows else pa.table({})
        with atomic_path(path.with_suffix(".parquet")) as tmp:
            pq.write_table(table, tmp)
        written.append(path.with_suffix(".parquet"))
    return written


def read_table(path: str | Path) -> list[dict]:
    """Rows of a table written by :func:`write_table` (its ``.json`` file)."""
    with open(Path(path).with_suffix(".json"), encoding="utf-8") as fh:
        rows = json.load(fh)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: not a table (a JSON list of objects)")
    return rows


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None, int]:
    """Spearman's rank correlation (scipy) of the finite pairs: (rho, p-value, n);
    (None, None, n) when fewer than 3 pairs or either side is constant."""
    from scipy.stats import spearmanr

    a = np.asarray([np.nan if v is None else v for v in x], dtype=np.float64)
    b = np.asarray([np.nan if v is None else v for v in y], dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return None, None, n
    res = spearmanr(a[ok], b[ok])
    return clean(res.statistic), clean(res.pvalue), n


def group_mean(rows: Sequence[dict], keys: Sequence[str], value: str) -> dict[tuple, tuple[float, float, int]]:
    """Mean, sample standard deviation (ddof 1; NaN for a group of one) and count
    of ``value`` per group of ``keys`` (rows whose value is None are skipped)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        v = r.get(value)
        if v is None:
            continue
        groups.setdefault(tuple(r[k] for k in keys), []).append(float(v))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), len(v))
            for k, v in groups.items()}


def group_series(stats: dict[tuple, tuple[float, float, int]], first, second):
    """``(x, mean, sd)`` float arrays, sorted by x, of the :func:`group_mean`
    groups keyed ``(first, second, x)``; None when there is no such group."""
    pts = sorted((k[2], v) for k, v in stats.items() if k[0] == first and k[1] == second)
    if not pts:
        return None
    return (np.array([p[0] for p in pts]), np.array([p[1][0] for p in pts]), np.array([p[1][1] for p in pts]))
