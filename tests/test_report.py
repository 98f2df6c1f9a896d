"""The paper's experiments at tiny sizes, the claims rules, and the report job."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gntk_fast.experiments import pruned_study as ps
from gntk_fast.experiments.kernel_checks import kernel_convergence, random_scaling
from gntk_fast.experiments.report import run_report

TINY = {
    "convergence": {"methods": ["random", "snip", "synflow"], "widths": [32, 64, 96], "trials": 2, "K": 8,
                    "depth": 2, "sparsity": 0.9},
    "kernel_convergence": {"widths": [64, 128], "seeds": 2, "K": 32},
    "random_scaling": {"densities": [1.0, 0.5, 0.25], "width": 128, "depth": 2, "seeds": 1},
    "pruned_kernels": {"methods": ["random", "synflow"], "widths": [32, 64], "seeds": 1, "sparsity": 0.5,
                       "depth": 2, "K": 8, "n_inputs": 12},
    "study": {"methods": ["dense", "random", "snip"], "sparsities": [0.5, 0.9], "seeds": 2,
              "config": {"width": 48, "depth": 2, "steps": 40, "batch_size": 32, "n_train": 160, "n_kernel": 30,
                         "K": 6, "gd_steps": 20, "eval_every": 10}},
    "checkpoints": [10, 20, 40],
    "limit_graphons": {"widths": [32, 48], "trials": 1, "K": 4, "design_steps": 3, "design_width": 32,
                       "design_K": 2, "design_batch": 32, "train_steps": 10, "train_batch": 16, "n_train": 100,
                       "n_eval": 50, "methods": ["random", "snip (batch 1)", "synflow (1 it.)"]},
    "kept_moments": {"methods": ["random", "grasp"], "widths": [16, 24, 32, 48], "seeds": 1, "sparsity": 0.8,
                     "depth": 2, "n_inputs": 8},
    "active_subspace": {"methods": ["snip"], "widths": [16, 32], "seeds": 1, "steps": 10, "pool": 2,
                        "n_train": 64, "n_eval": 32},
    "conv": {"convergence": {"methods": ["random"], "channels": [8, 16, 32], "trials": 1, "K": 4, "depth": 2, "sparsity": 0.8}, "kernel_convergence": {"channels": [16, 32], "seeds": 1, "depth": 1, "K": 8, "readouts": ["flatten"], "n_images": 3, "gap_images": 2}, "random_scaling": {"densities": [1.0, 0.5], "channels": 16, "depth": 1, "seeds": 1, "n_images": 3}},  # noqa: E501
    "conv_study": {"methods": ["dense", "snip"], "sparsities": [0.5, 0.9], "seeds": 1, "checkpoints": [2, 4],
                   "config": {"channels": 6, "depth": 1, "readout": "flatten", "steps": 4, "batch_size": 16,
                              "eval_every": 2, "n_train": 48, "n_eval": 24, "n_kernel": 6, "K": 2}},
}


@pytest.fixture(scope="module")
def study_data():
    return ps.load_study_data("digits", n_train=160, n_kernel=30)


def _cfg(**kw):
    base = dict(width=48, depth=2, steps=60, batch_size=32, n_train=160, n_kernel=30, K=6, gd_steps=20, eval_every=10)
    base.update(kw)
    return ps.StudyConfig(**base)


def test_case_prunes_trains_and_measures(study_data):
    res = ps.run_case("random", 0.5, 0, study_data, _cfg(lr=1e-2), linearised=True)
    # global random pruning keeps about half of every layer
    assert all(abs(d - 0.5) < 0.1 for d in res.layer_density)
    loss = [r["loss"] for r in sorted(res.train_rows, key=lambda r: r["step"])]
    assert [r["step"] for r in sorted(res.train_rows, key=lambda r: r["step"])] == [0, 10, 20, 30, 40, 50, 60]
    assert loss[-1] < 0.8 * loss[0]  # Adam lowers the training loss
    assert res.masks_enforced is True  # pruned weights stayed exactly 0 through training
    kernels = {r["kernel"]: r for r in res.kernel_rows}
    assert set(kernels) == set(ps.KERNELS)
    assert kernels["entk_pruned"]["rel_dist_to_a"] == 0.0
    for r in kernels.values():
        assert 0 < r["energy_top5"] <= 1 and r["effective_rank"] >= 1
    # fresh weights on the same masks give a different kernel
    assert kernels["entk_fresh"]["rel_dist_to_a"] > 0.01
    assert res.linear_rows and res.linear_rows[0]["step"] == 0
    first = res.linear_rows[0]
    if not first["diverged"]:  # at step 0 measurement and prediction are the same loss
        assert abs(first["measured_loss"] - first["predicted_loss"]) < 1e-6 * first["predicted_loss"]


def test_dense_case_and_grid(study_data):
    res = ps.run_case("dense", 0.7, 1, study_data, _cfg(steps=20), kernels=False)
    assert res.layer_density == [1.0, 1.0, 1.0] and res.kernel_rows == []
    assert res.train_rows[0]["sparsity"] == 0.0
    grid = ps.case_grid(["dense", "snip"], [0.5, 0.9], 2)
    assert grid == [("dense", 0.0, 0), ("snip", 0.5, 0), ("snip", 0.9, 0),
                    ("dense", 0.0, 1), ("snip", 0.5, 1), ("snip", 0.9, 1)]


def test_study_config_errors(study_data):
    with pytest.raises(ValueError, match="width"):
        ps.StudyConfig(width=0).validated()
    with pytest.raises(ValueError, match="gd_scale"):
        ps.StudyConfig(gd_scale=3.0).validated()
    with pytest.raises(ValueError, match="method"):
        ps.run_case("optimal", 0.5, 0, study_data, _cfg())
    with pytest.raises(ValueError, match="sparsity"):
        ps.run_case("snip", 1.5, 0, study_data, _cfg())


def test_kernel_convergence_error_falls():
    rows, summ = kernel_convergence([32, 512], seeds=2, K=128, progress=False)
    assert len(rows) == 4
    assert summ["mean_rel_dist"][1] < 0.6 * summ["mean_rel_dist"][0]
    assert summ["slope_rel_dist"] < -0.2


def test_random_scaling_law():
    rows, summ = random_scaling([1.0, 0.5, 0.2], width=256, depth=2, seeds=1, progress=False)
    for r in rows:
        if r["kernel"] == "analytic":  # the constant graphon's kernel is exactly c^(L+1) / c^L times dense
            assert r["ratio"] == pytest.approx(r["predicted_ratio"], rel=1e-12)
    fit = {(s["trainable"], s["kernel"]): s for s in summ}
    assert fit[("mask", "eNTK")]["predicted_exponent"] == 3 and fit[("all", "eNTK")]["predicted_exponent"] == 2
    # finite width: within 15% of the law, and the conventions differ by about one power of c
    assert abs(fit[("mask", "eNTK")]["exponent"] - 3) < 0.45
    assert abs(fit[("all", "eNTK")]["exponent"] - 2) < 0.3
    assert fit[("mask", "eNTK")]["exponent"] - fit[("all", "eNTK")]["exponent"] > 0.7


# ------------------------------------------------------------------ correlation table
def test_correlation_rows():
    kernel_rows, train_rows = [], []
    for i, sp in enumerate([0.1, 0.3, 0.5, 0.7, 0.9]):
        kernel_rows.append({"kernel": "k", "method": "m", "sparsity": sp, "seed": 0, "alpha": float(i),
                            "alignment": float((-1) ** i)})
        train_rows.append({"method": "m", "sparsity": sp, "seed": 0, "step": 50, "loss": 1.0 + i})
    corr = ps.correlation_rows(kernel_rows, train_rows, ["k"], ["alpha", "alignment"], [50])
    by = {r["metric"]: r for r in corr}
    assert by["alpha"]["rho"] == pytest.approx(1.0) and by["alpha"]["p_value"] < 0.05 / 2
    assert abs(by["alignment"]["rho"]) < 0.5


# ------------------------------------------------------------------- the report
def test_report_interrupted_resumed_and_complete(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = ps.run_case

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ps, "run_case", flaky)
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        run_report(out, settings=TINY, progress=False)
    text = (out / "report.md").read_text()
    assert "interrupted" in text and "## 2. Kernel checks" in text and "## 3." not in text
    assert len(list((out / "cases").glob("*.json"))) == 2  # the two finished cases were kept
    calls["n"] = 10  # no more interruptions; count the cases run on resume
    res = run_report(out, settings=TINY, progress=False)
    assert calls["n"] - 10 == len(ps.case_grid(["dense", "random", "snip"], [0.5, 0.9], 2)) - 2
    text = res.report.read_text()
    assert "complete." in text
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    pngs = sorted(str(p.relative_to(out)) for p in (out / "figures").rglob("*.png"))
    assert len(pngs) >= 14 and sorted(set(linked)) == pngs  # every PNG is in the report, every link exists
    for p in pngs:
        assert (out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ids = [c["id"] for c in res.claims]
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6", "C6b", "C7", "C8", "C9", "C9b", "C10", "C11", "C13", "C14",
                "C15", "C16", "C17", "C18", "C19"):
        assert cid in ids, cid
    assert ids.count("C5") == 4 and ids.count("C6") == 4  # one per kernel
    for cid in ("CV4", "CV5", "CV7", "CV8"):  # the pruned conv-net study's claims (section 8)
        assert cid in ids, cid
    assert "## 8. Pruned conv nets: four kernels" in text
    # the report is its tables rendered: re-rendering reproduces it byte for byte
    from gntk_fast.experiments.report import render_report

    assert render_report(out / "tables") == text
    results = json.loads((out / "results.json").read_text())
    assert results["finished"] is True and len(results["claims"]) == len(res.claims)
    # random pruning's graphon is flat, SNIP's is not (claim C2 decided from the flatness table)
    flat = {r["method"]: r for r in json.loads((out / "tables" / "flatness.json").read_text())}
    assert flat["random"]["flat_bound"] == pytest.approx(1.5 * flat["random"]["null_sd"])
    assert flat["random"]["block_sd"] <= flat["random"]["flat_bound"] < flat["snip"]["block_sd"]
    assert (out / "tables" / "kernels.parquet").exists()
    # a third run reuses every finished section
    calls["n"] = 100
    run_report(out, settings=TINY, progress=False)
    assert calls["n"] == 100


def test_report_cli_errors(tmp_path, capsys):
    from gntk_fast.cli import main

    f = tmp_path / "file"
    f.write_text("x")
    assert main(["report", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]
    assert main(["report", "--scale", "huge", "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(ValueError, match="settings"):
        run_report(tmp_path / "o", settings={"bogus": 1})


def test_flat_null_includes_the_sorting_spread():
    from gntk_fast.experiments.report import flat_null_sd

    p, K = 0.1, 8
    small, large = flat_null_sd(400, K, 2, p), flat_null_sd(1600, K, 2, p)
    binomial_se = np.sqrt(p * (1 - p) / ((400 / K) ** 2 * 2))  # the spread without degree sorting
    assert small > 1.5 * binomial_se
    assert large < 0.7 * small  # the sorting spread shrinks like n^-1/2


def test_study_data_refuses_a_training_set_that_leaves_nothing_held_out():
    # a training set that takes every example would leave the held-out loss (C16, C17) silently unmeasurable
    with pytest.raises(ValueError, match="n_train=1797 .* none held out for n_test=5"):
        ps.load_study_data("digits", n_train=1797, n_kernel=10, n_test=5)
    d = ps.load_study_data("digits", n_train=1797, n_kernel=10, n_test=0)
    assert d.x_train.shape[0] == 1797 and d.x_test.shape[0] == 0
    d = ps.load_study_data("digits", n_train=1700, n_kernel=10, n_test=500)
    assert d.x_test.shape[0] == 97  # what the split holds beyond the training set
    with pytest.raises(ValueError, match="n_test"):
        ps.StudyConfig(n_test=-1).validated()


def test_study_asks_skip_before_each_case(study_data):
    # another process finishing cases meanwhile: they are not computed again
    done = set()
    out = ps.run_study(["random"], [0.5, 0.9], 1, study_data, _cfg(width=16, steps=2, eval_every=1),
                       linearised=False, progress=False,
                       on_case=lambda case, r: done.update(ps.case_grid(["random"], [0.5, 0.9], 1)),
                       skip=lambda case: case in done)
    assert [c for c, _ in out] == [("random", 0.5, 0)]
