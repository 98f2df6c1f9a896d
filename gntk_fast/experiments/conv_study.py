"""Pruned conv nets trained and measured through four kernels: the MLP study for :class:`gntk_fast.ConvNet`.

One *case* is (method, sparsity, seed), exactly as in
:mod:`gntk_fast.experiments.pruned_study`: a ``gntk_fast.ConvNet`` (NTK
parameterisation, standard-normal weights, no biases, ReLU, ``depth`` conv
layers of ``channels`` channels, k x k kernels, stride 1, ``padding``, then
the ``readout``: global average pooling or flatten, and a dense layer to the
classes) is initialised with ``seed``, pruned at initialisation
(``gntk_fast.prune``, ``scope``; ``method="dense"`` keeps every weight) on the
data's pruning batch, then

* trained (:func:`gntk_fast.train`: Adam, cross-entropy, ``steps`` updates of
  minibatches of ``batch_size``; the loss scored every ``eval_every`` updates
  on the first ``n_eval`` training images; after training, the loss on
  ``n_test`` held-out images of the same split, never trained on);
* measured through four kernels on the first ``n_kernel`` training images
  (traced over the outputs):

  (a) ``entk_pruned``: the empirical NTK of the pruned net;
  (b) ``entk_fresh``: the eNTK of the same masks with fresh N(0, 1) weights
      (seed + 10^6);
  (c) ``gntk_mask``: the analytic Graphon CNTK (:func:`gntk_fast.graphon_cntk`)
      of the masks' network channel graphon
      (:func:`gntk_fast.graphon.network_graphon`: one channel order per hidden
      layer, taps pooled, K blocks per layer);
  (d) ``gntk_variance``: the same with the variance graphons ``E[w^2 m]`` of
      the pruned net's weights for the forward/backward signal and the mask
      graphons for each layer's parameter count
      (``graphon_cntk(..., variance_graphons=...)``).

  Each kernel's spectral metrics and distances to (a) are those of the MLP
  study (the same columns: ``alpha``, ``effective_rank``, ``spectral_gap``,
  ``energy_top5``, ``alignment``, ``trace``, ``rel_dist_to_a``,
  ``scale_free_dist_to_a``, ``ntk_gen_measure``).

Rows: ``kernel_rows`` one per (case, kernel), ``train_rows`` one per (case,
scored step), ``gen_rows`` one per case (``train_loss``, ``test_loss``,
``test_accuracy``, ``generalisation_gap``, as in the MLP study). The images are the study data of
:func:`gntk_fast.experiments.pruned_study.load_study_data` reshaped to
(N, 1, side, side) (8 x 8 digits, 28 x 28 MNIST).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .._validation import MAX_DEPTH, MAX_WIDTH, check_choice, check_fraction, check_int, check_seed, check_size
from .pruned_study import (KERNEL_LABELS as _MLP_LABELS, KERNELS, METHODS, METRICS, StudyData, _metrics, case_grid,
                           held_out_rows, ntk_generalisation_measure, scale_free_distance)

__all__ = ["ConvStudyConfig", "images_of", "run_conv_case", "run_conv_study", "ConvCaseResult", "KERNELS",
           "KERNEL_LABELS", "METRICS", "plot_conv_kernel_metrics", "plot_conv_training"]

KERNEL_LABELS = {k: v.replace("Graphon NTK", "Graphon CNTK") for k, v in _MLP_LABELS.items()}
_COLORS = {"random": "tab:gray", "magnitude": "tab:brown", "snip": "tab:blue", "grasp": "tab:green",
           "synflow": "tab:red"}


@dataclass
class ConvStudyConfig:
    """Sizes and settings of the pruned conv-net study (see the module docstring)."""

    channels: int = 64
    depth: int = 3
    kernel_size: int = 3
    padding: str = "circular"
    readout: str = "gap"
    steps: int = 100
    lr: float = 1e-3
    batch_size: int = 64
    eval_every: int = 10
    n_train: int = 1000
    n_eval: int = 500
    n_test: int = 1000
    n_kernel: int = 48
    K: int = 8
    scope: str = "global"
    kernel_dtype: str = "float64"

    def validated(self) -> "ConvStudyConfig":
        from .._constants import PADDINGS, READOUTS
        from .._validation import MAX_KERNEL, check_odd_size

        c = copy.copy(self)
        c.channels = check_size("channels", c.channels, MAX_WIDTH)
        c.depth = check_size("depth", c.depth, MAX_DEPTH)
        c.kernel_size = check_odd_size("kernel_size", c.kernel_size, MAX_KERNEL)
        c.padding = check_choice("padding", c.padding, PADDINGS)
        c.readout = check_choice("readout", c.readout, READOUTS)
        c.steps = check_size("steps", c.steps, 10**7)
        c.batch_size = check_size("batch_size", c.batch_size, 10**7)
        c.eval_every = check_size("eval_every", c.eval_every, 10**7)
        c.n_train = check_size("n_train", c.n_train, 10**7)
        c.n_eval = check_size("n_eval", c.n_eval, 10**7)
        c.n_test = check_int("n_test", c.n_test, min_value=0, max_value=10**7)
        c.n_kernel = check_int("n_kernel", c.n_kernel, min_value=3, max_value=10**5)
        c.K = check_size("K", c.K, c.channels)
        c.scope = check_choice("scope", c.scope, ("global", "layerwise"))
        c.kernel_dtype = check_choice("kernel_dtype", c.kernel_dtype, ("float32", "float64"))
        if not (isinstance(c.lr, (int, float)) and not isinstance(c.lr, bool) and c.lr > 0):
            raise ValueError(f"lr must be a number > 0; got {c.lr!r}")
        return c

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def images_of(data: StudyData) -> StudyData:
    """The study data with its flat square one-channel images reshaped to (N, 1, side, side).

    Examples
    --------
    >>> from gntk_fast.experiments.pruned_study import load_study_data
    >>> d = images_of(load_study_data("digits", n_train=20, n_kernel=5, n_test=0))
    >>> tuple(d.x_train.shape), tuple(d.prune_batch[0].shape)
    ((20, 1, 8, 8), (100, 1, 8, 8))
    """
    d = data.x_train.shape[-1] if data.x_train.dim() == 2 else None
    if d is None:
        return data
    side = int(round(d**0.5))
    if side * side != d:
        raise ValueError(f"data must hold square one-channel images; got {d} features")

    def img(x):
        return None if x is None else x.reshape(x.shape[0], 1, side, side)

    return StudyData(data.name, img(data.x_train), data.y_train, img(data.x_kernel), data.y_kernel,
                     (img(data.prune_batch[0]), data.prune_batch[1]), data.classes, data.split, data.note,
                     img(data.x_test), data.y_test)


@dataclass
class ConvCaseResult:
    """What :func:`run_conv_case` returns."""

    kernel_rows: list = field(default_factory=list)
    train_rows: list = field(default_factory=list)
    gen_rows: list = field(default_factory=list)
    eigenvalues: dict = field(default_factory=dict)
    layer_density: list = field(default_factory=list)
    masks_enforced: bool | None = None


def _model(data: StudyData, cfg: ConvStudyConfig, seed: int):
    from ..models import ConvNet

    return ConvNet(data.x_train.shape[1], cfg.channels, cfg.depth, data.classes, kernel_size=cfg.kernel_size,
                   padding=cfg.padding, readout=cfg.readout, image_size=tuple(data.x_train.shape[2:]), seed=seed,
                   dtype=torch.float32)


def _kernels(model, data: StudyData, cfg: ConvStudyConfig, seed: int) -> dict[str, torch.Tensor]:
    from ..pai.network import network_graphon
    from ..ntk import empirical_ntk, graphon_cntk

    dt = torch.float64 if cfg.kernel_dtype == "float64" else torch.float32
    xk = data.x_kernel
    out = {"entk_pruned": empirical_ntk(model, xk, dtype=dt)}
    fresh = _model(data, cfg, seed + 10**6)
    fresh.set_masks(model.masks)
    out["entk_fresh"] = empirical_ntk(fresh, xk, dtype=dt)
    masks = [m.detach().cpu().numpy() for m in model.masks]
    weights = [w.detach().cpu().double().numpy() for w in model.weights]
    ng = network_graphon(masks, cfg.K, weights=weights)
    x64 = xk.to(torch.float64)
    kw = dict(kernel_size=cfg.kernel_size, padding=cfg.padding, readout=cfg.readout, n_outputs=data.classes,
              dtype=dt, progress=False)
    out["gntk_mask"] = graphon_cntk(ng, x64, **kw)
    out["gntk_variance"] = graphon_cntk(ng, x64, variance_graphons=ng.variance_graphons, **kw)
    return out


def run_conv_case(method: str, sparsity: float, seed: int, data: StudyData, cfg: ConvStudyConfig, *,
                  kernels: bool = True, train: bool = True) -> ConvCaseResult:
    """One (method, sparsity, seed) case: prune, measure the four kernels, train.

    ``data`` holds images (see :func:`images_of`); ``method="dense"`` (sparsity
    0) keeps every weight. Every row carries method, sparsity and seed.

    Examples
    --------
    >>> from gntk_fast.experiments.pruned_study import load_study_data
    >>> data = images_of(load_study_data("digits", n_train=40, n_kernel=6, n_test=0))
    >>> cfg = ConvStudyConfig(channels=8, depth=1, steps=2, batch_size=20, n_train=40, n_eval=40, n_kernel=6, K=2)
    >>> res = run_conv_case("snip", 0.5, 0, data, cfg.validated())
    >>> sorted({r["kernel"] for r in res.kernel_rows}) == sorted(KERNELS)
    True
    """
    from ..pruning import prune
    from ..training import train as train_model

    method = check_choice("method", method, METHODS)
    seed = check_seed(seed, allow_none=False)
    sparsity = 0.0 if method == "dense" else check_fraction("sparsity", sparsity)
    if data.x_train.dim() != 4:
        raise ValueError("data must hold images (N, C, H, W); reshape flat study data with images_of")
    key = {"method": method, "sparsity": float(sparsity), "seed": int(seed)}
    res = ConvCaseResult()
    model = _model(data, cfg, seed)
    if method != "dense":
        prune(model, method, sparsity, data=data.prune_batch, scope=cfg.scope, seed=seed, progress=False)
    res.layer_density = [float(m.float().mean()) for m in model.masks]
    if kernels:
        ref = None
        for name, K in _kernels(model, data, cfg, seed).items():
            ref = K if ref is None else ref
            metrics, ev = _metrics(K, data.y_kernel)
            res.kernel_rows.append({**key, "kernel": name, **metrics,
                                    "rel_dist_to_a": float(torch.linalg.norm(K - ref) / torch.linalg.norm(ref)),
                                    "scale_free_dist_to_a": scale_free_distance(K, ref),
                                    "ntk_gen_measure": ntk_generalisation_measure(K, data.y_kernel, data.classes)})
            res.eigenvalues[name] = ev
    if train:
        from .._threads import threads_for, torch_threads

        m = copy.deepcopy(model)
        ev = (data.x_train[:cfg.n_eval], data.y_train[:cfg.n_eval])
        # the package's thread rule on the largest conv of one minibatch (small convs run on one thread)
        work = min(cfg.batch_size, data.x_train.shape[0]) * data.x_train[0, 0].numel() * cfg.channels \
            * max(cfg.channels, data.x_train.shape[1]) * cfg.kernel_size**2
        with torch_threads(threads_for(work)):
            tr = train_model(m, (data.x_train, data.y_train), steps=cfg.steps, optimizer="adam", lr=cfg.lr,
                             batch_size=min(cfg.batch_size, data.x_train.shape[0]), loss="cross_entropy",
                             seed=seed, eval_data=ev, eval_every=cfg.eval_every, progress=False)
        res.masks_enforced = all(bool((w.detach()[~msk] == 0).all()) for w, msk in zip(m.weights, m.masks))
        for s, lo, acc in zip(tr.eval_steps, tr.eval_loss, tr.eval_accuracy):
            res.train_rows.append({**key, "step": int(s), "loss": float(lo), "accuracy": float(acc),
                                   "masks_enforced": res.masks_enforced})
        with torch_threads(threads_for(work)):
            res.gen_rows += held_out_rows(m, data, float(tr.eval_loss[-1]), key)
    return res


def run_conv_study(methods: Sequence[str], sparsities: Sequence[float], seeds: int, data: StudyData,
                   cfg: ConvStudyConfig, *, progress: bool | None = None,
                   on_case: Callable[[tuple, ConvCaseResult], None] | None = None,
                   skip: Callable[[tuple], bool] | None = None) -> list[tuple[tuple, ConvCaseResult]]:
    """Every case of :func:`gntk_fast.experiments.pruned_study.case_grid` (``on_case`` after each, ``skip``
    the cases already done; asked again before each case). Returns [(case, result)]."""
    from tqdm.auto import tqdm

    cfg = cfg.validated()
    data = images_of(data)
    cases = case_grid(methods, sparsities, seeds)
    todo = [c for c in cases if skip is None or not skip(c)]
    out = []
    for case in tqdm(todo, desc="pruned conv nets (prune, kernels, train)", disable=not (progress is None or progress),
                     total=len(cases), initial=len(cases) - len(todo)):
        if skip is not None and skip(case):  # done meanwhile by another process on the same folder
            continue
        r = run_conv_case(*case, data, cfg)
        if on_case is not None:
            on_case(case, r)
        out.append((case, r))
    return out


# ----------------------------------------------------------------- figures
def plot_conv_kernel_metrics(kernel_rows: Sequence[dict], metrics: Sequence[tuple[str, str]], *,
                             path: str | Path | None = None):
    """Each metric (one row of panels sharing its y axis) against sparsity for the four kernels
    (columns): one line per method (mean +- sample sd over seeds), the dense net dashed.
    ``metrics``: (column, label) pairs."""
    from ..plots import new_figure, save_figure
    from ._tables import group_mean, group_series

    methods = [m for m in METHODS if m != "dense" and any(r["method"] == m for r in kernel_rows)]
    fig, axes = new_figure(len(metrics), len(KERNELS), size=(3.0 * len(KERNELS) + 0.8, 2.4 * len(metrics) + 0.8))
    for i, (metric, label) in enumerate(metrics):
        stats = group_mean(kernel_rows, ("kernel", "method", "sparsity"), metric)
        for j, kern in enumerate(KERNELS):
            ax = axes[i][j]
            if j:
                ax.sharey(axes[i][0])
            for m in methods:
                series = group_series(stats, kern, m)
                if series is not None:
                    ax.errorbar(*series[:2], yerr=series[2], color=_COLORS.get(m), marker="o", ms=3, lw=1.2,
                                capsize=2, label=m)
            dense = stats.get((kern, "dense", 0.0))
            if dense:
                ax.axhline(dense[0], color="black", ls="--", lw=1, label="dense")
            if i == 0:
                ax.set_title(KERNEL_LABELS[kern], fontsize=8)
            if i == len(metrics) - 1:
                ax.set_xlabel("sparsity")
            if j == 0:
                ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6)
    fig.suptitle("pruned conv nets: spectral metrics of the four kernels (mean +- sd over seeds)", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_conv_training(train_rows: Sequence[dict], *, path: str | Path | None = None):
    """Training loss against steps, one panel per method (one shared log y axis), one line per
    sparsity (mean, band +- sample sd over seeds), the dense net dashed in every panel."""
    from .figures import plot_training_curves

    return plot_training_curves(train_rows, path=path, ylabel="training loss",
                                title="pruned conv nets: training curves (Adam; mean +- sd over seeds)")
