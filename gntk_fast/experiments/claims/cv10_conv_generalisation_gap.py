"""CV10: C17's rule on pruned conv nets: the NTK generalisation measure predicts the generalisation gap."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c17_generalisation_gap import CLAIM as C17

CLAIM = Claim(
    "CV10", "pruned conv nets: the NTK generalisation measure predicts the generalisation gap: a LARGER measure goes "
    "with a LARGER gap (held-out minus training loss)", "follow-up (for conv nets)",
    ("conv_study_generalisation", "conv_study_kernels"), C17.rule, on_conv_tables(C17.evaluate))
