"""gntk_fast: fast kernels for pruned networks and their graphon limits.

Public API (imported lazily, so ``import gntk_fast`` stays cheap)::

    import gntk_fast as gf
    gf.MLP, gf.fc                     # models (depth = number of hidden layers)
    gf.prune(model, "synflow", 0.9)   # pruning at initialisation
    gf.data.load("digits")            # datasets
    gf.empirical_ntk, gf.empirical_ntk_fn          # finite-width NTK of masked MLPs
    gf.graphon                        # SAS estimation, distances, graphon objects
    gf.pai                            # PaI theory: limit_graphon, network_graphon, path densities, design
    gf.graphon_ntk                    # analytic infinite-width Graphon NTK
    gf.spectral_metrics, gf.predicted_loss         # spectra and linearised training
    gf.train(model, (x, y))           # masked training -> TrainResult (loss curve)
    gf.sweep.run("grid.toml", "runs/d")  # resumable task grids on Dask (gf.sweep.load -> one table)
"""
from __future__ import annotations

import importlib
from typing import Any

from . import _threads

_threads._configure_on_import()

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "MLP": ("gntk_fast.models", "MLP"),
    "MaskedLinear": ("gntk_fast.models", "MaskedLinear"),
    "fc": ("gntk_fast.models", "fc"),
    "MaskedConv2d": ("gntk_fast.models", "MaskedConv2d"),
    "ConvNet": ("gntk_fast.models", "ConvNet"),
    "vgg": ("gntk_fast.models", "vgg"),
    "resnet20": ("gntk_fast.models", "resnet20"),
    "prune": ("gntk_fast.pruning", "prune"),
    "PruneResult": ("gntk_fast.pruning", "PruneResult"),
    "data": ("gntk_fast.data", None),
    "pruning": ("gntk_fast.pruning", None),
    "ntk": ("gntk_fast.ntk", None),
    "empirical_ntk": ("gntk_fast.ntk", "empirical_ntk"),
    "empirical_ntk_fn": ("gntk_fast.ntk", "empirical_ntk_fn"),
    "EmpiricalNTK": ("gntk_fast.ntk", "EmpiricalNTK"),
    "empirical_nngp": ("gntk_fast.ntk", "empirical_nngp"),
    "empirical_ntk_vp": ("gntk_fast.ntk", "empirical_ntk_vp"),
    "empirical_ntk_reference": ("gntk_fast.ntk", "empirical_ntk_reference"),
    "graphon_ntk": ("gntk_fast.ntk", "graphon_ntk"),
    "GraphonNTK": ("gntk_fast.ntk", "GraphonNTK"),
    "graphon_ntk_reference": ("gntk_fast.ntk", "graphon_ntk_reference"),
    "graphon_cntk": ("gntk_fast.ntk", "graphon_cntk"),
    "graphon_cntk_reference": ("gntk_fast.ntk", "graphon_cntk_reference"),
    "graphon": ("gntk_fast.graphon", None),
    "pai": ("gntk_fast.pai", None),
    "limit_graphon": ("gntk_fast.pai", "limit_graphon"),
    "network_graphon": ("gntk_fast.pai", "network_graphon"),
    "spectral_metrics": ("gntk_fast.spectral", "spectral_metrics"),
    "predicted_loss": ("gntk_fast.spectral", "predicted_loss"),
    "SpectralMetrics": ("gntk_fast.spectral", "SpectralMetrics"),
    "train": ("gntk_fast.training", "train"),
    "TrainResult": ("gntk_fast.training", "TrainResult"),
    "experiments": ("gntk_fast.experiments", None),
    "sweep": ("gntk_fast.sweep", None),
    "backends_info": ("gntk_fast._backend", "backends_info"),
    "build_info": ("gntk_fast._backend", "build_info"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gntk_fast' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
