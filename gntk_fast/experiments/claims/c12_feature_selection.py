"""C12: the input layer's feature selection (SNIP, GraSP) is predicted by the limit graphon (the follow-up)."""
from __future__ import annotations

import numpy as np

from ..metrics import CORR, JACCARD, PRUNED_MEASURED, PRUNED_PRED
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    rows = t["limit_input"]
    if not rows:
        return []
    widest = max(r["width"] for r in rows)
    out = []
    for m in sorted({r["method"] for r in rows}):
        if not m.startswith(("snip", "grasp")):
            continue
        sel = [r for r in rows if r["method"] == m and r["width"] == widest]
        cs = [r[CORR] for r in sel if r[CORR] is not None]
        if not cs:
            continue
        c = float(np.mean(cs))
        if not all(r.get("reference") == "independent" for r in sel):
            out.append(verdict(claim, "input-layer kept density", None,
                               f"measured on the masks of the network the prediction was fitted on (a diagnostic: "
                               f"Pearson r {c:.3f}); rerun against an independent network", subject=m))
            continue
        pred = [r.get(PRUNED_PRED) for r in sel]
        meas = [r.get(PRUNED_MEASURED) for r in sel]
        if all(p == 0 for p in pred) and all(q == 0 for q in meas):
            out.append(verdict(claim, "input-layer kept density", None,
                               f"not applicable: no coordinate is pruned away in the prediction or in the masks "
                               f"(width {widest}; Pearson r {c:.3f})", subject=m))
            continue
        j = float(np.mean([r[JACCARD] for r in sel]))
        out.append(verdict(claim, "input-layer kept density", bool(c >= 0.8 and j >= 0.5),
                           f"Pearson r {c:.3f}, Jaccard of pruned-away sets {j:.2f} (predicted {pred}, measured "
                           f"{meas} coordinates; width {widest})", subject=m))
    return out


CLAIM = Claim(
    "C12", "the input layer's feature selection is predicted: predicted and measured per-coordinate kept densities "
    "correlate POSITIVELY and the pruned-away coordinates agree", "follow-up, Sec. 5", ("limit_input",),
    "for SNIP and GraSP at the widest width: Pearson r >= 0.8 of the per-coordinate densities AND Jaccard >= 0.5 of "
    "the pruned-away coordinates (density < d/10), measured on an independent network's masks; not applicable when "
    "neither side prunes any coordinate away",
    _evaluate)
