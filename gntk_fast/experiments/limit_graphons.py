"""Predicted limit graphons against real masks, path densities, and designed graphons.

The checks of docs/limit-graphons.md section 4 as one experiment:

* **convergence** (checks 1-3): for every method and width, one fc network
  per trial (Synaptic-Flow's fc: PyTorch init, biases) is pruned layerwise at
  the given sparsity by :func:`gntk_fast.prune` (clean mode) and its masks
  estimated by SAS (K blocks). The prediction is POOLED
  (:func:`gntk_fast.pai.limit_graphon` with ``n_networks = pool``): the
  factors' quantile functions are estimated over ``pool`` independent
  networks of the width, none of them a test network (SynFlow with 100
  iterations: the pool's recursions averaged; Random and Magnitude: the exact
  constant d), so the prediction is the same for every test network. It is
  averaged on SAS's blocks (:func:`gntk_fast.pai.block_means`) and
  compared with the SAS estimate of the masks of each test network
  (``reference="independent"``: the check). As a labelled diagnostic, the
  same-network fit (factors fitted on the test network itself) is compared
  with that network's masks (``"same network"``: agreement with its own
  noise, not convergence to a limit). ``pred_error`` is the pooled
  estimate's own error (sd over the pool's single-network predictions /
  sqrt(pool), RMS over the grid). Distance: RMS of the
  block differences (the histogram distance divided by K) and the cut norm
  (exact enumeration is impossible at K = 64: the alternating-maximisation
  lower bound). For Random and Magnitude also the RMS distance of the SAS
  estimate to the constant d. Slopes: least squares of log(mean RMS over
  trials) against log(width).
* **input layer** (check 4): per-coordinate kept density, predicted vs the
  real mask of a test network (not in the pool): Pearson correlation and the Jaccard index of the "pruned-away"
  sets (kept density below d / 10).
* **path density** (check 5): the finite path counts of the real masks
  against the path integral of their joint estimate
  (:func:`gntk_fast.pai.network_graphon`) and of the per-mask SAS
  estimates (:func:`gntk_fast.pai.path_density_comparison`).
* **design**: a step graphon per layer designed by
  :func:`gntk_fast.pai.design` for kernel-target alignment on a training
  batch; fc networks pruned from it (``prune(..., "graphon")``) and by
  Random / SNIP / SynFlow (100 iterations) at the same per-layer density
  are trained with :func:`gntk_fast.train` (Adam, lr 1e-3, minibatches) and
  their loss curves compared.

``scale="small"`` (digits, widths 64..256, seconds) is for tests;
``scale="paper"`` uses MNIST (needs ``data_dir``), widths 250, 500, 1000, 2000,
4000, two test networks per width, K = 64, 90% sparsity, depth 3 (the graphon-convergence setting) and a longer
training. Returns a :class:`LimitGraphonsExperiment`: a tidy table (a list of
dict rows, each with a ``part`` key) and the figure paths.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_seed
from .metrics import CUT, ERR_JOINT, ERR_PER_MASK, FIT_R2, PRED_ERROR, RMS, SAS_TO_CONST, SLOPE_CUT, SLOPE_RMS
from ..spectral import loglog_slope

__all__ = ["LimitGraphonsExperiment", "limit_graphons", "merge_results", "SCALES", "METHOD_SPECS"]

#: label -> (pruning method, pruning-batch size or None, iterations)
METHOD_SPECS: dict[str, tuple[str, int | None, int]] = {
    "random": ("random", None, 1),
    "magnitude": ("magnitude", None, 1),
    "snip (batch 1)": ("snip", 1, 1),
    "snip (batch 100)": ("snip", 100, 1),
    "grasp": ("grasp", 100, 1),
    "synflow (1 it.)": ("synflow", None, 1),
    "synflow (100 it.)": ("synflow", None, 100),
}

SCALES: dict[str, dict[str, Any]] = {
    "small": dict(data="digits", widths=[64, 128, 256], depth=2, sparsity=0.8, K=16, trials=2, pool=4,
                  resolution=128, design_width=64, design_K=4, design_steps=30, design_batch=64,
                  train_steps=60, train_batch=32, train_seeds=1, n_train=600, n_eval=300),
    "paper": dict(data="mnist", widths=[250, 500, 1000, 2000, 4000], depth=3, sparsity=0.9, K=64, trials=2, pool=8,
                  resolution=256, design_width=500, design_K=8, design_steps=100, design_batch=100,
                  train_steps=1500, train_batch=128, train_seeds=2, n_train=8000, n_eval=2000),
}


@dataclass
class LimitGraphonsExperiment:
    """The table (list of dict rows; key ``part`` in convergence / slope / input / paths /
    design / training), the figure paths and the configuration."""

    rows: list[dict[str, Any]]
    figures: dict[str, Path]
    config: dict[str, Any] = field(default_factory=dict)

    def select(self, part: str, **match: Any) -> list[dict[str, Any]]:
        """The rows of ``part`` whose fields equal ``match``."""
        return [r for r in self.rows if r["part"] == part and all(r.get(k) == v for k, v in match.items())]

    def to_json(self, path: str | Path) -> Path:
        from .._io import jsonable, write_text

        here = Path(path).resolve().parent

        def rel(v):  # figure paths relative to the JSON file (no machine paths in the results)
            try:
                return str(Path(v).resolve().relative_to(here))
            except ValueError:
                return Path(v).name

        body = {"config": self.config, "figures": {k: rel(v) for k, v in self.figures.items()},
                "rows": jsonable(self.rows, finite=False)}  # NaN kept: merge_results reads them back
        return write_text(path, json.dumps(body, indent=1) + "\n")


def _nanmean(values) -> float:
    """Mean of the finite values (NaN when there is none, e.g. the recursion's R^2)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _load(cfg, data_dir, seed):
    import warnings

    from .. import data as gdata

    name = cfg["data"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        px, py = gdata.pruning_batch(name, seed=seed, data_dir=data_dir)
        x, y = gdata.load(name, split="test" if name == "mnist" else "all", data_dir=data_dir)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    ntr, nev = min(cfg["n_train"], len(y) // 2), min(cfg["n_eval"], len(y) // 4)
    tr, ev = idx[:ntr], idx[ntr:ntr + nev]
    return (px, py), (x[tr], y[tr]), (x[ev], y[ev])


def limit_graphons(
    scale: str = "small",
    out_dir: str | Path = "limit_graphons_out",
    *,
    data_dir: Any = None,
    seed: int = 0,
    methods: Any = None,
    widths: Any = None,
    parts: Any = ("convergence", "input", "paths", "design"),
    progress: bool = False,
    **overrides: Any,
) -> LimitGraphonsExperiment:
    """Run the experiment (see the module docstring) and write figures and ``results.json`` to ``out_dir``.

    Parameters
    ----------
    scale : "small" or "paper" (:data:`SCALES`).
    out_dir : folder for the PNG figures and the JSON table.
    data_dir : MNIST directory (paper scale).
    seed : base seed (networks, pruning batches, training).
    methods : labels of :data:`METHOD_SPECS` (default all).
    widths : override the scale's widths.
    parts : which parts to run.
    progress : print one line per finished (method, width).
    overrides : any key of the scale's settings (:data:`SCALES`), e.g. ``trials=3``
        or ``train_steps=100``.
    """
    from ..graphon import sas
    from ..graphon.distances import cut_norm
    from ..models import fc
    from ..pai import block_means, limit_graphon, synflow_recursion
    from ..pai.paths import path_density_comparison
    from ..pruning import prune

    scale = check_choice("scale", scale, tuple(SCALES))
    seed = check_seed(seed, allow_none=False)
    cfg = dict(SCALES[scale])
    for k, v in overrides.items():
        if k not in cfg:
            raise ValueError(f"unknown setting {k!r}; the settings are {sorted(cfg)}")
        cfg[k] = v
    if widths is not None:
        cfg["widths"] = sorted(int(w) for w in widths)
    if cfg["K"] > min(cfg["widths"]):
        raise ValueError(f"K={cfg['K']} is larger than the smallest width {min(cfg['widths'])}")
    bad = set(parts) - {"convergence", "input", "paths", "design"}
    if bad:
        raise ValueError(f"parts must be among convergence, input, paths, design; got {sorted(bad)}")
    labels = list(METHOD_SPECS) if methods is None else [check_choice("methods", m, tuple(METHOD_SPECS)) for m in methods]
    parts = set(parts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pbatch, train_set, eval_set = _load(cfg, data_dir, seed)
    d_in, dens, K, depth = int(pbatch[0].shape[1]), 1.0 - cfg["sparsity"], cfg["K"], cfg["depth"]
    rows: list[dict[str, Any]] = []
    keep_maps: dict[str, Any] = {}
    keep_est: dict[str, Any] = {}
    t_start = time.time()

    if parts & {"convergence", "input", "paths"}:
        for label in labels:
            method, batch, E = METHOD_SPECS[label]
            data = None if batch is None else (pbatch[0][:batch], pbatch[1][:batch])
            for width in cfg["widths"]:
                # the pooled prediction: K networks of this width, none of them a test network
                ps = int(np.random.SeedSequence([seed, width, 0x9001]).generate_state(1)[0])
                t0 = time.time()
                pooled = limit_graphon(fc(d_in, width, depth, 10, seed=ps), method, cfg["sparsity"], data=data,
                                       seed=ps, iterations=E, resolution=cfg["resolution"],
                                       n_networks=cfg["pool"],
                                       networks=lambda k: fc(d_in, width, depth, 10, seed=k))
                t_pool = time.time() - t0
                for t in range(cfg["trials"]):
                    s = int(np.random.SeedSequence([seed, width, t]).generate_state(1)[0])
                    model = fc(d_in, width, depth, 10, seed=s)
                    t0 = time.time()
                    # the same-network fit (a diagnostic): fitted on the test network itself
                    if E > 1:
                        same = synflow_recursion(model, dens, E, resolution=cfg["resolution"])
                    else:
                        same = limit_graphon(model, method, cfg["sparsity"], data=data, seed=s,
                                             resolution=cfg["resolution"])
                    t_pred = time.time() - t0
                    res = prune(copy.deepcopy(model), method, cfg["sparsity"], data=data, scope="layerwise",
                                iterations=E, seed=s, progress=False)
                    masks = [m.numpy() for m in res.masks]
                    pred = pooled
                    if "convergence" in parts:
                        for layer in range(1, depth):
                            est = sas(masks[layer], K).H
                            for ref, pr, secs in (("independent", pooled, t_pool), ("same network", same, t_pred)):
                                P = block_means(pr[layer].graphon, width, width, K)
                                D = P - est
                                rows.append(dict(part="convergence", method=label, width=width, trial=t,
                                                 layer=layer, reference=ref, rms=float(np.sqrt(np.mean(D ** 2))),
                                                 cut=float(cut_norm(D, seed=seed).value),
                                                 sas_to_const=float(np.sqrt(np.mean((est - dens) ** 2))),
                                                 pred_to_const=float(np.sqrt(np.mean((P - dens) ** 2))),
                                                 pred_error=float(pr[layer].error), fit_r2=float(pr[layer].r2),
                                                 n_networks=int(pr.config.get("n_networks", 1)),
                                                 predict_s=secs))
                                if t == 0 and layer == 1 and ref == "independent":
                                    keep_est[(label, width)] = (P, est)
                    if "input" in parts:
                        measured = masks[0].mean(0)  # a test network's input layer (not in the pool)
                        pf = pred[0].feature_density
                        pa, ma = set(np.nonzero(pf < dens / 10)[0]), set(np.nonzero(measured < dens / 10)[0])
                        union = pa | ma
                        rows.append(dict(part="input", method=label, width=width, trial=t, reference="independent",
                                         corr=float(np.corrcoef(pf, measured)[0, 1]) if pf.std() > 0 and measured.std() > 0 else float("nan"),
                                         rms=float(np.sqrt(np.mean((pf - measured) ** 2))),
                                         pruned_pred=len(pa), pruned_measured=len(ma),
                                         jaccard=float(len(pa & ma) / len(union)) if union else 1.0,
                                         input_fit_r2=float(pred[0].r2)))
                        if t == 0:
                            keep_maps[(label, width)] = (pf, measured)
                    if "paths" in parts:
                        c = path_density_comparison(masks, K=K)
                        rows.append(dict(part="paths", method=label, width=width, trial=t,
                                         err_joint=c.err_joint, err_per_mask=c.err_per_mask,
                                         mean_finite=float(c.finite.mean())))
                if progress:
                    print(f"[{time.time() - t_start:7.1f}s] {label} width {width} done", flush=True)
        if "convergence" in parts:
            rows += _slope_rows(rows, labels, cfg["widths"], depth)
    # the first parts' table and figures are saved before the design part runs
    figures: dict[str, Path] = _figures(rows, cfg, labels, keep_est, keep_maps, dens, out)
    LimitGraphonsExperiment(rows, figures, {**cfg, "scale": scale, "seed": seed, "methods": labels, "partial": True,
                                            "seconds": time.time() - t_start}).to_json(out / "results.json")
    if "design" in parts:
        rows += _design_part(cfg, pbatch, train_set, eval_set, d_in, dens, depth, seed, out, figures, progress)
    exp = LimitGraphonsExperiment(rows, figures, {**cfg, "scale": scale, "seed": seed, "methods": labels,
                                                  "seconds": time.time() - t_start})
    exp.to_json(out / "results.json")
    return exp


def _slope_rows(rows: list[dict[str, Any]], labels, widths, depth: int) -> list[dict[str, Any]]:
    """Per method and layer: mean RMS / cut / SAS-to-constant over trials at each width and their slopes."""
    out = []
    for label in labels:
        for layer in range(1, depth):
            for ref in ("independent", "same network"):
                sel = [r for r in rows if r["part"] == "convergence" and r["method"] == label and r["layer"] == layer
                       and r.get("reference", "same network") == ref]
                ws = [w for w in widths if any(r["width"] == w for r in sel)]
                if not ws:
                    continue
                mean = [np.mean([r[RMS] for r in sel if r["width"] == w]) for w in ws]
                cut = [np.mean([r[CUT] for r in sel if r["width"] == w]) for w in ws]
                const = [np.mean([r[SAS_TO_CONST] for r in sel if r["width"] == w]) for w in ws]
                perr = [np.mean([r.get(PRED_ERROR, np.nan) for r in sel if r["width"] == w]) for w in ws]
                out.append(dict(part="slope", method=label, layer=layer, reference=ref, widths=ws,
                                slope_rms=loglog_slope(ws, mean, missing=np.nan), slope_cut=loglog_slope(ws, cut, missing=np.nan),
                                slope_sas_to_const=loglog_slope(ws, const, missing=np.nan), rms=[float(v) for v in mean],
                                cut=[float(v) for v in cut], pred_error=float(perr[-1]),
                                fit_r2=_nanmean([r[FIT_R2] for r in sel])))
    return out


def merge_results(paths, out_dir: str | Path) -> LimitGraphonsExperiment:
    """Merge the ``results.json`` of runs of the same setting at different widths (e.g. a
    separate run at a width that did not fit in the main one): the per-trial rows are
    concatenated, the slopes recomputed over all widths, and the distance-vs-width figure
    and ``results.json`` written to ``out_dir``."""
    bodies = [json.loads(Path(p).read_text()) for p in paths]
    if not bodies:
        raise ValueError("paths must name at least one results.json")
    keys = ("scale", "data", "depth", "sparsity", "K", "seed")
    for b in bodies[1:]:
        if any(b["config"].get(k) != bodies[0]["config"].get(k) for k in keys):
            raise ValueError(f"the runs differ in their settings {keys}; only widths may differ")
    rows = [r for b in bodies for r in b["rows"] if r["part"] != "slope"]
    widths = sorted({r["width"] for r in rows if "width" in r})
    labels = list(dict.fromkeys(m for b in bodies for m in b["config"]["methods"]))
    cfg = {**bodies[0]["config"], "widths": widths, "merged_from": [str(p) for p in paths]}
    rows += _slope_rows(rows, labels, widths, cfg["depth"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(rows, cfg, labels, {}, {}, 1.0 - cfg["sparsity"], out)
    exp = LimitGraphonsExperiment(rows, figures, cfg)
    exp.to_json(out / "results.json")
    return exp


def _design_part(cfg, pbatch, train_set, eval_set, d_in, dens, depth, seed, out, figures, progress):
    """Design graphons for alignment, prune and train against Random / SNIP / SynFlow."""
    import torch

    from ..pai import design
    from ..models import fc
    from ..plots import new_figure, save_figure
    from ..pruning import prune
    from ..training import train

    rows = []
    xb, yb = train_set[0][: cfg["design_batch"]], train_set[1][: cfg["design_batch"]]
    t0 = time.time()
    des = design(xb, yb, depth, dens, K=cfg["design_K"], objective="alignment", steps=cfg["design_steps"],
                 lr=0.1, seed=seed)
    rows.append(dict(part="design", objective="alignment", initial=des.initial, final=des.final,
                     seconds=time.time() - t0, K=cfg["design_K"], batch=len(yb)))
    fig, ax = new_figure(1, 2, size=(9, 3.4))
    ax[0, 0].plot(-des.history)
    ax[0, 0].set_xlabel("Adam step")
    ax[0, 0].set_ylabel("kernel-target alignment")
    ax[0, 0].set_title(f"design at density {dens:.2f} (K={cfg['design_K']})")
    im = ax[0, 1].imshow(des.graphons[1].H, vmin=0, vmax=1, cmap="viridis")
    ax[0, 1].set_xlabel("hidden layer 1 (inputs of the layer)")
    ax[0, 1].set_ylabel("hidden layer 2 (outputs)")
    ax[0, 1].set_title("designed hidden graphon")
    fig.colorbar(im, ax=ax[0, 1])
    figures["design_history"] = save_figure(fig, out / "design_history.png")
    curves: dict[str, list[np.ndarray]] = {}
    evals: dict[str, list[float]] = {}
    width = cfg["design_width"]
    for s in range(cfg["train_seeds"]):
        ms = int(np.random.SeedSequence([seed, 7, s]).generate_state(1)[0])
        for label, method, kw in [("designed (alignment)", "graphon", {"graphons": des.graphons}),
                                  ("designed shuffled", "graphon", {"graphons": des.graphons, "shuffle": True}),
                                  ("random", "random", {}), ("snip", "snip", {"data": pbatch}),
                                  ("synflow (100 it.)", "synflow", {})]:
            model = fc(d_in, width, depth, 10, seed=ms)
            prune(model, method, cfg["sparsity"], scope="layerwise", seed=ms, progress=False, **kw)
            tr = train(model, (train_set[0], train_set[1]), steps=cfg["train_steps"], optimizer="adam", lr=1e-3,
                       batch_size=cfg["train_batch"], seed=ms, eval_data=eval_set, progress=False)
            curves.setdefault(label, []).append(tr.loss)
            evals.setdefault(label, []).append(float(tr.eval_loss[-1]))
            rows.append(dict(part="training", method=label, seed=s, test_loss=float(tr.eval_loss[-1]),
                             test_accuracy=float(tr.eval_accuracy[-1]),
                             mean_train_loss_last10pct=float(np.mean(tr.loss[-max(1, len(tr.loss) // 10):])),
                             eval_loss_curve=tr.eval_loss.tolist(), eval_steps=tr.eval_steps.tolist()))
        if progress:
            print(f"design/training seed {s} done", flush=True)
    fig, ax = new_figure(1, 1, size=(6, 4))
    a = ax[0, 0]
    for label, cs in curves.items():
        c = np.mean(cs, axis=0)
        k = max(1, len(c) // 50)
        sm = np.convolve(c, np.ones(k) / k, mode="valid")
        a.plot(np.arange(len(sm)) + k - 1, sm, label=f"{label} (eval {np.mean(evals[label]):.3f})")
    a.set_xlabel("Adam step (lr 1e-3)")
    a.set_ylabel("training loss (cross-entropy, smoothed)")
    a.set_yscale("log")
    a.set_title(f"density {dens:.2f}, width {width}, {cfg['train_seeds']} seed(s)")
    a.legend(fontsize=7)
    figures["training_curves"] = save_figure(fig, out / "training_curves.png")
    del torch
    return rows


def _width_ticks(axes, widths) -> None:
    """Log x-axes labelled at the widths only (no overlapping minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    for a in axes:
        a.xaxis.set_major_locator(FixedLocator(widths))
        a.xaxis.set_minor_locator(NullLocator())
        a.xaxis.set_minor_formatter(NullFormatter())
        a.set_xticklabels([str(w) for w in widths])


def _figures(rows, cfg, labels, keep_est, keep_maps, dens, out):
    from ..plots import new_figure, save_figure

    figs: dict[str, Path] = {}
    slopes = [r for r in rows if r["part"] == "slope" and r["layer"] == 1]
    if slopes:
        fig, ax = new_figure(1, 2, size=(11, 4.2))
        colors = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(r["method"] for r in slopes))}
        for r in slopes:
            ind = r.get("reference", "same network") == "independent"
            style = dict(color=colors[r["method"]], ls="-" if ind else ":", marker="o" if ind else "x",
                         alpha=1.0 if ind else 0.5)
            tag = "" if ind else ", same net"
            ax[0, 0].loglog(r["widths"], r[RMS], **style,
                            label=f"{r['method']}{tag} (slope {r[SLOPE_RMS]:.2f})")
            ax[0, 1].loglog(r["widths"], r[CUT], **style, label=f"{r['method']}{tag} ({r[SLOPE_CUT]:.2f})")
        _width_ticks(ax[0], sorted({w for r in slopes for w in r["widths"]}))
        ax[0, 0].set_title("prediction vs SAS, hidden layer 1->2: RMS\n(solid: independent net; dotted: same net)")
        ax[0, 1].set_title("cut norm (lower bound)")
        for a in ax[0]:
            a.set_xlabel("width n")
            a.set_ylabel("distance")
            a.legend(fontsize=6)
        figs["distance_vs_width"] = save_figure(fig, out / "distance_vs_width.png")
    if keep_est:
        wmax = max(w for (_, w) in keep_est)
        labs = [l for l in labels if (l, wmax) in keep_est]
        fig, ax = new_figure(2, len(labs), size=(2.3 * len(labs) + 0.6, 5.0))
        for i, l in enumerate(labs):
            P, est = keep_est[(l, wmax)]
            for j, (H, name) in enumerate([(P, "prediction"), (est, "SAS")]):
                ax[j, i].imshow(H, vmin=0, vmax=min(1.0, max(3 * dens, float(est.max()))), cmap="viridis")
                ax[j, i].set_title(f"{l}\n{name}", fontsize=7)
                ax[j, i].set_xticks([])
                ax[j, i].set_yticks([])
        ax[1, 0].set_xlabel("hidden layer 1 (columns, sorted)")
        ax[1, 0].set_ylabel("hidden layer 2 (rows, sorted)")
        figs["prediction_vs_sas"] = save_figure(fig, out / "prediction_vs_sas.png")
    if keep_maps:
        wmax = max(w for (_, w) in keep_maps)
        labs = [l for l in labels if (l, wmax) in keep_maps]
        side = int(round(np.sqrt(len(next(iter(keep_maps.values()))[0]))))
        fig, ax = new_figure(2, len(labs), size=(2.3 * len(labs) + 0.6, 5.0))
        for i, l in enumerate(labs):
            pf, meas = keep_maps[(l, wmax)]
            corr = np.corrcoef(pf, meas)[0, 1] if pf.std() > 0 and meas.std() > 0 else float("nan")
            vmax = float(max(pf.max(), meas.max()))
            for j, (v, name) in enumerate([(pf, "predicted"), (meas, "measured")]):
                ax[j, i].imshow(v.reshape(side, side), vmin=0, vmax=vmax, cmap="magma")
                ax[j, i].set_title(f"{l}\n{name}" + (f" (r={corr:.2f})" if j == 0 else ""), fontsize=7)
                ax[j, i].set_xticks([])
                ax[j, i].set_yticks([])
        figs["input_maps"] = save_figure(fig, out / "input_maps.png")
    prow = [r for r in rows if r["part"] == "paths"]
    if prow:
        fig, ax = new_figure(1, 1, size=(6, 4))
        for l in labels:
            sel = [r for r in prow if r["method"] == l]
            if not sel:
                continue
            ws = [w for w in cfg["widths"] if any(r["width"] == w for r in sel)]
            ej = [np.mean([r[ERR_JOINT] for r in sel if r["width"] == w]) for w in ws]
            ep = [np.mean([r[ERR_PER_MASK] for r in sel if r["width"] == w]) for w in ws]
            line, = ax[0, 0].loglog(ws, ej, "o-", label=f"{l} joint")
            ax[0, 0].loglog(ws, ep, "x--", color=line.get_color(), label=f"{l} per-mask SAS")
        _width_ticks(ax[0], sorted({r["width"] for r in prow}))
        ax[0, 0].set_xlabel("width n")
        ax[0, 0].set_ylabel("relative L2 error vs finite path counts")
        ax[0, 0].set_title("path density: estimate integral vs finite counts")
        ax[0, 0].legend(fontsize=5, ncol=2)
        figs["path_density"] = save_figure(fig, out / "path_density.png")
    return figs
