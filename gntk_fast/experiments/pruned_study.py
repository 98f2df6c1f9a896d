"""Pruned networks trained and their kernels measured: the paper's Fig. 2, 3 and 10.

One *case* is (method, sparsity, seed): a ``gntk_fast.MLP`` (NTK
parameterisation, standard-normal weights, no biases, ReLU) with ``depth``
hidden layers of ``width`` neurons is initialised with ``seed``, pruned at
initialisation (``gntk_fast.prune``; ``method="dense"`` keeps every weight)
on the data's pruning batch, then

* trained (:func:`gntk_fast.train`: Adam, ``lr`` 1e-3, minibatches of
  ``batch_size``, cross-entropy, ``steps`` updates); the training loss at step
  s is the loss on the first ``n_eval`` training examples (all of them when
  ``n_eval >= n_train``) after s updates (scored every ``eval_every`` updates),
  and the held-out loss after training is scored on ``n_test`` examples of the
  same split that were never trained on;
* measured through four kernels on ``n_kernel`` inputs (traced over the k
  outputs):

  (a) ``entk_pruned``: the empirical NTK of the pruned network itself;
  (b) ``entk_fresh``: the empirical NTK of the same masks with fresh,
      independent N(0, 1) weights (seed + 10^6);
  (c) ``gntk_mask``: the analytic Graphon NTK of the network graphon of the
      masks (:func:`gntk_fast.pai.network_graphon`, one order per hidden
      layer, K blocks);
  (d) ``gntk_variance``: the analytic kernel with the variance graphons
      ``E[w^2 m]`` of the pruned network's weights for the forward/backward
      signal and the mask graphons for each layer's parameter count
      (``graphon_ntk(..., variance_graphons=...)``).

  Each kernel's spectral metrics (:func:`gntk_fast.spectral_metrics` with the
  labels: decay exponent alpha, effective rank, gap, top-5 energy, alignment)
  and its relative Frobenius distance to kernel (a), raw (``rel_dist_to_a``)
  and after the best scalar (``scale_free_dist_to_a``: the shape alone).
* linearised (``linearised=True``, seed 0 only): full-batch gradient descent
  (float32) on the squared loss over the first ``n_linear`` kernel inputs with step ``eta = c N /
  lambda_max`` (c = ``gd_scale``, lambda_max the top eigenvalue of the
  per-output kernel (a)/k; c = 0.25 is 8x below the stability limit of the
  linear model), measured, beside :func:`gntk_fast.predicted_loss` of kernel
  (a) (lr eta/N, f0 = the network's outputs at initialisation). A run that
  diverges (the finite net leaves the linear regime: sparse nets in NTK
  parameterisation have small outputs and need large weight changes to fit
  O(1) targets) is recorded with ``diverged=True`` and no measured values.

Rows (tidy tables): ``kernel_rows`` one per (case, kernel); ``train_rows``
one per (case, scored step), with ``masks_enforced`` (every pruned weight
exactly 0 after training); ``linear_rows`` one per (case, step) (``measured_loss``
beside ``predicted_loss``); ``gen_rows`` one per case (``train_loss``,
``test_loss``, ``test_accuracy``, ``generalisation_gap``). Column names:
:mod:`gntk_fast.experiments.metrics`.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .._validation import check_choice, check_fraction, check_int, check_seed, check_size, MAX_DEPTH, MAX_WIDTH
from .metrics import (ACCURACY, ALIGNMENT, ALPHA, ALPHA_R2, DIVERGED, EFFECTIVE_RANK, ENERGY_TOP5, ETA,
                      GENERALISATION_GAP, LOSS, MASKS_ENFORCED, MEASURED_LOSS, NTK_GEN_MEASURE, PATH_CV, PATH_MEAN,
                      PATH_RELEVANCE_CORR, PREDICTED_LOSS, P_VALUE, REL_DIST_TO_A, RHO, SCALE_FREE_DIST_TO_A,
                      SPECTRAL_GAP, STEP, TEST_ACCURACY, TEST_LOSS, TRACE, TRAIN_LOSS)

__all__ = ["StudyConfig", "StudyData", "load_study_data", "run_case", "CaseResult", "KERNELS", "METRICS",
           "scale_free_distance", "correlation_rows", "ntk_generalisation_measure",
           "path_summary", "coordinate_relevance"]

KERNELS = ("entk_pruned", "entk_fresh", "gntk_mask", "gntk_variance")
KERNEL_LABELS = {
    "entk_pruned": "(a) eNTK, pruned net",
    "entk_fresh": "(b) eNTK, same masks, fresh weights",
    "gntk_mask": "(c) Graphon NTK, mask graphons",
    "gntk_variance": "(d) Graphon NTK, variance graphons",
}
METRICS = (ALPHA, EFFECTIVE_RANK, SPECTRAL_GAP, ENERGY_TOP5, ALIGNMENT)
METHODS = ("dense", "random", "magnitude", "snip", "grasp", "synflow")


@dataclass
class StudyConfig:
    """Sizes and settings of the pruned-network study (see the module docstring)."""

    width: int = 1024
    depth: int = 4
    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 128
    eval_every: int = 10
    n_train: int = 2000
    n_eval: int = 2000
    n_test: int = 1000
    n_kernel: int = 256
    n_linear: int = 128
    K: int = 64
    scope: str = "global"
    gd_steps: int = 200
    gd_scale: float = 0.25
    kernel_dtype: str = "float64"

    def validated(self) -> "StudyConfig":
        c = copy.copy(self)
        c.width = check_size("width", c.width, MAX_WIDTH)
        c.depth = check_size("depth", c.depth, MAX_DEPTH)
        c.steps = check_size("steps", c.steps, 10**7)
        c.batch_size = check_size("batch_size", c.batch_size, 10**7)
        c.eval_every = check_size("eval_every", c.eval_every, 10**7)
        c.n_train = check_size("n_train", c.n_train, 10**7)
        c.n_eval = check_size("n_eval", c.n_eval, 10**7)
        c.n_test = check_int("n_test", c.n_test, min_value=0, max_value=10**7)
        c.n_linear = check_int("n_linear", c.n_linear, min_value=2)
        c.n_kernel = check_int("n_kernel", c.n_kernel, min_value=3)
        c.K = check_size("K", c.K, c.width)
        c.gd_steps = check_size("gd_steps", c.gd_steps, 10**7)
        c.scope = check_choice("scope", c.scope, ("global", "layerwise"))
        c.kernel_dtype = check_choice("kernel_dtype", c.kernel_dtype, ("float32", "float64"))
        if not (isinstance(c.lr, (int, float)) and c.lr > 0):
            raise ValueError(f"lr must be a number > 0; got {c.lr!r}")
        if not (isinstance(c.gd_scale, (int, float)) and 0 < c.gd_scale < 2):
            raise ValueError(f"gd_scale must be in (0, 2) (gradient descent is stable below 2); got {c.gd_scale!r}")
        return c

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StudyData:
    """Inputs of the study: training subset, kernel subset, pruning batch (float32 / int64)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_kernel: torch.Tensor
    y_kernel: torch.Tensor
    prune_batch: tuple[torch.Tensor, torch.Tensor]
    classes: int
    split: str
    note: str = ""
    x_test: torch.Tensor | None = None  # held-out examples (not trained on, not in the pruning batch's role)
    y_test: torch.Tensor | None = None


