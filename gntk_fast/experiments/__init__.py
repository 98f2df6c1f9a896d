"""Experiments reproducing the paper's studies.

Explicit export list: public name -> module. Names are imported lazily on
first use, except where a function has the same name as its module (importing
the submodule would otherwise rebind the package attribute to the module):
those are bound eagerly below (their modules import only numpy/torch at top level).

* :func:`graphon_convergence` / :class:`GraphonConvergence`
  (:mod:`gntk_fast.experiments.graphon_convergence`): SAS estimates of pruned
  fc masks converging with width.
* :mod:`gntk_fast.experiments.tasks`: one pruned network, one measurement
  (``masks_sas``, ``entk_metrics``, ``analytic_metrics``, ``training_curve``),
  each a function of a config dict returning a ``TaskOutput(rows, arrays)``;
  ``run_task(config)`` dispatches on ``config["kind"]``.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "GraphonConvergence": "gntk_fast.experiments.graphon_convergence",
    "trial_seed": "gntk_fast.experiments.graphon_convergence",
    # task functions shared by sweeps and experiments (gntk_fast.experiments.tasks)
    "TaskOutput": "gntk_fast.experiments.tasks",
    "run_task": "gntk_fast.experiments.tasks",
    "check_task_config": "gntk_fast.experiments.tasks",
    "masks_sas": "gntk_fast.experiments.tasks",
    "entk_metrics": "gntk_fast.experiments.tasks",
    "analytic_metrics": "gntk_fast.experiments.tasks",
    "training_curve": "gntk_fast.experiments.tasks",
}

# function named like its module: bound eagerly (see the module docstring)
from .graphon_convergence import graphon_convergence  # noqa: E402

__all__ = ["graphon_convergence", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gntk_fast.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
