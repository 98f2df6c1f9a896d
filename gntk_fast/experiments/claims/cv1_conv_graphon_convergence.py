"""CV1: SAS estimates of pruned conv masks' channel graphons converge as the channel count grows."""
from __future__ import annotations

import numpy as np

from .._tables import loglog_slope
from ..metrics import MEAN_RMS, RMS, SLOPE_RMS
from ._base import Claim, verdict

MIN_COUNTS = 3
MAX_SLOPE = -0.2


def summaries(rows):
    """Per method: the channel counts below the widest, the mean distance (over layers and trials) and the slope."""
    out = []
    for m in sorted({r["method"] for r in rows}):
        sel = [r for r in rows if r["method"] == m]
        widest = max(r["channels"] for r in sel)
        chans = sorted({r["channels"] for r in sel if r["channels"] < widest})
        means = [float(np.mean([r[RMS] for r in sel if r["channels"] == c])) for c in chans]
        out.append({"method": m, "channels": chans, "widest": widest, MEAN_RMS: means,
                    SLOPE_RMS: loglog_slope(chans, means)})
    return out


def _evaluate(claim, t, meta):
    out = []
    for s in summaries(t["conv_convergence"]):
        nums = ", ".join(f"C={c}: {d:.3g}" for c, d in zip(s["channels"], s[MEAN_RMS]))
        nums += f" (reference C={s['widest']})"
        slope = s[SLOPE_RMS]
        if len(s["channels"]) < MIN_COUNTS or slope is None:
            held = None
            nums += f"; {len(s['channels'])} channel counts below the widest (the rule needs {MIN_COUNTS})"
        else:
            held = bool(slope <= MAX_SLOPE)
            nums += f"; slope {slope:.3f}"
        out.append(verdict(claim, "conv masks (pooled channel SAS)", held, nums, subject=s["method"]))
    return out


CLAIM = Claim(
    "CV1", "pooled channel-SAS estimates of pruned conv masks converge as channels grow: the distance to the widest "
    "channel count's estimate FALLS", "Sec. 4, Fig. 1 (for conv nets)", ("conv_convergence",),
    f"per method: at least {MIN_COUNTS} channel counts below the widest, and the log-log slope of the mean RMS "
    f"distance (over hidden conv layers and trials) against channels <= {MAX_SLOPE}", _evaluate)
