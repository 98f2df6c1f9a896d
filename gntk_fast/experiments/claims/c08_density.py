"""C8: each layer's density stays fixed as width grows (an assumption of the hypothesis)."""
from __future__ import annotations

from ..metrics import DENSITY
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    out = []
    for scope in ("global", "layerwise"):
        sel = [r for r in t["scope_density"] if r["scope"] == scope]
        if not sel:
            continue
        worst, parts = 0.0, []
        for m in sorted({r["method"] for r in sel}):
            for layer in sorted({r["layer"] for r in sel if r["method"] == m}):
                pts = sorted((r["width"], r[DENSITY]) for r in sel if r["method"] == m and r["layer"] == layer)
                change = max(p[1] for p in pts) - min(p[1] for p in pts)
                worst = max(worst, change)
                parts.append(f"{m} L{layer}: {pts[0][1]:.3f} -> {pts[-1][1]:.3f}")
        out.append(verdict(claim, f"masks, {scope} scope", bool(worst <= 0.02),
                           f"largest change {worst:.3f}; " + "; ".join(parts)))
    return out


CLAIM = Claim(
    "C8", "each layer's density is fixed as width grows (assumed by the hypothesis): NO drift",
    "Sec. 3 (assumption)", ("scope_density",), "every layer's density changes by <= 0.02 across widths", _evaluate)
