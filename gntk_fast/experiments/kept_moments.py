"""First and second moments of the kept weights, and what they do to a pruned net's scale.

A pruned layer ``z = (W * M) h / sqrt(n_in)`` with kept weights of mean
``mu_i = mean_j W_ij M_ij`` in row i and second moment ``s = E[W^2 M]`` has,
for inputs ``h >= 0`` (after a ReLU), a *mean term* ``sqrt(n_in) mu_i E[h]``
beside the *fluctuation term* of size ``sqrt(s E[h^2])``. Their ratio is
measured by the row coherence

    c = sqrt(n_in) * rms_i(mu_i) / sqrt(s),

which is about 1 for masks independent of the weights' signs (Random: mu_i is
a mean of ``n_in d`` zero-mean terms, ``rms(mu) ~ sqrt(s / n_in)``) and grows
like ``sqrt(n_in)`` when the pruner keeps weights of one sign more than the
other in a row (a first-moment graphon ``E[w m]`` that does not vanish): the
mean term then dominates and the layer's output, and the eNTK with it, grows
with width. The analytic kernels (c) and (d) keep only the second moments,
so they cannot follow such a net.

:func:`kept_weight_moments` measures, per method, width, seed and layer, the
density, ``E[w m]``, ``E[w^2 m]``, the coherence, the RMS of the layer's
pre-activations on a data batch relative to the dense net with the same
initial weights, and (per net) the eNTK trace relative to the dense net's.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from .._validation import MAX_DEPTH, MAX_WIDTH, check_fraction, check_size, check_sizes
from .metrics import COHERENCE, DENSITY, ENTK_TRACE_RATIO, MEAN_KEPT, OUT_SCALE, SECOND_KEPT

__all__ = ["kept_weight_moments", "row_coherence"]


def row_coherence(weight: np.ndarray, mask: np.ndarray) -> float:
    """``sqrt(n_in) * rms_i(mean_j w_ij m_ij) / sqrt(mean(w^2 m))`` of one layer (0 for an empty mask).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.ones((4, 100)); m = np.ones((4, 100))
    >>> round(row_coherence(w, m), 6)  # every kept weight of one sign: sqrt(n_in)
    10.0
    """
    w = np.asarray(weight, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    s = float((w * w * m).mean())
    if s == 0.0:
        return 0.0
    mu = (w * m).mean(axis=1)
    return float(np.sqrt(w.shape[1]) * np.sqrt(np.mean(mu ** 2)) / np.sqrt(s))


def _preactivation_rms(model, x: torch.Tensor) -> list[float]:
    out = []
    hooks = [layer.register_forward_hook(lambda mod, inp, o: out.append(float(o.detach().pow(2).mean().sqrt())))
             for layer in model.layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def kept_weight_moments(methods: Sequence[str] = ("random", "grasp"), widths: Sequence[int] = (128, 256, 512),
                        *, sparsity: float = 0.9, depth: int = 3, seeds: int = 2, data: str = "digits",
                        data_dir=None, n_inputs: int = 16, progress: bool | None = None):
    """Kept-weight moments, coherence, output scale and eNTK trace of pruned nets by width.

    Parameters
    ----------
    methods : pruning methods (``gntk_fast.prune`` names).
    widths : hidden widths of the ``gntk_fast.MLP`` (NTK parameterisation, ``depth`` hidden layers).
    sparsity : pruned fraction (global scope, as the pruned-net study).
    seeds : nets per (method, width).
    data, data_dir : the dataset of the pruning batch and of the ``n_inputs`` inputs.

    Returns
    -------
    (layer_rows, net_rows): ``layer_rows`` one per (method, width, seed, layer) with
    ``density, mean_kept, second_kept, coherence, out_scale`` (pre-activation RMS over the
    dense net's); ``net_rows`` one per net with ``entk_trace_ratio`` (pruned / dense).

    Examples
    --------
    >>> layers, nets = kept_weight_moments(["random"], [32], seeds=1, depth=2)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from ..models import MLP
    from ..ntk import empirical_ntk
    from ..pruning import prune
    from .pruned_study import load_study_data

    widths = check_sizes("widths", widths, MAX_WIDTH)
    depth = check_size("depth", depth, MAX_DEPTH)
    seeds = check_size("seeds", seeds, 1000)
    sparsity = check_fraction("sparsity", sparsity)
    sd = load_study_data(data, n_train=max(64, n_inputs), n_kernel=n_inputs, data_dir=data_dir)
    x = sd.x_kernel.to(torch.float64)
    layer_rows, net_rows = [], []
    show = True if progress is None else bool(progress)
    with tqdm(total=len(methods) * len(widths) * seeds, desc="kept-weight moments", disable=not show) as bar:
        for n in widths:
            for seed in range(seeds):
                dense = MLP(x.shape[1], n, depth, sd.classes, seed=seed, dtype=torch.float64)
                z_dense = _preactivation_rms(dense, x)
                tr_dense = float(torch.trace(empirical_ntk(dense, x)))
                for method in methods:
                    model = copy.deepcopy(dense)
                    pb = (sd.prune_batch[0].to(torch.float64), sd.prune_batch[1])
                    prune(model, method, sparsity, data=pb, scope="global", seed=seed, progress=False)
                    z = _preactivation_rms(model, x)
                    for li, (w, m) in enumerate(zip(model.weights, model.masks)):
                        wn, mn = w.detach().double().numpy(), m.detach().double().numpy()
                        layer_rows.append({"method": method, "width": n, "seed": seed, "layer": li,
                                           DENSITY: float(mn.mean()), MEAN_KEPT: float((wn * mn).mean()),
                                           SECOND_KEPT: float((wn * wn * mn).mean()),
                                           COHERENCE: row_coherence(wn, mn),
                                           OUT_SCALE: z[li] / z_dense[li] if z_dense[li] > 0 else None})
                    tr = float(torch.trace(empirical_ntk(model, x)))
                    net_rows.append({"method": method, "width": n, "seed": seed, ENTK_TRACE_RATIO: tr / tr_dense})
                    bar.update(1)
    return layer_rows, net_rows