def load_study_data(name: str = "digits", *, n_train: int, n_kernel: int, data_dir=None, seed: int = 0,
                    n_test: int = 1000) -> StudyData:
    """The training subset (``n_train`` examples), the kernel inputs (the first
    ``n_kernel`` of them), up to ``n_test`` held-out examples (the next ones of
    the same permutation: never trained on) and the pruning batch (10 per
    class) of a dataset.

    MNIST: the training split when present, else the 10k test split (said in
    ``note``). digits: the embedded scikit-learn digits ("all", 1797 images).
    """
    import warnings

    from .. import data as gdata

    name = check_choice("data", name, ("digits", "mnist"))
    note = ""
    if name == "digits":
        split = "all"
    else:
        present = gdata.available_splits("mnist", data_dir)
        if "train" in present:
            split = "train"
        elif "test" in present:
            split = "test"
            note = "MNIST: no training split found; the 10k test split serves as training data."
        else:
            gdata.mnist_files("train", data_dir)  # raises naming the expected files
            raise FileNotFoundError("MNIST not found")  # pragma: no cover
    x, y = gdata.load(name, split=split, data_dir=data_dir)
    n_test = check_int("n_test", n_test, min_value=0, max_value=10**7)
    if n_test > 0 and n_train >= x.shape[0]:
        raise ValueError(f"n_train={n_train} takes every one of the {x.shape[0]} examples of {name} ({split} split), "
                         f"leaving none held out for n_test={n_test}; lower n_train or pass n_test=0")
    n_train = min(n_train, x.shape[0])
    g = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    perm = g.permutation(x.shape[0])
    idx = torch.from_numpy(perm[:n_train])
    tidx = torch.from_numpy(perm[n_train:n_train + n_test])
    xt, yt = x[idx], y[idx]
    n_kernel = min(n_kernel, n_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pb = gdata.pruning_batch(name, 10, split=split, data_dir=data_dir, seed=seed)
    return StudyData(name, xt, yt, xt[:n_kernel], yt[:n_kernel], pb, gdata.num_classes(name), split, note,
                     x[tidx], y[tidx])


def held_out_rows(model: torch.nn.Module, data: StudyData, train_loss: float, key: dict) -> list[dict]:
    """One row (``key``, ``train_loss``, ``test_loss``, ``test_accuracy``, ``generalisation_gap``) of a
    trained ``model`` scored on the held-out examples of ``data`` (none when it holds none)."""
    if data.x_test is None or data.x_test.shape[0] == 0:
        return []
    with torch.no_grad():
        out = model(data.x_test.to(next(model.parameters()).dtype))
        test_loss = float(torch.nn.functional.cross_entropy(out, data.y_test))
        test_acc = float((out.argmax(1) == data.y_test).float().mean())
    return [{**key, TRAIN_LOSS: train_loss, TEST_LOSS: test_loss, TEST_ACCURACY: test_acc,
             GENERALISATION_GAP: test_loss - train_loss}]


@dataclass
class CaseResult:
    """What :func:`run_case` returns (rows of the study's tables, plus arrays)."""

    kernel_rows: list = field(default_factory=list)
    train_rows: list = field(default_factory=list)
    gen_rows: list = field(default_factory=list)  # final train / held-out loss and their gap
    path_rows: list = field(default_factory=list)  # per-coordinate path density summaries
    linear_rows: list = field(default_factory=list)
    eigenvalues: dict = field(default_factory=dict)  # kernel -> (N,) descending
    layer_density: list = field(default_factory=list)
    masks_enforced: bool | None = None  # after training: every pruned weight exactly 0


def _metrics(K: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, Any], np.ndarray]:
    from ..spectral import spectral_metrics

    m = spectral_metrics(K, y)
    return {
        ALPHA: m.alpha, ALPHA_R2: m.alpha_r2, EFFECTIVE_RANK: m.effective_rank,
        SPECTRAL_GAP: m.spectral_gap, ENERGY_TOP5: m.energy_concentration, ALIGNMENT: m.alignment,
        TRACE: m.trace,
    }, m.eigenvalues


