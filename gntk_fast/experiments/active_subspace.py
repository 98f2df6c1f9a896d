"""Universal approximation on the active coordinate subspace of a pruning method's limit.

A method whose limit graphon prunes an input coordinate away (predicted kept
density below d / 10) leaves the network blind to it as the width grows; the
coordinates it keeps span the *active subspace* on which the pruned network
is still a universal approximator. :func:`active_subspace` tests both halves:

* **inputs**: a synthetic distribution on ``d_in`` coordinates, half of them
  (the odd ones) at a small scale ``low_scale`` and half at scale 1, so that a
  data-driven pruner (SNIP, GraSP: scores proportional to |x_j|) has
  coordinates to select, and a data-free one (SynFlow: all-ones inputs) does not;
* **the sets**: per method, the pooled prediction
  :func:`gntk_fast.pai.limit_graphon` (``n_networks = pool`` fc networks
  of the largest width, none of them trained) gives each input coordinate's
  predicted kept density; the *kept* set is the ``set_size`` coordinates of
  highest density (at least d), the *pruned-away* set the ``set_size`` of
  lowest density among those below d / 10;
* **the targets**: on the standardised coordinates z_j = x_j / scale_j,
  ``f_S(z) = sum_{j in S} sin(1.5 z_j) + z_{S_0} z_{S_1}``, standardised to
  mean 0, variance 1 on the training sample (the same form for both sets);
* **the fits**: for every width and seed an fc network (depth ``depth``,
  2 outputs, PyTorch init) is pruned by the method at ``sparsity`` (layerwise,
  pruning batch of ``n_prune`` samples labelled by the sign of z_0 + z_2) and
  trained by full-batch Adam with the squared loss on each target; the
  held-out R^2 of output 0 is recorded. A dense network of the largest width
  trained on the pruned-away target is the control: if it cannot fit it
  either, the target says nothing about pruning. Nothing is trained for a
  method whose limit keeps or prunes away fewer than two coordinates.

Returns two tables: ``sets`` (per method: the sets and their predicted
densities) and ``fit`` (per method, net, target, width, seed: the held-out ``test_r2`` and the
``train_r2`` on the training inputs).
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch

from .._validation import check_float, check_fraction, check_size, check_sizes

__all__ = ["active_subspace", "synthetic_inputs", "subspace_target"]


def synthetic_inputs(n: int, d_in: int, low_scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, scales)``: n samples of N(0, diag(scales^2)) with scales 1 on even and ``low_scale``
    on odd coordinates (float32 x, float64 scales).

    Examples
    --------
    >>> x, s = synthetic_inputs(4, 6, 0.1, 0)
    >>> x.shape, s.tolist()
    ((4, 6), [1.0, 0.1, 1.0, 0.1, 1.0, 0.1])
    """
    scales = np.where(np.arange(d_in) % 2 == 0, 1.0, float(low_scale))
    z = np.random.default_rng(seed).standard_normal((n, d_in))
    return (z * scales).astype(np.float32), scales


def subspace_target(z: np.ndarray, coords: Sequence[int]) -> np.ndarray:
    """``sum_{j in S} sin(1.5 z_j) + z_{S_0} z_{S_1}`` of the standardised inputs z (n, d); not normalised.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((2, 4)); z[1, 1] = z[1, 3] = 1.0
    >>> subspace_target(z, [1, 3]).round(4).tolist()
    [0.0, 2.995]
    """
    S = [int(j) for j in coords]
    if len(S) < 2:
        raise ValueError(f"coords must name at least 2 coordinates; got {S}")
    return np.sin(1.5 * z[:, S]).sum(1) + z[:, S[0]] * z[:, S[1]]


def _r2(model, x: torch.Tensor, f: np.ndarray) -> float:
    with torch.no_grad():
        out = model(x)[:, 0].double().numpy()
    return float(1.0 - np.mean((out - f) ** 2) / np.var(f))


