"""The main job: every experiment of the paper, its claims tested, one report.

:func:`run_report` runs, at the sizes of a *scale* ("small": the embedded
digits data, minutes on two CPU cores; "paper": the paper's sizes on MNIST),

1. graphon convergence (Fig. 1, 4-9) in global and layerwise scope, with the
   per-layer density drift of global scope;
2. kernel checks: finite graphon-sampled nets against the analytic kernel
   (spec fact 3) and random pruning's scaling law (Appendix B), both
   conventions, eNTK and analytic;
3. the pruned-network study (Fig. 2, 3, 10): training curves, the four kernels
   (a)-(d) of every (method, sparsity, seed) and their spectral metrics,
   Spearman correlations of each metric with the training loss at steps
   50/100/200, and the linearised prediction beside measured GD;
4. the claims table (:mod:`gntk_fast.experiments.claims`).

Output directory ``out``::

    report.md              every figure and table, the claims section
    results.json           config, timings and the claims (one file)
    tables/NAME.json|.parquet   the tidy tables
    figures/NAME.png
    cases/CASE.json        one file per finished case of the study
    sections/NAME.json     finished sections (a rerun with the same
                           settings reuses them: an interrupted run resumes)

Every file is written atomically, and report.md is rewritten after each
section, so an interrupted run leaves a report of what finished.
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_text
from .._validation import check_choice
from . import claims as C
from ._tables import clean, write_table
from .pruned_study import KERNEL_LABELS, KERNELS, METRICS, StudyConfig

__all__ = ["SCALES", "run_report", "ReportResult"]

SCALES: dict[str, dict[str, Any]] = {
    "small": {
        "data": "digits",
        "convergence": {"methods": ["random", "snip", "grasp", "synflow"], "widths": [64, 128, 256], "trials": 3,
                        "K": 16, "depth": 3, "sparsity": 0.9},
        "kernel_convergence": {"widths": [128, 256, 512, 1024], "seeds": 3, "K": 512},
        "random_scaling": {"densities": [1.0, 0.5, 0.25, 0.1], "width": 512, "depth": 3, "seeds": 2},
        "pruned_kernels": {"methods": ["random", "snip", "synflow"], "widths": [64, 128, 256], "seeds": 2,
                           "sparsity": 0.8, "depth": 3, "K": 32, "n_inputs": 48},
        "study": {"methods": ["dense", "random", "magnitude", "snip", "grasp", "synflow"],
                  "sparsities": [0.5, 0.8, 0.95], "seeds": 2,
                  "config": {"width": 256, "depth": 4, "steps": 200, "batch_size": 64, "n_train": 1000,
                             "n_eval": 1000, "n_kernel": 200, "n_linear": 128, "K": 16, "gd_steps": 200}},
        "checkpoints": [50, 100, 200],
        "limit_graphons": {},
    },
    "paper": {
        "data": "mnist",
        "convergence": {"methods": ["random", "snip", "grasp", "synflow"], "widths": [100, 500, 1000, 2000],
                        "trials": 10, "K": 64, "depth": 3, "sparsity": 0.9},
        "kernel_convergence": {"widths": [128, 512, 2048], "seeds": 3, "K": 512},
        "random_scaling": {"densities": [1.0, 0.5, 0.25, 0.1], "width": 2048, "depth": 3, "seeds": 3},
        "pruned_kernels": {"methods": ["random", "snip", "synflow"], "widths": [256, 512, 1024, 2048], "seeds": 2,
                           "sparsity": 0.8, "depth": 3, "K": 64, "n_inputs": 64},
        "study": {"methods": ["dense", "random", "magnitude", "snip", "grasp", "synflow"],
                  "sparsities": [0.5, 0.8, 0.9, 0.95], "seeds": 3,
                  "config": {"width": 1024, "depth": 4, "steps": 200, "batch_size": 128, "n_train": 10000,
                             "n_eval": 2000, "n_kernel": 300, "n_linear": 128, "K": 64, "gd_steps": 200}},
        "checkpoints": [50, 100, 200],
        "limit_graphons": {},
    },
}


@dataclass
class ReportResult:
    """Paths and claims of a finished (or interrupted) report."""

    out: Path
    report: Path
    claims: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


class _Run:
    def __init__(self, out: Path, scale: str, data: str, data_dir, progress, settings):
        self.out = out
        self.scale, self.data, self.data_dir = scale, data, data_dir
        self.progress = progress
        self.settings = settings
        self.tables: dict[str, list] = {}
        self.figures: dict[str, Path] = {}
        self.summaries: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []

    _SECTION_SETTINGS = {"convergence": ("convergence",),
                         "kernel_checks": ("kernel_convergence", "random_scaling", "pruned_kernels"),
                         "study": ("study", "checkpoints"),
                         "limit_graphons": ("limit_graphons",)}

    def key(self, section: str) -> str:
        """Hash of the settings a section depends on (and the dataset), so a
        change to one section's settings reruns that section only."""
        part = [self.settings[k] for k in self._SECTION_SETTINGS[section]]
        return hashlib.sha256(json.dumps([part, self.data], sort_keys=True).encode()).hexdigest()[:16]

    # --------------------------------------------------------------- sections
    def section_path(self, name: str) -> Path:
        return self.out / "sections" / f"{name}.json"

    def load_section(self, name: str) -> bool:
        p = self.section_path(name)
        if not p.exists():
            return False
        try:
            blob = json.loads(p.read_text())
        except (OSError, ValueError):
            return False
        if blob.get("key") != self.key(name) or not all((self.out / f).exists() for f in blob.get("figures", {}).values()):
            return False
        self.tables.update(blob["tables"])
        self.summaries.update(blob["summaries"])
        self.figures.update({k: self.out / v for k, v in blob["figures"].items()})
        self.timings[name] = blob["seconds"]
        self.notes.extend(blob.get("notes", []))
        return True

    def save_section(self, name: str, tables: dict, summaries: dict, figures: dict, seconds: float, notes=()) -> None:
        for t, rows in tables.items():
            rows = [{k: clean(v) for k, v in r.items()} for r in rows]
            tables[t] = rows
            write_table(rows, self.out / "tables" / t)
        self.tables.update(tables)
        self.summaries.update(summaries)
        self.figures.update(figures)
        self.timings[name] = seconds
        self.notes.extend(notes)
        blob = {"key": self.key(name), "tables": tables, "summaries": _jsonable(summaries), "seconds": seconds,
                "figures": {k: str(v.relative_to(self.out)) for k, v in figures.items()}, "notes": list(notes)}
        write_text(self.section_path(name), json.dumps(blob, allow_nan=False) + "\n")

    def fig(self, name: str) -> Path:
        return self.out / "figures" / f"{name}.png"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    return clean(x)


