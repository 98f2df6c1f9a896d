"""C7: the linearised model (the eNTK at initialisation) predicts the training loss."""
from __future__ import annotations

from ..metrics import DIVERGED, MEASURED_LOSS, PREDICTED_LOSS
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    rows = t["linearised"]
    if not rows:
        return []
    parts, errs, div = [], [], 0
    for m, s in sorted({(r["method"], r["sparsity"]) for r in rows}):
        sel = sorted((r for r in rows if r["method"] == m and r["sparsity"] == s), key=lambda r: r["step"])
        last = sel[-1]
        if last.get(DIVERGED) or last[MEASURED_LOSS] is None:
            div += 1
            parts.append(f"{m} s={s:g}: diverged")
            continue
        e = abs(last[PREDICTED_LOSS] - last[MEASURED_LOSS]) / max(last[MEASURED_LOSS], 1e-300)
        errs.append(e)
        parts.append(f"{m} s={s:g}: {e:.2f}")
    held = None if not errs and not div else bool(div == 0 and max(errs) <= 0.25)
    return [verdict(claim, "(a) eNTK, pruned net", held, f"final-step relative error: {'; '.join(parts)}")]


CLAIM = Claim(
    "C7", "the linearised model (the eNTK at init) predicts the training loss of full-batch GD",
    "Sec. 6 (method)", ("linearised",), "every case converges and its final loss is within 25% of the prediction",
    _evaluate)