def scale_free_distance(K: torch.Tensor, A: torch.Tensor) -> float:
    """The relative Frobenius distance of ``K`` to ``A`` after the best scalar:
    ``min_c ||c K - A||_F / ||A||_F = sqrt(1 - <K, A>^2 / (||K||^2 ||A||^2))``
    (0 when K is a multiple of A; 1 when K is orthogonal to A or zero).

    Examples
    --------
    >>> import torch
    >>> A = torch.eye(3, dtype=torch.float64)
    >>> scale_free_distance(5.0 * A, A)
    0.0
    """
    k, a = K.double().reshape(-1), A.double().reshape(-1)
    nk, na = float(torch.linalg.norm(k)), float(torch.linalg.norm(a))
    if nk == 0.0 or na == 0.0:
        return 1.0
    cos = float(torch.dot(k, a)) / (nk * na)
    return float(np.sqrt(max(0.0, 1.0 - cos * cos)))


def coordinate_relevance(x: torch.Tensor, y: torch.Tensor, classes: int) -> np.ndarray:
    """Per input coordinate, the fraction of its variance explained by the class:
    ``Var_c(E[x_j | c]) / Var(x_j)`` (class-weighted; 0 for a constant coordinate).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 1.0], [0.0, 3.0], [1.0, 1.0], [1.0, 3.0]])
    >>> coordinate_relevance(x, torch.tensor([0, 0, 1, 1]), 2).tolist()  # x_0 is the class, x_1 noise
    [1.0, 0.0]
    """
    X = x.detach().double().cpu().numpy()
    yy = y.cpu().numpy()
    mu = X.mean(0)
    tot = X.var(0)
    between = np.zeros(X.shape[1])
    for c in range(classes):
        sel = yy == c
        if sel.any():
            between += sel.mean() * (X[sel].mean(0) - mu) ** 2
    return np.divide(between, tot, out=np.zeros_like(tot), where=tot > 0)


