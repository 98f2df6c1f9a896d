"""C14: masks pruned from a designed graphon train better than Random/SNIP/SynFlow (the follow-up's future work)."""
from __future__ import annotations

import numpy as np

from ..metrics import TEST_LOSS
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    by = {}
    for r in t["limit_training"]:
        by.setdefault(r["method"], []).append(r[TEST_LOSS])
    des = [k for k in by if k.startswith("designed") and "shuffled" not in k]
    others = [k for k in by if not k.startswith("designed")]
    if not des or not others:
        return []
    d = float(np.mean(by[des[0]]))
    best = min(others, key=lambda k: np.mean(by[k]))
    return [verdict(claim, "training (final eval loss)", bool(d < np.mean(by[best])),
                    "; ".join(f"{k}: {np.mean(v):.3f}" for k, v in by.items()))]


CLAIM = Claim(
    "C14", "a graphon designed through the analytic kernel prunes better: its final eval loss is LOWER than "
    "Random/SNIP/SynFlow's at the same density", "follow-up, future work", ("limit_training",),
    "designed graphon's final eval loss below every baseline's", _evaluate)
