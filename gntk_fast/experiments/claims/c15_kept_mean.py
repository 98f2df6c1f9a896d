"""C15: GraSP's exploding eNTK comes from a first moment of its kept weights that grows with width."""
from __future__ import annotations

from .._tables import loglog_slope
from ..metrics import COHERENCE_HIDDEN, ENTK_TRACE_RATIO
from ..sections.kept_moments import summary
from ._base import Claim, verdict

MIN_WIDTHS = 4
SLOPE = 0.2
NULL = (0.8, 1.25)


def _evaluate(claim, t, meta):
    s = summary(t["kept_moments"], t.get("kept_moments_nets", []))
    by = {}
    for r in s:
        by.setdefault(r["method"], []).append(r)
    if "grasp" not in by or "random" not in by:
        return []
    g, rnd = sorted(by["grasp"], key=lambda r: r["width"]), by["random"]
    widths = [r["width"] for r in g]
    coh = [r[COHERENCE_HIDDEN] for r in g]
    tr = [r[ENTK_TRACE_RATIO] for r in g]
    cs, ts = loglog_slope(widths, coh), loglog_slope(widths, tr)
    rc = [r[COHERENCE_HIDDEN] for r in rnd]
    nums = (f"GraSP coherence by width {dict(zip(widths, [round(c, 3) for c in coh]))}, slope "
            f"{cs if cs is None else round(cs, 3)}; eNTK trace / dense {dict(zip(widths, [round(v, 3) for v in tr]))}, "
            f"slope {ts if ts is None else round(ts, 3)}; Random's coherence {[round(c, 3) for c in rc]}")
    if len(widths) < MIN_WIDTHS or cs is None or ts is None:
        return [verdict(claim, "kept weights (hidden layers), eNTK", None, nums + f"; needs {MIN_WIDTHS} widths")]
    held = bool(cs >= SLOPE and ts > 0 and all(NULL[0] <= c <= NULL[1] for c in rc))
    return [verdict(claim, "kept weights (hidden layers), eNTK", held, nums)]


CLAIM = Claim(
    "C15", "GraSP keeps weights of one sign more than the other within a row: the row coherence of its hidden "
    "layers RISES with width (a first-moment graphon E[w m] that does not vanish), with its eNTK trace, while "
    "Random's coherence stays at its null value 1", "this package (explains GraSP's eNTK)",
    ("kept_moments", "kept_moments_nets"),
    f"at least {MIN_WIDTHS} widths; log-log slope of GraSP's mean hidden-layer coherence >= {SLOPE}, slope of its "
    f"eNTK trace ratio to the dense net > 0, and Random's coherence in [{NULL[0]}, {NULL[1]}] at every width",
    _evaluate)