def path_summary(masks, x: torch.Tensor, y: torch.Tensor, classes: int) -> dict:
    """The per-coordinate path density ``P(j)`` of the masks (finite path counts over the
    dense count, :func:`gntk_fast.pai.paths.path_counts`) summarised: its mean, its
    coefficient of variation over coordinates, and its Pearson correlation with the
    coordinates' class relevance (:func:`coordinate_relevance`; None when either is constant).

    Examples
    --------
    >>> import numpy as np, torch
    >>> ms = [np.ones((3, 2)), np.ones((2, 3))]
    >>> path_summary(ms, torch.eye(2), torch.tensor([0, 1]), 2)["path_mean"]
    1.0
    """
    from ..pai.paths import path_counts

    P = path_counts(masks)
    r = coordinate_relevance(x, y, classes)
    mean = float(P.mean())
    corr = float(np.corrcoef(P, r)[0, 1]) if P.std() > 0 and r.std() > 0 else None
    return {PATH_MEAN: mean, PATH_CV: float(P.std() / mean) if mean > 0 else None, PATH_RELEVANCE_CORR: corr}


def ntk_generalisation_measure(K: torch.Tensor, y: torch.Tensor, classes: int) -> float:
    """``sqrt(2 tr(Y^T Theta^-1 Y) / N)`` (Arora et al., 2019) with Y the one-hot labels
    and Theta = K / classes (the kernel is traced over the outputs), solved with a
    ridge of 1e-8 tr(Theta)/N for numerically singular kernels; inf for a zero kernel.

    Examples
    --------
    >>> import torch
    >>> K = 2.0 * torch.eye(4, dtype=torch.float64)
    >>> round(ntk_generalisation_measure(K, torch.tensor([0, 1, 0, 1]), 2), 6)  # sqrt(2 * 4 / 4)
    1.414214
    """
    import scipy.linalg

    th = K.detach().double().cpu().numpy() / classes
    n = th.shape[0]
    t = float(np.trace(th))
    if t <= 0.0:
        return float("inf")
    Y = np.eye(classes)[y.cpu().numpy()]
    a = scipy.linalg.solve(th + 1e-8 * t / n * np.eye(n), Y, assume_a="sym")
    return float(np.sqrt(max(0.0, 2.0 * float(np.sum(Y * a)) / n)))


def _model(d: int, classes: int, cfg: StudyConfig, seed: int):
    from ..models import MLP

    return MLP(d, cfg.width, cfg.depth, classes, seed=seed, dtype=torch.float32)


def _kernels(model, data: StudyData, cfg: StudyConfig, seed: int) -> dict[str, torch.Tensor]:
    from ..pai.network import network_graphon
    from ..ntk import empirical_ntk, graphon_ntk

    dt = torch.float64 if cfg.kernel_dtype == "float64" else torch.float32
    xk = data.x_kernel
    out = {"entk_pruned": empirical_ntk(model, xk, dtype=dt)}
    fresh = _model(xk.shape[1], data.classes, cfg, seed + 10**6)
    fresh.set_masks(model.masks)
    out["entk_fresh"] = empirical_ntk(fresh, xk, dtype=dt)
    masks = [m.detach().cpu().numpy() for m in model.masks]
    weights = [w.detach().cpu().double().numpy() for w in model.weights]
    ng = network_graphon(masks, cfg.K, weights=weights)
    x64 = xk.to(torch.float64)
    out["gntk_mask"] = graphon_ntk(ng, x64, n_outputs=data.classes, dtype=dt)
    out["gntk_variance"] = graphon_ntk(ng, x64, n_outputs=data.classes, variance_graphons=ng.variance_graphons,
                                       dtype=dt)
    return out


