"""C13: the path densities of the layered graphon match the finite path counts as width grows (the follow-up)."""
from __future__ import annotations

import numpy as np

from ..metrics import ERR_JOINT
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    rows = t["limit_paths"]
    if not rows:
        return []
    ws = sorted({r["width"] for r in rows})

    def err(w):
        v = [r[ERR_JOINT] for r in rows if r["width"] == w and r[ERR_JOINT] is not None]
        return float(np.mean(v)) if v else None

    lo, hi = err(ws[0]), err(ws[-1])
    held = None if lo is None or hi is None else bool(hi < lo)
    return [verdict(claim, "joint network graphon", held,
                    f"mean relative error {lo:.3g} (n={ws[0]}) -> {hi:.3g} (n={ws[-1]})" if held is not None
                    else "n/a")]


CLAIM = Claim(
    "C13", "path densities of the layered graphon match finite path counts as width grows: the error FALLS",
    "follow-up, Sec. 3", ("limit_paths",), "mean relative error smaller at the widest width than at the narrowest",
    _evaluate)
