"""sas_layers, save/load of estimates, and the `gntk-fast graphon --masks` mode."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import gntk_fast as gf
from gntk_fast.graphon import InputGraphon, load_estimates, sas, sas_layers, sas_trials, save_estimates


@pytest.fixture(scope="module")
def pruned():
    model = gf.fc(64, 40, 2, 10, seed=3)
    return gf.prune(model, "synflow", 0.8, iterations=4, compat="synaptic-flow", seed=3)


def test_sas_layers(pruned):
    ests = sas_layers(pruned, K=16)
    assert [e.shape for e in ests] == [(40, 64), (40, 40), (10, 40)]
    # input layer: columns in pixel order, one block per pixel
    assert not ests[0].sort_cols and ests[0].K_in == 64
    np.testing.assert_array_equal(ests[0].col_perm, np.arange(64))
    assert isinstance(ests[0].to_graphon(), InputGraphon)
    # K clamped on the 10-row output layer
    assert (ests[2].K_out, ests[2].K_in) == (10, 16)
    for e, m in zip(ests, pruned.masks):
        assert e.density() == pytest.approx(m.float().mean().item())
    np.testing.assert_array_equal(ests[1].H, sas(pruned.masks[1].numpy(), 16).H)
    assert sas_layers([m.numpy() for m in pruned.masks], K=16, input_layer=False)[0].sort_cols
    with pytest.raises(ValueError, match="masks"):
        sas_layers([])
    with pytest.raises(ValueError, match=r"masks\[0\]"):
        sas_layers([np.ones(3)])


def test_save_load_round_trip(pruned, tmp_path):
    # the smoothing weight is part of the round trip where scikit-image can smooth
    smooth = 0.1 if importlib.util.find_spec("skimage") is not None else None
    ests = sas_layers(pruned, K=8, smooth=smooth)
    tr = sas_trials([m.numpy() for m in (pruned.masks[1], pruned.masks[1])], K=8)
    path = save_estimates([*ests, tr], tmp_path / "e.npz")
    back = load_estimates(path)
    assert len(back) == 4
    for a, b in zip([*ests, tr], back):
        for f in ("H", "H_raw", "row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert (a.shape, a.sort_cols, a.smooth, a.n_trials) == (b.shape, b.sort_cols, b.smooth, b.n_trials)
    np.testing.assert_array_equal(back[3].H_trials, tr.H_trials)
    assert back[0].smooth == smooth and back[3].smooth is None
    with np.load(path, allow_pickle=False) as z:
        assert int(z["n_layers"]) == 4
    np.savez(tmp_path / "bad.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="n_layers"):
        load_estimates(tmp_path / "bad.npz")
    with pytest.raises(TypeError, match="estimates"):
        save_estimates([1], tmp_path / "x.npz")


def test_cli_masks_mode(pruned, tmp_path):
    from gntk_fast.cli import main

    src = pruned.save_npz(tmp_path / "masks.npz")
    out = tmp_path / "out"
    assert main(["graphon", "--masks", str(src), "--K", "8", "--out", str(out)]) == 0
    ests = load_estimates(out / "mask_estimates.npz")
    np.testing.assert_array_equal(ests[1].H, sas(pruned.masks[1].numpy(), 8).H)
    assert (out / "mask_estimates.png").stat().st_size > 1000 and (out / "input_density.png").exists()
    assert main(["graphon", "--masks", str(tmp_path / "nope.npz"), "--out", str(out)]) == 2
    np.savez(tmp_path / "wrong.npz", w=np.ones((2, 2), bool))
    assert main(["graphon", "--masks", str(tmp_path / "wrong.npz"), "--out", str(out)]) == 2
