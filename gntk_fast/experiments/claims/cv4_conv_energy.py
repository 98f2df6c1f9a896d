"""CV4: C5's rule on pruned conv nets: SNIP and SynFlow concentrate kernel energy as sparsity grows."""
from __future__ import annotations

from ._base import Claim
from ._conv_study import on_conv_tables
from .c05_energy import CLAIM as C5

CLAIM = Claim(
    "CV4", "pruned conv nets: SNIP and SynFlow concentrate kernel energy in the top eigenvalues: the top-5 energy "
    "RISES with sparsity", "Sec. 6, Fig. 3 (for conv nets)", ("conv_study_kernels",), C5.rule,
    on_conv_tables(C5.evaluate))
