"""C11: pruning masks converge to the predicted (deterministic) limit graphon (the follow-up paper)."""
from __future__ import annotations

import numpy as np

from ..metrics import PRED_ERROR, RMS, SLOPE_CUT, SLOPE_RMS
from ._base import Claim, verdict
from ._util import as_list, finite

MIN_WIDTHS = 4
SLOPE = -0.25
PLATEAU = -0.1


def _evaluate(claim, t, meta):
    rows = t["limit_slope"]
    out = []
    for key in sorted({(r["method"], r["layer"]) for r in rows}, key=lambda k: (k[1], k[0])):
        sel = [r for r in rows if (r["method"], r["layer"]) == key]
        ind = [r for r in sel if r.get("reference") == "independent"]
        subject = f"{key[0]} (layer {key[1]})"
        if not ind:
            same = sel[0]
            out.append(verdict(claim, "masks (SAS) vs prediction", None,
                               "only the same-network fit was measured (the prediction fitted on the network whose "
                               "masks it is compared with: a diagnostic of agreement, not of convergence; RMS slope "
                               f"{same[SLOPE_RMS]:.2f}); rerun with independent networks", subject=subject))
            continue
        r = ind[0]
        widths, rms = as_list(r["widths"]), as_list(r[RMS])
        slope, cslope = r.get(SLOPE_RMS), r.get(SLOPE_CUT)
        if len(widths) < MIN_WIDTHS or not (finite(slope) and finite(cslope)):
            out.append(verdict(claim, "masks (SAS) vs prediction", None,
                               f"{len(widths)} widths (the rule needs {MIN_WIDTHS}) or no finite slope",
                               subject=subject))
            continue
        last = float(np.log(rms[-1] / rms[-2]) / np.log(widths[-1] / widths[-2])) if rms[-2] > 0 < rms[-1] else None
        held = bool(slope <= SLOPE and cslope <= SLOPE and last is not None and last <= PLATEAU)
        nums = (f"RMS by width {dict(zip(widths, [round(v, 4) for v in rms]))}, slope {slope:.2f}, last-segment slope "
                f"{last:.2f}{' (plateau: a width-independent bias)' if last is not None and last > PLATEAU else ''}; "
                f"cut-norm slope {cslope:.2f}")
        if finite(r.get(PRED_ERROR)):
            nums += f"; the prediction's own error {r[PRED_ERROR]:.3g}"
        out.append(verdict(claim, "masks (SAS) of independent nets vs prediction", held, nums, subject=subject))
    return out


CLAIM = Claim(
    "C11", "masks converge to the predicted limit graphon: the distance from the prediction to the SAS of masks of "
    "INDEPENDENT networks FALLS with width, without a plateau", "follow-up, Thm. (FSM)", ("limit_slope",),
    f"at least {MIN_WIDTHS} widths; log-log slopes of the RMS distance and of its cut norm (lower bound) both <= "
    f"{SLOPE}, and the RMS slope over the last two widths <= {PLATEAU} (no plateau); the prediction must not be "
    "fitted on the compared network", _evaluate)
