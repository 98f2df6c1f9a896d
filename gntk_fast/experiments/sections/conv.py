"""Section 6: convolutional nets (channel graphons of pruned conv masks, the Graphon CNTK, random pruning's law)."""
from __future__ import annotations

import time

from ..metrics import (
    EXPONENT,
    MEAN_REL_DIST,
    MEAN_RMS,
    PREDICTED_EXPONENT,
    SLOPE_REL_DIST,
    SLOPE_RMS,
    TRAINABLE,
)
from ._base import Section, View, fmt, md_table


def _run(run) -> None:
    from ..conv_checks import (
        conv_graphon_convergence,
        conv_kernel_convergence,
        conv_random_scaling,
        plot_conv_convergence,
        plot_conv_kernel_convergence,
        plot_conv_random_scaling,
    )

    t0 = time.perf_counter()
    s = run.settings["conv"]
    g, k, r = s["convergence"], s["kernel_convergence"], s["random_scaling"]
    common = dict(data=run.data, data_dir=run.data_dir, progress=run.progress)
    crows = run.cached("conv", "conv_part_convergence", lambda: conv_graphon_convergence(
        g["methods"], g["channels"], depth=g["depth"], sparsity=g["sparsity"], trials=g["trials"], K=g["K"],
        **common))
    krows = run.cached("conv", "conv_part_kernel_convergence", lambda: conv_kernel_convergence(
        k["channels"], k["seeds"], depth=k["depth"], K=k["K"], readouts=k["readouts"], n_images=k["n_images"],
        gap_images=k["gap_images"], input_masks=k.get("input_masks", "mean"), **common))
    srows, sfit = run.cached("conv", "conv_part_random_scaling", lambda: list(conv_random_scaling(
        r["densities"], channels=r["channels"], depth=r["depth"], seeds=r["seeds"], n_images=r["n_images"],
        **common)))
    figs = {n: run.fig(n) for n in ("conv_convergence", "conv_kernel_convergence", "conv_random_scaling")}
    plot_conv_convergence(crows, path=figs["conv_convergence"])
    plot_conv_kernel_convergence(krows, path=figs["conv_kernel_convergence"])
    plot_conv_random_scaling(srows, r["depth"], path=figs["conv_random_scaling"])
    run.save_section("conv", {"conv_convergence": crows, "conv_kernel_convergence": krows,
                              "conv_random_scaling": srows, "conv_random_scaling_fit": sfit},
                     {}, figs, time.perf_counter() - t0)


#: how the kernel-convergence target treats the input layer (tables written before the setting existed: "mean")
_TARGET = {"bernoulli": 'input layer averaged over its sampled masks, input_masks="bernoulli": its fan-in of 9 taps '
                        "does not average them out",
           "mean": 'input layer carrying the graphon\'s mean, input_masks="mean"'}


def _render(v: View) -> list[str]:
    from ..claims.cv1_conv_graphon_convergence import summaries as conv_summaries
    from ..claims.cv2_conv_kernel_convergence import summaries as kernel_summaries

    t, f, s = v.tables, v.figures, v.settings["conv"]
    g, k, r = s["convergence"], s["kernel_convergence"], s["random_scaling"]
    L = ["## 7. Convolutional nets", "",
         f"ConvNets ({g['depth']} conv layers, 3 x 3 kernels, circular padding, GAP read-out) pruned at "
         f"initialisation (sparsity {g['sparsity']}, global scope, {g['trials']} trial(s)); pooled channel-SAS "
         f"estimate (K = {g['K']} blocks) of each hidden conv-to-conv layer, RMS distance to the widest channel "
         "count's estimate (mean over layers and trials):", "", f"![conv_convergence]({f['conv_convergence']})", ""]
    rows = [{**x, "channels": ", ".join(map(str, x["channels"])),
             MEAN_RMS: ", ".join(fmt(d) for d in x[MEAN_RMS])}
            for x in conv_summaries(t["conv_convergence"])]
    L.append(md_table(rows, ["method", "channels", "widest", MEAN_RMS, SLOPE_RMS]))
    L += [f"ConvNets ({k['depth']} conv layers) whose masks are sampled per tap from a constant graphon (0.5) and a "
          "non-constant one (conv layers 0.15 + 0.7 u v, read-out 0.3 + 0.6 v), against the analytic Graphon CNTK "
          f"({_TARGET[k.get('input_masks', 'mean')]}; K = {k['K']}): relative Frobenius error of the eNTK "
          f"(trainable=\"mask\", float64, {k['seeds']} seeds):",
          "", f"![conv_kernel_convergence]({f['conv_kernel_convergence']})", ""]
    rows = [{**x, "channels": ", ".join(map(str, x["channels"])),
             MEAN_REL_DIST: ", ".join(fmt(e) for e in x[MEAN_REL_DIST])} for x in kernel_summaries(t["conv_kernel_convergence"])]
    L.append(md_table(rows, ["graphon", "readout", "n_images", "channels", MEAN_REL_DIST, SLOPE_REL_DIST]))
    L += [f"Random pruning of a {r['channels']}-channel ConvNet ({r['depth']} conv layers, flatten read-out, "
          f"{r['n_images']} images, {r['seeds']} seeds, the same initial weights): kernel ratio to dense against "
          "density c, eNTK and the analytic Graphon CNTK of the constant graphon c:", "",
          f"![conv_random_scaling]({f['conv_random_scaling']})", ""]
    L.append(md_table(t["conv_random_scaling_fit"], [TRAINABLE, "kernel", EXPONENT, PREDICTED_EXPONENT]))
    L.append("The eNTK of a conv net is taken over its kept weights (trainable=\"mask\"); the \"all\" convention is "
             "checked on the analytic kernel only.\n")
    return L


def _deviations(v: View) -> list[str]:
    k = v.settings["conv"]["kernel_convergence"]
    out = ["Conv nets (section 7): the paper studies MLPs only; these are its questions asked of ConvNets, with "
           "one pruning sparsity and few trials/seeds."]
    if "gap" in k["readouts"]:
        out.append(f"Conv kernel convergence with the GAP read-out uses only {k['gap_images']} images (the GAP "
                   "Graphon CNTK costs every pixel pair).")
    else:
        out.append("Conv kernel convergence with the flatten read-out only: the GAP target with the input layer "
                   "averaged over its masks (input_masks=\"bernoulli\") keeps every pixel pair of every (node, mask) "
                   "pair, about 750 GiB per pair of 28 x 28 images; the GAP read-out is checked at small scale.")
    return out


SECTION = Section("conv", ("conv",), ("conv_convergence", "conv_kernel_convergence", "conv_random_scaling",
                                      "conv_random_scaling_fit"), _run, _render, _deviations)
