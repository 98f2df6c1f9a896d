"""The paper's claims, each tested on the report's tables: held or not, with numbers.

Every function returns claim rows ``{id, claim, source, kernel, held, numbers,
criterion}``; ``held`` is True, False or None (not measurable at this scale),
``numbers`` a short human-readable string with the measured values, and
``criterion`` the rule that decided. The rules are fixed before the numbers
are seen and use the measured spread (seeds, trials) where there is one.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from ._tables import group_mean, group_series, spearman

__all__ = [
    "graphon_convergence_claims", "kernel_convergence_claim", "random_scaling_claims", "energy_claims",
    "correlation_rows", "correlation_claims", "linearised_claim", "scope_claim", "variance_kernel_claim",
    "pruned_kernel_claims", "limit_graphon_claims",
]


def _row(cid, claim, source, kernel, held, numbers, criterion):
    return {"id": cid, "claim": claim, "source": source, "kernel": kernel, "held": held, "numbers": numbers,
            "criterion": criterion}


def graphon_convergence_claims(conv_rows: Sequence[dict], flat_rows: Sequence[dict]) -> list[dict]:
    """C1: histogram distances to the widest width fall monotonically with width
    (global scope, every method and hidden layer). C2: random pruning's graphon is
    flat: the spread of its block values at the widest width is within 1.5 x the
    spread of a constant graphon's estimate (simulated at the same size), while
    the data-driven methods' is not."""
    out = []
    sel = [r for r in conv_rows if r["scope"] == "global"]
    methods = sorted({r["method"] for r in sel})
    parts, ok, measurable = [], True, False
    for m in methods:
        for layer in sorted({r["layer"] for r in sel if r["method"] == m}):
            pts = sorted((r["width"], r["hist"]) for r in sel if r["method"] == m and r["layer"] == layer)
            d = [p[1] for p in pts[:-1]]  # the widest width is the reference (distance 0)
            mono = all(a > b for a, b in zip(d, d[1:]))
            measurable |= len(d) >= 2
            ok &= mono
            parts.append(f"{m} L{layer}: " + " > ".join(f"{v:.3g}" for v in d) + ("" if mono else " (not monotone)"))
    out.append(_row("C1", "SAS estimates of the masks converge as width grows (graphon limit)", "Sec. 4, Fig. 1",
                    "masks (SAS)", ok if measurable else None, "; ".join(parts),
                    "histogram distance to the widest width's estimate strictly decreasing over the other widths"))
    if flat_rows:
        parts, held = [], True
        for r in flat_rows:
            parts.append(f"{r['method']}: block sd {r['block_sd']:.3g} (constant graphon's {r['null_sd']:.3g})")
            if r["method"] == "random":
                held &= r["block_sd"] <= r["flat_bound"]
            else:
                held &= r["block_sd"] > r["flat_bound"]
        out.append(_row("C2", "random pruning converges to a constant graphon; SNIP/GraSP/SynFlow do not",
                        "Sec. 4, Fig. 1", "masks (SAS)", held, "; ".join(parts),
                        "sd of the widest width's block values <= 1.5 x that of the same SAS of masks sampled "
                        "from the constant graphon at the same size and trials (random), > it (data-driven)"))
    return out


def kernel_convergence_claim(summaries: Sequence[dict]) -> list[dict]:
    """C3: the eNTK of graphon-sampled nets converges to the analytic kernel at n^-1/2."""
    out = []
    for s in summaries:
        slope = s["slope"]
        held = None if slope is None else bool(-0.65 <= slope <= -0.35)
        nums = ", ".join(f"n={w}: {e:.3g}" for w, e in zip(s["widths"], s["mean_error"]))
        out.append(_row("C3", "finite nets with graphon-sampled masks converge to the analytic Graphon NTK like n^-1/2",
                        "Thm. 1, spec fact 3", f'eNTK vs Graphon NTK (trainable="{s["trainable"]}")', held,
                        f"{nums}; slope {slope:.3f}" if slope is not None else nums,
                        "log-log slope of the mean relative error in [-0.65, -0.35]"))
    return out


def random_scaling_claims(summary: Sequence[dict]) -> list[dict]:
    """C4: random pruning at density c scales the NTK by c^(L+1) (mask) / c^L (all)."""
    out = []
    for s in summary:
        e, p = s["exponent"], s["predicted_exponent"]
        held = None if e is None else bool(abs(e - p) <= 0.05 * p)
        out.append(_row("C4", f"random pruning scales the NTK by c^{p} (trainable=\"{s['convention']}\")",
                        "App. B", s["kernel"], held, f"fitted exponent {e:.3f} vs {p}" if e is not None else "n/a",
                        "fitted exponent within 5% of the predicted one"))
    return out


