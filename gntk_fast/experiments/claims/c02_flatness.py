"""C2: random pruning's graphon is flat, the data-driven methods' is not (Sec. 4, Fig. 1)."""
from __future__ import annotations

from ..metrics import BLOCK_SD, FLAT_BOUND, NULL_SD
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    rows = t["flatness"]
    if not rows:
        return []
    if any(r.get(NULL_SD) is None or r.get(FLAT_BOUND) is None for r in rows):
        return [verdict(claim, "masks (SAS)", None,
                        "the flatness table has no null_sd column (written under an earlier rule): rerun the "
                        "convergence section")]
    parts, held = [], True
    for r in rows:
        bound = r[FLAT_BOUND]
        parts.append(f"{r['method']}: block sd {r[BLOCK_SD]:.3g} (constant graphon's {r[NULL_SD]:.3g}, "
                     f"bound {bound:.3g})")
        held &= (r[BLOCK_SD] <= bound) if r["method"] == "random" else (r[BLOCK_SD] > bound)
    return [verdict(claim, "masks (SAS)", bool(held), "; ".join(parts))]


CLAIM = Claim(
    "C2", "random pruning converges to a constant graphon (block spread NOT above a flat graphon's); "
    "SNIP/GraSP/SynFlow do not (spread ABOVE it)", "Sec. 4, Fig. 1", ("flatness",),
    "sd of the widest width's block values <= flat_bound = 1.5 x null_sd (random) and > it (data-driven), where "
    "null_sd is the block sd of the same SAS of masks sampled from the constant graphon at the same size, density "
    "and trials", _evaluate)
