"""Task functions of gntk_fast.experiments.tasks (shared by sweeps and experiments)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gntk_fast.experiments import tasks
from gntk_fast.experiments.tasks import check_task_config, run_task

SMALL = {"width": 32, "depth": 3, "K": 8, "iterations": 2}


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("bad, key", [
    ({"kind": "masks_sas", "method": "random", "width": 32, "widht": 3}, "widht"),
    ({"kind": "masks_sas", "method": "random"}, "width"),
    ({"kind": "masks_sas", "method": "random", "width": 0}, "width"),
    ({"kind": "masks_sas", "method": "random", "width": 32.5}, "width"),
    ({"kind": "mask_sas", "method": "random", "width": 32}, "kind"),
    ({"kind": "masks_sas", "method": "prune_all", "width": 32}, "method"),
    ({"kind": "masks_sas", "method": "random", "width": 32, "sparsity": 1.0}, "sparsity"),
    ({"kind": "masks_sas", "method": "random", "width": 32, "K": 64}, "K"),
    ({"kind": "masks_sas", "method": "snip", "width": 32, "source": "packed"}, "method"),
    ({"kind": "entk_metrics", "method": "random", "width": 32, "source": "packed"}, "source"),
    ({"kind": "masks_sas", "method": "graphon", "width": 32, "source": "packed"}, "graphon"),
    ({"kind": "masks_sas", "method": "graphon", "width": 32, "source": "packed", "graphon": "cubic"}, "graphon"),
    ({"kind": "training_curve", "method": "random", "width": 32, "n_train": 10, "batch_size": 20}, "batch_size"),
    ({"kind": "masks_sas", "method": "random", "width": 32, "depth": 1}, "depth"),
])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises((ValueError, TypeError), match=f"'{key}'"):
        check_task_config(bad)


def test_defaults_filled_and_alias():
    cfg = check_task_config({"kind": "masks_sas", "method": "random", "width": 100, "scope": "local"})
    assert cfg["scope"] == "layerwise" and cfg["K"] == 64 and cfg["sparsity"] == 0.9 and cfg["depth"] == 3


# ------------------------------------------------------------------ masks_sas
def test_masks_sas_random_prune_counts_and_blocks():
    out = run_task({"kind": "masks_sas", "method": "random", **SMALL})
    rows = out.rows
    assert [r["layer"] for r in rows] == [0, 1, 2, 3]
    N = 32 * 64 + 2 * 32 * 32 + 10 * 32
    # synaptic-flow rule: int(0.9 N) pruned; random scores have no ties
    assert sum(r["kept"] for r in rows) == N - int(0.9 * N)
    assert [(r["n_out"], r["n_in"]) for r in rows] == [(32, 64), (32, 32), (32, 32), (10, 32)]
    # a hidden estimate with equal 4 x 4 blocks averages to the layer density
    for i in (1, 2):
        assert out.arrays[f"H_layer{i}"].shape == (8, 8)
        assert out.arrays[f"H_layer{i}"].mean() == pytest.approx(rows[i]["kept"] / 1024)
    assert out.arrays["input_H"].shape == (8, 64)
    assert out.arrays["input_density"].sum() * 32 == rows[0]["kept"]
    assert all(r["method"] == "random" and r["width"] == 32 and r["seconds"] >= 0 for r in rows)


def test_masks_sas_deterministic_and_trial_dependent():
    a = run_task({"kind": "masks_sas", "method": "magnitude", **SMALL})
    b = run_task({"kind": "masks_sas", "method": "magnitude", **SMALL})
    c = run_task({"kind": "masks_sas", "method": "magnitude", **SMALL, "trial": 1})
    assert np.array_equal(a.arrays["H_layer1"], b.arrays["H_layer1"])
    assert not np.array_equal(a.arrays["H_layer1"], c.arrays["H_layer1"])


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_masks_sas_packed_random_exact_counts(scope):
    cfg = {"kind": "masks_sas", "method": "random", "source": "packed", "width": 96, "K": 8, "scope": scope,
           "compat": "clean", "sparsity": 0.8}
    rows = run_task(cfg).rows
    sizes = [96 * 64, 96 * 96, 96 * 96, 10 * 96]
    if scope == "global":
        assert sum(r["kept"] for r in rows) == round(0.2 * sum(sizes))
    else:
        assert [r["kept"] for r in rows] == [round(0.2 * n) for n in sizes]


def test_masks_sas_packed_graphon_density():
    cfg = {"kind": "masks_sas", "method": "graphon", "graphon": "constant:0.3", "source": "packed", "width": 256,
           "K": 16}
    rows = run_task(cfg).rows
    for r in rows[1:3]:  # 65536 Bernoulli(0.3) entries: sd 0.0018
        assert abs(r["density"] - 0.3) < 0.01
    cfg["graphon"] = "linear"  # 0.15 + 0.7 u v integrates to 0.15 + 0.7 / 4
    out = run_task(cfg)
    assert abs(out.rows[1]["density"] - 0.325) < 0.01
    H = out.arrays["H_layer1"]  # sorted by degree: the top-left block is the densest
    assert H[0, 0] > 0.7 and H[-1, -1] < 0.2


def test_masks_sas_packed_matches_dense_sas():
    from gntk_fast.graphon import sas
    cfg = check_task_config({"kind": "masks_sas", "method": "random", "source": "packed", "width": 64, "K": 8})
    shapes = tasks._packed_shapes(cfg)
    assert shapes == [(64, 64), (64, 64), (64, 64), (10, 64)]
    packed = list(tasks._packed_masks(cfg, shapes))
    out = run_task(cfg)
    for i in (1, 2):
        dense = np.unpackbits(packed[i], axis=1, count=64).astype(bool)
        assert np.array_equal(out.arrays[f"H_layer{i}"], sas(dense, 8).H)
        assert int(dense.sum()) == out.rows[i]["kept"]
    dense0 = np.unpackbits(packed[0], axis=1, count=64).astype(bool)
    assert np.array_equal(out.arrays["input_density"], dense0.mean(axis=0))


# ------------------------------------------------------------------ kernels
def test_entk_metrics_matches_jacobian_oracle():
    import gntk_fast as gf

    cfg = {"kind": "entk_metrics", "method": "snip", **SMALL, "n_samples": 8}
    out = run_task(cfg)
    K = out.arrays["kernel"]
    # rebuild the pruned network independently and take the Jacobian oracle
    net, _ = tasks._pruned_fc(check_task_config(cfg))
    x, _ = tasks._sample("digits", "test", 8, 0, None)
    ref = gf.empirical_ntk_reference(gf.MLP.from_sequential(net).double(), x.double()).numpy()
    np.testing.assert_allclose(K, ref, rtol=1e-9, atol=1e-9)
    layer_rows = [r for r in out.rows if r["layer"] is not None]
    net_row = [r for r in out.rows if r["layer"] is None][0]
    assert len(layer_rows) == 4
    assert sum(r["layer_trace"] for r in layer_rows) == pytest.approx(np.trace(K))
    assert net_row["trace"] == pytest.approx(np.trace(K))
    assert net_row["lambda_max"] == pytest.approx(np.linalg.eigvalsh(K)[-1])


def test_analytic_metrics_kernel_psd_and_depends_on_masks():
    base = {"kind": "analytic_metrics", **SMALL, "n_samples": 8, "quad_K": 8}
    a = run_task({**base, "method": "random"})
    b = run_task({**base, "method": "synflow"})
    for out in (a, b):
        K = out.arrays["kernel"]
        assert K.shape == (8, 8) and np.allclose(K, K.T)
        assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
    assert not np.allclose(a.arrays["kernel"], b.arrays["kernel"])
    net = [r for r in a.rows if r["layer"] is None][0]
    kept = sum(r["kept"] for r in a.rows if r["layer"] is not None)
    total = sum(r["n_out"] * r["n_in"] for r in a.rows if r["layer"] is not None)
    assert net["density"] == pytest.approx(kept / total)


def test_training_curve_rows_per_step():
    cfg = {"kind": "training_curve", "method": "random", **SMALL, "steps": 30, "n_train": 200, "batch_size": 200, "sparsity": 0.5,
           "lr": 1e-2}
    a, b = run_task(cfg), run_task(cfg)
    assert [r["step"] for r in a.rows] == list(range(30))
    assert np.array_equal(a.arrays["loss"], b.arrays["loss"])  # seeded
    # an untrained 10-class net starts near chance; full-batch Adam lowers the loss
    assert abs(a.rows[0]["loss"] - math.log(10)) < 0.5
    assert a.arrays["loss"][-5:].mean() < a.arrays["loss"][:5].mean() - 0.3
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["lr"] == 1e-2 for r in a.rows)


def test_pruned_study_task_shares_the_report_case():
    from gntk_fast.experiments import pruned_study as ps
    from gntk_fast.experiments.tasks import _model_seed, check_task_config, run_task

    cfg = {"kind": "pruned_study", "method": "snip", "width": 32, "sparsity": 0.5, "depth": 2, "K": 4,
           "n_samples": 12, "steps": 20, "batch_size": 16, "n_train": 64}
    out = run_task(cfg)
    assert [r["kernel"] for r in out.rows] == list(ps.KERNELS)
    assert all(r["masks_enforced"] for r in out.rows)
    assert out.arrays["train_loss"].shape == out.arrays["train_steps"].shape
    # the same numbers as the report's own case function
    full = check_task_config(cfg)
    study = ps.StudyConfig(width=32, depth=2, steps=20, batch_size=16, n_train=64, n_eval=64, n_kernel=12, K=4)
    data = ps.load_study_data("digits", n_train=64, n_kernel=12, seed=0)
    ref = ps.run_case("snip", 0.5, _model_seed(full), data, study)
    for r, k in zip(out.rows, ref.kernel_rows):
        assert r["energy_top5"] == pytest.approx(k["energy_top5"], rel=1e-9)
    with pytest.raises(ValueError, match="'K'"):
        run_task({**cfg, "K": 64})
