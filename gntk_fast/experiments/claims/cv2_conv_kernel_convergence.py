"""CV2: finite conv nets with graphon-sampled masks converge to the analytic Graphon CNTK like C^-1/2."""
from __future__ import annotations

import numpy as np

from .._tables import loglog_slope
from ..metrics import MEAN_REL_DIST, REL_DIST, SLOPE_REL_DIST
from ._base import Claim, verdict

MIN_COUNTS = 4
SLOPE_RANGE = (-0.75, -0.3)


def summaries(rows):
    """Per (graphon, readout): channel counts, mean relative error over seeds, log-log slope."""
    out = []
    for g, ro in sorted({(r["graphon"], r["readout"]) for r in rows}):
        sel = [r for r in rows if r["graphon"] == g and r["readout"] == ro]
        chans = sorted({r["channels"] for r in sel})
        means = [float(np.mean([r[REL_DIST] for r in sel if r["channels"] == c])) for c in chans]
        out.append({"graphon": g, "readout": ro, "channels": chans, MEAN_REL_DIST: means,
                    "n_images": sel[0].get("n_images"), SLOPE_REL_DIST: loglog_slope(chans, means)})
    return out


def _evaluate(claim, t, meta):
    out = []
    lo, hi = SLOPE_RANGE
    for s in summaries(t["conv_kernel_convergence"]):
        nums = ", ".join(f"C={c}: {e:.3g}" for c, e in zip(s["channels"], s[MEAN_REL_DIST]))
        slope = s[SLOPE_REL_DIST]
        if len(s["channels"]) < MIN_COUNTS or slope is None:
            held = None
            nums += f"; only {len(s['channels'])} channel counts (the rule needs {MIN_COUNTS})"
        else:
            held = bool(lo <= slope <= hi)
            nums += f"; slope {slope:.3f}"
        out.append(verdict(claim, f"eNTK vs Graphon CNTK ({s['graphon']} graphon, {s['readout']})", held, nums))
    return out


CLAIM = Claim(
    "CV2", "finite conv nets with graphon-sampled masks converge to the analytic Graphon CNTK: the error FALLS like "
    "C^-1/2 in the channel count C", "this package (Thm. 1 for conv nets)", ("conv_kernel_convergence",),
    f"per (graphon, readout): at least {MIN_COUNTS} channel counts, and the log-log slope of the mean relative "
    f"Frobenius error in [{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}]", _evaluate)
