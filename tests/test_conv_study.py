"""The pruned conv-net study (gntk_fast.experiments.conv_study) at tiny sizes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gntk_fast.experiments import conv_study as cs
from gntk_fast.experiments.pruned_study import load_study_data


@pytest.fixture(scope="module")
def data():
    return cs.images_of(load_study_data("digits", n_train=96, n_kernel=10, n_test=0))


def _cfg(**kw):
    base = dict(channels=8, depth=2, steps=20, lr=1e-2, batch_size=32, eval_every=10, n_train=96, n_eval=96,
                n_kernel=10, K=4, readout="flatten")
    base.update(kw)
    return cs.ConvStudyConfig(**base).validated()


def test_case_prunes_trains_and_measures(data):
    res = cs.run_conv_case("random", 0.5, 0, data, _cfg())
    assert all(abs(d - 0.5) < 0.15 for d in res.layer_density)  # global random pruning keeps about half
    rows = sorted(res.train_rows, key=lambda r: r["step"])
    assert [r["step"] for r in rows] == [0, 10, 20]
    assert rows[-1]["loss"] < rows[0]["loss"]  # Adam lowers the training loss
    assert res.masks_enforced is True
    k = {r["kernel"]: r for r in res.kernel_rows}
    assert set(k) == set(cs.KERNELS)
    assert k["entk_pruned"]["rel_dist_to_a"] == 0.0 and k["entk_pruned"]["scale_free_dist_to_a"] < 1e-6
    for r in k.values():
        assert 0 < r["energy_top5"] <= 1 and r["effective_rank"] >= 1 and r["trace"] > 0
    assert k["entk_fresh"]["rel_dist_to_a"] > 1e-3  # fresh weights: another kernel
    assert set(res.eigenvalues) == set(cs.KERNELS)


def test_dense_unit_weights_make_kernels_c_and_d_equal(data, monkeypatch):
    # with every weight of magnitude 1 the variance graphons E[w^2 m] are the mask graphons: (d) = (c)
    orig = cs._model

    def unit_model(d, cfg, seed):
        m = orig(d, cfg, seed)
        with torch.no_grad():
            for layer in m.layers:
                layer.weight.copy_(torch.sign(layer.weight) + (layer.weight == 0))
        return m

    monkeypatch.setattr(cs, "_model", unit_model)
    res = cs.run_conv_case("dense", 0.0, 1, data, _cfg(depth=1), train=False)
    k = {r["kernel"]: r for r in res.kernel_rows}
    assert abs(k["gntk_mask"]["trace"] - k["gntk_variance"]["trace"]) < 1e-12 * k["gntk_mask"]["trace"]
    # the dense net's graphons are all 1: (c) is the dense CNTK, about the eNTK of a finite dense net
    assert k["gntk_mask"]["rel_dist_to_a"] < 0.5


def test_study_runs_every_case_and_skips_done_ones(data):
    seen = []
    out = cs.run_conv_study(["dense", "snip"], [0.5], 1, data, _cfg(steps=2, eval_every=1, depth=1),
                            progress=False, on_case=lambda c, r: seen.append(c),
                            skip=lambda c: c[0] == "dense")
    assert [c for c, _ in out] == [("snip", 0.5, 0)] == seen


def test_bad_input_names_the_argument(data):
    with pytest.raises(ValueError, match="channels"):
        cs.ConvStudyConfig(channels=0).validated()
    with pytest.raises(ValueError, match="readout"):
        cs.ConvStudyConfig(readout="pool").validated()
    with pytest.raises(ValueError, match="kernel_size"):
        cs.ConvStudyConfig(kernel_size=4).validated()
    with pytest.raises(ValueError, match="lr"):
        cs.ConvStudyConfig(lr=-1.0).validated()
    with pytest.raises(ValueError, match="K"):
        cs.ConvStudyConfig(channels=4, K=8).validated()
    flat = load_study_data("digits", n_train=20, n_kernel=5, n_test=0)
    with pytest.raises(ValueError, match="images_of"):
        cs.run_conv_case("snip", 0.5, 0, flat, _cfg())
    with pytest.raises(ValueError, match="method"):
        cs.run_conv_case("prune-all", 0.5, 0, data, _cfg())
    with pytest.raises(ValueError, match="sparsity"):
        cs.run_conv_case("snip", 1.5, 0, data, _cfg())
    odd = load_study_data("digits", n_train=20, n_kernel=5, n_test=0)
    odd.x_train = odd.x_train[:, :60]
    with pytest.raises(ValueError, match="square"):
        cs.images_of(odd)


def test_figures_share_axes_and_render(tmp_path, data):
    rows, train = [], []
    for m, sp in (("dense", 0.0), ("snip", 0.5), ("snip", 0.9)):
        for seed in range(2):
            for k in cs.KERNELS:
                rows.append({"kernel": k, "method": m, "sparsity": sp, "seed": seed, "energy_top5": 0.5 + sp / 4,
                             "alpha": 1.0 + seed})
            train += [{"method": m, "sparsity": sp, "seed": seed, "step": s, "loss": 2.0 - s / 10} for s in (0, 5)]
    fig = cs.plot_conv_kernel_metrics(rows, [("energy_top5", "e5"), ("alpha", "alpha")], path=tmp_path / "m.png")
    axes = np.array(fig.axes).reshape(2, len(cs.KERNELS))
    for row in axes:
        assert all(ax.get_ylim() == row[0].get_ylim() for ax in row)
    fig = cs.plot_conv_training(train, path=tmp_path / "t.png")
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "t.png").stat().st_size > 0


TINY_CONV_STUDY = {"methods": ["dense", "random", "snip"], "sparsities": [0.5, 0.9], "seeds": 1, "checkpoints": [2, 4],
                   "config": {"channels": 6, "depth": 1, "readout": "flatten", "steps": 4, "batch_size": 16,
                              "eval_every": 2, "n_train": 48, "n_eval": 24, "n_test": 24, "n_kernel": 6,
                              "K": 2}}


def test_conv_study_section_in_report(tmp_path):
    from gntk_fast.experiments.report import SCALES, _Run, _write_report, render_report
    from gntk_fast.experiments.sections import SECTIONS

    section = next(s for s in SECTIONS if s.name == "conv_study")
    run = _Run(tmp_path, "small", "digits", None, False, {**SCALES["small"], "conv_study": TINY_CONV_STUDY})
    section.run(run)
    path, claims = _write_report(run, finished=True)
    text = path.read_text()
    assert "## 8. Pruned conv nets: four kernels" in text
    for name in ("conv_study_training", "conv_study_metrics", "conv_study_correlations"):
        png = tmp_path / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"(figures/{name}.png)" in text
    ids = [c["id"] for c in claims]
    assert ids.count("CV4") == 4 and ids.count("CV5") == 4 and ids.count("CV7") == 1 and ids.count("CV8") == 1
    assert ids.count("CV6") == 4  # one per kernel
    assert ids.count("CV9") == 4 and ids.count("CV10") == 4  # one per kernel
    assert all("n=5 configurations" in c["numbers"] for c in claims if c["id"] in ("CV9", "CV10"))
    gen = run.tables["conv_study_generalisation"]
    assert len(gen) == 5 and all(r["test_loss"] > 0 for r in gen)
    assert "### Generalisation" in text and "24 examples of the same split" in text
    # one seed: the energy rise and the against-Random sign test are not measurable, and say so
    assert all(c["held"] is None and "fewer than 5 seeds" in c["numbers"] for c in claims if c["id"] == "CV4")
    assert all(c["held"] is None for c in claims if c["id"] in ("CV6", "CV8"))
    assert all("Graphon NTK" not in c["kernel"] for c in claims)
    assert render_report(tmp_path / "tables") == text  # rendered from the tables alone
    assert run.load_section("conv_study")  # a rerun with the same settings reuses the section
