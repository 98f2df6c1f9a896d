"""Section 1: graphon convergence of pruning masks (the paper's Fig. 1, 4-9)."""
from __future__ import annotations

import time

import numpy as np

from ..metrics import BLOCK_SD, CUT, DENSITY, FLAT_BOUND, HIST, NULL_SD, RMS
from ._base import Section, View, md_table


def flat_null_sd(n: int, K: int, trials: int, p: float, seed: int = 0) -> float:
    """The standard deviation of the block values of the trial-averaged SAS estimate
    of ``trials`` masks (n, n) sampled from the CONSTANT graphon p: what a flat
    graphon's estimate looks like at this size, degree sorting included (sorting
    by degree alone spreads the block values of a flat graphon by about
    sqrt(p (1 - p) / n)).

    Examples
    --------
    >>> 0.0 < flat_null_sd(64, 4, 1, 0.5) < 0.2
    True
    """
    from ...graphon.objects import ConstantGraphon
    from ...graphon.sas import sas

    g = ConstantGraphon(min(max(p, 0.0), 1.0))
    H = np.mean([sas(g.sample(n, n, seed=1000 * seed + t), K).H_raw for t in range(trials)], axis=0)
    return float(H.std())


def _run(run) -> None:
    from ...plots import plot_distance_curves, plot_estimate_grid, plot_input_density
    from ..figures import plot_scope_density
    from ..graphon_convergence import graphon_convergence

    t0 = time.perf_counter()
    s = run.settings["convergence"]
    conv_rows, density_rows, flat_rows, figs = [], [], [], {}
    for scope in ("global", "layerwise"):
        res = graphon_convergence(s["methods"], s["widths"], s["sparsity"], s["depth"], s["trials"], s["K"],
                                  data=run.data, data_dir=run.data_dir, scope=scope, keep_trials=False,
                                  progress=run.progress)
        res.to_npz(run.out / "data" / f"convergence_{scope}.npz")
        for mi, m in enumerate(res.methods):
            for wi, w in enumerate(res.widths):
                for li, layer in enumerate(res.layers):
                    conv_rows.append({"scope": scope, "method": m, "width": w, "layer": layer,
                                      DENSITY: res.density[mi, wi, li], HIST: res.hist[mi, wi, li],
                                      RMS: res.hist_norm[mi, wi, li], CUT: res.cut[mi, wi, li]})
                    density_rows.append({"scope": scope, "method": m, "width": w, "layer": layer,
                                         DENSITY: res.density[mi, wi, li]})
        figs[f"convergence_distance_{scope}"] = run.fig(f"convergence_distance_{scope}")
        plot_distance_curves(res, path=figs[f"convergence_distance_{scope}"])
        if scope == "global":
            figs["convergence_estimates"] = run.fig("convergence_estimates")
            plot_estimate_grid(res, path=figs["convergence_estimates"])
            figs["convergence_input_density"] = run.fig("convergence_input_density")
            plot_input_density(res, path=figs["convergence_input_density"],
                               image_shape=res.config.get("image_shape"))
            n, K, T = res.widths[-1], res.config["K"], res.config["trials"]
            for mi, m in enumerate(res.methods):
                H = res.H[mi, -1, 0]
                p = float(res.density[mi, -1, 0])
                null = flat_null_sd(n, K, T, p, seed=mi)
                flat_rows.append({"method": m, "width": n, "layer": res.layers[0], DENSITY: p,
                                  BLOCK_SD: float(H.std()), NULL_SD: null, FLAT_BOUND: 1.5 * null})
    figs["scope_density"] = run.fig("scope_density")
    plot_scope_density(density_rows, path=figs["scope_density"])
    run.save_section("convergence", {"convergence": conv_rows, "scope_density": density_rows, "flatness": flat_rows},
                     {}, figs, time.perf_counter() - t0)


def _render(v: View) -> list[str]:
    s, f, t = v.settings["convergence"], v.figures, v.tables
    L = ["## 1. Graphon convergence (Fig. 1, 4-9)", "",
         f"Methods {', '.join(s['methods'])}; widths {s['widths']}; sparsity {s['sparsity']}; depth {s['depth']}; "
         f"{s['trials']} trials per width; K = {s['K']}; Synaptic-Flow's fc model and pruning semantics. "
         "Distances are to the widest width's averaged estimate.", ""]
    for k in ("convergence_estimates", "convergence_distance_global", "convergence_distance_layerwise",
              "convergence_input_density", "scope_density"):
        if k in f:
            L += [f"![{k}]({f[k]})", ""]
    L.append(md_table(t["convergence"], ["scope", "method", "width", "layer", DENSITY, HIST, CUT]))
    L.append("Flatness at the widest width (first hidden-to-hidden layer); null_sd is the block sd of the same SAS "
             "of masks sampled from the constant graphon at the same size, density and trials:\n")
    L.append(md_table(t.get("flatness", []), ["method", "width", DENSITY, BLOCK_SD, NULL_SD, FLAT_BOUND]))
    return L


def _deviations(v: View) -> list[str]:
    s = v.settings["convergence"]
    out = []
    if s["trials"] < 100:
        out.append(f"Fig. 1: {s['trials']} trials per width where the paper averages 100.")
    out.append(f"Fig. 1: one sparsity ({s['sparsity']}) where the paper shows several.")
    return out


SECTION = Section("convergence", ("convergence",), ("convergence", "scope_density", "flatness"), _run, _render,
                  _deviations)
