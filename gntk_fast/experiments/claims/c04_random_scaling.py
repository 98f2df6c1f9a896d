"""C4: random pruning at density c scales the NTK by a power of c (the paper's Appendix B)."""
from __future__ import annotations

from ..metrics import EXPONENT, PREDICTED_EXPONENT, TRAINABLE
from ._base import Claim, verdict


def _evaluate(claim, t, meta):
    out = []
    for s in t["random_scaling_fit"]:
        e, p = s[EXPONENT], s[PREDICTED_EXPONENT]
        held = None if e is None else bool(abs(e - p) <= 0.05 * p)
        out.append(verdict(claim, s["kernel"], held, f"fitted exponent {e:.3f} vs {p}" if e is not None else "n/a",
                           subject=f"c^{p} (trainable=\"{s[TRAINABLE]}\")"))
    return out


CLAIM = Claim(
    "C4", "random pruning at density c scales the NTK by c^(L+1) (trainable=\"mask\") or c^L (\"all\")",
    "App. B", ("random_scaling_fit",), "fitted exponent within 5% of the predicted one", _evaluate)
