"""C9b: kernel (d) is closer to (a) than (c) AFTER the best scalar (shape, not overall scale)."""
from __future__ import annotations

import numpy as np

from ..metrics import SCALE_FREE_DIST_TO_A
from ._base import Claim, verdict

MIN_CASES = 5


def _evaluate(claim, t, meta):
    rows = [r for r in t["kernels"] if r["method"] != "dense"]
    if not any(r["kernel"] == "gntk_variance" for r in rows):
        return []
    if any(SCALE_FREE_DIST_TO_A not in r for r in rows):
        return [verdict(claim, "(c), (d) vs (a), scale-free", None,
                        "the kernels table has no scale_free_dist_to_a column (written before it was measured): "
                        "rerun the study section")]
    by = {}
    for r in rows:
        if r["kernel"] in ("gntk_mask", "gntk_variance") and r[SCALE_FREE_DIST_TO_A] is not None:
            by.setdefault((r["method"], r["sparsity"], r["seed"]), {})[r["kernel"]] = r[SCALE_FREE_DIST_TO_A]
    diffs = {k: v["gntk_mask"] - v["gntk_variance"] for k, v in by.items() if len(v) == 2}
    if not diffs:
        return []
    d = np.array(list(diffs.values()))
    n = d.size
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    held = None if n < MIN_CASES else bool(d.mean() > 2 * se)
    per = {}
    for (m, _, _), v in by.items():
        if len(v) == 2:
            per.setdefault(m, []).append((v["gntk_mask"], v["gntk_variance"]))
    parts = [f"{m}: (c) {np.mean([p[0] for p in v]):.3f}, (d) {np.mean([p[1] for p in v]):.3f}"
             for m, v in sorted(per.items())]
    return [verdict(claim, "(c), (d) vs (a), scale-free", held,
                    f"mean of (c) - (d) {d.mean():+.4f}, 2 x its standard error {2 * se:.4f}, {n} cases; "
                    + "; ".join(parts))]


CLAIM = Claim(
    "C9b", "kernel (d) is CLOSER to (a) than (c) after the best scalar, i.e. in shape and not only in overall scale",
    "this package (extends Sec. 6)", ("kernels",),
    f"over the pruned cases (at least {MIN_CASES}), the mean paired difference of the best-scalar relative distance "
    "to (a), (c) minus (d), > 2 x its standard error (sample sd / sqrt(n))", _evaluate)
