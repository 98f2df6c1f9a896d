"""CV8: C9b's rule on pruned conv nets: (d) is closer to (a) than (c) after the best scalar (shape)."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c09b_variance_shape import CLAIM as C9B

CLAIM = Claim(
    "CV8", "pruned conv nets: the Graphon CNTK (d) is CLOSER to (a) than (c) after the best scalar, i.e. in shape "
    "and not only in overall scale", "this package (extends Sec. 6 to conv nets)", ("conv_study_kernels",),
    C9B.rule, on_conv_tables(C9B.evaluate))