def energy_claims(kernel_rows: Sequence[dict], kernels: Sequence[str], labels: dict) -> list[dict]:
    """C5: SNIP and SynFlow concentrate kernel energy in the top-5 eigenvalues as
    sparsity grows, measured on each kernel: the top-5 energy at the highest
    sparsity exceeds that at the lowest by more than twice the seeds' spread."""
    out = []
    stats = group_mean(kernel_rows, ("kernel", "method", "sparsity"), "energy_top5")
    for kern in kernels:
        parts, verdicts = [], []
        for m in ("snip", "synflow"):
            series = group_series(stats, kern, m)
            if series is None or len(series[0]) < 2:
                continue
            (s0, s1), (e0, e1), (sd0, sd1) = (a[[0, -1]].tolist() for a in series)
            spread = max(sd0, sd1)
            verdicts.append(bool(e1 - e0 > 2 * spread))
            parts.append(f"{m}: {e0:.3f}+-{sd0:.3f} (s={s0:g}) -> {e1:.3f}+-{sd1:.3f} (s={s1:g})")
        held = None if not verdicts else all(verdicts)
        out.append(_row("C5", "SNIP and SynFlow concentrate kernel energy in the top eigenvalues as sparsity grows",
                        "Sec. 6, Fig. 3", labels.get(kern, kern), held, "; ".join(parts),
                        "top-5 energy at the highest sparsity - at the lowest > 2 x the larger seed sd, for both"))
    return out


def correlation_rows(kernel_rows: Sequence[dict], train_rows: Sequence[dict], kernels: Sequence[str],
                     metrics: Sequence[str], steps: Sequence[int]) -> list[dict]:
    """Spearman's rho (scipy) of each kernel metric against the training loss at
    each step, across the (method, sparsity) configurations (means over seeds)."""
    loss = group_mean(train_rows, ("method", "sparsity", "step"), "loss")
    rows = []
    for kern in kernels:
        for metric in metrics:
            vals = group_mean([r for r in kernel_rows if r["kernel"] == kern], ("method", "sparsity"), metric)
            for step in steps:
                keys = [k for k in vals if (k[0], k[1], step) in loss]
                rho, p, n = spearman([vals[k][0] for k in keys], [loss[(k[0], k[1], step)][0] for k in keys])
                rows.append({"kernel": kern, "metric": metric, "step": int(step), "rho": rho, "p_value": p, "n": n})
    return rows


def correlation_claims(corr: Sequence[dict], kernels: Sequence[str], labels: dict, step: int) -> list[dict]:
    """C6: the kernel's spectral metrics predict how fast the pruned nets train: per
    kernel, which metrics correlate with the loss at ``step`` with p < 0.05
    (Bonferroni over the metrics of the kernel: p < 0.05 / #metrics)."""
    out = []
    for kern in kernels:
        sel = [r for r in corr if r["kernel"] == kern and r["step"] == step]
        if not sel:
            continue
        m = len(sel)
        sig = [r for r in sel if r["p_value"] is not None and r["p_value"] < 0.05 / m]
        nums = "; ".join(f"{r['metric']} rho={r['rho']:+.2f} (p={r['p_value']:.2g})" if r["rho"] is not None
                         else f"{r['metric']} n/a" for r in sel)
        held = None if all(r["rho"] is None for r in sel) else bool(sig)
        out.append(_row("C6", f"spectral metrics predict the training loss (step {step})", "Sec. 6",
                        labels.get(kern, kern), held, nums + f"; n={sel[0]['n']} configurations",
                        f"at least one metric with Spearman p < 0.05/{m} (Bonferroni)"))
    return out


