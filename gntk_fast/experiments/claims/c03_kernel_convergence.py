"""C3: finite nets with graphon-sampled masks converge to the analytic Graphon NTK like n^-1/2 (Thm. 1)."""
from __future__ import annotations

import numpy as np

from .._tables import loglog_slope
from ..metrics import MEAN_REL_DIST, REL_DIST, SLOPE_REL_DIST, TRAINABLE
from ._base import Claim, verdict

MIN_WIDTHS = 4


def summaries(rows):
    """Per convention: widths, mean relative error over seeds, log-log slope."""
    out = []
    for conv in sorted({r[TRAINABLE] for r in rows}, key=lambda c: (c != "mask", c)):
        sel = [r for r in rows if r[TRAINABLE] == conv]
        widths = sorted({r["width"] for r in sel})
        means = [float(np.mean([r[REL_DIST] for r in sel if r["width"] == w])) for w in widths]
        out.append({TRAINABLE: conv, "widths": widths, MEAN_REL_DIST: means,
                    SLOPE_REL_DIST: loglog_slope(widths, means)})
    return out


def _evaluate(claim, t, meta):
    out = []
    for s in summaries(t["kernel_convergence"]):
        slope = s[SLOPE_REL_DIST]
        nums = ", ".join(f"n={w}: {e:.3g}" for w, e in zip(s["widths"], s[MEAN_REL_DIST]))
        nums += f"; slope {slope:.3f}" if slope is not None else ""
        if len(s["widths"]) < MIN_WIDTHS:
            held = None
            nums += f"; only {len(s['widths'])} widths (the rule needs {MIN_WIDTHS})"
        else:
            held = None if slope is None else bool(-0.65 <= slope <= -0.35)
        out.append(verdict(claim, f'eNTK vs Graphon NTK (trainable="{s[TRAINABLE]}")', held, nums))
    return out


CLAIM = Claim(
    "C3", "finite nets with graphon-sampled masks converge to the analytic Graphon NTK: the error FALLS like n^-1/2",
    "Thm. 1", ("kernel_convergence",),
    f"at least {MIN_WIDTHS} widths, and the log-log slope of the mean relative error in [-0.65, -0.35]", _evaluate)
