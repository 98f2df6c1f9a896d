"""Experiments reproducing the paper's studies.

Explicit export list: public name -> module. Names are imported lazily on
first use, except where a function has the same name as its module (importing
the submodule would otherwise rebind the package attribute to the module):
those are bound eagerly below (their modules import only numpy/torch at top level).

* :func:`graphon_convergence` / :class:`GraphonConvergence`
  (:mod:`gntk_fast.experiments.graphon_convergence`): SAS estimates of pruned
  fc masks converging with width.
* :func:`run_report` (:mod:`gntk_fast.experiments.report`): the main job,
  every experiment below and the claims table, written as a report;
  :func:`render_report` renders it again from its tables alone. Its sections
  are registered in :mod:`gntk_fast.experiments.sections`.
* :func:`run_case` / :func:`run_study` / :class:`StudyConfig`
  (:mod:`gntk_fast.experiments.pruned_study`): pruned nets trained and their
  four kernels measured.
* :func:`kernel_convergence`, :func:`random_scaling`,
  :func:`pruned_kernel_convergence` (:mod:`gntk_fast.experiments.kernel_checks`).
* :mod:`gntk_fast.experiments.claims` (one ``Claim`` per claim, one
  registry, and the history of rule changes) and :mod:`gntk_fast.experiments.figures`.
* :func:`kept_weight_moments` (:mod:`gntk_fast.experiments.kept_moments`):
  first and second moments of the kept weights by width.
* :func:`limit_graphons` / :class:`LimitGraphonsExperiment`
  (:mod:`gntk_fast.experiments.limit_graphons`): predicted limit graphons vs
  SAS of real masks across widths, input-layer feature selection, path
  densities, designed graphons vs Random/SNIP/SynFlow in training.
* :mod:`gntk_fast.experiments.tasks`: one pruned network, one measurement
  (``masks_sas``, ``entk_metrics``, ``analytic_metrics``, ``training_curve``),
  each a function of a config dict returning a ``TaskOutput(rows, arrays)``;
  ``run_task(config)`` dispatches on ``config["kind"]``.
* :mod:`gntk_fast.experiments.metrics`: the one registry of column names (each
  with its meaning) shared by the report's tables, the tasks' rows, the claims
  and the figures.
"""
from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "GraphonConvergence": "gntk_fast.experiments.graphon_convergence",
    "trial_seed": "gntk_fast.experiments.graphon_convergence",
    "run_report": "gntk_fast.experiments.report",
    "SCALES": "gntk_fast.experiments.report",
    "render_report": "gntk_fast.experiments.report",
    "kept_weight_moments": "gntk_fast.experiments.kept_moments",
    "run_case": "gntk_fast.experiments.pruned_study",
    "run_study": "gntk_fast.experiments.pruned_study",
    "StudyConfig": "gntk_fast.experiments.pruned_study",
    "load_study_data": "gntk_fast.experiments.pruned_study",
    "kernel_convergence": "gntk_fast.experiments.kernel_checks",
    "random_scaling": "gntk_fast.experiments.kernel_checks",
    "pruned_kernel_convergence": "gntk_fast.experiments.kernel_checks",
    "LimitGraphonsExperiment": "gntk_fast.experiments.limit_graphons",
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
from .limit_graphons import limit_graphons  # noqa: E402

__all__ = ["graphon_convergence", "limit_graphons", *_LAZY]

__getattr__, __dir__ = lazy_attributes("gntk_fast.experiments", _LAZY)
