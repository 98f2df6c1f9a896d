"""CV5: C6's rule on pruned conv nets: the kernels' spectral metrics predict the training loss."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c06_spectral_correlation import CLAIM as C6

CLAIM = Claim(
    "CV5", "pruned conv nets: the kernel's spectral metrics predict the training loss with the paper's sign (more "
    "concentrated or better aligned kernel -> LOWER loss)", "Sec. 6 (for conv nets)", ("conv_study_correlations",),
    C6.rule, on_conv_tables(C6.evaluate))
