"""CV6: C6b's rule on pruned conv nets: more top-5 energy than Random's goes with a lower loss than Random's."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c06b_against_random import CLAIM as C6B

CLAIM = Claim(
    "CV6", "pruned conv nets: at the same sparsity, a method whose kernel has MORE top-5 energy than Random's trains "
    "to a LOWER loss than Random", "Sec. 6, Fig. 2-3 (for conv nets)", ("conv_study_kernels", "conv_study_training"),
    C6B.rule, on_conv_tables(C6B.evaluate))
