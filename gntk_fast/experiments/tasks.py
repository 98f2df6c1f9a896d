"""Task functions shared by sweeps and experiments: one pruned network, one measurement.

Each task is a plain function of a config dict returning a :class:`TaskOutput`
(``rows``: a list of flat dicts, one per layer or step; ``arrays``: named
numpy arrays). :func:`check_task_config` validates a config and fills its
defaults; every task calls it, so a task can be given a partial dict.
:data:`TASKS` maps a kind name to its function.

Kinds
-----
``masks_sas``
    Prune the Synaptic-Flow fc model (``source="prune"``) or generate the
    masks without any weights (``source="packed"``: bit-packed row blocks,
    :mod:`gntk_fast.ops.wide_masks`, for very wide layers; method "random"
    (uniform masks of the exact kept count) or "graphon" (Bernoulli samples of
    the ``graphon`` spec)), then SAS-estimate every layer: the input layer
    (mask 0, (width, d_in)) with rows sorted and one column per input (K x
    d_in), hidden-to-hidden layers (masks 1..depth-1, (width, width)) K x K.
    Rows: one per mask (layer 0..depth; the read-out layer is counted, not
    estimated). Arrays: ``H_layer{i}`` (K, K) per hidden layer, ``input_H``
    (K, d_in), ``input_density`` (d_in,).
``entk_metrics``
    Prune the fc model, read it as ``gf.MLP.from_sequential`` (the same
    network: standard parameterization, biases), compute the empirical NTK on
    ``n_samples`` test inputs with the per-layer parts, and its spectral
    metrics (labels for the alignment). Rows: one per layer (``layer_trace`` and
    ``layer_trace_fraction`` of the layer's part) and one with ``layer = None`` for
    the network (its metrics, ``trace`` the kernel's). Arrays: ``kernel`` (N, N)
    float64, ``labels`` (N,).
``analytic_metrics``
    Prune the fc model, SAS-estimate every layer (input K x d_in, hidden K x K,
    read-out classes x K) and compute the analytic Graphon NTK of those step
    graphons on ``n_samples`` test inputs (``quad_K`` quadrature nodes) and
    its spectral metrics. Rows as for ``entk_metrics`` (per-layer density;
    network metrics on the ``layer = None`` row). Arrays: ``kernel``, ``labels``.
``pruned_study``
    One case of the report's pruned-network study (an NTK-parameterised
    ``gntk_fast.MLP``, not the fc model): prune, the four kernels (a)-(d) on
    ``n_samples`` inputs with their spectral metrics, and the Adam training
    curve on ``n_train`` examples (:func:`pruned_study`).
``training_curve``
    Prune the fc model and train it with :func:`gntk_fast.train` (Adam,
    ``lr`` 1e-3 by default, cross-entropy) on ``n_train`` training examples.
    Rows: one per step (``step``, ``loss``, ``accuracy``) with ``layer = None``.
    Column names and their meanings: :mod:`gntk_fast.experiments.metrics`.
    Arrays: ``loss``, ``accuracy`` (steps,).

Config keys (defaults in :data:`DEFAULTS`)
-----------------------------------------
kind, method, width, sparsity, depth, scope, trial, seed, data, data_dir,
compat ("synaptic-flow", the paper's, or "clean"), iterations (None: the
method's default), K (SAS blocks), source and graphon (masks_sas),
n_samples (entk/analytic), quad_K (analytic), steps, lr, batch_size, n_train
(training). The model and pruning seed of a trial is
:func:`gntk_fast.experiments.graphon_convergence.trial_seed` (seed, width,
trial), shared by every method and kind, so methods prune the same initial
networks. Every row carries the config columns :data:`ROW_CONFIG_KEYS`, the
``layer`` (mask index, or None) and ``seconds`` (the task's wall time).
"""
from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._constants import COMPAT_MODES, DATASETS, METHODS, SCOPE_ALIASES, SCOPES
from .._validation import MAX_BLOCKS, MAX_DEPTH, MAX_SAMPLES, MAX_SEED, MAX_WIDTH
from .metrics import (
    ACCURACY,
    ALIGNMENT,
    ALPHA,
    ALPHA_R2,
    BATCH_SIZE,
    CLIPPED_EIGENVALUES,
    COL_DEGREE_CV,
    CONDITION_NUMBER,
    DEAD_COLS,
    DEAD_ROWS,
    DENSITY,
    EFFECTIVE_RANK,
    ENERGY_TOP5,
    H_MAX,
    H_MIN,
    KEPT,
    KERNEL,
    LAMBDA_MAX,
    LAYER,
    LAYER_TRACE,
    LAYER_TRACE_FRACTION,
    LOSS,
    LR,
    MASKS_ENFORCED,
    N_IN,
    N_OUT,
    REL_DIST_TO_A,
    ROW_DEGREE_CV,
    SECONDS,
    SPECTRAL_GAP,
    STEP,
    TRACE,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    check_columns,
)

