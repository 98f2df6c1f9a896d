"""Section 8: pruned conv nets trained, their four kernels and spectral metrics (section 3 for ConvNets)."""
from __future__ import annotations

import json
import time

from ._base import Section, View, md_table

TABLES = ("conv_study_kernels", "conv_study_training", "conv_study_correlations", "conv_study_density",
          "conv_study_generalisation")
_PLOTTED = (("energy_top5", "top-5 energy"), ("alpha", "decay exponent alpha"), ("effective_rank", "effective rank"),
            ("alignment", "kernel-target alignment"))


def _run(run) -> None:
    from ..claims.c06_spectral_correlation import correlation_step
    from ..conv_study import (KERNEL_LABELS, KERNELS, METRICS, ConvStudyConfig, images_of, plot_conv_kernel_metrics,
                              plot_conv_training, run_conv_study)
    from ..figures import plot_correlations
    from ..pruned_study import case_grid, correlation_rows, load_study_data
    from .study import held_out_count

    t0 = time.perf_counter()
    s = run.settings["conv_study"]
    cfg = ConvStudyConfig(**s["config"]).validated()
    data = images_of(load_study_data(run.data, n_train=cfg.n_train, n_kernel=cfg.n_kernel, data_dir=run.data_dir,
                                     n_test=cfg.n_test))
    notes = [data.note] if data.note else []
    def case_file(case):
        m, sp, seed = case
        return run.case_path("conv_study", f"conv_{m}_{sp:g}_{seed}")

    def on_case(case, res):
        blob = {"kernel_rows": res.kernel_rows, "train_rows": res.train_rows, "gen_rows": res.gen_rows,
                "layer_density": res.layer_density}
        run.save_case(case_file(case), blob)

    run_conv_study(s["methods"], s["sparsities"], s["seeds"], data, cfg, progress=run.progress, on_case=on_case,
                   skip=lambda case: case_file(case).exists())
    kernel_rows, train_rows, gen_rows, density_rows = [], [], [], []
    for case in case_grid(s["methods"], s["sparsities"], s["seeds"]):
        blob = json.loads(case_file(case).read_text())
        kernel_rows += blob["kernel_rows"]
        train_rows += blob["train_rows"]
        gen_rows += blob["gen_rows"]
        m, sp, seed = case
        density_rows += [{"method": m, "sparsity": sp, "seed": seed, "layer": li, "density": d}
                         for li, d in enumerate(blob["layer_density"])]
    steps = [c for c in s["checkpoints"] if c <= cfg.steps]
    corr = correlation_rows(kernel_rows, train_rows, KERNELS, METRICS, steps)
    figs = {n: run.fig(n) for n in ("conv_study_training", "conv_study_metrics", "conv_study_correlations")}
    plot_conv_training(train_rows, path=figs["conv_study_training"])
    plot_conv_kernel_metrics(kernel_rows, _PLOTTED, path=figs["conv_study_metrics"])
    plot_correlations(corr, list(KERNELS), list(METRICS), correlation_step(corr) or cfg.steps, KERNEL_LABELS,
                      path=figs["conv_study_correlations"])
    run.save_section("conv_study", {"conv_study_kernels": kernel_rows, "conv_study_training": train_rows,
                                    "conv_study_correlations": corr, "conv_study_density": density_rows,
                                    "conv_study_generalisation": gen_rows},
                     {"conv_study_config": {**cfg.as_dict(), "held_out": held_out_count(data)}}, figs,
                     time.perf_counter() - t0, notes)


