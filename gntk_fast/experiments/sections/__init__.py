"""The report's sections: one :class:`Section` per section, one registry.

Each section lives in its own module as ``SECTION`` (the settings it reads,
the tables it writes, ``run`` that computes and saves them, ``render`` that
writes its markdown from the tables alone, and ``deviations`` from the paper's
protocol) and is registered by one line in :data:`_MODULES`; the report runs
and renders them in that order.
"""
from __future__ import annotations

from importlib import import_module

from ._base import Section, View, fmt, md_table

__all__ = ["SECTIONS", "Section", "View", "md_table", "fmt"]

_MODULES = (
    "convergence",
    "kernel_checks",
    "study",
    "limit_graphons",
    "kept_moments",
    "active_subspace",
    "conv",
    "conv_study",
)

SECTIONS: tuple[Section, ...] = tuple(import_module(f"{__name__}.{m}").SECTION for m in _MODULES)