__all__ = [
    "TaskOutput", "TASKS", "KINDS", "DEFAULTS", "ROW_CONFIG_KEYS", "SOURCES", "check_task_config", "run_task",
    "masks_sas", "entk_metrics", "analytic_metrics", "training_curve",
]

KINDS: tuple[str, ...] = ("masks_sas", "entk_metrics", "analytic_metrics", "training_curve", "pruned_study")
#: where masks_sas takes its masks from
SOURCES: tuple[str, ...] = ("prune", "packed")

#: every key a task config may hold, with its default (None: no default / optional)
DEFAULTS: dict[str, Any] = {
    "kind": None,
    "method": None,
    "width": None,
    "sparsity": 0.9,
    "depth": 3,
    "scope": "global",
    "trial": 0,
    "seed": 0,
    "data": "digits",
    "data_dir": None,
    "compat": "synaptic-flow",
    "iterations": None,
    "K": 64,
    "source": "prune",
    "graphon": None,
    "n_samples": 64,
    "quad_K": 64,
    "steps": 200,
    "lr": 1e-3,
    "batch_size": 128,
    "n_train": 1000,
}
#: config columns copied into every row
ROW_CONFIG_KEYS: tuple[str, ...] = ("kind", "method", "width", "sparsity", "depth", "scope", "trial", "seed", "data",
                                   "compat", "K", "source")


@dataclass
class TaskOutput:
    """What a task returns.

    rows : list of flat dicts (str keys; values int, float, str, bool or None),
        one per layer (or per training step); every row holds the same keys.
    arrays : named numpy arrays (numeric, bool or str; saved with
        ``allow_pickle=False``).
    """

    rows: list[dict[str, Any]]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------- validation
def _bad(key: str, msg: str, value: Any) -> ValueError:
    return ValueError(f"config key {key!r}: {msg}; got {value!r}")


def _int(cfg: dict, key: str, lo: int, hi: int) -> None:
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"config key {key!r}: must be an int; got {type(v).__name__} {v!r}")
    if not lo <= int(v) <= hi:
        raise _bad(key, f"must be an int in [{lo}, {hi}]", v)
    cfg[key] = int(v)