def _render(v: View) -> list[str]:
    from .._tables import group_mean
    from ..conv_study import KERNEL_LABELS, KERNELS, METRICS

    t, f = v.tables, v.figures
    s = v.settings["conv_study"]
    cfg = v.summaries["conv_study_config"]
    steps = [c for c in s["checkpoints"] if c <= cfg["steps"]]
    L = ["## 8. Pruned conv nets: four kernels", "",
         f"ConvNets with {cfg['depth']} conv layers of {cfg['channels']} channels ({cfg['kernel_size']} x "
         f"{cfg['kernel_size']} kernels, {cfg['padding']} padding, {cfg['readout']} read-out, NTK parameterisation, no "
         f"biases, ReLU), pruned at initialisation ({cfg['scope']} scope, methods {', '.join(s['methods'])}, "
         f"sparsities {', '.join(f'{x:g}' for x in s['sparsities'])}) on 10 images per class; trained with Adam (lr "
         f"{cfg['lr']}, batch {cfg['batch_size']}, {cfg['steps']} steps, cross-entropy) on {cfg['n_train']} images "
         f"(loss scored on {min(cfg['n_eval'], cfg['n_train'])} of them); kernels on {cfg['n_kernel']} of them; "
         f"channel graphons with K = {cfg['K']} blocks per conv layer (taps pooled). Seeds: {s['seeds']}; +- is the "
         "sample sd over seeds.", "",
         "The four kernels: " + "; ".join(KERNEL_LABELS[k] for k in KERNELS) + ". (c) and (d) are "
         "`graphon_cntk` of each net's own network channel graphon (taps pooled); (d) adds its variance graphons "
         "E[w^2 m]. With one input channel and ReLU, (c) is an exact multiple of the dense CNTK for every shared "
         "channel graphon (docs/graphon-cntk.md, section 3): its scale-free metrics are the dense kernel's in every "
         "case, equal up to rounding, so its rank correlations below rank rounding noise.", "",
         f"![conv_study_training]({f['conv_study_training']})", ""]
    st = group_mean(t["conv_study_training"], ("method", "sparsity", "step"), "loss")
    rows = []
    for m, sp in sorted({(r["method"], r["sparsity"]) for r in t["conv_study_training"]}):
        row = {"method": m, "sparsity": sp}
        for step in steps:
            val = st.get((m, sp, step))
            row[f"loss@{step}"] = None if val is None else f"{val[0]:.3f} +- {val[1]:.3f}"
        rows.append(row)
    L.append(md_table(rows, ["method", "sparsity", *[f"loss@{x}" for x in steps]]))
    L += [f"![conv_study_metrics]({f['conv_study_metrics']})", ""]
    cols = [*METRICS, "rel_dist_to_a", "scale_free_dist_to_a"]
    stats = {c: group_mean(t["conv_study_kernels"], ("kernel", "method", "sparsity"), c) for c in cols}
    keys = sorted(stats["alpha"], key=lambda k: (KERNELS.index(k[0]), k[1], k[2]))
    summ = [{"kernel": k[0], "method": k[1], "sparsity": k[2],
             **{c: (stats[c][k][0] if k in stats[c] else None) for c in cols}} for k in keys]
    L.append(md_table(summ, ["kernel", "method", "sparsity", *cols]))
    L += ["Spearman's rho (scipy) of each kernel metric against the training loss across the (method, sparsity) "
          "configurations (seed means); a positive rho means a larger metric goes with a higher (slower) loss.", "",
          f"![conv_study_correlations]({f['conv_study_correlations']})", ""]
    L.append(md_table(t["conv_study_correlations"], ["kernel", "metric", "step", "rho", "p_value", "n"]))
    if t.get("conv_study_generalisation"):
        from .study import generalisation_lines

        L += generalisation_lines(t["conv_study_generalisation"], t["conv_study_kernels"], KERNELS, KERNEL_LABELS,
                                  "CV9, CV10")
    return L


def _deviations(v: View) -> list[str]:
    cfg = v.summaries["conv_study_config"]
    out = [f"Pruned conv nets (section 8): the paper studies MLPs only; its section-6 questions asked of ConvNets "
           f"({cfg['channels']} channels, {cfg['readout']} read-out, {cfg['steps']} training steps, Adam lr "
           f"{cfg['lr']}, kernels on {cfg['n_kernel']} images)."]
    if cfg["readout"] == "flatten":
        out.append("Section 8 uses the flatten read-out: global average pooling of the small feature maps of "
                   "standardised digits gives nearly image-independent features (a nearly rank-one kernel) that "
                   "short training does not move.")
    out.append("Of the MLP study's claims, section 8 tests C5, C6, C6b, C9, C9b, C16 and C17 on conv nets (CV4-CV10). "
               "Not tested there: C7 (section 8 runs no linearised gradient descent), C10 (it prunes one channel "
               "count; section 7 measures kernel convergence with channels) and C18 (a conv layer's weights are "
               "shared by every pixel, so each pixel's path density is the same away from the border and has "
               "nothing to follow the pixels' class relevance with).")
    if v.tables.get("conv_study_generalisation"):
        from .study import held_out_note

        out.append(held_out_note(cfg, "CV9, CV10"))
    return out


SECTION = Section("conv_study", ("conv_study",), TABLES, _run, _render, _deviations)
