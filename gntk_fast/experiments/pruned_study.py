"""Pruned networks trained and their kernels measured: the paper's Fig. 2, 3 and 10.

One *case* is (method, sparsity, seed): a ``gntk_fast.MLP`` (NTK
parameterisation, standard-normal weights, no biases, ReLU) with ``depth``
hidden layers of ``width`` neurons is initialised with ``seed``, pruned at
initialisation (``gntk_fast.prune``; ``method="dense"`` keeps every weight)
on the data's pruning batch, then

* trained (:func:`gntk_fast.train`: Adam, ``lr`` 1e-3, minibatches of
  ``batch_size``, cross-entropy, ``steps`` updates); the training loss at step
  s is the loss on the first ``n_eval`` training examples (all of them when
  ``n_eval >= n_train``) after s updates (scored every ``eval_every`` updates);
* measured through four kernels on ``n_kernel`` inputs (traced over the k
  outputs):

  (a) ``entk_pruned``: the empirical NTK of the pruned network itself;
  (b) ``entk_fresh``: the empirical NTK of the same masks with fresh,
      independent N(0, 1) weights (seed + 10^6);
  (c) ``gntk_mask``: the analytic Graphon NTK of the network graphon of the
      masks (:func:`gntk_fast.graphon.network_graphon`, one order per hidden
      layer, K blocks);
  (d) ``gntk_variance``: the analytic kernel with the variance graphons
      ``E[w^2 m]`` of the pruned network's weights for the forward/backward
      signal and the mask graphons for each layer's parameter count
      (``graphon_ntk(..., variance_graphons=...)``).

  Each kernel's spectral metrics (:func:`gntk_fast.spectral_metrics` with the
  labels: decay exponent alpha, effective rank, gap, top-5 energy, alignment)
  and its relative Frobenius distance to kernel (a).
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
exactly 0 after training); ``linear_rows`` one per (case, step).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .._validation import check_choice, check_fraction, check_int, check_seed, check_size, MAX_DEPTH, MAX_WIDTH

__all__ = ["StudyConfig", "StudyData", "load_study_data", "run_case", "CaseResult", "KERNELS", "METRICS"]

KERNELS = ("entk_pruned", "entk_fresh", "gntk_mask", "gntk_variance")
KERNEL_LABELS = {
    "entk_pruned": "(a) eNTK, pruned net",
    "entk_fresh": "(b) eNTK, same masks, fresh weights",
    "gntk_mask": "(c) Graphon NTK, mask graphons",
    "gntk_variance": "(d) Graphon NTK, variance graphons",
}
METRICS = ("alpha", "effective_rank", "spectral_gap", "energy_top5", "alignment")
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


def load_study_data(name: str = "digits", *, n_train: int, n_kernel: int, data_dir=None, seed: int = 0) -> StudyData:
    """The training subset (``n_train`` examples), the kernel inputs (the first
    ``n_kernel`` of them) and the pruning batch (10 per class) of a dataset.

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
    n_train = min(n_train, x.shape[0])
    g = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    idx = torch.from_numpy(g.permutation(x.shape[0])[:n_train])
    xt, yt = x[idx], y[idx]
    n_kernel = min(n_kernel, n_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pb = gdata.pruning_batch(name, 10, split=split, data_dir=data_dir, seed=seed)
    return StudyData(name, xt, yt, xt[:n_kernel], yt[:n_kernel], pb, gdata.num_classes(name), split, note)


@dataclass
class CaseResult:
    """What :func:`run_case` returns (rows of the study's tables, plus arrays)."""

    kernel_rows: list = field(default_factory=list)
    train_rows: list = field(default_factory=list)
    linear_rows: list = field(default_factory=list)
    eigenvalues: dict = field(default_factory=dict)  # kernel -> (N,) descending
    layer_density: list = field(default_factory=list)
    masks_enforced: bool | None = None  # after training: every pruned weight exactly 0


def _metrics(K: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, Any], np.ndarray]:
    from ..spectral import spectral_metrics

    m = spectral_metrics(K, y)
    return {
        "alpha": m.alpha, "alpha_r2": m.alpha_r2, "effective_rank": m.effective_rank,
        "spectral_gap": m.spectral_gap, "energy_top5": m.energy_concentration, "alignment": m.alignment,
        "trace": m.trace,
    }, m.eigenvalues


def _model(d: int, classes: int, cfg: StudyConfig, seed: int):
    from ..models import MLP

    return MLP(d, cfg.width, cfg.depth, classes, seed=seed, dtype=torch.float32)


def _kernels(model, data: StudyData, cfg: StudyConfig, seed: int) -> dict[str, torch.Tensor]:
    from ..graphon.network import network_graphon
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
    if kernels:
        for name, K in _kernels(model, data, cfg, seed).items():
            if name == "entk_pruned":
                ref = K
            metrics, ev = _metrics(K, data.y_kernel)
            rel = float(torch.linalg.norm(K - ref) / torch.linalg.norm(ref))
            res.kernel_rows.append({**key, "kernel": name, **metrics, "rel_dist_to_a": rel})
            res.eigenvalues[name] = ev
    if train:
        m = copy.deepcopy(model)
        ev = (data.x_train[:cfg.n_eval], data.y_train[:cfg.n_eval])
        tr = train_model(m, (data.x_train, data.y_train), steps=cfg.steps, optimizer="adam", lr=cfg.lr,
                         batch_size=min(cfg.batch_size, data.x_train.shape[0]), loss="cross_entropy", seed=seed,
                         eval_data=ev, eval_every=cfg.eval_every, progress=False)
        res.masks_enforced = all(bool((w.detach()[~msk] == 0).all()) for w, msk in zip(m.weights, m.masks))
        for s, lo, acc in zip(tr.eval_steps, tr.eval_loss, tr.eval_accuracy):
            res.train_rows.append({**key, "step": int(s), "loss": float(lo), "accuracy": float(acc),
                                   "masks_enforced": res.masks_enforced})
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
            res.linear_rows.append({**key, "step": int(s), "eta": eta, "measured": meas.get(s),
                                    "predicted": float(pred[s]), "diverged": diverged})
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
    ``skip(case)`` can skip cases already done. Returns [(case, result)].
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
        r = run_case(*case, data, cfg, kernels=kernels, train=train, linearised=linearised and case[2] == 0)
        if on_case is not None:
            on_case(case, r)
        out.append((case, r))
    return out
