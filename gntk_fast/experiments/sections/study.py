"""Section 3: pruned networks trained, their four kernels and spectral metrics (the paper's Fig. 2, 3, 10)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..metrics import (ALIGNMENT, ALPHA, DENSITY, EFFECTIVE_RANK, ENERGY_TOP5, GENERALISATION_GAP, LOSS,
                       NTK_GEN_MEASURE, PATH_CV, PATH_MEAN, PATH_RELEVANCE_CORR, P_VALUE, REL_DIST_TO_A, RHO,
                       SCALE_FREE_DIST_TO_A, TEST_LOSS, TRAIN_LOSS)
from ._base import Section, View, md_table


def _run(run) -> None:
    from ..claims.c06_spectral_correlation import correlation_step
    from ..figures import plot_correlations, plot_kernel_metric, plot_linearised, plot_training_curves
    from ..pruned_study import (KERNEL_LABELS, KERNELS, METRICS, StudyConfig, case_grid, correlation_rows,
                                load_study_data, run_study)

    t0 = time.perf_counter()
    s = run.settings["study"]
    cfg = StudyConfig(**s["config"]).validated()
    data = load_study_data(run.data, n_train=cfg.n_train, n_kernel=cfg.n_kernel, data_dir=run.data_dir,
                           n_test=cfg.n_test)
    notes = [data.note] if data.note else []
    def case_file(case):
        m, sp, seed = case
        return run.case_path("study", f"{m}_{sp:g}_{seed}")

    def on_case(case, res):
        blob = {"kernel_rows": res.kernel_rows, "train_rows": res.train_rows, "linear_rows": res.linear_rows,
                "gen_rows": res.gen_rows, "path_rows": res.path_rows,
                "layer_density": res.layer_density,
                "eigenvalues": {k: [float(v) for v in ev] for k, ev in res.eigenvalues.items()}}
        run.save_case(case_file(case), blob)

    run_study(s["methods"], s["sparsities"], s["seeds"], data, cfg, progress=run.progress, on_case=on_case,
              skip=lambda case: case_file(case).exists())
    kernel_rows, train_rows, linear_rows, density_rows, gen_rows, path_rows, spectra = [], [], [], [], [], [], {}
    for case in case_grid(s["methods"], s["sparsities"], s["seeds"]):
        blob = json.loads(case_file(case).read_text())
        kernel_rows += blob["kernel_rows"]
        train_rows += blob["train_rows"]
        linear_rows += blob["linear_rows"]
        gen_rows += blob.get("gen_rows", [])
        path_rows += blob.get("path_rows", [])
        m, sp, seed = case
        for li, dens in enumerate(blob["layer_density"]):
            density_rows.append({"method": m, "sparsity": sp, "seed": seed, "layer": li, DENSITY: dens})
        if seed == 0:
            spectra[case] = blob["eigenvalues"]
    steps = [c for c in run.settings["checkpoints"] if c <= cfg.steps]
    corr = correlation_rows(kernel_rows, train_rows, KERNELS, METRICS, steps)
    figs = {"training_curves": run.fig("training_curves")}
    plot_training_curves(train_rows, path=figs["training_curves"])
    for metric, label in ((ENERGY_TOP5, "top-5 energy"), (ALPHA, "decay exponent alpha"),
                          (EFFECTIVE_RANK, "effective rank"), (ALIGNMENT, "kernel-target alignment")):
        figs[f"kernel_{metric}"] = run.fig(f"kernel_{metric}")
        plot_kernel_metric(kernel_rows, metric, KERNELS, KERNEL_LABELS, path=figs[f"kernel_{metric}"], ylabel=label)
    mid = correlation_step(corr) or cfg.steps
    figs["correlations"] = run.fig("correlations")
    plot_correlations(corr, list(KERNELS), list(METRICS), mid, KERNEL_LABELS, path=figs["correlations"])
    if linear_rows:
        figs["linearised"] = run.fig("linearised")
        plot_linearised(linear_rows, path=figs["linearised"])
    figs["spectra"] = run.fig("spectra")
    _plot_spectra(spectra, figs["spectra"])
    run.save_section("study", {"kernels": kernel_rows, "training": train_rows, "linearised": linear_rows,
                               "layer_density": density_rows, "correlations": corr, "generalisation": gen_rows,
                               "path_density": path_rows},
                     {"study_config": {**cfg.as_dict(), "held_out": held_out_count(data)}}, figs,
                     time.perf_counter() - t0, notes)


def _plot_spectra(spectra: dict, path: Path) -> None:
    import matplotlib

    from ...plots import new_figure, save_figure
    from ..pruned_study import KERNEL_LABELS, KERNELS

    methods = [m for m in ("snip", "synflow", "random") if any(c[0] == m for c in spectra)]
    fig, axes = new_figure(len(methods), len(KERNELS), size=(3.0 * len(KERNELS) + 0.6, 2.6 * len(methods) + 0.6))
    cmap = matplotlib.colormaps["viridis"]
    for i, m in enumerate(methods):
        cases = sorted((c for c in spectra if c[0] == m), key=lambda c: c[1])
        for j, kern in enumerate(KERNELS):
            ax = axes[i][j]
            for ci, c in enumerate(cases):
                ev = np.asarray(spectra[c][kern])
                ev = ev[ev > 0] / ev.sum()
                ax.loglog(np.arange(1, len(ev) + 1), ev, color=cmap(ci / max(1, len(cases))), lw=1.2,
                          label=f"s={c[1]:g}")
            dense = [c for c in spectra if c[0] == "dense"]
            if dense:
                ev = np.asarray(spectra[dense[0]][kern])
                ev = ev[ev > 0] / ev.sum()
                ax.loglog(np.arange(1, len(ev) + 1), ev, "k--", lw=1, label="dense")
            ax.set_title(f"{m}: {KERNEL_LABELS[kern]}", fontsize=7)
            ax.grid(alpha=0.3, which="both")
            if i == len(methods) - 1:
                ax.set_xlabel("eigenvalue index k")
            if j == 0:
                ax.set_ylabel("lambda_k / trace")
        axes[i][-1].legend(fontsize=6)
    fig.suptitle("normalised kernel spectra (seed 0)", fontsize=10)
    save_figure(fig, path)


def _kernel_summary(rows: list[dict]) -> list[dict]:
    from .._tables import group_mean
    from ..pruned_study import KERNELS, METRICS

    keys = sorted({(r["kernel"], r["method"], r["sparsity"]) for r in rows},
                  key=lambda k: (KERNELS.index(k[0]), k[1], k[2]))
    cols = [*METRICS, REL_DIST_TO_A] + ([SCALE_FREE_DIST_TO_A] if any(SCALE_FREE_DIST_TO_A in r for r in rows)
                                        else [])
    stats = {m: group_mean(rows, ("kernel", "method", "sparsity"), m) for m in cols}
    out = []
    for k in keys:
        row = {"kernel": k[0], "method": k[1], "sparsity": k[2]}
        for m, st in stats.items():
            val = st.get(k)
            row[m] = None if val is None else val[0]
        out.append(row)
    return out


def _training_summary(rows: list[dict], steps: list[int]) -> list[dict]:
    from .._tables import group_mean

    st = group_mean(rows, ("method", "sparsity", "step"), LOSS)
    out = []
    for m, sp in sorted({(r["method"], r["sparsity"]) for r in rows}):
        row = {"method": m, "sparsity": sp}
        for s in steps:
            val = st.get((m, sp, s))
            row[f"loss@{s}"] = None if val is None else f"{val[0]:.3f} +- {val[1]:.3f}"
        out.append(row)
    return out


def _render(v: View) -> list[str]:
    from ..pruned_study import KERNEL_LABELS, KERNELS, METRICS

    t, f = v.tables, v.figures
    cfg = v.summaries["study_config"]
    steps = [c for c in v.settings["checkpoints"] if c <= cfg["steps"]]
    L = ["## 3. Pruned networks: training and kernels (Fig. 2, 3, 10)", "",
         f"MLP with {cfg['depth']} hidden layers of {cfg['width']} (NTK parameterisation, no biases, ReLU), "
         f"pruned at initialisation ({cfg['scope']} scope) on 10 examples per class; trained with Adam "
         f"(lr {cfg['lr']}, batch {cfg['batch_size']}, {cfg['steps']} steps, cross-entropy) on {cfg['n_train']} "
         f"examples (loss scored on {min(cfg['n_eval'], cfg['n_train'])} of them); kernels on {cfg['n_kernel']} "
         f"of them, the linearised check on {cfg['n_linear']}, graphons with K = {cfg['K']} blocks per hidden layer. "
         "Seeds: " + str(v.settings["study"]["seeds"]) + "; +- is the sample sd over seeds.", "",
         f"![training_curves]({f['training_curves']})", ""]
    L.append(md_table(_training_summary(t["training"], steps), ["method", "sparsity", *[f"loss@{s}" for s in steps]]))
    L += ["The four kernels: " + "; ".join(f"{KERNEL_LABELS[k]}" for k in KERNELS) + ".", ""]
    for k in ("kernel_energy_top5", "kernel_alpha", "kernel_effective_rank", "kernel_alignment", "spectra"):
        if k in f:
            L += [f"![{k}]({f[k]})", ""]
    summ = _kernel_summary(t["kernels"])
    L.append(md_table(summ, ["kernel", "method", "sparsity", *METRICS, REL_DIST_TO_A]
                      + ([SCALE_FREE_DIST_TO_A] if summ and SCALE_FREE_DIST_TO_A in summ[0] else [])))
    L += ["### Metrics against training loss", "",
          "Spearman's rho (scipy) across the (method, sparsity) configurations (seed means); "
          "a positive rho means a larger metric goes with a higher (slower) loss.", "",
          f"![correlations]({f['correlations']})", ""]
    L.append(md_table(t["correlations"], ["kernel", "metric", "step", RHO, P_VALUE, "n"]))
    if "linearised" in f:
        L += ["### Linearised prediction", "", f"![linearised]({f['linearised']})", ""]
    if t.get("generalisation"):
        L += generalisation_lines(t["generalisation"], t["kernels"], KERNELS, KERNEL_LABELS, "C16, C17")
    if t.get("path_density"):
        from .._tables import group_mean

        L += ["### Path density and alignment", "",
              "Per-coordinate path density P(j) of the masks (input-to-output paths through kept weights over the "
              "dense count): its mean, its coefficient of variation over coordinates, and its Pearson correlation "
              "with the coordinates' class relevance (between-class variance fraction on the kernel inputs), seed "
              "means, beside each kernel's alignment (claim C18).", ""]
        st = {k: group_mean(t["path_density"], ("method", "sparsity"), k)
              for k in (PATH_MEAN, PATH_CV, PATH_RELEVANCE_CORR)}
        al = {k: group_mean([r for r in t["kernels"] if r["kernel"] == k], ("method", "sparsity"), ALIGNMENT)
              for k in KERNELS}
        rows = []
        for key in sorted(st[PATH_MEAN]):
            row = {"method": key[0], "sparsity": key[1]}
            row.update({k: st[k][key][0] if key in st[k] else None for k in st})
            row.update({f"alignment {KERNEL_LABELS[k][:3]}": al[k][key][0] if key in al[k] else None
                        for k in KERNELS})
            rows.append(row)
        L.append(md_table(rows, ["method", "sparsity", PATH_MEAN, PATH_CV, PATH_RELEVANCE_CORR,
                                 *[f"alignment {KERNEL_LABELS[k][:3]}" for k in KERNELS]]))
    return L


def generalisation_lines(gen_rows, kernel_rows, kernels, labels, claims: str) -> list[str]:
    """The generalisation block of a study section: final training loss, held-out loss and their gap (seed
    means) per (method, sparsity), beside each kernel's NTK generalisation measure."""
    from .._tables import group_mean

    L = ["### Generalisation", "",
         "Final training loss (on the scored training examples), loss on held-out examples and their gap "
         "(seed means), beside the NTK generalisation measure sqrt(2 tr(Y^T Theta^-1 Y) / N) of each kernel "
         f"(claims {claims}).", ""]
    g = {k: group_mean(gen_rows, ("method", "sparsity"), k) for k in (TRAIN_LOSS, TEST_LOSS, GENERALISATION_GAP)}
    meas = {k: group_mean([r for r in kernel_rows if r["kernel"] == k], ("method", "sparsity"), NTK_GEN_MEASURE)
            for k in kernels}
    rows = []
    for key in sorted(g[TEST_LOSS]):
        row = {"method": key[0], "sparsity": key[1], **{k: g[k][key][0] for k in g}}
        for k in kernels:
            row[f"measure {labels[k][:3]}"] = meas[k][key][0] if key in meas[k] else None
        rows.append(row)
    L.append(md_table(rows, ["method", "sparsity", TRAIN_LOSS, TEST_LOSS, GENERALISATION_GAP,
                             *[f"measure {labels[k][:3]}" for k in kernels]]))
    return L


