"""CV7: C9's rule on pruned conv nets: the variance-graphon CNTK (d) is closer to the eNTK (a) than (c)."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c09_variance_kernel import CLAIM as C9

CLAIM = Claim(
    "CV7", "pruned conv nets: variance graphons E[w^2 m] carry what the pruner kept: the Graphon CNTK (d) is CLOSER "
    "to (a) than (c) (raw distance, scale included)", "this package (extends Sec. 6 to conv nets)",
    ("conv_study_kernels",), C9.rule, on_conv_tables(C9.evaluate))
