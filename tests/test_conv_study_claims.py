"""The pruned conv-net study's claims (CV4-CV10): the MLP study's rules on the conv tables, each on a hand-made
table it passes, one it fails, and one it cannot measure where the rule has that branch."""
from __future__ import annotations

import numpy as np

from gntk_fast.experiments.claims import get_claim


def held(cid, tables):
    rows = get_claim(cid)(tables, {})
    assert rows, cid
    return [r["held"] for r in rows]


def _energy(rise, noise, seeds, kernel="gntk_variance"):
    rows = []
    for m in ("snip", "synflow"):
        for seed in range(seeds):
            e = noise * (-1) ** seed
            rows.append({"kernel": kernel, "method": m, "sparsity": 0.5, "seed": seed, "energy_top5": 0.4 + e})
            rows.append({"kernel": kernel, "method": m, "sparsity": 0.9, "seed": seed, "energy_top5": 0.4 + rise + e})
    return {"conv_study_kernels": rows}


def test_cv4_energy_rise():
    assert held("CV4", _energy(0.2, 0.01, 5)) == [True]
    assert held("CV4", _energy(0.02, 0.05, 5)) == [False]  # rise within 2 sample sd
    assert held("CV4", _energy(-0.2, 0.01, 5)) == [False]  # falls
    assert held("CV4", _energy(0.2, 0.01, 4)) == [None]  # fewer than 5 seeds
    row = get_claim("CV4")(_energy(0.2, 0.01, 5), {})[0]
    assert row["kernel"] == "(d) Graphon CNTK, variance graphons" and row["id"] == "CV4"
    # sample sd (ddof 1): values 0, 1, 0, 1, 0.5 have sd 0.5 (ddof 0 would give 0.447)
    rows = []
    for m in ("snip", "synflow"):
        for seed, e in enumerate((0.0, 1.0, 0.0, 1.0, 0.5)):
            rows.append({"kernel": "entk_pruned", "method": m, "sparsity": 0.5, "seed": seed, "energy_top5": e})
            rows.append({"kernel": "entk_pruned", "method": m, "sparsity": 0.9, "seed": seed, "energy_top5": e + 0.95})
    assert 2 * np.std([0.0, 1.0, 0.0, 1.0, 0.5], ddof=0) < 0.95 < 2 * np.std([0.0, 1.0, 0.0, 1.0, 0.5], ddof=1)
    assert held("CV4", {"conv_study_kernels": rows}) == [False]


def _corr(rho, p, metric="energy_top5"):
    return {"conv_study_correlations": [{"kernel": "entk_fresh", "metric": metric, "step": s, "rho": rho,
                                         "p_value": p, "n": 11} for s in (25, 50, 100)]}


def test_cv5_spectral_correlation_sign():
    assert held("CV5", _corr(-0.8, 0.001)) == [True]
    assert held("CV5", _corr(+0.8, 0.001)) == [False]  # significant against the expected sign
    assert held("CV5", _corr(-0.4, 0.2)) == [False]  # not significant
    assert held("CV5", _corr(+0.8, 0.001, metric="effective_rank")) == [True]
    assert held("CV5", _corr(None, None)) == [None]


def _vs_random(agree, methods=("snip", "grasp", "synflow"), sparsities=(0.5, 0.9)):
    kr, tr = [], []
    for s in sparsities:
        kr.append({"kernel": "entk_pruned", "method": "random", "sparsity": s, "seed": 0, "energy_top5": 0.3})
        tr.append({"method": "random", "sparsity": s, "seed": 0, "step": 50, "loss": 1.5})
        for m in methods:
            kr.append({"kernel": "entk_pruned", "method": m, "sparsity": s, "seed": 0, "energy_top5": 0.45})
            tr.append({"method": m, "sparsity": s, "seed": 0, "step": 50, "loss": 1.2 if agree else 1.9})
    return {"conv_study_kernels": kr, "conv_study_training": tr}


def test_cv6_against_random():
    assert held("CV6", _vs_random(True)) == [True]
    assert held("CV6", _vs_random(False)) == [False]
    assert held("CV6", _vs_random(True, methods=("snip", "grasp"))) == [None]  # 4 pairs: too few


def _kernels(c, d, c_free, d_free, cases=6):
    rows = []
    for seed in range(cases):
        key = {"method": "synflow", "sparsity": 0.9, "seed": seed}
        j = 0.002 * seed
        rows.append({**key, "kernel": "entk_pruned", "rel_dist_to_a": 0.0, "trace": 4.0, "scale_free_dist_to_a": 0.0})
        rows.append({**key, "kernel": "gntk_mask", "rel_dist_to_a": c, "trace": 1.0, "scale_free_dist_to_a": c_free + j})
        rows.append({**key, "kernel": "gntk_variance", "rel_dist_to_a": d, "trace": 3.0,
                     "scale_free_dist_to_a": d_free - j})
    return {"conv_study_kernels": rows}


def test_cv7_cv8_variance_kernel():
    assert held("CV7", _kernels(0.7, 0.2, 0.3, 0.3)) == [True]
    assert held("CV7", _kernels(0.2, 0.7, 0.3, 0.3)) == [False]
    assert "trace/trace(a) (c) 0.25, (d) 0.75" in get_claim("CV7")(_kernels(0.7, 0.2, 0.3, 0.3), {})[0]["numbers"]
    assert held("CV8", _kernels(0.7, 0.2, 0.4, 0.1)) == [True]
    assert held("CV8", _kernels(0.7, 0.2, 0.1, 0.4)) == [False]  # the gain of (d) was overall scale only
    assert held("CV8", _kernels(0.7, 0.2, 0.4, 0.1, cases=4)) == [None]  # fewer than 5 cases


def test_conv_claims_ignore_the_mlp_tables():
    # the MLP study's tables alone leave the conv claims silent (and the other way round)
    mlp = {"kernels": _energy(0.2, 0.01, 5)["conv_study_kernels"]}
    for cid in ("CV4", "CV7", "CV8"):
        assert get_claim(cid)(mlp, {}) == []
    assert get_claim("C5")(_energy(0.2, 0.01, 5), {}) == []


def _gen(sign, n_cfg=6):
    kr, gr = [], []
    for i in range(n_cfg):
        key = {"method": f"m{i}", "sparsity": 0.5, "seed": 0}
        for kern in ("entk_pruned", "gntk_variance"):
            kr.append({**key, "kernel": kern, "ntk_gen_measure": 1.0 + i})
        gr.append({**key, "train_loss": 0.1, "test_loss": 0.5 + sign * 0.1 * i,
                   "generalisation_gap": 0.4 - sign * 0.1 * i})  # the gap runs against the held-out loss
    return {"conv_study_generalisation": gr, "conv_study_kernels": kr}


def test_cv9_cv10_generalisation_measure():
    assert held("CV9", _gen(+1)) == [True, True] and held("CV10", _gen(+1)) == [False, False]
    assert held("CV9", _gen(-1)) == [False, False] and held("CV10", _gen(-1)) == [True, True]
    assert held("CV9", _gen(+1, n_cfg=4)) == [None, None]  # too few configurations
    rows = get_claim("CV9")(_gen(+1), {})
    assert [r["kernel"] for r in rows] == ["(a) eNTK, pruned net", "(d) Graphon CNTK, variance graphons"]
    # the MLP study's tables leave them silent
    g = _gen(+1)
    assert get_claim("CV9")({"generalisation": g["conv_study_generalisation"], "kernels": g["conv_study_kernels"]},
                            {}) == []