# ------------------------------------------------------------------ sections
def flat_null_sd(n: int, K: int, trials: int, p: float, seed: int = 0) -> float:
    """The standard deviation of the block values of the trial-averaged SAS estimate
    of ``trials`` masks (n, n) sampled from the CONSTANT graphon p: what a flat
    graphon's estimate looks like at this size, degree sorting included (sorting
    by degree alone spreads the block values of a flat graphon by about
    sqrt(p (1 - p) / n))."""
    from ..graphon.objects import ConstantGraphon
    from ..graphon.sas import sas

    g = ConstantGraphon(min(max(p, 0.0), 1.0))
    H = np.mean([sas(g.sample(n, n, seed=1000 * seed + t), K).H_raw for t in range(trials)], axis=0)
    return float(H.std())


def _convergence(run: _Run) -> None:
    from ..plots import plot_distance_curves, plot_estimate_grid, plot_input_density
    from .figures import plot_scope_density
    from .graphon_convergence import graphon_convergence

    if run.load_section("convergence"):
        return
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
                                      "density": res.density[mi, wi, li], "hist": res.hist[mi, wi, li],
                                      "hist_norm": res.hist_norm[mi, wi, li], "cut": res.cut[mi, wi, li]})
                    density_rows.append({"scope": scope, "method": m, "width": w, "layer": layer,
                                         "density": res.density[mi, wi, li]})
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
                flat_rows.append({"method": m, "width": n, "layer": res.layers[0], "density": p,
                                  "block_sd": float(H.std()), "null_sd": null, "flat_bound": 1.5 * null})
    figs["scope_density"] = run.fig("scope_density")
    plot_scope_density(density_rows, path=figs["scope_density"])
    run.save_section("convergence", {"convergence": conv_rows, "scope_density": density_rows, "flatness": flat_rows},
                     {}, figs, time.perf_counter() - t0)


