"""Every claim's rule on small hand-made tables: one the rule passes, one it fails
(and where the rule has a 'not measurable' branch, one that lands there)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gntk_fast.experiments.claims import CLAIMS, RULE_CHANGES, evaluate_claims, get_claim
from gntk_fast.spectral import loglog_slope

PAPER = Path(__file__).resolve().parents[1] / "examples" / "results" / "report_paper_mnist"


def held(cid, tables, meta=None):
    rows = get_claim(cid)(tables, meta or {})
    assert rows, cid
    return [r["held"] for r in rows]


def test_registry():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids)) and ids[0] == "C1"
    for c in CLAIMS:
        assert c.reads and c.rule and c.hypothesis
    with pytest.raises(ValueError, match="cid"):
        get_claim("C99")
    assert all(r["date"] and r["reason"] for r in RULE_CHANGES)
    assert evaluate_claims({}) == []


def test_c1_convergence():
    rows = [{"scope": "global", "method": "random", "width": w, "layer": 1, "hist": h}
            for w, h in ((10, 0.5), (20, 0.3), (40, 0.0))]
    assert held("C1", {"convergence": rows}) == [True]
    rows[1]["hist"] = 0.6
    assert held("C1", {"convergence": rows}) == [False]


def test_c2_flatness():
    def t(rand_sd, snip_sd, null=0.01):
        return {"flatness": [{"method": "random", "block_sd": rand_sd, "null_sd": null, "flat_bound": 1.5 * null},
                             {"method": "snip", "block_sd": snip_sd, "null_sd": null, "flat_bound": 1.5 * null}]}

    assert held("C2", t(0.012, 0.1)) == [True]
    assert held("C2", t(0.02, 0.1)) == [False]  # random's spread above the flat bound
    assert held("C2", t(0.012, 0.013)) == [False]  # SNIP's spread not above it
    old = {"flatness": [{"method": "random", "block_sd": 0.01, "flat_bound": 0.009}]}  # the earlier rule's table
    assert held("C2", old) == [None]


def test_c3_kernel_convergence():
    def t(widths, slope):
        return {"kernel_convergence": [{"width": w, "seed": s, "trainable": "mask", "rel_dist": w ** slope}
                                       for w in widths for s in range(2)]}

    assert held("C3", t([64, 128, 256, 512], -0.5)) == [True]
    assert held("C3", t([64, 128, 256, 512], -0.2)) == [False]
    assert held("C3", t([64, 256, 1024], -0.5)) == [None]  # three widths are too few


def test_c4_random_scaling():
    t = {"random_scaling_fit": [{"trainable": "mask", "kernel": "eNTK", "exponent": 3.9, "predicted_exponent": 4},
                                {"trainable": "all", "kernel": "eNTK", "exponent": 2.5, "predicted_exponent": 3}]}
    assert held("C4", t) == [True, False]


def _energy(rise, sd, seeds):
    rows = []
    for m in ("snip", "synflow"):
        for seed in range(seeds):
            e = sd * (seed - (seeds - 1) / 2) / max(1.0, np.std(np.arange(seeds) - (seeds - 1) / 2, ddof=1))
            rows.append({"kernel": "entk_pruned", "method": m, "sparsity": 0.5, "seed": seed, "energy_top5": 0.5 + e})
            rows.append({"kernel": "entk_pruned", "method": m, "sparsity": 0.9, "seed": seed,
                         "energy_top5": 0.5 + rise + e})
    return {"kernels": rows}


def test_c5_energy_uses_sample_sd_and_enough_seeds():
    assert held("C5", _energy(0.2, 0.01, 5)) == [True]
    assert held("C5", _energy(0.2, 0.2, 5)) == [False]  # within 2 sample sd
    assert held("C5", _energy(-0.1, 0.0, 5)) == [False]  # falls
    assert held("C5", _energy(0.2, 0.01, 3)) == [None]  # three seeds are too few
    # the sd is the sample sd (ddof 1): values 0 and 1 have sd 0.707, not 0.5
    rows = []
    for m in ("snip", "synflow"):
        for seed, e in enumerate((0.0, 1.0, 0.0, 1.0, 0.5)):
            rows.append({"kernel": "k", "method": m, "sparsity": 0.5, "seed": seed, "energy_top5": e})
            rows.append({"kernel": "k", "method": m, "sparsity": 0.9, "seed": seed, "energy_top5": e + 0.95})
    sd1 = np.std([0.0, 1.0, 0.0, 1.0, 0.5], ddof=1)
    assert 0.95 < 2 * sd1  # fails with ddof 1 (it would pass with ddof 0: 2 x 0.447 < 0.95)
    assert get_claim("C5")({"kernels": [dict(r, kernel="entk_pruned") for r in rows]}, {})[0]["held"] is False


def _corr(rho, p, metric="energy_top5"):
    return {"correlations": [{"kernel": "entk_pruned", "metric": metric, "step": 100, "rho": rho, "p_value": p,
                              "n": 20}]}


def test_c6_sign():
    assert held("C6", _corr(-0.7, 0.001)) == [True]  # more energy, lower loss: the paper's reading
    assert held("C6", _corr(+0.7, 0.001)) == [False]  # significant against the expected sign
    assert held("C6", _corr(-0.3, 0.2)) == [False]  # not significant
    assert held("C6", _corr(+0.7, 0.001, metric="effective_rank")) == [True]  # larger rank, slower


def _vs_random(agree, n_methods=3, sparsities=(0.5, 0.8, 0.9)):
    kr, tr = [], []
    for s in sparsities:
        kr.append({"kernel": "entk_pruned", "method": "random", "sparsity": s, "seed": 0, "energy_top5": 0.5})
        tr.append({"method": "random", "sparsity": s, "seed": 0, "step": 100, "loss": 1.0})
        for i in range(n_methods):
            kr.append({"kernel": "entk_pruned", "method": f"m{i}", "sparsity": s, "seed": 0, "energy_top5": 0.6})
            tr.append({"method": f"m{i}", "sparsity": s, "seed": 0, "step": 100, "loss": 0.8 if agree else 1.2})
    return {"kernels": kr, "training": tr}


def test_c6b_against_random():
    assert held("C6b", _vs_random(True)) == [True]
    assert held("C6b", _vs_random(False)) == [False]
    assert held("C6b", _vs_random(True, n_methods=1, sparsities=(0.5, 0.9))) == [None]  # two pairs are too few


def test_c7_linearised():
    def t(pred):
        return {"linearised": [{"method": "snip", "sparsity": 0.5, "step": 10, "measured_loss": 1.0, "predicted_loss": pred,
                                "diverged": False}]}

    assert held("C7", t(1.1)) == [True]
    assert held("C7", t(2.0)) == [False]


def test_c8_density():
    dens = [{"scope": "global", "method": "synflow", "layer": 1, "width": w, "density": d}
            for w, d in ((10, 0.5), (40, 0.3))]
    assert held("C8", {"scope_density": dens}) == [False]
    dens[1]["density"] = 0.49
    assert held("C8", {"scope_density": dens}) == [True]


def _kernels(c, d, c_free=None, d_free=None, cases=6):
    rows = []
    for seed in range(cases):
        key = {"method": "snip", "sparsity": 0.8, "seed": seed}
        jitter = 0.001 * seed
        rows.append({**key, "kernel": "entk_pruned", "rel_dist_to_a": 0.0, "trace": 10.0, "scale_free_dist_to_a": 0.0})
        rows.append({**key, "kernel": "gntk_mask", "rel_dist_to_a": c, "trace": 5.0,
                     "scale_free_dist_to_a": None if c_free is None else c_free + jitter})
        rows.append({**key, "kernel": "gntk_variance", "rel_dist_to_a": d, "trace": 9.0,
                     "scale_free_dist_to_a": None if d_free is None else d_free - jitter})
    return {"kernels": rows}


def test_c9_and_c9b():
    assert held("C9", _kernels(0.8, 0.3)) == [True]
    assert held("C9", _kernels(0.3, 0.8)) == [False]
    assert "trace/trace(a) (c) 0.5, (d) 0.9" in get_claim("C9")(_kernels(0.8, 0.3), {})[0]["numbers"]
    assert held("C9b", _kernels(0.8, 0.3, 0.5, 0.2)) == [True]
    assert held("C9b", _kernels(0.8, 0.3, 0.2, 0.5)) == [False]  # (d)'s gain was scale only
    old = _kernels(0.8, 0.3)
    for r in old["kernels"]:
        del r["scale_free_dist_to_a"]
    assert held("C9b", old) == [None]  # the column was not measured: needs a rerun


def test_c10_pruned_kernels():
    def t(dist):
        return {"pruned_kernels_fit": [{"method": "random", "kernel": "gntk_variance", "widths": [64, 128, 256],
                                        "mean_rel_dist": dist, "slope_rel_dist": loglog_slope([64, 128, 256], dist)}]}

    assert held("C10", t([0.4, 0.2, 0.1])) == [True]
    assert held("C10", t([0.4, 0.38, 0.37])) == [False]


def _slope_row(rms, reference="independent", cut_slope=-0.5):
    widths = [250, 500, 1000, 2000]
    slope = loglog_slope(widths, rms)
    return {"limit_slope": [{"method": "snip", "layer": 1, "reference": reference, "widths": json.dumps(widths),
                             "rms": json.dumps(rms), "slope_rms": slope, "slope_cut": cut_slope, "fit_r2": 0.9}]}


def test_c11_limit_convergence():
    assert held("C11", _slope_row([0.08, 0.04, 0.02, 0.01])) == [True]
    assert held("C11", _slope_row([0.08, 0.04, 0.03, 0.03])) == [False]  # plateau: a bias
    assert held("C11", _slope_row([0.08, 0.04, 0.02, 0.01], cut_slope=-0.1)) == [False]
    assert held("C11", _slope_row([0.08, 0.04, 0.02, 0.01], reference="same network")) == [None]


def test_c12_feature_selection():
    def t(corr, jac, pred, meas):
        return {"limit_input": [{"method": "snip (batch 1)", "width": 100, "trial": 0, "corr": corr, "jaccard": jac,
                                 "pruned_pred": pred, "pruned_measured": meas, "reference": "independent"}]}

    assert held("C12", t(0.9, 0.8, 5, 4)) == [True]
    assert held("C12", t(0.9, 0.0, 0, 300)) == [False]
    assert held("C12", t(0.5, 0.8, 5, 4)) == [False]
    assert held("C12", t(0.9, 1.0, 0, 0)) == [None]  # two empty sets: not applicable
    same = t(0.9, 0.8, 5, 4)
    del same["limit_input"][0]["reference"]
    assert held("C12", same) == [None]  # compared with the network the prediction was fitted on


def test_c13_path_density():
    def t(lo, hi):
        return {"limit_paths": [{"width": 100, "err_joint": lo}, {"width": 400, "err_joint": hi}]}

    assert held("C13", t(0.1, 0.05)) == [True]
    assert held("C13", t(0.1, 0.2)) == [False]


def test_c14_designed():
    def t(des):
        return {"limit_training": [{"method": "designed (alignment)", "test_loss": des},
                                   {"method": "random", "test_loss": 0.5},
                                   {"method": "snip", "test_loss": 0.4}]}

    assert held("C14", t(0.3)) == [True]
    assert held("C14", t(0.45)) == [False]


# ------------------------------------------------------------------ the committed report
def test_committed_paper_report_regenerates_from_its_tables():
    from gntk_fast.experiments.report import render_report

    assert render_report(PAPER / "tables") == (PAPER / "report.md").read_text(encoding="utf-8")


def test_from_tables_cli(tmp_path, capsys):
    from gntk_fast.cli import main

    out = tmp_path / "r"
    shutil.copytree(PAPER / "tables", out / "tables")
    assert main(["report", "--from-tables", str(out / "tables")]) == 0
    assert (out / "report.md").read_text() == (PAPER / "report.md").read_text()
    claims = json.loads((out / "tables" / "claims.json").read_text())
    assert claims == json.loads((PAPER / "tables" / "claims.json").read_text())
    capsys.readouterr()
    assert main(["report", "--from-tables", str(tmp_path)]) == 2  # no report_meta.json
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--from-tables" in err[0]


def _kept(grasp_coh, grasp_tr, random_coh, widths=(64, 128, 256, 512)):
    layers, nets = [], []
    for i, n in enumerate(widths):
        for m, coh, tr in (("grasp", grasp_coh[i], grasp_tr[i]), ("random", random_coh[i], 0.001)):
            for layer in range(4):  # input, two hidden, read-out
                layers.append({"method": m, "width": n, "seed": 0, "layer": layer, "density": 0.1,
                               "mean_kept": 0.01, "second_kept": 0.1, "coherence": coh if 0 < layer < 3 else 1.0,
                               "out_scale": 1.0})
            nets.append({"method": m, "width": n, "seed": 0, "entk_trace_ratio": tr})
    return {"kept_moments": layers, "kept_moments_nets": nets}


def test_c15_kept_mean():
    rising = [1.5, 2.0, 2.8, 4.0]
    assert held("C15", _kept(rising, [0.5, 1.0, 2.0, 4.0], [1.0] * 4)) == [True]
    assert held("C15", _kept([1.5] * 4, [0.5, 1.0, 2.0, 4.0], [1.0] * 4)) == [False]  # no rise
    assert held("C15", _kept(rising, [0.5, 1.0, 2.0, 4.0], [1.0, 1.0, 1.6, 1.0])) == [False]  # Random off its null
    assert held("C15", _kept(rising[:3], [0.5, 1.0, 2.0], [1.0] * 3, widths=(64, 128, 256))) == [None]


def test_row_coherence_closed_forms():
    from gntk_fast.experiments.kept_moments import row_coherence

    rng = np.random.default_rng(0)
    w = rng.standard_normal((400, 2000))
    m = rng.random((400, 2000)) < 0.1  # independent of the weights: coherence about 1
    assert 0.9 < row_coherence(w, m) < 1.1
    # keep the positive weights of the mask only: mean_j w m = d E[w 1{w>0}] = d / sqrt(2 pi),
    # E[w^2 m] = d / 2, so the coherence is sqrt(n_in) (d / sqrt(2 pi)) / sqrt(d / 2) = sqrt(n_in d / pi)
    pos = m & (w > 0)
    expected = np.sqrt(2000 * 0.1 / np.pi)
    assert row_coherence(w, pos) == pytest.approx(expected, rel=0.05)
    assert row_coherence(w, np.zeros_like(m)) == 0.0


def _gen(sign, n_cfg=6):
    kr, gr = [], []
    for i in range(n_cfg):
        key = {"method": f"m{i}", "sparsity": 0.5, "seed": 0}
        kr.append({**key, "kernel": "entk_pruned", "ntk_gen_measure": 1.0 + i})
        gr.append({**key, "train_loss": 0.1, "test_loss": 0.5 + sign * 0.1 * i, "generalisation_gap": 0.4 + sign * 0.1 * i})
    return {"generalisation": gr, "kernels": kr}


def test_c16_c17_generalisation_measure():
    assert held("C16", _gen(+1)) == [True] and held("C17", _gen(+1)) == [True]
    assert held("C16", _gen(-1)) == [False] and held("C17", _gen(-1)) == [False]  # the wrong sign
    assert held("C16", _gen(+1, n_cfg=4)) == [None]  # too few configurations


def test_ntk_generalisation_measure_closed_form():
    import torch

    from gntk_fast.experiments.pruned_study import ntk_generalisation_measure

    # Theta = K / k = diag(t): Y^T Theta^-1 Y sums 1/t_i over the examples
    t = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    K = 3.0 * torch.diag(t)
    y = torch.tensor([0, 2, 1, 2])
    expected = np.sqrt(2 * float((1 / t).sum()) / 4)
    assert ntk_generalisation_measure(K, y, 3) == pytest.approx(expected, rel=1e-6)
    assert ntk_generalisation_measure(torch.zeros(4, 4, dtype=torch.float64), y, 3) == float("inf")


def test_c18_path_alignment():
    def t(sign, n_cfg=6):
        pr, kr = [], []
        for i in range(n_cfg):
            key = {"method": f"m{i}", "sparsity": 0.5, "seed": 0}
            pr.append({**key, "path_relevance_corr": 0.1 * i})
            kr.append({**key, "kernel": "gntk_mask", "alignment": 0.2 + sign * 0.01 * i})
        return {"path_density": pr, "kernels": kr}

    assert held("C18", t(+1)) == [True]
    assert held("C18", t(-1)) == [False]
    assert held("C18", t(+1, n_cfg=3)) == [None]


def test_path_summary_closed_form():
    import torch

    from gntk_fast.experiments.pruned_study import path_summary

    # input 0 reaches the output through both hidden neurons, input 1 through one, input 2 through none
    m1 = np.array([[1, 1, 0], [1, 0, 0]])
    m2 = np.array([[1, 1]])
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5], [1.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    y = torch.tensor([1, 0, 1, 0])  # x_0 is the class
    s = path_summary([m1, m2], x, y, 2)
    P = np.array([2, 1, 0]) / 2  # paths over the dense count (2 hidden neurons, 1 output)
    assert s["path_mean"] == pytest.approx(P.mean())
    assert s["path_cv"] == pytest.approx(P.std() / P.mean())
    from gntk_fast.experiments.pruned_study import coordinate_relevance

    r = coordinate_relevance(x, y, 2)
    assert r[0] == pytest.approx(1.0)
    assert s["path_relevance_corr"] == pytest.approx(np.corrcoef(P, r)[0, 1])


def test_committed_small_report_regenerates_from_its_tables():
    from gntk_fast.experiments.report import render_report

    small = PAPER.parent / "report_small_digits"
    assert render_report(small / "tables") == (small / "report.md").read_text(encoding="utf-8")


def test_c19_active_subspace():
    def t(kept=(0.7, 0.9), pruned=(0.1, 0.05), dense=0.9, n=(4, 4)):
        rows = [dict(method="snip", net="pruned", target=tg, width=w, seed=0, test_r2=r)
                for tg, vals in (("kept", kept), ("pruned", pruned)) for w, r in zip((64, 256), vals)]
        rows.append(dict(method="snip", net="dense", target="pruned", width=256, seed=0, test_r2=dense))
        return {"active_fit": rows, "active_sets": [dict(method="snip", n_kept_coords=n[0], n_pruned_coords=n[1])]}

    assert held("C19", t()) == [True]
    assert held("C19", t(pruned=(0.1, 0.6))) == [False]  # the pruned-away target is fitted
    assert held("C19", t(kept=(0.9, 0.4))) == [False]  # the kept target is not
    assert held("C19", t(kept=(0.9, 0.8))) == [False]  # the kept fit falls with width
    assert held("C19", t(dense=0.3)) == [None]  # the control cannot fit it either
    assert held("C19", t(n=(4, 0))) == [None]  # nothing pruned away
    no_fit = t()
    no_fit["active_sets"].append(dict(method="synflow", n_kept_coords=4, n_pruned_coords=0))  # a method with nothing trained
    assert held("C19", no_fit) == [True, None]


def test_active_subspace_experiment_selects_the_low_scale_coordinates():
    from gntk_fast.experiments.active_subspace import active_subspace

    sets, fit = active_subspace(["snip", "synflow"], [32, 64], seeds=1, steps=20, pool=2, n_train=128, n_eval=64)
    snip = next(r for r in sets if r["method"] == "snip")
    # SNIP's scores are proportional to |x_j|: what its limit prunes away are the low-scale (odd) coordinates
    assert snip["n_pruned_coords"] >= 2 and snip["n_low_scale_pruned"] == snip["n_pruned_coords"]
    assert all(j % 2 == 0 for j in snip["kept_coords"])
    # SynFlow scores with all-ones inputs: no coordinate is pruned away, nothing is trained
    assert next(r for r in sets if r["method"] == "synflow")["n_pruned_coords"] == 0
    assert {r["method"] for r in fit} == {"snip"}
    assert {(r["net"], r["target"]) for r in fit} == {("pruned", "kept"), ("pruned", "pruned"), ("dense", "pruned")}
    assert all(np.isfinite(r["test_r2"]) for r in fit)


def test_active_subspace_bad_arguments():
    from gntk_fast.experiments.active_subspace import active_subspace, subspace_target

    with pytest.raises(ValueError, match="sparsity"):
        active_subspace(["snip"], [16], sparsity=1.5)
    with pytest.raises(ValueError, match="widths"):
        active_subspace(["snip"], [0])
    with pytest.raises(ValueError, match="set_size"):
        active_subspace(["snip"], [16], d_in=8, set_size=5)
    with pytest.raises(ValueError, match="low_scale"):
        active_subspace(["snip"], [16], low_scale=0.0)
    with pytest.raises(ValueError, match="pool"):
        active_subspace(["snip"], [16], pool=1)
    with pytest.raises(ValueError, match="coords"):
        subspace_target(np.zeros((3, 4)), [1])
