"""C10: for nets actually pruned, the variance-graphon kernel (d) approaches their eNTK (a) as width grows."""
from __future__ import annotations

from ..metrics import MEAN_REL_DIST, SLOPE_REL_DIST
from ._base import Claim, verdict
from ._util import as_list


def _evaluate(claim, t, meta):
    out = []
    for r in t["pruned_kernels_fit"]:
        if r["kernel"] != "gntk_variance":
            continue
        widths, dist = as_list(r["widths"]), as_list(r[MEAN_REL_DIST])
        slope, last = r[SLOPE_REL_DIST], dist[-1]
        held = None if slope is None else bool(slope <= -0.25 and last < 0.25)
        nums = ", ".join(f"n={w}: {d:.3f}" for w, d in zip(widths, dist))
        out.append(verdict(claim, "(d) vs (a)", held, f"{nums}; slope {slope:.2f}" if slope is not None else nums,
                           subject=r["method"]))
    return out


CLAIM = Claim(
    "C10", "the variance-graphon kernel (d) converges to the pruned net's eNTK (a): the distance FALLS with width",
    "this package", ("pruned_kernels_fit",),
    "log-log slope of the mean distance <= -0.25 and distance < 0.25 at the widest width", _evaluate)
