"""Names shared by the library and the command line, importable without torch.

The command line builds its parsers from these (so ``gntk-fast --help`` never
imports torch or numba); the library modules import them from here too, so
each name list has one home.
"""
from __future__ import annotations

__all__ = [
    "METHODS",
    "PRUNING_METHODS",
    "SCOPES",
    "SCOPE_ALIASES",
    "SCHEDULES",
    "COMPAT_MODES",
    "DATASETS",
    "DEFAULT_DEPTH",
    "PADDINGS",
    "READOUTS",
]

#: the registry of pruning scores, in the order of the papers: name -> the
#: ``gntk_fast.pruning.scores.PruningMethod`` subclass computing it, as
#: "module:Class" (imported on first use). A new score is one subclass and one
#: entry here.
PRUNING_METHODS: dict[str, str] = {
    "random": "gntk_fast.pruning.scores:RandomScore",
    "magnitude": "gntk_fast.pruning.scores:MagnitudeScore",
    "snip": "gntk_fast.pruning.scores:SnipScore",
    "grasp": "gntk_fast.pruning.scores:GraspScore",
    "synflow": "gntk_fast.pruning.scores:SynFlowScore",
}
#: pruning scores, in the order of the papers
METHODS: tuple[str, ...] = tuple(PRUNING_METHODS)
#: "global": one ranking over all prunable weights; "layerwise": per layer
SCOPES: tuple[str, ...] = ("global", "layerwise")
SCOPE_ALIASES: dict[str, str] = {"local": "layerwise"}
#: density schedules of iterative pruning
SCHEDULES: tuple[str, ...] = ("exponential", "linear")
#: mask selection rules
COMPAT_MODES: tuple[str, ...] = ("clean", "synaptic-flow")
#: datasets of gntk_fast.data (digits is embedded; MNIST is read from IDX files)
DATASETS: tuple[str, ...] = ("digits", "mnist")
#: hidden layers of the command line's models when --depth is not given (every command)
DEFAULT_DEPTH = 3
#: padding modes of conv layers (both keep the image size): the models and the conv kernels
PADDINGS: tuple[str, ...] = ("circular", "same")
#: readouts of conv nets: global average pooling, or the flattened feature maps
READOUTS: tuple[str, ...] = ("gap", "flatten")