def run_case(method: str, sparsity: float, seed: int, data: StudyData, cfg: StudyConfig, *,
             kernels: bool = True, train: bool = True, linearised: bool = False) -> CaseResult:
    """One (method, sparsity, seed) case: prune, measure the four kernels, train.

    ``method="dense"`` (with ``sparsity=0``) keeps every weight. Returns a
    :class:`CaseResult`; every row carries method, sparsity and seed.
    """
    from ..pruning import prune
    from ..spectral import predicted_loss
    from ..training import train as train_model

    method = check_choice("method", method, METHODS)
    seed = check_seed(seed, allow_none=False)
    if method == "dense":
        sparsity = 0.0
    else:
        sparsity = check_fraction("sparsity", sparsity)
    key = {"method": method, "sparsity": float(sparsity), "seed": int(seed)}
    res = CaseResult()
    model = _model(data.x_train.shape[1], data.classes, cfg, seed)
    if method != "dense":
        prune(model, method, sparsity, data=data.prune_batch, scope=cfg.scope, seed=seed, progress=False)
    res.layer_density = [float(m.float().mean()) for m in model.masks]
    res.path_rows.append({**key, **path_summary([m.cpu().numpy() for m in model.masks], data.x_kernel,
                                                data.y_kernel, data.classes)})
    if kernels:
        for name, K in _kernels(model, data, cfg, seed).items():
            if name == "entk_pruned":
                ref = K
            metrics, ev = _metrics(K, data.y_kernel)
            rel = float(torch.linalg.norm(K - ref) / torch.linalg.norm(ref))
            res.kernel_rows.append({**key, "kernel": name, **metrics, REL_DIST_TO_A: rel,
                                    SCALE_FREE_DIST_TO_A: scale_free_distance(K, ref),
                                    NTK_GEN_MEASURE: ntk_generalisation_measure(K, data.y_kernel, data.classes)})
            res.eigenvalues[name] = ev
    if train:
        m = copy.deepcopy(model)
        ev = (data.x_train[:cfg.n_eval], data.y_train[:cfg.n_eval])
        tr = train_model(m, (data.x_train, data.y_train), steps=cfg.steps, optimizer="adam", lr=cfg.lr,
                         batch_size=min(cfg.batch_size, data.x_train.shape[0]), loss="cross_entropy", seed=seed,
                         eval_data=ev, eval_every=cfg.eval_every, progress=False)
        res.masks_enforced = all(bool((w.detach()[~msk] == 0).all()) for w, msk in zip(m.weights, m.masks))
        for s, lo, acc in zip(tr.eval_steps, tr.eval_loss, tr.eval_accuracy):
            res.train_rows.append({**key, STEP: int(s), LOSS: float(lo), ACCURACY: float(acc),
                                   MASKS_ENFORCED: res.masks_enforced})
        res.gen_rows += held_out_rows(m, data, float(tr.eval_loss[-1]), key)
    if linearised:
        m = copy.deepcopy(model)
        xk, yk = data.x_kernel[:cfg.n_linear], data.y_kernel[:cfg.n_linear]
        n, k = xk.shape[0], data.classes
        from ..ntk import empirical_ntk

        Kp = empirical_ntk(m, xk, dtype=torch.float64) / k  # per-output kernel
        lam_max = float(torch.linalg.eigvalsh(Kp)[-1])
        eta = cfg.gd_scale * n / lam_max
        with torch.no_grad():
            f0 = m(xk)
        pred = predicted_loss(Kp, yk, eta / n, cfg.gd_steps, f0=f0)
        every = max(1, cfg.gd_steps // 20)
        try:
            gd = train_model(m, (xk, yk), steps=cfg.gd_steps, optimizer="sgd", lr=eta, loss="squared", seed=seed,
                             eval_data=(xk, yk), eval_every=every, progress=False)
            meas, diverged = dict(zip(gd.eval_steps.tolist(), gd.eval_loss.tolist())), False
        except ValueError as exc:  # the finite net left the linear regime and diverged
            if "diverged" not in str(exc):
                raise
            meas, diverged = {}, True
        for s in list(range(0, cfg.gd_steps, every)) + [cfg.gd_steps]:
            res.linear_rows.append({**key, STEP: int(s), ETA: eta, MEASURED_LOSS: meas.get(s),
                                    PREDICTED_LOSS: float(pred[s]), DIVERGED: diverged})
    return res


def case_grid(methods: Sequence[str], sparsities: Sequence[float], seeds: int) -> list[tuple[str, float, int]]:
    """The (method, sparsity, seed) cases: every pruning method at every sparsity,
    and "dense" once per seed when listed."""
    seeds = check_size("seeds", seeds, 1000)
    cases = []
    for s in range(seeds):
        if "dense" in methods:
            cases.append(("dense", 0.0, s))
        for m in methods:
            if m == "dense":
                continue
            for sp in sparsities:
                cases.append((m, float(sp), s))
    return cases


def run_study(methods: Sequence[str], sparsities: Sequence[float], seeds: int, data: StudyData, cfg: StudyConfig,
              *, kernels: bool = True, train: bool = True, linearised: bool = True,
              progress: bool | None = None, on_case: Callable[[tuple, CaseResult], None] | None = None,
              skip: Callable[[tuple], bool] | None = None) -> list[tuple[tuple, CaseResult]]:
    """Run every case of :func:`case_grid` (linearised runs for seed 0 only).

    ``on_case(case, result)`` is called after each case (e.g. to save it), and
    ``skip(case)`` can skip cases already done; it is asked again before each case, so two
    processes sharing one output folder do not repeat each other's cases. Returns [(case, result)].
    """
    from tqdm.auto import tqdm

    cfg = cfg.validated()
    cases = case_grid(methods, sparsities, seeds)
    out = []
    show = True if progress is None else bool(progress)
    todo = [c for c in cases if skip is None or not skip(c)]
    # reused cases start the bar (initial), so its rate and ETA count only the cases computed now
    for case in tqdm(todo, desc="pruned nets (prune, kernels, train)", disable=not show, total=len(cases),
                     initial=len(cases) - len(todo)):
        if skip is not None and skip(case):  # done meanwhile by another process on the same folder
            continue
        r = run_case(*case, data, cfg, kernels=kernels, train=train, linearised=linearised and case[2] == 0)
        if on_case is not None:
            on_case(case, r)
        out.append((case, r))
    return out


def correlation_rows(kernel_rows: Sequence[dict], train_rows: Sequence[dict], kernels: Sequence[str],
                     metrics: Sequence[str], steps: Sequence[int]) -> list[dict]:
    """Spearman's rho (scipy) of each kernel metric against the training loss at
    each step, across the (method, sparsity) configurations (means over seeds).

    Examples
    --------
    >>> k = [{"kernel": "a", "method": "m", "sparsity": s, "seed": 0, "alpha": s} for s in (0.1, 0.5, 0.9)]
    >>> t = [{"method": "m", "sparsity": s, "seed": 0, "step": 5, "loss": 2 * s} for s in (0.1, 0.5, 0.9)]
    >>> correlation_rows(k, t, ["a"], ["alpha"], [5])[0]["rho"]
    1.0
    """
    from ._tables import group_mean, spearman

    loss = group_mean(train_rows, ("method", "sparsity", STEP), LOSS)
    rows = []
    for kern in kernels:
        for metric in metrics:
            vals = group_mean([r for r in kernel_rows if r["kernel"] == kern], ("method", "sparsity"), metric)
            for step in steps:
                keys = [k for k in vals if (k[0], k[1], step) in loss]
                rho, p, n = spearman([vals[k][0] for k in keys], [loss[(k[0], k[1], step)][0] for k in keys])
                rows.append({"kernel": kern, "metric": metric, "step": int(step), RHO: rho, P_VALUE: p, "n": n})
    return rows