def _kernel_checks(run: _Run) -> None:
    from .figures import plot_kernel_convergence, plot_pruned_kernels, plot_random_scaling
    from .kernel_checks import kernel_convergence, pruned_kernel_convergence, random_scaling

    if run.load_section("kernel_checks"):
        return
    t0 = time.perf_counter()
    s, r = run.settings["kernel_convergence"], run.settings["random_scaling"]
    rows, summaries = [], []
    for conv in ("mask", "all"):
        rr, summ = kernel_convergence(s["widths"], s["seeds"], K=s["K"], trainable=conv, progress=run.progress)
        rows += rr
        summaries.append(summ)
    figs = {"kernel_convergence": run.fig("kernel_convergence"), "random_scaling": run.fig("random_scaling")}
    plot_kernel_convergence(rows, summaries, path=figs["kernel_convergence"])
    from .pruned_study import load_study_data

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
                                       "pruned_kernels_fit": psum},
                     {"kernel_convergence": summaries}, figs, time.perf_counter() - t0)


def _study(run: _Run) -> None:
    from .figures import plot_correlations, plot_kernel_metric, plot_linearised, plot_training_curves
    from .pruned_study import load_study_data, run_study

    if run.load_section("study"):
        return
    t0 = time.perf_counter()
    s = run.settings["study"]
    cfg = StudyConfig(**s["config"]).validated()
    data = load_study_data(run.data, n_train=cfg.n_train, n_kernel=cfg.n_kernel, data_dir=run.data_dir)
    notes = [data.note] if data.note else []
    cases_dir = run.out / "cases"

    def case_file(case):
        m, sp, seed = case
        return cases_dir / f"{m}_{sp:g}_{seed}_{run.key('study')}.json"

    def skip(case):
        return case_file(case).exists()

    def on_case(case, res):
        blob = {"kernel_rows": res.kernel_rows, "train_rows": res.train_rows, "linear_rows": res.linear_rows,
                "layer_density": res.layer_density,
                "eigenvalues": {k: [float(v) for v in ev] for k, ev in res.eigenvalues.items()}}
        write_text(case_file(case), json.dumps(_jsonable(blob), allow_nan=False) + "\n")

    run_study(s["methods"], s["sparsities"], s["seeds"], data, cfg, progress=run.progress, on_case=on_case,
              skip=skip)
    from .pruned_study import case_grid

    kernel_rows, train_rows, linear_rows, density_rows, spectra = [], [], [], [], {}
    for case in case_grid(s["methods"], s["sparsities"], s["seeds"]):
        blob = json.loads(case_file(case).read_text())
        kernel_rows += blob["kernel_rows"]
        train_rows += blob["train_rows"]
        linear_rows += blob["linear_rows"]
        m, sp, seed = case
        for li, dens in enumerate(blob["layer_density"]):
            density_rows.append({"method": m, "sparsity": sp, "seed": seed, "layer": li, "density": dens})
        if seed == 0:
            spectra[case] = blob["eigenvalues"]
    steps = [c for c in run.settings["checkpoints"] if c <= cfg.steps]
    corr = C.correlation_rows(kernel_rows, train_rows, KERNELS, METRICS, steps)
    figs = {}
    figs["training_curves"] = run.fig("training_curves")
    plot_training_curves(train_rows, path=figs["training_curves"])
    for metric, label in (("energy_top5", "top-5 energy"), ("alpha", "decay exponent alpha"),
                          ("effective_rank", "effective rank"), ("alignment", "kernel-target alignment")):
        figs[f"kernel_{metric}"] = run.fig(f"kernel_{metric}")
        plot_kernel_metric(kernel_rows, metric, KERNELS, KERNEL_LABELS, path=figs[f"kernel_{metric}"], ylabel=label)
    mid = steps[len(steps) // 2] if steps else cfg.steps
    figs["correlations"] = run.fig("correlations")
    plot_correlations(corr, list(KERNELS), list(METRICS), mid, KERNEL_LABELS, path=figs["correlations"])
    if linear_rows:
        figs["linearised"] = run.fig("linearised")
        plot_linearised(linear_rows, path=figs["linearised"])
    figs["spectra"] = run.fig("spectra")
    _plot_spectra(spectra, figs["spectra"])
    run.save_section("study", {"kernels": kernel_rows, "training": train_rows, "linearised": linear_rows,
                               "layer_density": density_rows, "correlations": corr},
                     {"study_config": cfg.as_dict(), "correlation_step": mid}, figs, time.perf_counter() - t0, notes)


def _plot_spectra(spectra: dict, path: Path) -> None:
    from ..plots import new_figure, save_figure

    methods = [m for m in ("snip", "synflow", "random") if any(c[0] == m for c in spectra)]
    fig, axes = new_figure(len(methods), len(KERNELS), size=(3.0 * len(KERNELS) + 0.6, 2.6 * len(methods) + 0.6))
    import matplotlib

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


def _limit_graphons(run: _Run) -> None:
    """The follow-up paper's checks (:func:`gntk_fast.experiments.limit_graphons`)
    at the report's scale; its settings are the experiment's own scale, with
    ``run.settings["limit_graphons"]`` as overrides."""
    from .limit_graphons import limit_graphons

    if run.load_section("limit_graphons"):
        return
    t0 = time.perf_counter()
    over = dict(run.settings["limit_graphons"])
    over.setdefault("data", run.data)
    exp = limit_graphons(run.scale, run.out / "figures" / "limit_graphons", data_dir=run.data_dir,
                         progress=run.progress is not False, **over)
    tables = {}
    for part in ("convergence", "slope", "input", "paths", "design", "training"):
        rows = [{k: (json.dumps(_jsonable(v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
                 for k, v in r.items()} for r in exp.select(part)]
        if rows:
            tables[f"limit_{part}"] = rows
    figs = {f"limit_{k}": Path(v) for k, v in exp.figures.items()}
    run.save_section("limit_graphons", tables, {"limit_config": _jsonable(exp.config)}, figs,
                     time.perf_counter() - t0)


# ------------------------------------------------------------------- claims
def _claims(run: _Run) -> list[dict]:
    t = run.tables
    out = []
    if "convergence" in t:
        out += C.graphon_convergence_claims(t["convergence"], t.get("flatness", []))
    if "kernel_convergence" in run.summaries:
        out += C.kernel_convergence_claim(run.summaries["kernel_convergence"])
    if "random_scaling_fit" in t:
        out += C.random_scaling_claims(t["random_scaling_fit"])
    if "kernels" in t:
        out += C.energy_claims(t["kernels"], KERNELS, KERNEL_LABELS)
        out += C.correlation_claims(t["correlations"], KERNELS, KERNEL_LABELS, run.summaries["correlation_step"])
        out += C.linearised_claim(t["linearised"])
    if "scope_density" in t:
        out += C.scope_claim(t["scope_density"])
    if "kernels" in t:
        out += C.variance_kernel_claim(t["kernels"])
    if "pruned_kernels_fit" in t:
        out += C.pruned_kernel_claims(t["pruned_kernels_fit"])
    if "limit_slope" in t:
        out += C.limit_graphon_claims(t["limit_slope"], t.get("limit_input", []), t.get("limit_paths", []),
                                      t.get("limit_training", []))
    return out


# ------------------------------------------------------------------- report
def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _md_table(rows: list[dict], cols: list[str]) -> str:
    if not rows:
        return "(no rows)\n"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _kernel_summary(rows: list[dict]) -> list[dict]:
    from ._tables import group_mean

    out = []
    keys = sorted({(r["kernel"], r["method"], r["sparsity"]) for r in rows},
                  key=lambda k: (KERNELS.index(k[0]), k[1], k[2]))
    stats = {m: group_mean(rows, ("kernel", "method", "sparsity"), m) for m in (*METRICS, "rel_dist_to_a")}
    for k in keys:
        row = {"kernel": k[0], "method": k[1], "sparsity": k[2]}
        for m, st in stats.items():
            v = st.get(k)
            row[m] = None if v is None else v[0]
        out.append(row)
    return out


def _training_summary(rows: list[dict], steps: list[int]) -> list[dict]:
    from ._tables import group_mean

    st = group_mean(rows, ("method", "sparsity", "step"), "loss")
    out = []
    for m, sp in sorted({(r["method"], r["sparsity"]) for r in rows}):
        row = {"method": m, "sparsity": sp}
        for s in steps:
            v = st.get((m, sp, s))
            row[f"loss@{s}"] = None if v is None else f"{v[0]:.3f} +- {v[1]:.3f}"
        out.append(row)
    return out


def _write_report(run: _Run, claims: list[dict], finished: bool) -> Path:
    t, f = run.tables, run.figures
    rel = lambda p: str(Path(p).relative_to(run.out))  # noqa: E731
    L = [f"# gntk_fast report ({run.scale} scale, {run.data})", ""]
    L.append("Status: " + ("complete." if finished else "**interrupted or still running**: sections below are the "
                           "finished ones."))
    L.append("")
    L.append(f"Machine: {platform.machine()} {platform.system()}, Python {platform.python_version()}. "
             "Timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in run.timings.items()) + ".")
    for n in run.notes:
        L += ["", f"Note: {n}"]
    L += ["", "## Claims", "",
          "Each claim of the paper (and one of this package), the kernel or object it was measured on, and whether "
          "it held at this scale under the stated criterion.", ""]
    L.append(_md_table(claims, ["id", "claim", "source", "kernel", "held", "numbers", "criterion"]))
    if "convergence" in t:
        s = run.settings["convergence"]
        L += ["## 1. Graphon convergence (Fig. 1, 4-9)", "",
              f"Methods {', '.join(s['methods'])}; widths {s['widths']}; sparsity {s['sparsity']}; depth {s['depth']}; "
              f"{s['trials']} trials per width; K = {s['K']}; Synaptic-Flow's fc model and pruning semantics. "
              "Distances are to the widest width's averaged estimate.", ""]
        for k in ("convergence_estimates", "convergence_distance_global", "convergence_distance_layerwise",
                  "convergence_input_density", "scope_density"):
            if k in f:
                L += [f"![{k}]({rel(f[k])})", ""]
        L.append(_md_table([r for r in t["convergence"]], ["scope", "method", "width", "layer", "density", "hist",
                                                           "cut"]))
        L.append("Flatness at the widest width (first hidden-to-hidden layer):\n")
        L.append(_md_table(t.get("flatness", []), ["method", "width", "density", "block_sd", "null_sd"]))
    if "kernel_convergence" in t:
        L += ["## 2. Kernel checks", "", "Finite nets with masks sampled from the spec's non-constant graphons "
              "against the analytic Graphon NTK (relative Frobenius error, mean over seeds):", "",
              f"![kernel_convergence]({rel(f['kernel_convergence'])})", ""]
        L.append(_md_table(run.summaries["kernel_convergence"], ["trainable", "widths", "mean_error", "slope"]))
        L += ["Random pruning's scaling law (Appendix B), eNTK (same initial weights, mean over seeds) and the "
              "analytic kernel of the constant graphon:", "", f"![random_scaling]({rel(f['random_scaling'])})", ""]
        L.append(_md_table(t["random_scaling_fit"], ["convention", "kernel", "exponent", "predicted_exponent"]))
        pk = run.settings["pruned_kernels"]
        L += [f"Nets actually pruned (sparsity {pk['sparsity']}, {pk['depth']} hidden layers, {pk['seeds']} seeds): "
              "relative distance of the analytic kernels of their graphons, (c) mask graphons and (d) variance "
              "graphons, to their own eNTK (a), by width:", "", f"![pruned_kernels]({rel(f['pruned_kernels'])})", ""]
        L.append(_md_table(t["pruned_kernels_fit"], ["method", "kernel", "widths", "mean_dist", "slope"]))
    if "kernels" in t:
        cfg = run.summaries["study_config"]
        steps = [c for c in run.settings["checkpoints"] if c <= cfg["steps"]]
        L += ["## 3. Pruned networks: training and kernels (Fig. 2, 3, 10)", "",
              f"MLP with {cfg['depth']} hidden layers of {cfg['width']} (NTK parameterisation, no biases, ReLU), "
              f"pruned at initialisation ({cfg['scope']} scope) on 10 examples per class; trained with Adam "
              f"(lr {cfg['lr']}, batch {cfg['batch_size']}, {cfg['steps']} steps, cross-entropy) on {cfg['n_train']} "
              f"examples (loss scored on {min(cfg['n_eval'], cfg['n_train'])} of them); kernels on {cfg['n_kernel']} "
              f"of them, the linearised check on {cfg['n_linear']}, graphons with K = {cfg['K']} blocks per hidden layer. "
              "Seeds: " + str(run.settings["study"]["seeds"]) + ".", "",
              f"![training_curves]({rel(f['training_curves'])})", ""]
        L.append(_md_table(_training_summary(t["training"], steps), ["method", "sparsity",
                                                                     *[f"loss@{s}" for s in steps]]))
        L += ["The four kernels: " + "; ".join(f"{KERNEL_LABELS[k]}" for k in KERNELS) + ".", ""]
        for k in ("kernel_energy_top5", "kernel_alpha", "kernel_effective_rank", "kernel_alignment", "spectra"):
            if k in f:
                L += [f"![{k}]({rel(f[k])})", ""]
        L.append(_md_table(_kernel_summary(t["kernels"]), ["kernel", "method", "sparsity", *METRICS,
                                                           "rel_dist_to_a"]))
        L += ["### Metrics against training loss", "",
              "Spearman's rho (scipy) across the (method, sparsity) configurations (seed means); "
              "a positive rho means a larger metric goes with a higher (slower) loss.", "",
              f"![correlations]({rel(f['correlations'])})", ""]
        L.append(_md_table(t["correlations"], ["kernel", "metric", "step", "rho", "p_value", "n"]))
        if "linearised" in f:
            L += ["### Linearised prediction", "", f"![linearised]({rel(f['linearised'])})", ""]
    if "limit_slope" in t:
        cfg = run.summaries.get("limit_config", {})
        L += ["## 4. Predicted limit graphons (the follow-up paper)", "",
              f"Factorised Saliency Model predictions from one network at initialisation against SAS estimates of the "
              f"real masks; widths {cfg.get('widths')}, sparsity {cfg.get('sparsity')}, depth {cfg.get('depth')}, "
              f"K = {cfg.get('K')}, layerwise scope; data {cfg.get('data')}.", ""]
        for k in sorted(f):
            if k.startswith("limit_"):
                L += [f"![{k}]({rel(f[k])})", ""]
        L.append(_md_table(t["limit_slope"], ["method", "layer", "rms", "slope_rms", "cut", "slope_cut", "r2"]))
        if t.get("limit_input"):
            L.append(_md_table(t["limit_input"], ["method", "width", "trial", "corr", "jaccard", "pruned_pred",
                                                  "pruned_measured"]))
        if t.get("limit_paths"):
            L.append(_md_table(t["limit_paths"], ["method", "width", "trial", "err_joint", "err_per_mask"]))
        if t.get("limit_training"):
            L.append(_md_table(t["limit_training"], ["method", "seed", "final_eval_loss", "final_eval_accuracy"]))
    path = run.out / "report.md"
    write_text(path, "\n".join(L) + "\n")
    results = {"scale": run.scale, "data": run.data, "settings": run.settings, "timings": run.timings,
               "claims": claims, "finished": finished, "notes": run.notes,
               "figures": {k: rel(v) for k, v in f.items()}, "tables": sorted(t)}
    write_text(run.out / "results.json", json.dumps(_jsonable(results), indent=1, allow_nan=False) + "\n")
    write_table(claims, run.out / "tables" / "claims")
    return path


def run_report(out: str | Path, *, scale: str = "small", data: str | None = None, data_dir=None,
               progress: bool | None = None, settings: dict | None = None) -> ReportResult:
    """Run every experiment at ``scale`` and write ``out/report.md`` (see module docstring).

    Parameters
    ----------
    out : output directory (created; reruns with the same settings resume).
    scale : "small" (default; digits, minutes) or "paper" (the paper's sizes).
    data : "digits" or "mnist" (default: the scale's).
    data_dir : MNIST directory (default ``$GNTK_MNIST_DIR``).
    progress : tqdm bars (default on).
    settings : override the scale's settings (a dict shaped like ``SCALES[scale]``).

    Returns
    -------
    ReportResult
    """
    scale = check_choice("scale", scale, tuple(SCALES))
    base = json.loads(json.dumps(SCALES[scale]))
    if settings is not None:
        if not isinstance(settings, dict) or set(settings) - set(base):
            raise ValueError(f"settings must be a dict with keys among {sorted(base)}")
        base.update(settings)
    data = check_choice("data", base["data"] if data is None else data, ("digits", "mnist"))
    base["data"] = data
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(out, scale, data, data_dir, progress, base)
    claims: list[dict] = []
    for section in (_convergence, _kernel_checks, _study, _limit_graphons):
        section(run)
        claims = _claims(run)
        _write_report(run, claims, finished=False)
    path = _write_report(run, claims, finished=True)
    return ReportResult(out, path, claims, sorted(str(p) for p in run.figures.values()), dict(run.timings))