def linearised_claim(linear_rows: Sequence[dict]) -> list[dict]:
    """C7: the linearised (eNTK) loss prediction follows measured full-batch GD:
    relative error of the final loss per case; diverged runs counted apart."""
    if not linear_rows:
        return []
    cases = sorted({(r["method"], r["sparsity"]) for r in linear_rows})
    parts, errs, div = [], [], 0
    for m, s in cases:
        sel = sorted((r for r in linear_rows if r["method"] == m and r["sparsity"] == s), key=lambda r: r["step"])
        last = sel[-1]
        if last.get("diverged") or last["measured"] is None:
            div += 1
            parts.append(f"{m} s={s:g}: diverged")
            continue
        e = abs(last["predicted"] - last["measured"]) / max(last["measured"], 1e-300)
        errs.append(e)
        parts.append(f"{m} s={s:g}: {e:.2f}")
    held = None if not errs and not div else bool(div == 0 and max(errs) <= 0.25)
    return [_row("C7", "the linearised model (the eNTK at init) predicts the training loss", "Sec. 6 (method)",
                 "(a) eNTK, pruned net", held, f"final-step relative error: {'; '.join(parts)}",
                 "every case converges and its final loss is within 25% of the prediction")]


def scope_claim(density_rows: Sequence[dict]) -> list[dict]:
    """C8: the per-layer density stays fixed as width grows (the hypothesis assumes
    it): the largest change of a layer's density across widths, per scope."""
    out = []
    for scope in ("global", "layerwise"):
        sel = [r for r in density_rows if r["scope"] == scope]
        if not sel:
            continue
        worst, parts = 0.0, []
        for m in sorted({r["method"] for r in sel}):
            for layer in sorted({r["layer"] for r in sel if r["method"] == m}):
                pts = sorted((r["width"], r["density"]) for r in sel if r["method"] == m and r["layer"] == layer)
                change = max(p[1] for p in pts) - min(p[1] for p in pts)
                worst = max(worst, change)
                parts.append(f"{m} L{layer}: {pts[0][1]:.3f} -> {pts[-1][1]:.3f}")
        out.append(_row("C8", "each layer's density is fixed as width grows (assumed by the hypothesis)",
                        "Sec. 3 (assumption)", f"masks, {scope} scope", bool(worst <= 0.02),
                        f"largest change {worst:.3f}; " + "; ".join(parts),
                        "every layer's density changes by <= 0.02 across widths"))
    return out


def variance_kernel_claim(kernel_rows: Sequence[dict]) -> list[dict]:
    """C9 (this package's extension): the analytic kernel with variance graphons (d)
    is closer to the pruned net's eNTK (a) than the mask-graphon kernel (c)."""
    dc = group_mean(kernel_rows, ("kernel",), "rel_dist_to_a")
    c, d = dc.get(("gntk_mask",)), dc.get(("gntk_variance",))
    if not c or not d:
        return []
    per = group_mean([r for r in kernel_rows if r["method"] != "dense"], ("kernel", "method"), "rel_dist_to_a")
    parts = [f"{m}: (c) {per[('gntk_mask', m)][0]:.3f}, (d) {per[('gntk_variance', m)][0]:.3f}"
             for m in sorted({k[1] for k in per}) if ("gntk_mask", m) in per and ("gntk_variance", m) in per]
    return [_row("C9", "variance graphons E[w^2 m] carry what the pruner kept: kernel (d) is closer to (a) than (c)",
                 "this package (extends Sec. 6)", "(c), (d) vs (a)", bool(d[0] < c[0]),
                 f"mean relative distance to (a): (c) {c[0]:.3f}, (d) {d[0]:.3f}; " + "; ".join(parts),
                 "mean relative Frobenius distance to (a) smaller for (d)")]


def pruned_kernel_claims(fit: Sequence[dict]) -> list[dict]:
    """C10 (this package's extension): for nets actually pruned by each method, the
    variance-graphon kernel (d) approaches their eNTK (a) as width grows: the
    distance falls (log-log slope <= -0.25) to below 0.25 at the widest width."""
    out = []
    for r in fit:
        if r["kernel"] != "gntk_variance":
            continue
        slope, last = r["slope"], r["mean_dist"][-1]
        held = None if slope is None else bool(slope <= -0.25 and last < 0.25)
        nums = ", ".join(f"n={w}: {d:.3f}" for w, d in zip(r["widths"], r["mean_dist"]))
        out.append(_row("C10", f"{r['method']}: the variance-graphon kernel (d) converges to the pruned net's eNTK (a)",
                        "this package", "(d) vs (a)", held,
                        f"{nums}; slope {slope:.2f}" if slope is not None else nums,
                        "log-log slope of the mean distance <= -0.25 and distance < 0.25 at the widest width"))
    return out


