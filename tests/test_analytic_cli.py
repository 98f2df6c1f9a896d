"""Tests of ``gntk-fast gntk`` (gntk_fast/cli/gntk.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import gntk_fast as gf
from gntk_fast.cli import main
from gntk_fast.graphon.objects import InputGraphon, StepGraphon
from gntk_fast.cli.gntk import graphons_from_estimates, named_graphon


def _fake_estimates(path, d=64, K=4):
    """An estimates.npz in the layout documented in gntk_fast/cli/graphon.py (M=2, W=2, L=2)."""
    rng = np.random.default_rng(0)
    widths = np.array([40, 80])
    edges = np.stack([np.floor(np.arange(K + 1) * w / K) / w for w in widths])
    np.savez(
        path,
        methods=np.array(["random", "synflow"]),
        widths=widths,
        layers=np.array([1, 2]),
        H=rng.random((2, 2, 2, K, K)),
        edges=edges,
        input_H=rng.random((2, 2, K, d)),
    )
    return path


def test_named_graphons():
    assert named_graphon("constant:0.25").evaluate(0.3, 0.9) == 0.25
    assert named_graphon("linear").evaluate(0.5, 0.5) == pytest.approx(0.15 + 0.7 * 0.25)
    assert named_graphon("linear:0.1,0.5").evaluate(1.0, 1.0) == pytest.approx(0.6)
    assert named_graphon("exp:0.5").evaluate(0.2, 0.7) == pytest.approx(np.exp(-1.0))
    for bad, msg in [("foo", "unknown name"), ("constant:2", "c must be <= 1"), ("linear:0.5,0.9", "stay in"), ("exp:-1", "S must be")]:
        with pytest.raises(ValueError, match=msg):
            named_graphon(bad)


def test_graphons_from_estimates(tmp_path):
    p = _fake_estimates(tmp_path / "estimates.npz")
    gs, info = graphons_from_estimates(tmp_path, "synflow", 40, "constant:0.5")
    assert info == {"method": "synflow", "width": 40}
    assert isinstance(gs[0], InputGraphon) and all(isinstance(g, StepGraphon) for g in gs[1:3]) and len(gs) == 4
    with np.load(p) as z:
        np.testing.assert_array_equal(gs[1].H, z["H"][1, 0, 0])
        np.testing.assert_array_equal(gs[0].row_edges, z["edges"][0])
    with pytest.raises(ValueError, match="method 'snip' not in"):
        graphons_from_estimates(p, "snip")
    with pytest.raises(ValueError, match="width 7 not in"):
        graphons_from_estimates(p, width=7)
    with pytest.raises(FileNotFoundError):
        graphons_from_estimates(tmp_path / "nope.npz")


def test_cli_named_graphons(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["gntk", "--graphons", "linear", "--depth", "2", "--n", "30", "--K", "16", "--out", str(out), "--save-kernel"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "decay exponent alpha" in text and "kernel-target alignment" in text
    assert (out / "spectrum.png").stat().st_size > 1000
    res = json.loads((out / "metrics.json").read_text())
    with np.load(out / "kernel.npz", allow_pickle=False) as z:
        theta, labels = z["theta"], z["labels"]
    # the saved kernel is the library's kernel on the same sample, and the metrics are its metrics
    x, y = gf.data.load("digits", split="test", n=30, seed=0)
    lin = named_graphon("linear")
    ref = gf.graphon_ntk([lin] * 3, x, K=16)
    np.testing.assert_allclose(theta, ref.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(labels, y.numpy())
    m = gf.spectral_metrics(ref, y=y)
    assert res["metrics"]["alpha"] == pytest.approx(m.alpha, rel=1e-9)
    assert res["metrics"]["alignment"] == pytest.approx(m.alignment, rel=1e-9)


def test_cli_estimates_and_lanczos(tmp_path, capsys):
    _fake_estimates(tmp_path / "estimates.npz")
    out = tmp_path / "o"
    rc = main(["gntk", "--estimates", str(tmp_path), "--method", "random", "--n", "25", "--eigs", "lanczos",
               "--n-eigs", "8", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "random @ width 80" in text and "partial spectrum" in text
    res = json.loads((out / "metrics.json").read_text())
    assert res["metrics"]["partial"] and len(res["metrics"]["eigenvalues"]) == 8
    assert res["metrics"]["condition_number"] is None


def test_cli_errors(tmp_path, capsys):
    assert main(["gntk", "--graphons", "bogus", "--out", str(tmp_path)]) == 2
    assert "unknown name" in capsys.readouterr().err
    assert main(["gntk", "--estimates", str(tmp_path / "missing.npz"), "--out", str(tmp_path)]) == 2
    assert main(["gntk", "--graphons", "linear", "--n", "0", "--out", str(tmp_path)]) == 2
    assert "n must be >= 1" in capsys.readouterr().err


def test_cli_on_real_graphon_estimates(tmp_path, capsys):
    """End to end: `gntk-fast graphon` writes estimates.npz, `gntk-fast gntk` reads it."""
    g = tmp_path / "g"
    rc = main(["graphon", "--methods", "random", "--widths", "30", "60", "--trials", "1", "--depth", "2", "--K", "4",
               "--data", "digits", "--no-progress", "--out", str(g)])
    assert rc == 0
    out = tmp_path / "k"
    assert main(["gntk", "--estimates", str(g), "--n", "20", "--out", str(out), "--save-kernel"]) == 0
    assert "random @ width 60" in capsys.readouterr().out
    gs, _ = graphons_from_estimates(g)
    x, _ = gf.data.load("digits", split="test", n=20, seed=0)
    with np.load(out / "kernel.npz", allow_pickle=False) as z:
        np.testing.assert_allclose(z["theta"], gf.graphon_ntk(gs, x).numpy(), rtol=1e-12)
    assert gs[0].d == 64 and len(gs) == 3
