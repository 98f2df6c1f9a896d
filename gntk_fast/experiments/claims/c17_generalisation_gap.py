"""C17: the NTK generalisation measure predicts the generalisation gap (held-out minus training loss)."""
from __future__ import annotations

from ._base import Claim
from .c16_generalisation import RULE, _gap

CLAIM = Claim(
    "C17", "the NTK generalisation measure predicts the generalisation gap: a LARGER measure goes with a LARGER gap "
    "(held-out minus training loss)", "follow-up (Arora et al. 2019 measure)", ("generalisation", "kernels"),
    RULE.format("gap (held-out loss - final training loss)"), _gap)
