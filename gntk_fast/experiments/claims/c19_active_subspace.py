"""C19: a pruned network approximates functions of the coordinates its limit keeps, not of those it prunes away."""
from __future__ import annotations

import numpy as np

from ..metrics import N_KEPT_COORDS, N_PRUNED_COORDS, TEST_R2
from ._base import Claim, verdict

MIN_SET = 2        # coordinates each set must hold
R2_KEPT = 0.5      # held-out R^2 the kept-coordinate target must reach at the largest width
DROP = 0.05        # and may not fall by more than this from the smallest width
R2_PRUNED = 0.2    # held-out R^2 the pruned-coordinate target may not exceed at the largest width
R2_DENSE = 0.5     # the dense control must fit the pruned-coordinate target this well (else not applicable)


def _mean(rows, **match) -> float | None:
    v = [r[TEST_R2] for r in rows if all(r.get(k) == m for k, m in match.items()) and r.get(TEST_R2) is not None]
    return float(np.mean(v)) if v else None


def _evaluate(claim, t, meta):
    rows = t["active_fit"]
    sets = {r["method"]: r for r in t.get("active_sets", [])}
    out = []
    for m in sorted({r["method"] for r in rows if r["net"] == "pruned"} | set(sets)):
        s = sets.get(m, {})
        nk, npr = int(s.get(N_KEPT_COORDS, 0)), int(s.get(N_PRUNED_COORDS, 0))
        if nk < MIN_SET or npr < MIN_SET:
            out.append(verdict(claim, "pruned nets, held-out R^2", None,
                               f"not applicable: the predicted limit keeps {nk} and prunes away {npr} input "
                               f"coordinates (the rule needs >= {MIN_SET} in each set)", subject=m))
            continue
        sel = [r for r in rows if r["method"] == m]
        ws = sorted({r["width"] for r in sel if r["net"] == "pruned"})
        w0, w1 = ws[0], ws[-1]
        k0, k1 = _mean(sel, net="pruned", target="kept", width=w0), _mean(sel, net="pruned", target="kept", width=w1)
        p1 = _mean(sel, net="pruned", target="pruned", width=w1)
        ctrl = _mean(sel, net="dense", target="pruned", width=w1)
        curve = {w: (round(_mean(sel, net="pruned", target="kept", width=w), 3),
                     round(_mean(sel, net="pruned", target="pruned", width=w), 3)) for w in ws}
        nums = (f"R^2 (kept target, pruned-away target) by width {curve}; dense control on the pruned-away target "
                f"at width {w1}: {ctrl:.3f}" if ctrl is not None else f"R^2 by width {curve}; no dense control")
        if ctrl is None or ctrl < R2_DENSE:
            out.append(verdict(claim, "pruned nets, held-out R^2", None,
                               "not applicable: the dense network does not fit the pruned-away target either; "
                               + nums, subject=m))
            continue
        held = bool(k1 >= R2_KEPT and k1 >= k0 - DROP and p1 <= R2_PRUNED)
        out.append(verdict(claim, "pruned nets, held-out R^2", held, nums, subject=m))
    return out


CLAIM = Claim(
    "C19", "universal approximation on the active coordinate subspace: a pruned network FITS a target that depends "
    "only on the input coordinates its limit graphon keeps and does NOT fit one that depends only on the "
    "coordinates it prunes away (R^2(kept) - R^2(pruned) > 0), as width grows", "follow-up, Sec. 5",
    ("active_fit", "active_sets"),
    f"per method whose predicted (pooled) limit keeps >= {MIN_SET} coordinates (predicted density >= d) and prunes "
    f">= {MIN_SET} away (density < d/10): mean held-out R^2 over seeds of the kept-coordinate target at the largest "
    f"width >= {R2_KEPT} and not below its smallest-width value by more than {DROP}, AND of the pruned-away target "
    f"at the largest width <= {R2_PRUNED}; not applicable when the dense network of the largest width fits the "
    f"pruned-away target with R^2 < {R2_DENSE} (then the target is not learnable at this size) or a set is too small",
    _evaluate)
