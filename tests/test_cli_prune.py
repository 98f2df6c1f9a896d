"""``gntk-fast prune``: masks, report, flags and argument errors."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from gntk_fast.cli import main


def _load(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_synflow_command_keeps_exactly_ten_percent(tmp_path, capsys):
    out = tmp_path / "m.npz"
    rc = main(["prune", "--method", "synflow", "--sparsity", "0.9", "--width", "256", "--depth", "4",
               "--out", str(out), "--quiet"])
    assert rc == 0
    masks = _load(out)
    assert sorted(masks) == [f"layer{i}" for i in range(5)]
    assert [masks[f"layer{i}"].shape for i in range(5)] == [(256, 64), (256, 256), (256, 256), (256, 256), (10, 256)]
    assert all(m.dtype == bool for m in masks.values())
    n = sum(m.size for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == round(0.1 * n)
    rep = json.loads((tmp_path / "m.json").read_text())
    assert rep["total"]["kept"] == kept and rep["total"]["weights"] == n
    assert rep["config"]["method"] == "synflow" and rep["config"]["iterations"] == 100
    assert rep["config"]["input_dim"] == 64 and rep["config"]["depth"] == 4
    assert [e["kept"] for e in rep["layers"]] == [int(masks[f"layer{i}"].sum()) for i in range(5)]
    assert "m.npz" in capsys.readouterr().out


def test_compat_compression_layerwise_mlp_and_determinism(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    args = ["prune", "--model", "mlp", "--method", "random", "--compression", "1", "--width", "32", "--depth", "2",
            "--scope", "layerwise", "--compat", "synaptic-flow", "--seed", "3", "--quiet"]
    assert main(args + ["--out", str(a)]) == 0
    assert main(args + ["--out", str(b)]) == 0
    ma, mb = _load(a), _load(b)
    assert all(np.array_equal(ma[k], mb[k]) for k in ma)
    for m in ma.values():  # reference rule per layer: N - int((1 - 0.1) N) kept (continuous scores)
        assert int(m.sum()) == m.size - int((1 - 10**-1.0) * m.size)
    c = tmp_path / "c.npz"
    assert main(args[:-3] + ["--seed", "4", "--quiet", "--out", str(c)]) == 0
    assert not all(np.array_equal(ma[k], _load(c)[k]) for k in ma)


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_data_driven_methods_on_digits(tmp_path, method):
    out = tmp_path / "s.npz"
    assert main(["prune", "--method", method, "--sparsity", "0.8", "--width", "24", "--depth", "2",
                 "--out", str(out), "--quiet"]) == 0
    masks = _load(out)
    n = sum(m.size for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round((1 - 0.8) * n)
    assert masks["layer0"].shape == (24, 64)


def test_mnist_input_width(tmp_path, mnist_dir):
    out = tmp_path / "mn.npz"
    with warnings.catch_warnings():  # the shared directory may hold only the test split
        warnings.simplefilter("ignore", UserWarning)
        rc = main(["prune", "--method", "snip", "--sparsity", "0.9", "--width", "16", "--depth", "1",
                   "--data", "mnist", "--data-dir", str(mnist_dir), "--out", str(out), "--quiet"])
    assert rc == 0
    assert _load(out)["layer0"].shape == (16, 784)


def test_shuffle_and_invert_flags(tmp_path):
    base = ["prune", "--method", "magnitude", "--sparsity", "0.5", "--width", "16", "--depth", "1", "--quiet"]
    p, s, i = tmp_path / "p.npz", tmp_path / "s.npz", tmp_path / "i.npz"
    assert main(base + ["--out", str(p)]) == 0
    assert main(base + ["--shuffle", "--out", str(s)]) == 0
    assert main(base + ["--invert", "--out", str(i)]) == 0
    mp, ms, mi = _load(p), _load(s), _load(i)
    assert [int(m.sum()) for m in mp.values()] == [int(m.sum()) for m in ms.values()]
    assert not np.array_equal(mp["layer0"], ms["layer0"])
    # magnitude at 50%, inverted: the complement (no ties among continuous weights)
    n = sum(m.size for m in mp.values())
    assert sum(int((a & b).sum()) for a, b in zip(mp.values(), mi.values())) == 0
    assert sum(int(m.sum()) for m in mi.values()) == round(0.5 * n)


def test_bad_input_and_help(tmp_path, capsys):
    assert main(["prune", "--method", "synflow", "--sparsity", "1.5", "--width", "8", "--depth", "1",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "sparsity" in capsys.readouterr().err
    assert main(["prune", "--method", "synflow", "--sparsity", "0.5", "--compression", "1"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["prune", "--method", "obd", "--sparsity", "0.5"]) == 2
    assert "invalid choice: 'obd'" in capsys.readouterr().err
    assert main(["prune", "--help"]) == 0
    text = capsys.readouterr().out
    assert "gntk-fast prune --method synflow --sparsity 0.9" in text and "--depth" in text