def limit_graphon_claims(slope_rows: Sequence[dict], input_rows: Sequence[dict], path_rows: Sequence[dict],
                         training_rows: Sequence[dict]) -> list[dict]:
    """The follow-up paper's claims on the limit-graphon experiment's tables.

    C11 per method: the distance between the predicted limit graphon and the SAS
    estimate of real masks falls with width (log-log slopes of the RMS and of
    the cut norm both <= -0.25).
    C12 per data-driven method (SNIP, GraSP: the ones whose limit selects
    features; Random, Magnitude and SynFlow keep every coordinate at the same
    density in the limit, so a correlation of their maps measures noise): the
    input layer's predicted per-coordinate kept density correlates with the
    measured one (Pearson r >= 0.8) and the pruned-away coordinates agree
    (Jaccard >= 0.5), at the widest width.
    C13: the path densities of the joint estimate match the finite path counts
    better as width grows (relative error at the widest width < at the narrowest).
    C14: masks pruned from the designed graphon train to a lower final loss than
    Random, SNIP and SynFlow at the same density.
    """
    out = []
    for r in slope_rows:
        slope, cslope = r.get("slope_rms"), r.get("slope_cut")
        rms = r.get("rms")
        rms = json.loads(rms) if isinstance(rms, str) else rms
        ok = slope is not None and np.isfinite(slope) and cslope is not None and np.isfinite(cslope)
        held = bool(slope <= -0.25 and cslope <= -0.25) if ok else None
        nums = (f"RMS by width {[round(v, 4) for v in rms]}, slope {slope:.2f}; cut-norm slope {cslope:.2f}"
                if ok else "n/a")
        r2 = r.get("r2")
        nums += f", fit R^2 {r2:.2f}" if isinstance(r2, float) and np.isfinite(r2) else ", fit R^2 n/a"
        out.append(_row("C11", f"{r['method']} (layer {r['layer']}): masks converge to the predicted limit graphon",
                        "follow-up, Thm. (FSM)", "masks (SAS) vs prediction", held, nums,
                        "log-log slopes of the prediction-to-SAS RMS distance AND of its cut norm (lower bound) "
                        "both <= -0.25 (graphon convergence is convergence in cut norm)"))
    if input_rows:
        widest = max(r["width"] for r in input_rows)
        for m in sorted({r["method"] for r in input_rows}):
            if not m.startswith(("snip", "grasp")):
                continue
            cs = [r["corr"] for r in input_rows if r["method"] == m and r["width"] == widest and r["corr"] is not None]
            if not cs:
                continue
            c = float(np.mean(cs))
            j = float(np.mean([r["jaccard"] for r in input_rows if r["method"] == m and r["width"] == widest]))
            out.append(_row("C12", f"{m}: the input layer's feature selection is predicted", "follow-up, Sec. 5",
                            "input-layer kept density", bool(c >= 0.8 and j >= 0.5),
                            f"Pearson r {c:.3f}, Jaccard of pruned-away sets {j:.2f} (width {widest})",
                            "Pearson r >= 0.8 of the per-coordinate densities AND Jaccard >= 0.5 of the "
                            "pruned-away coordinates (density < d/10), at the widest width"))
    if path_rows:
        ws = sorted({r["width"] for r in path_rows})
        def err(w):
            v = [r["err_joint"] for r in path_rows if r["width"] == w and r["err_joint"] is not None]
            return float(np.mean(v)) if v else None
        lo, hi = err(ws[0]), err(ws[-1])
        held = None if lo is None or hi is None else bool(hi < lo)
        out.append(_row("C13", "path densities of the layered graphon match finite path counts as width grows",
                        "follow-up, Sec. 3", "joint network graphon", held,
                        f"mean relative error {lo:.3g} (n={ws[0]}) -> {hi:.3g} (n={ws[-1]})" if held is not None
                        else "n/a", "mean relative error smaller at the widest width than at the narrowest"))
    if training_rows:
        by = {}
        for r in training_rows:
            by.setdefault(r["method"], []).append(r["final_eval_loss"])
        des = [k for k in by if k.startswith("designed") and "shuffled" not in k]
        others = [k for k in by if not k.startswith("designed")]
        if des and others:
            d = float(np.mean(by[des[0]]))
            best = min(others, key=lambda k: np.mean(by[k]))
            out.append(_row("C14", "a graphon designed through the analytic kernel prunes better than Random/SNIP/SynFlow",
                            "follow-up, future work", "training (final eval loss)", bool(d < np.mean(by[best])),
                            "; ".join(f"{k}: {np.mean(v):.3f}" for k, v in by.items()),
                            "designed graphon's final eval loss below every baseline's"))
    return out
