"""Section 2: kernel checks (finite nets vs the analytic Graphon NTK, Appendix B's scaling, pruned nets)."""
from __future__ import annotations

import time

from ..metrics import (
    EXPONENT,
    MEAN_REL_DIST,
    PREDICTED_EXPONENT,
    SLOPE_REL_DIST,
    TRAINABLE,
)
from ._base import Section, View, md_table


def _run(run) -> None:
    from ..figures import plot_kernel_convergence, plot_pruned_kernels, plot_random_scaling
    from ..kernel_checks import kernel_convergence, pruned_kernel_convergence, random_scaling
    from ..pruned_study import load_study_data

    t0 = time.perf_counter()
    s, r = run.settings["kernel_convergence"], run.settings["random_scaling"]
    rows, summaries = [], []
    for conv in ("mask", "all"):
        rr, summ = kernel_convergence(s["widths"], s["seeds"], K=s["K"], trainable=conv, progress=run.progress)
        rows += rr
        summaries.append(summ)
    figs = {"kernel_convergence": run.fig("kernel_convergence"), "random_scaling": run.fig("random_scaling")}
    plot_kernel_convergence(rows, summaries, path=figs["kernel_convergence"])
    sd = load_study_data(run.data, n_train=64, n_kernel=16, data_dir=run.data_dir)
    srows, ssum = random_scaling(r["densities"], width=r["width"], depth=r["depth"], x=sd.x_kernel,
                                 seeds=r["seeds"], progress=run.progress)
    plot_random_scaling(srows, r["depth"], path=figs["random_scaling"])
    pk = run.settings["pruned_kernels"]
    prows, psum = pruned_kernel_convergence(pk["methods"], pk["widths"], sparsity=pk["sparsity"], depth=pk["depth"],
                                            seeds=pk["seeds"], K=pk["K"], data=run.data, data_dir=run.data_dir,
                                            n_inputs=pk["n_inputs"], progress=run.progress)
    figs["pruned_kernels"] = run.fig("pruned_kernels")
    plot_pruned_kernels(prows, psum, path=figs["pruned_kernels"])
    run.save_section("kernel_checks", {"kernel_convergence": rows, "random_scaling": srows,
                                       "random_scaling_fit": ssum, "pruned_kernels": prows,
                                       "pruned_kernels_fit": psum}, {}, figs, time.perf_counter() - t0)


def _render(v: View) -> list[str]:
    from ..claims.c03_kernel_convergence import summaries

    t, f = v.tables, v.figures
    L = ["## 2. Kernel checks", "", "Finite nets with masks sampled from non-constant graphons "
         "against the analytic Graphon NTK (relative Frobenius error, mean over seeds):", "",
         f"![kernel_convergence]({f['kernel_convergence']})", ""]
    L.append(md_table(summaries(t["kernel_convergence"]), [TRAINABLE, "widths", MEAN_REL_DIST, SLOPE_REL_DIST]))
    L += ["Random pruning's scaling law (Appendix B), eNTK (same initial weights, mean over seeds) and the "
          "analytic kernel of the constant graphon:", "", f"![random_scaling]({f['random_scaling']})", ""]
    L.append(md_table(t["random_scaling_fit"], [TRAINABLE, "kernel", EXPONENT, PREDICTED_EXPONENT]))
    pk = v.settings["pruned_kernels"]
    L += [f"Nets actually pruned (sparsity {pk['sparsity']}, {pk['depth']} hidden layers, {pk['seeds']} seeds): "
          "relative distance of the analytic kernels of their graphons, (c) mask graphons and (d) variance "
          "graphons, to their own eNTK (a), by width:", "", f"![pruned_kernels]({f['pruned_kernels']})", ""]
    L.append(md_table(t["pruned_kernels_fit"], ["method", "kernel", "widths", MEAN_REL_DIST, SLOPE_REL_DIST]))
    return L


def _deviations(v: View) -> list[str]:
    pk = v.settings["pruned_kernels"]
    return [f"Pruned nets' kernels (c) and (d) by width (C10): one sparsity ({pk['sparsity']}), {pk['seeds']} "
            "seeds, each net's own graphons."]


SECTION = Section("kernel_checks", ("kernel_convergence", "random_scaling", "pruned_kernels"),
                  ("kernel_convergence", "random_scaling", "random_scaling_fit", "pruned_kernels",
                   "pruned_kernels_fit"), _run, _render, _deviations)
