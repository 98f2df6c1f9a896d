"""The graphon convergence experiment, its files, figures and CLI; random vs SynFlow flatness."""
from __future__ import annotations

import json

import numpy as np
import pytest

import gntk_fast as gf
from gntk_fast.experiments.graphon_convergence import GraphonConvergence, graphon_convergence, trial_seed
from gntk_fast.graphon import InputGraphon, StepGraphon, sas


@pytest.fixture(scope="module")
def tiny():
    return graphon_convergence(
        ["random", "synflow"], [24, 16], sparsity=0.8, depth=3, trials=3, K=8, seed=1, data="digits",
        iterations=5, progress=False,
    )


def test_shapes_and_consistency(tiny):
    r = tiny
    assert gf.experiments.graphon_convergence is graphon_convergence
    assert r.widths == [16, 24] and r.layers == [1, 2] and r.methods == ["random", "synflow"]
    assert r.H.shape == (2, 2, 2, 8, 8) and r.H_trials.shape == (2, 2, 2, 3, 8, 8)
    assert r.input_H.shape == (2, 2, 8, 64) and r.input_density.shape == (2, 2, 64)
    np.testing.assert_allclose(r.H, r.H_trials.mean(axis=3))
    # distances to the widest width vanish there and are positive elsewhere
    assert np.all(r.hist[:, -1] == 0) and np.all(r.hist[:, 0] > 0)
    np.testing.assert_allclose(r.hist_norm, r.hist / 8)
    np.testing.assert_allclose(
        r.hist_trials[0, 0, 0], np.sqrt(((r.H_trials[0, 0, 0] - r.H[0, -1, 0]) ** 2).sum(axis=(1, 2)))
    )
    assert np.all(r.cut_exact)  # K = 8 <= 20
    assert np.all(r.cut[:, -1] == 0)
    # per-pixel density = weighted column mean of the input estimate
    w = np.diff(np.arange(9) * 16 // 8) / 16
    np.testing.assert_allclose(r.input_density[0, 0], w @ r.input_H[0, 0])
    # hom edge density of the averaged estimate equals the layer density
    np.testing.assert_allclose(r.hom[..., 0], r.density)


def test_reproduces_one_trial_by_hand(tiny):
    """Trial 0 of (synflow, width 16) rebuilt by hand from fc + prune + sas."""
    x, y = gf.data.pruning_batch("digits", seed=1)
    s = trial_seed(1, 16, 0)
    model = gf.fc(64, 16, 3, 10, seed=s)
    res = gf.prune(model, "synflow", 0.8, data=(x, y), iterations=5, compat="synaptic-flow", seed=s)
    masks = [m.numpy() for m in res.masks]
    np.testing.assert_array_equal(tiny.H_trials[1, 0, 1, 0], sas(masks[2], 8).H)
    assert trial_seed(1, 16, 0) != trial_seed(1, 16, 1) != trial_seed(2, 16, 1)


def test_npz_json_round_trip(tiny, tmp_path):
    p = tiny.to_npz(tmp_path / "est.npz")
    with np.load(p, allow_pickle=False) as z:
        assert {"methods", "widths", "layers", "H", "edges", "input_H", "hist", "cut", "K", "config_json"} <= set(z.files)
        assert int(z["K"]) == 8 and str(z["data"]) == "digits"
    back = GraphonConvergence.from_npz(p)
    for k in ("H", "H_trials", "input_H", "hist", "cut", "hom", "edges"):
        np.testing.assert_array_equal(getattr(back, k), getattr(tiny, k))
    assert back.config == tiny.config and back.methods == tiny.methods
    g = back.graphon("synflow", 16, 1)
    assert isinstance(g, StepGraphon) and g.K_out == 8
    assert g.integrate() == pytest.approx(tiny.density[1, 0, 0])
    ig = back.input_graphon("random", 24)
    assert isinstance(ig, InputGraphon) and ig.image().shape == (8, 8)
    np.testing.assert_allclose(ig.pixel_density(), tiny.input_density[0, 1])
    with pytest.raises(ValueError, match="width"):
        back.graphon("synflow", 17, 1)
    j = json.loads(tiny.to_json(tmp_path / "s.json").read_text())
    assert j["widths"] == [16, 24] and len(j["hist_trials_std"]) == 2


def test_no_trials_and_errors(tmp_path):
    r = graphon_convergence(["magnitude"], [8], 0.5, 2, 1, 4, 0, "digits", keep_trials=False, progress=False)
    assert r.H_trials is None and r.H.shape == (1, 1, 1, 4, 4)
    GraphonConvergence.from_npz(r.to_npz(tmp_path / "a.npz"))
    with pytest.raises(ValueError, match="K=9"):
        graphon_convergence(["random"], [8], 0.5, 2, 1, 9, 0, "digits", progress=False)
    with pytest.raises(ValueError, match="depth"):
        graphon_convergence(["random"], [8], 0.5, 1, 1, 4, 0, "digits", progress=False)
    with pytest.raises(ValueError, match="methods"):
        graphon_convergence(["prune-all"], [8], 0.5, 2, 1, 4, 0, "digits", progress=False)
    with pytest.raises(ValueError, match="sparsity"):
        graphon_convergence(["random"], [8], 1.0, 2, 1, 4, 0, "digits", progress=False)
    with pytest.raises(TypeError, match="data"):
        graphon_convergence(["random"], [8], 0.5, 2, 1, 4, 0, 3.0, progress=False)


def test_plots_and_cli(tiny, tmp_path):
    from PIL import Image

    from gntk_fast import plots
    from gntk_fast.cli import main
    from gntk_fast.cli.graphon import write_outputs

    paths = write_outputs(tiny, tmp_path / "figs")
    names = {p.name for p in paths}
    assert {"estimates.npz", "summary.json", "estimates_layer1.png", "distance_layer2.png", "input_density.png"} <= names
    for p in paths:
        if p.suffix == ".png":
            assert Image.open(p).size[0] > 200
    fig = plots.plot_estimate_grid(tiny, 2)
    labels = [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
    assert any("layer 2 (inputs, columns)" in s for s in labels) and any("layer 3 (outputs, rows)" in s for s in labels)
    with pytest.raises(ValueError, match="layer"):
        plots.plot_estimate_grid(tiny, 5)
    with pytest.raises(ValueError, match="metric"):
        plots.plot_distance_curves(tiny, metric="l7")
    # the cut norm axis says when the values are only lower bounds (K > 20)
    assert "lower bound" not in plots.plot_distance_curves(tiny, 1, "cut").axes[0].get_ylabel()
    import dataclasses

    bound = dataclasses.replace(tiny, cut_exact=np.zeros_like(tiny.cut_exact))
    assert "lower bound" in plots.plot_distance_curves(bound, 1, "cut").axes[0].get_ylabel()
    with pytest.raises(ValueError, match="png"):
        plots.save_figure(fig, tmp_path / "x.pdf")
    f1 = plots.plot_estimate(sas(np.eye(8, dtype=bool), 4), layer=1)
    assert f1.axes[0].get_xlabel().startswith("layer 1")

    out = tmp_path / "cli"
    rc = main(["graphon", "--methods", "random", "--widths", "8", "12", "--depth", "2", "--trials", "2", "--K", "4",
               "--data", "digits", "--no-progress", "--out", str(out)])
    assert rc == 0
    r = GraphonConvergence.from_npz(out / "estimates.npz")
    assert r.widths == [8, 12] and r.H.shape == (1, 2, 1, 4, 4)
    assert (out / "input_density.png").exists() and (out / "cut_layer1.png").exists()
    assert main(["graphon", "--widths", "3", "--K", "4", "--data", "digits", "--out", str(out)]) == 2


@pytest.fixture(scope="module")
def width1000_masks():
    """fc(64 -> 1000 -> 1000 -> 10) pruned to 90% sparsity (Synaptic-Flow semantics, global scope)."""
    x, y = gf.data.pruning_batch("digits", seed=0)
    out = {}
    for method in ("random", "synflow"):
        model = gf.fc(64, 1000, 2, 10, seed=0)
        res = gf.prune(model, method, 0.9, data=(x, y), compat="synaptic-flow", seed=0)
        out[method] = res.masks[1].numpy()  # the hidden-to-hidden layer (1000 x 1000)
    return out


def block_z(mask, K=64):
    """|H - d| / binomial SD of every SAS block, d = the layer's density."""
    est = sas(mask, K)
    d = mask.mean()
    return np.abs(est.H - d) / np.sqrt(d * (1 - d) / est.block_sizes())


def test_random_flat_synflow_not(width1000_masks):
    """Every block within 5 binomial SDs for random, not for SynFlow.

    Caveat (measured): at n = 1000, K = 64, d = 0.1 the max over 4096 blocks of
    an Erdos-Renyi mask's z exceeds 5 in about half of the seeds (skewed
    binomial tails plus the degree-sorting bias of the corner blocks), so this
    literal check is seed-dependent (seed 0: 4.95); the calibrated test below
    is the robust form.
    """
    z_random = block_z(width1000_masks["random"]).max()
    z_synflow = block_z(width1000_masks["synflow"]).max()
    assert z_random < 5
    assert z_synflow > 5


def test_random_matches_erdos_renyi_null_synflow_does_not(width1000_masks):
    """Calibrated: the mean block |z| of random pruning matches Erdos-Renyi masks of the
    same density (SAS sorting bias included); SynFlow's is several times larger."""
    d = width1000_masks["random"].mean()
    null = np.array([block_z(gf.graphon.ConstantGraphon(d).sample(1000, 1000, seed=s)).mean() for s in range(6)])
    z_random = block_z(width1000_masks["random"]).mean()
    z_synflow = block_z(width1000_masks["synflow"]).mean()
    assert abs(z_random - null.mean()) < 0.1  # null: ~0.96 +- 0.01
    assert z_synflow > 3 * null.mean()  # measured ~5.7


def test_mnist_input_layer_is_28x28(mnist_dir):
    r = graphon_convergence(["synflow"], [16], 0.9, 2, 2, 4, 0, "mnist", data_dir=mnist_dir, iterations=3, progress=False)
    assert r.config["image_shape"] == [28, 28] and r.input_density.shape == (1, 1, 784)
    assert r.input_graphon("synflow", 16).image().shape == (28, 28)
    assert 0 < r.input_density.mean() < 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(widths=[8, 2**40]), "^widths must be <="),
        (dict(depth=2**64), "^depth must be <="),
        (dict(K=2**20), "^K must be <="),
        (dict(seed=2**64), "^seed must be <="),
        (dict(seed=None), "^seed must be an int"),
        # every size allowed on its own, the per-trial estimates (8 x T x K^2 bytes) cannot fit
        (dict(widths=[1 << 16], K=1 << 16, trials=1 << 20), "per-trial estimates"),
    ],
)
def test_sizes_bounded_before_any_model_is_built(kwargs, match):
    args = dict(methods=["random"], widths=[8], depth=2, trials=1, K=2, progress=False) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        graphon_convergence(**args)