def _float(cfg: dict, key: str, lo: float, hi: float, *, hi_open: bool = False, lo_open: bool = False) -> None:
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"config key {key!r}: must be a number; got {type(v).__name__} {v!r}")
    v = float(v)
    ok = math.isfinite(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise _bad(key, f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}", cfg[key])
    cfg[key] = v


def _choice(cfg: dict, key: str, choices) -> None:
    v = cfg[key]
    if not isinstance(v, str) or v not in choices:
        raise _bad(key, f"must be one of {', '.join(map(repr, choices))}", v)


def check_task_config(config: dict[str, Any]) -> dict[str, Any]:
    """A validated copy of ``config`` with every default filled in.

    Unknown keys, missing required keys (``kind``, ``method``, ``width``) and
    bad values raise ValueError/TypeError naming the key (``config key
    'width': ...``). Checks that need several keys: K <= width for the
    kinds that SAS-estimate (masks_sas, analytic_metrics);
    ``source="packed"`` only for masks_sas with method "random" or "graphon";
    method "graphon" needs a ``graphon`` spec (``constant:C``, ``linear``,
    ``linear:A,B``, ``exp:S``) and ``source="packed"``; other methods ignore
    (and reset to None) the spec.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict; got {type(config).__name__}")
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"config key {unknown[0]!r}: unknown key (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **config}
    for key in ("kind", "method", "width"):
        if cfg[key] is None:
            raise ValueError(f"config key {key!r}: required")
    _choice(cfg, "kind", KINDS)
    _choice(cfg, "source", SOURCES)
    _choice(cfg, "method", METHODS + ("graphon",))
    if cfg["method"] == "graphon":
        if cfg["source"] != "packed":
            raise _bad("method", "'graphon' (sampled masks) needs source = 'packed'", cfg["method"])
        if not isinstance(cfg["graphon"], str):
            raise _bad("graphon", "method 'graphon' needs a graphon spec string (constant:C, linear, exp:S)",
                       cfg["graphon"])
        from ..graphon.objects import named_graphon

        try:
            named_graphon(cfg["graphon"])
        except ValueError as exc:
            raise ValueError(f"config key 'graphon': {exc}") from None
    else:  # the spec only matters for method "graphon" (a grid may mix methods)
        cfg["graphon"] = None
    if cfg["source"] == "packed":
        if cfg["kind"] != "masks_sas":
            raise _bad("source", "'packed' masks are only for kind = 'masks_sas'", cfg["source"])
        if cfg["method"] not in ("random", "graphon"):
            raise _bad("method", "source = 'packed' generates 'random' or 'graphon' masks only", cfg["method"])
    _int(cfg, "width", 1, MAX_WIDTH)
    _float(cfg, "sparsity", 0.0, 1.0, hi_open=True)
    _int(cfg, "depth", 2, MAX_DEPTH)
    if isinstance(cfg["scope"], str):
        cfg["scope"] = SCOPE_ALIASES.get(cfg["scope"], cfg["scope"])
    _choice(cfg, "scope", SCOPES)
    _int(cfg, "trial", 0, 2**31 - 1)
    _int(cfg, "seed", 0, MAX_SEED)
    _choice(cfg, "data", DATASETS)
    if cfg["data_dir"] is not None and not isinstance(cfg["data_dir"], str):
        raise _bad("data_dir", "must be a path string", cfg["data_dir"])
    _choice(cfg, "compat", COMPAT_MODES)
    if cfg["iterations"] is not None:
        _int(cfg, "iterations", 1, 100_000)
    _int(cfg, "K", 1, MAX_BLOCKS)
    if cfg["K"] > cfg["width"] and cfg["kind"] in ("masks_sas", "analytic_metrics", "pruned_study"):
        raise _bad("K", f"must be <= width ({cfg['width']})", cfg["K"])
    _int(cfg, "n_samples", 2, MAX_SAMPLES)
    _int(cfg, "quad_K", 1, MAX_BLOCKS)
    _int(cfg, "steps", 1, 10_000_000)
    _float(cfg, "lr", 0.0, 1e6, lo_open=True)
    _int(cfg, "batch_size", 1, MAX_SAMPLES)
    _int(cfg, "n_train", 1, MAX_SAMPLES)
    if cfg["batch_size"] > cfg["n_train"]:
        raise _bad("batch_size", f"must be <= n_train ({cfg['n_train']})", cfg["batch_size"])
    return cfg


# ------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=8)
def _pruning_batch(data: str, seed: int, data_dir: str | None):
    """The pruners' batch (10 examples per class; cached per process)."""
    from .graphon_convergence import _load_batch

    x, y, _, _ = _load_batch(data, seed, data_dir)
    return x, y


@functools.lru_cache(maxsize=8)
def _sample(data: str, split: str, n: int, seed: int, data_dir: str | None):
    """``n`` examples of ``split`` (the test split when the training split is absent)."""
    from .. import data as gdata

    if split == "train" and "train" not in gdata.available_splits(data, data_dir):
        split = "test"
    return gdata.load(data, split=split, n=n, seed=seed, data_dir=data_dir)


def _d_in(data: str) -> int:
    from .. import data as gdata

    return gdata.input_dim(data)


def _n_classes(data: str) -> int:
    from .. import data as gdata

    return gdata.num_classes(data)


def _model_seed(cfg: dict) -> int:
    from .graphon_convergence import trial_seed

    return trial_seed(cfg["seed"], cfg["width"], cfg["trial"])


def _pruned_fc(cfg: dict):
    """The Synaptic-Flow fc model of the trial, pruned in place; returns (net, bool masks as numpy)."""
    from ..models import fc
    from ..pruning import prune

    s = _model_seed(cfg)
    x, y = _pruning_batch(cfg["data"], cfg["seed"], cfg["data_dir"])
    net = fc(_d_in(cfg["data"]), cfg["width"], cfg["depth"], _n_classes(cfg["data"]), seed=s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = prune(net, cfg["method"], cfg["sparsity"], data=(x, y), scope=cfg["scope"],
                    iterations=cfg["iterations"], compat=cfg["compat"], seed=s, progress=False)
    return net, [m.detach().cpu().numpy() for m in res.masks]


def _base_row(cfg: dict, layer: int | None, t0: float) -> dict[str, Any]:
    row = {k: cfg[k] for k in ROW_CONFIG_KEYS}
    row[LAYER] = layer
    row[SECONDS] = time.perf_counter() - t0
    return row


def _layer_stats(shape: tuple[int, int], row_deg: np.ndarray, col_deg: np.ndarray) -> dict[str, Any]:
    """Counts of one mask from its degrees (kept fan-in per row, kept fan-out per column)."""
    n_out, n_in = shape
    kept = int(row_deg.sum())
    rm, cm = row_deg.mean(), col_deg.mean()
    return {
        N_OUT: int(n_out), N_IN: int(n_in), KEPT: kept, DENSITY: kept / (n_out * n_in),
        DEAD_ROWS: int(np.count_nonzero(row_deg == 0)), DEAD_COLS: int(np.count_nonzero(col_deg == 0)),
        ROW_DEGREE_CV: float(row_deg.std() / rm) if rm > 0 else None,
        COL_DEGREE_CV: float(col_deg.std() / cm) if cm > 0 else None,
    }


def _sas_layers(cfg: dict, masks, shapes: list[tuple[int, int]], packed: bool):
    """SAS of every mask (an iterable, consumed one at a time so only one
    layer's mask is alive when it yields them lazily): the input layer with
    unsorted columns (K x d_in), hidden layers K x K, the read-out
    min(K, classes) x min(K, width); and the degree counts of every mask.
    Returns (per-layer stats, arrays, estimates)."""
    from ..graphon.sas import sas

    K = cfg["K"]
    stats, arrays, ests = [], {}, []
    last = len(shapes) - 1
    for i, (m, shape) in enumerate(zip(masks, shapes)):
        n_in = shape[1] if packed else None
        if i == 0:
            est = sas(m, K, K_in=shape[1], sort_cols=False, n_in=n_in)
            arrays["input_H"] = est.H_raw
            arrays["input_density"] = est.col_degrees / shape[0]
        elif i < last:
            est = sas(m, K, n_in=n_in)
            arrays[f"H_layer{i}"] = est.H_raw
        else:  # the read-out (classes x width)
            est = sas(m, min(K, shape[0]), K_in=min(K, shape[1]), n_in=n_in)
            arrays[f"H_layer{i}"] = est.H_raw
        del m
        est.row_perm = est.col_perm = None  # (n,) int64 each: not needed further
        ests.append(est)
        st = _layer_stats(shape, est.row_degrees, est.col_degrees)
        st[H_MIN], st[H_MAX] = float(est.H_raw.min()), float(est.H_raw.max())
        stats.append(st)
    return stats, arrays, ests


def _packed_shapes(cfg: dict) -> list[tuple[int, int]]:
    d_in, n, k = _d_in(cfg["data"]), cfg["width"], _n_classes(cfg["data"])
    return [(n, d_in)] + [(n, n)] * (cfg["depth"] - 1) + [(k, n)]


def _packed_masks(cfg: dict, shapes: list[tuple[int, int]]):
    """Bit-packed masks of every layer (no weights), generated one layer at a
    time (a generator): uniformly random with the random pruner's exact kept
    count(s), or sampled from the graphon spec. Layer i is seeded by the i-th
    64-bit state of SeedSequence(trial seed)."""
    from ..ops import wide_masks

    s = _model_seed(cfg)
    seeds = [int(t) for t in np.random.SeedSequence(s).generate_state(len(shapes), dtype=np.uint64)]
    if cfg["method"] == "graphon":
        from ..graphon.objects import named_graphon

        W = named_graphon(cfg["graphon"])
        for (a, b), t in zip(shapes, seeds):
            yield W.sample(a, b, seed=t, packed=True)
        return
    counts = wide_masks.random_kept_counts(shapes, 1.0 - cfg["sparsity"], cfg["scope"], cfg["compat"], seed=s)
    for (a, b), c, t in zip(shapes, counts, seeds):
        yield wide_masks.random_mask_packed(a, b, int(c), t)


# ------------------------------------------------------------------- tasks
def masks_sas(config: dict[str, Any]) -> TaskOutput:
    """Masks of one trial and their SAS estimates (see the module docstring)."""
    cfg = check_task_config({**config, "kind": "masks_sas"})
    t0 = time.perf_counter()
    if cfg["source"] == "packed":
        shapes = _packed_shapes(cfg)
        masks, packed = _packed_masks(cfg, shapes), True
    else:
        _, masks = _pruned_fc(cfg)
        shapes = [tuple(m.shape) for m in masks]
        packed = False
    stats, arrays, _ = _sas_layers(cfg, masks, shapes, packed)
    rows = [{**_base_row(cfg, i, t0), **st} for i, st in enumerate(stats)]
    return TaskOutput(rows, arrays)


def _metrics(K: np.ndarray, y):
    """Spectral metrics of a kernel; round-off negative eigenvalues are clipped
    (their count is the ``clipped_eigenvalues`` column) without a warning."""
    from ..spectral import spectral_metrics

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*slightly negative eigenvalue", category=RuntimeWarning)
        return spectral_metrics(K, y=y)


def _metric_columns(m) -> dict[str, Any]:
    return {CLIPPED_EIGENVALUES: int(m.clipped), ALPHA: m.alpha, EFFECTIVE_RANK: m.effective_rank,
            SPECTRAL_GAP: m.spectral_gap, ENERGY_TOP5: m.energy_concentration, CONDITION_NUMBER: m.condition_number,
            ALIGNMENT: m.alignment, TRACE: m.trace, LAMBDA_MAX: float(m.eigenvalues[0])}


_METRICS = (CLIPPED_EIGENVALUES, ALPHA, EFFECTIVE_RANK, SPECTRAL_GAP, ENERGY_TOP5, CONDITION_NUMBER, ALIGNMENT, TRACE,
            LAMBDA_MAX)


def entk_metrics(config: dict[str, Any]) -> TaskOutput:
    """Empirical NTK of one pruned network and its spectral metrics (module docstring)."""
    from ..models import MLP
    from ..ntk import empirical_ntk
    cfg = check_task_config({**config, "kind": "entk_metrics"})
    t0 = time.perf_counter()
    net, masks = _pruned_fc(cfg)
    model = MLP.from_sequential(net)
    x, y = _sample(cfg["data"], "test", cfg["n_samples"], cfg["seed"], cfg["data_dir"])
    res = empirical_ntk(model, x, per_layer=True, dtype=__import__("torch").float64)
    K = res.kernel.cpu().numpy()
    m = _metrics(K, y)
    total = float(np.trace(K))
    rows = []
    for i, part in enumerate(res.per_layer):
        tr = float(part.diagonal().sum())
        rows.append({**_base_row(cfg, i, t0), DENSITY: float(masks[i].mean()) if i < len(masks) else None,
                     LAYER_TRACE: tr, LAYER_TRACE_FRACTION: tr / total if total > 0 else None,
                     **{k: None for k in _METRICS}})
    net_row = {**_base_row(cfg, None, t0), DENSITY: float(sum(mk.sum() for mk in masks) / sum(mk.size for mk in masks)),
               LAYER_TRACE: total, LAYER_TRACE_FRACTION: 1.0, **_metric_columns(m)}
    rows.append(net_row)
    for r in rows:
        r["seconds"] = net_row["seconds"]
    return TaskOutput(rows, {"kernel": K, "labels": y.numpy()})


def analytic_metrics(config: dict[str, Any]) -> TaskOutput:
    """Analytic Graphon NTK of one pruned network's SAS estimates and its metrics (module docstring)."""
    import torch

    from ..graphon.objects import InputGraphon, StepGraphon
    from ..ntk.analytic import graphon_ntk

    cfg = check_task_config({**config, "kind": "analytic_metrics"})
    t0 = time.perf_counter()
    _, masks = _pruned_fc(cfg)
    shapes = [tuple(mk.shape) for mk in masks]
    stats, arrays, ests = _sas_layers(cfg, masks, shapes, packed=False)
    gs = [InputGraphon(np.clip(ests[0].H_raw, 0, 1), row_edges=ests[0].row_edges / shapes[0][0])]
    for e, (a, b) in zip(ests[1:], shapes[1:]):
        gs.append(StepGraphon(np.clip(e.H_raw, 0, 1), row_edges=e.row_edges / a, col_edges=e.col_edges / b))
    x, y = _sample(cfg["data"], "test", cfg["n_samples"], cfg["seed"], cfg["data_dir"])
    theta = graphon_ntk(gs, x, K=cfg["quad_K"], n_outputs=shapes[-1][0], dtype=torch.float64)
    K = theta.cpu().numpy()
    m = _metrics(K, y)
    rows = [{**_base_row(cfg, i, t0), **st, **{k: None for k in _METRICS}} for i, st in enumerate(stats)]
    net_row = {**_base_row(cfg, None, t0), **{k: None for k in stats[0]}, **_metric_columns(m)}
    net_row[DENSITY] = float(sum(s[KEPT] for s in stats) / sum(s[N_OUT] * s[N_IN] for s in stats))
    rows.append(net_row)
    for r in rows:
        r["seconds"] = net_row["seconds"]
    return TaskOutput(rows, {"kernel": K, "labels": y.numpy(), **arrays})


def training_curve(config: dict[str, Any]) -> TaskOutput:
    """Train one pruned network (Adam) and record loss and accuracy at every step (module docstring)."""
    from ..training import train

    cfg = check_task_config({**config, "kind": "training_curve"})
    t0 = time.perf_counter()
    net, _ = _pruned_fc(cfg)
    x, y = _sample(cfg["data"], "train", cfg["n_train"], cfg["seed"], cfg["data_dir"])
    res = train(net, (x, y), steps=cfg["steps"], optimizer="adam", lr=cfg["lr"], batch_size=cfg["batch_size"],
                loss="cross_entropy", seed=_model_seed(cfg), progress=False)
    base = _base_row(cfg, None, t0)
    rows = [{**base, LR: cfg["lr"], BATCH_SIZE: cfg["batch_size"], STEP: int(s), LOSS: float(lo),
             ACCURACY: float(a)} for s, lo, a in zip(res.steps, res.loss, res.accuracy)]
    return TaskOutput(rows, {"loss": res.loss, "accuracy": res.accuracy})


def pruned_study(config: dict[str, Any]) -> TaskOutput:
    """One case of the report's pruned-network study
    (:func:`gntk_fast.experiments.pruned_study.run_case`): a ``gntk_fast.MLP``
    (NTK parameterisation) pruned, its four kernels (a)-(d) and their spectral
    metrics, and its Adam training curve. Rows: one per kernel (``layer`` None)
    with the metrics, the distance to kernel (a) and the final training loss
    and accuracy (``train_loss``, ``train_accuracy``). Arrays: ``train_steps``, ``train_loss``, ``train_accuracy``
    and ``eigenvalues_<kernel>``."""
    from .pruned_study import StudyConfig, load_study_data, run_case

    cfg = check_task_config({**config, "kind": "pruned_study"})
    t0 = time.perf_counter()
    study = StudyConfig(width=cfg["width"], depth=cfg["depth"], steps=cfg["steps"], lr=cfg["lr"],
                        batch_size=cfg["batch_size"], n_train=cfg["n_train"], n_eval=cfg["n_train"],
                        n_kernel=cfg["n_samples"], K=cfg["K"], scope=cfg["scope"]).validated()
    data = load_study_data(cfg["data"], n_train=study.n_train, n_kernel=study.n_kernel, data_dir=cfg["data_dir"],
                           seed=cfg["seed"], n_test=0)
    res = run_case(cfg["method"], cfg["sparsity"], _model_seed(cfg), data, study)
    tr = sorted(res.train_rows, key=lambda r: r["step"])
    base = _base_row(cfg, None, t0)
    rows = []
    for r in res.kernel_rows:
        rows.append({**base, KERNEL: r[KERNEL], **{k: r[k] for k in (
            ALPHA, ALPHA_R2, EFFECTIVE_RANK, SPECTRAL_GAP, ENERGY_TOP5, ALIGNMENT, TRACE, REL_DIST_TO_A)},
            TRAIN_LOSS: tr[-1][LOSS], TRAIN_ACCURACY: tr[-1][ACCURACY], MASKS_ENFORCED: res.masks_enforced})
    arrays = {"train_steps": np.array([r["step"] for r in tr]), "train_loss": np.array([r["loss"] for r in tr]),
              "train_accuracy": np.array([r["accuracy"] for r in tr])}
    arrays.update({f"eigenvalues_{k}": np.asarray(v) for k, v in res.eigenvalues.items()})
    return TaskOutput(rows, arrays)


TASKS: dict[str, Callable[[dict[str, Any]], TaskOutput]] = {
    "masks_sas": masks_sas,
    "entk_metrics": entk_metrics,
    "analytic_metrics": analytic_metrics,
    "training_curve": training_curve,
    "pruned_study": pruned_study,
}


def run_task(config: dict[str, Any]) -> TaskOutput:
    """Run the task ``config["kind"]`` on ``config`` (validated); its rows' columns
    are registered names (:mod:`gntk_fast.experiments.metrics`)."""
    cfg = check_task_config(config)
    out = TASKS[cfg["kind"]](cfg)
    check_columns(out.rows, f"task {cfg['kind']!r}")
    return out