def active_subspace(
    methods: Sequence[str] = ("snip", "grasp", "synflow"),
    widths: Sequence[int] = (64, 128, 256),
    *,
    sparsity: float = 0.9,
    depth: int = 2,
    seeds: int = 2,
    d_in: int = 16,
    low_scale: float = 0.2,
    set_size: int = 4,
    pool: int = 4,
    n_prune: int = 100,
    n_train: int = 2048,
    n_eval: int = 512,
    steps: int = 200,
    lr: float = 3e-3,
    seed: int = 0,
    progress: Any = False,
) -> tuple[list[dict], list[dict]]:
    """Run the test (see the module docstring); returns ``(sets_rows, fit_rows)``.

    Examples
    --------
    >>> sets, fit = active_subspace(["snip"], [16], seeds=1, steps=2, pool=2, n_train=32, n_eval=32)
    >>> sets[0]["method"], sorted({r["net"] for r in fit})
    ('snip', ['dense', 'pruned'])
    """
    from ..pai import limit_graphon
    from ..models import fc
    from ..pruning import prune
    from ..training import train

    methods = list(methods)
    widths = check_sizes("widths", widths, 1 << 14)
    if not methods or not widths:
        raise ValueError("methods and widths must be non-empty")
    sparsity = check_fraction("sparsity", sparsity)
    dens = 1.0 - sparsity
    seeds = check_size("seeds", seeds, 100)
    d_in = check_size("d_in", d_in, 4096, min_value=4)
    set_size = check_size("set_size", set_size, d_in // 2, min_value=2)
    low_scale = check_float("low_scale", low_scale, min_value=1e-6, max_value=1.0)
    pool = check_size("pool", pool, 1024, min_value=2)
    for name, v in (("n_prune", n_prune), ("n_train", n_train), ("n_eval", n_eval), ("steps", steps)):
        check_size(name, v, 1 << 20)
    xp, _ = synthetic_inputs(n_prune, d_in, low_scale, seed + 1)
    zp = xp / np.where(np.arange(d_in) % 2 == 0, 1.0, low_scale)
    pbatch = (torch.from_numpy(xp), torch.from_numpy((zp[:, 0] + zp[:, 2] > 0).astype(np.int64)))
    x_all, scales = synthetic_inputs(n_train + n_eval, d_in, low_scale, seed + 2)
    z_all = x_all / scales
    xt, xe = torch.from_numpy(x_all[:n_train]), torch.from_numpy(x_all[n_train:])
    sets_rows: list[dict] = []
    fit_rows: list[dict] = []
    for method in methods:
        big = widths[-1]
        ps = int(np.random.SeedSequence([seed, big, 0xAC7]).generate_state(1)[0])
        data = pbatch if method in ("snip", "grasp") else None
        pred = limit_graphon(fc(d_in, big, depth, 2, seed=ps), method, sparsity, data=data, seed=ps,
                             n_networks=pool, resolution=64, networks=lambda k: fc(d_in, big, depth, 2, seed=k))
        fd = np.asarray(pred[0].feature_density, dtype=np.float64)
        order = np.argsort(-fd, kind="stable")
        kept = [int(j) for j in order if fd[j] >= dens][:set_size]
        pruned = [int(j) for j in order[::-1] if fd[j] < dens / 10][:set_size]
        sets_rows.append(dict(method=method, kept_coords=kept, pruned_coords=pruned, n_kept_coords=len(kept),
                              n_pruned_coords=len(pruned),
                              density_kept=[float(fd[j]) for j in kept],
                              density_pruned=[float(fd[j]) for j in pruned],
                              n_low_scale_pruned=int(sum(scales[j] < 1 for j in pruned)), width=big, pool=pool))
        targets = {}
        for name, S in (("kept", kept), ("pruned", pruned)):
            if len(S) >= 2:
                f = subspace_target(z_all, S)
                f = (f - f[:n_train].mean()) / f[:n_train].std()
                targets[name] = f
        if len(targets) < 2:  # the test needs both sets (the claim is not applicable otherwise)
            continue
        for width in widths:
            for s in range(seeds):
                ms = int(np.random.SeedSequence([seed, width, s]).generate_state(1)[0])
                base = fc(d_in, width, depth, 2, seed=ms)
                nets = [("pruned", width)] + ([("dense", width)] if width == big else [])
                for net, _w in nets:
                    for name, f in targets.items():
                        if net == "dense" and name != "pruned":
                            continue
                        model = copy.deepcopy(base)
                        if net == "pruned":
                            prune(model, method, sparsity, data=data, scope="layerwise", seed=ms, progress=False)
                        Y = torch.from_numpy(np.stack([f[:n_train], -f[:n_train]], 1).astype(np.float32))
                        train(model, (xt, Y), steps=steps, optimizer="adam", lr=lr, loss="squared", seed=ms,
                              progress=False)
                        fit_rows.append(dict(method=method, net=net, target=name, width=width, seed=s,
                                             test_r2=_r2(model, xe, f[n_train:]), train_r2=_r2(model, xt, f[:n_train])))
            if progress:
                print(f"active subspace: {method} width {width} done", flush=True)
    return sets_rows, fit_rows
