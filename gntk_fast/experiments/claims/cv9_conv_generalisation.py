"""CV9: C16's rule on pruned conv nets: the NTK generalisation measure predicts the held-out loss."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c16_generalisation import CLAIM as C16

CLAIM = Claim(
    "CV9", "pruned conv nets: the NTK generalisation measure predicts the held-out loss: a LARGER measure goes with "
    "a HIGHER held-out loss", "follow-up (for conv nets)", ("conv_study_generalisation", "conv_study_kernels"),
    C16.rule, on_conv_tables(C16.evaluate))
