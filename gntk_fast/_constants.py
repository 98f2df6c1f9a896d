"""Names shared by the library and the command line, importable without torch.

The command line builds its parsers from these (so ``gntk-fast --help`` never
imports torch or numba); the library modules import them from here too, so
each name list has one home.
"""
from __future__ import annotations

__all__ = [
    "METHODS",
    "SCOPES",
    "SCOPE_ALIASES",
    "SCHEDULES",
    "COMPAT_MODES",
    "DEFAULT_ITERATIONS",
    "DATASETS",
    "DEFAULT_DEPTH",
]

#: pruning scores, in the order of the papers
METHODS: tuple[str, ...] = ("random", "magnitude", "snip", "grasp", "synflow")
#: "global": one ranking over all prunable weights; "layerwise": per layer
SCOPES: tuple[str, ...] = ("global", "layerwise")
SCOPE_ALIASES: dict[str, str] = {"local": "layerwise"}
#: density schedules of iterative pruning
SCHEDULES: tuple[str, ...] = ("exponential", "linear")
#: mask selection rules
COMPAT_MODES: tuple[str, ...] = ("clean", "synaptic-flow")
#: pruning iterations E per method when not given
DEFAULT_ITERATIONS: dict[str, int] = {"synflow": 100, "random": 1, "magnitude": 1, "snip": 1, "grasp": 1}
#: datasets of gntk_fast.data (digits is embedded; MNIST is read from IDX files)
DATASETS: tuple[str, ...] = ("digits", "mnist")
#: hidden layers of the command line's models when --depth is not given (every command)
DEFAULT_DEPTH = 3