def held_out_count(data) -> int:
    """How many held-out examples a study's data holds."""
    return 0 if data.x_test is None else int(data.x_test.shape[0])


def held_out_note(cfg: dict, claims: str) -> str:
    """The deviation line of a study's held-out split (its size where the run recorded it)."""
    if "held_out" not in cfg:
        return (f"Held-out loss ({claims}) on examples of the same split that were neither trained on nor scored "
                "as training loss.")
    return (f"Held-out loss ({claims}) on {cfg['held_out']} examples of the same split that were never trained on "
            f"(training on {cfg['n_train']}).")


def _deviations(v: View) -> list[str]:
    cfg = v.summaries["study_config"]
    s = v.settings["study"]
    out = [f"Kernels on {cfg['n_kernel']} inputs where the paper uses 128."] if cfg["n_kernel"] != 128 else []
    if v.tables.get("generalisation"):
        out.append(held_out_note(cfg, "C16, C17"))
    out += [f"{s['seeds']} seeds per case.",
           "Kernels (c) and (d) are built from each net's own masks (K = "
           f"{cfg['K']} blocks), not from the method's limit graphon."]
    return out


SECTION = Section("study", ("study", "checkpoints"), ("kernels", "training", "linearised", "layer_density",
                                                       "correlations", "generalisation", "path_density"), _run, _render,
                  _deviations)
