"""The pruned conv-net study's claims reuse the MLP study's rules on the conv tables.

:func:`on_conv_tables` wraps an MLP claim's rule: it reads the conv study's
tables under the MLP study's names (``conv_study_kernels`` as ``kernels``,
``conv_study_training`` as ``training``, ``conv_study_correlations`` as
``correlations``, ``conv_study_generalisation`` as ``generalisation``) and names the analytic kernels as Graphon CNTKs.
"""
from __future__ import annotations

from typing import Callable

#: conv study table -> the MLP study's table of the same columns
TABLES = {"conv_study_kernels": "kernels", "conv_study_training": "training",
          "conv_study_correlations": "correlations", "conv_study_generalisation": "generalisation"}


def on_conv_tables(rule: Callable) -> Callable:
    """``evaluate(claim, tables, meta)`` applying the MLP ``rule`` to the conv study's tables."""

    def evaluate(claim, tables, meta):
        t = {TABLES[k]: v for k, v in tables.items() if k in TABLES}
        rows = rule(claim, t, meta)
        return [{**r, "kernel": r["kernel"].replace("Graphon NTK", "Graphon CNTK")} for r in rows]

    return evaluate
