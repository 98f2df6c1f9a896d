"""The claims the report tests: one :class:`Claim` per claim, one registry.

Each claim lives in its own module as ``CLAIM`` (the hypothesis with its
expected sign, the rule, the tables it reads, and the rule's code) and is
registered by one line in :data:`_MODULES`. :func:`evaluate_claims` applies
every registered claim whose tables are present; each returns verdict rows
``{id, claim, source, kernel, held, numbers, criterion}`` with ``held`` True,
False or None (not measurable or not applicable; ``numbers`` says why).
Changes to a rule after its numbers were seen are listed in
:data:`RULE_CHANGES` and printed in the report.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any, Mapping

from ._base import Claim, Tables, verdict
from ._history import RULE_CHANGES

__all__ = ["Claim", "CLAIMS", "RULE_CHANGES", "evaluate_claims", "get_claim", "verdict"]

_MODULES = (
    "c01_graphon_convergence",
    "c02_flatness",
    "c03_kernel_convergence",
    "c04_random_scaling",
    "c05_energy",
    "c06_spectral_correlation",
    "c06b_against_random",
    "c07_linearised",
    "c08_density",
    "c09_variance_kernel",
    "c09b_variance_shape",
    "c10_pruned_kernels",
    "c11_limit_convergence",
    "c12_feature_selection",
    "c13_path_density",
    "c14_designed_graphon",
    "c15_kept_mean",
    "c16_generalisation",
    "c17_generalisation_gap",
    "c18_path_alignment",
    "c19_active_subspace",
    "cv1_conv_graphon_convergence", "cv2_conv_kernel_convergence", "cv3_conv_random_scaling",
    "cv4_conv_energy", "cv5_conv_spectral_correlation", "cv6_conv_against_random", "cv7_conv_variance_kernel",
    "cv8_conv_variance_shape", "cv9_conv_generalisation", "cv10_conv_generalisation_gap",
)

CLAIMS: tuple[Claim, ...] = tuple(import_module(f"{__name__}.{m}").CLAIM for m in _MODULES)
if len({c.id for c in CLAIMS}) != len(CLAIMS):  # pragma: no cover - a registry error
    raise RuntimeError("claim ids must be unique")


def get_claim(cid: str) -> Claim:
    """The registered claim with id ``cid``.

    Examples
    --------
    >>> get_claim("C1").reads
    ('convergence',)
    """
    for c in CLAIMS:
        if c.id == cid:
            return c
    raise ValueError(f"cid must be one of {[c.id for c in CLAIMS]}, got {cid!r}")


def evaluate_claims(tables: Tables, meta: Mapping[str, Any] | None = None) -> list[dict]:
    """The verdict rows of every registered claim whose tables are present, in registry order.

    Examples
    --------
    >>> rows = [{"scope": "global", "method": "random", "width": w, "layer": 1, "hist": h}
    ...         for w, h in ((10, 0.5), (20, 0.3), (40, 0.0))]
    >>> evaluate_claims({"convergence": rows})[0]["held"]
    True
    """
    out: list[dict] = []
    for c in CLAIMS:
        out += c(tables, meta or {})
    return out
