"""C1: SAS estimates of pruning masks converge as width grows (the paper's Sec. 4, Fig. 1)."""
from __future__ import annotations

from ..metrics import HIST
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    sel = [r for r in t["convergence"] if r["scope"] == "global"]
    parts, ok, measurable = [], True, False
    for m in sorted({r["method"] for r in sel}):
        for layer in sorted({r["layer"] for r in sel if r["method"] == m}):
            pts = sorted((r["width"], r[HIST]) for r in sel if r["method"] == m and r["layer"] == layer)
            d = [p[1] for p in pts[:-1]]  # the widest width is the reference (distance 0)
            mono = all(a > b for a, b in zip(d, d[1:]))
            measurable |= len(d) >= 2
            ok &= mono
            parts.append(f"{m} L{layer}: " + " > ".join(f"{v:.3g}" for v in d) + ("" if mono else " (not monotone)"))
    return [verdict(claim, "masks (SAS)", ok if measurable else None, "; ".join(parts))]


CLAIM = Claim(
    "C1", "SAS estimates of the masks converge as width grows: the distance to the widest width's estimate FALLS",
    "Sec. 4, Fig. 1", ("convergence",),
    "histogram distance to the widest width's estimate strictly decreasing over the other widths (global scope, "
    "every method and hidden layer)", _evaluate)
