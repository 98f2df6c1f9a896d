"""Loaders of every file the package reads: masks, SAS estimates, convergence
estimates (library and ``gntk-fast gntk``), through the library and the CLI.

Each unreadable file (empty, truncated, corrupt, not a zip, pickled) must give
ONE clear error naming the file, never numpy's pickle hint or a traceback;
each readable file with invalid content a ValueError naming the file and the
field or layer.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gntk_fast.cli import main
from gntk_fast.cli.gntk import graphons_from_estimates
from gntk_fast.experiments.graphon_convergence import GraphonConvergence
from gntk_fast.graphon import load_estimates, sas, sas_trials, save_estimates
from gntk_fast.pruning import load_masks


# ------------------------------------------------------------------ fixtures
def _masks(seed=0):
    rng = np.random.default_rng(seed)
    return {"layer0": rng.random((12, 16)) < 0.5, "layer1": rng.random((12, 12)) < 0.5,
            "layer2": rng.random((3, 12)) < 0.5}


def _convergence(M=1, W=2, L=1, T=2, K=2, d=4) -> GraphonConvergence:
    rng = np.random.default_rng(1)
    widths = [4, 8][:W]
    return GraphonConvergence(
        methods=["random", "synflow"][:M], widths=widths, layers=list(range(1, L + 1)),
        H=rng.random((M, W, L, K, K)), H_trials=rng.random((M, W, L, T, K, K)), input_H=rng.random((M, W, K, d)),
        input_density=rng.random((M, W, d)), edges=np.stack([np.arange(K + 1) * w // K / w for w in widths]),
        density=rng.random((M, W, L)), hist=rng.random((M, W, L)), hist_norm=rng.random((M, W, L)),
        hist_trials=rng.random((M, W, L, T)), cut=rng.random((M, W, L)), cut_exact=np.ones((M, W, L), bool),
        degree_rows=rng.random((M, W, L)), degree_cols=rng.random((M, W, L)), hom=rng.random((M, W, L, 5)),
        config={"sparsity": 0.9, "depth": L + 1, "trials": T, "K": K, "seed": 0, "data": "digits", "d_in": d,
                "image_shape": [2, 2]},
    )


def _unreadable(tmp_path, valid_path):
    """name -> path of an unreadable variant of the valid .npz file."""
    blob = valid_path.read_bytes()
    files = {}
    files["empty"] = tmp_path / "empty.npz"
    files["empty"].write_bytes(b"")
    files["truncated"] = tmp_path / "truncated.npz"
    files["truncated"].write_bytes(blob[: len(blob) // 2])
    corrupt = bytearray(blob)
    for i in range(60, 90):  # inside the first member's compressed data
        corrupt[i] ^= 0xFF
    files["corrupt"] = tmp_path / "corrupt.npz"
    files["corrupt"].write_bytes(bytes(corrupt))
    files["not a zip"] = tmp_path / "text.npz"
    files["not a zip"].write_text("layer0 = [[1, 0], [0, 1]]\n")
    files["pickled"] = tmp_path / "pickled.npz"
    np.savez(files["pickled"], layer0=np.array([{"a": 1}, None], dtype=object), n_layers=np.array([None], dtype=object))
    return files


def _one_line_error(capsys, path):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(path) in err and "allow_pickle" not in err and "unsafely" not in err, err
    return err


# --------------------------------------------------------------- load_masks
def test_load_masks_accepts_bool_and_01_numbers(tmp_path):
    m = _masks()
    np.savez(tmp_path / "b.npz", **m)
    np.savez(tmp_path / "i.npz", **{k: v.astype(np.int8) for k, v in m.items()})
    np.savez(tmp_path / "f.npz", **{k: v.astype(np.float32) for k, v in m.items()})
    for name in ("b", "i", "f"):
        got = load_masks(tmp_path / f"{name}.npz")
        assert [t.dtype for t in got] == [torch.bool] * 3
        for k, t in zip(sorted(m), got):
            np.testing.assert_array_equal(t.numpy(), m[k])


@pytest.mark.parametrize("arrays, match", [
    ({"layer0": np.array([[0, 2], [1, 0]])}, "layer0 holds values other than 0 and 1"),
    ({"layer0": np.array([[0.5, 1.0]])}, "layer0 holds values other than 0 and 1"),
    ({"layer0": np.array([[np.nan, 1.0]])}, "layer0 holds values other than 0 and 1"),
    ({"layer0": np.array(["1", "0"])}, "layer0 must be 2-D"),
    ({"layer0": np.array([["1", "0"]])}, "layer0 must hold 0/1 values"),
    ({"layer0": np.ones(4, bool)}, r"layer0 must be 2-D \(n_out, n_in\); got shape \(4,\)"),
    ({"layer0": np.ones((2, 2, 2), bool)}, "layer0 must be 2-D"),
    ({"weights": np.ones((2, 2), bool)}, "holds no layer arrays"),
    ({"layer0": np.ones((3, 2), bool), "layer2": np.ones((2, 3), bool)}, "consecutive"),
    ({"layer1": np.ones((3, 2), bool)}, "consecutive"),
    ({"layer0": np.ones((3, 2), bool), "layer01": np.ones((2, 3), bool)}, "consecutive"),
    ({"layer0": np.ones((3, 2), bool), "layer1": np.ones((4, 5), bool)},
     "shapes do not chain: layer0 has n_out=3 but layer1 has n_in=5"),
])
def test_load_masks_rejects_invalid_content(tmp_path, arrays, match):
    p = tmp_path / "m.npz"
    np.savez(p, **arrays)
    with pytest.raises(ValueError, match=match) as info:
        load_masks(p)
    assert str(p) in str(info.value)


def test_load_masks_unreadable_files(tmp_path, capsys):
    valid = tmp_path / "valid.npz"
    np.savez_compressed(valid, **_masks())
    for kind, p in _unreadable(tmp_path, valid).items():
        with pytest.raises(ValueError) as info:
            load_masks(p)
        msg = str(info.value)
        assert str(p) in msg and "allow_pickle" not in msg, (kind, msg)
        assert main(["graphon", "--masks", str(p), "--out", str(tmp_path / "o")]) == 2, kind
        _one_line_error(capsys, p)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_masks(tmp_path / "missing.npz")
    assert main(["graphon", "--masks", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "is a directory" in _one_line_error(capsys, tmp_path)


def test_graphon_masks_mode_rejects_non_binary_masks_via_cli(tmp_path, capsys):
    p = tmp_path / "m.npz"
    np.savez(p, layer0=np.full((4, 4), 3, np.int64))
    assert main(["graphon", "--masks", str(p), "--K", "2", "--out", str(tmp_path / "o")]) == 2
    assert "layer0 holds values other than 0 and 1" in _one_line_error(capsys, p)
    assert not (tmp_path / "o" / "mask_estimates.npz").exists()


# ---------------------------------------------------------- load_estimates
@pytest.fixture()
def estimates_file(tmp_path):
    rng = np.random.default_rng(2)
    m1 = rng.random((20, 16)) < 0.3
    tr = sas_trials([rng.random((10, 20)) < 0.6 for _ in range(3)], K=4)
    ests = [sas(m1, 5, sort_cols=False), tr]
    return save_estimates(ests, tmp_path / "e.npz"), ests


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("changes, match", [
    ({"H0": None}, "lacks 'H0'"),
    ({"n_layers": np.array(0)}, "n_layers must be >= 1"),
    ({"n_layers": np.array(3)}, "lacks 'shape2'"),
    ({"n_layers": np.array([2])}, "n_layers must be a scalar"),
    ({"shape0": np.array([20, 0])}, "shape0 must be two positive ints"),
    ({"shape0": np.array([20.0, 16.0])}, "shape0 has dtype float64"),
    ({"n_trials1": np.array(0)}, "n_trials1 must be >= 1"),
    ({"sort_cols0": np.array(1)}, "sort_cols0 has dtype int64"),
    ({"smooth0": np.array(-1.0)}, "smooth0 must be NaN"),
    ({"H0": np.full((5, 16), 1.5)}, "H0 must hold values in"),
    ({"H0": np.full((5, 16), np.nan)}, "H0 must hold values in"),
    ({"H0": np.zeros((5, 16), np.int64)}, "H0 has dtype int64"),
    ({"H0": np.zeros((21, 16))}, r"H0 has shape \(21, 16\); expected \(5, 16\)"),
    ({"H_raw0": np.zeros((5, 15))}, "H_raw0 has shape"),
    ({"row_edges0": np.array([0, 4, 8, 12, 16, 19])}, "row_edges0 must increase strictly from 0 to 20"),
    ({"row_edges0": np.array([0, 4, 4, 12, 16, 20])}, "row_edges0 must increase strictly"),
    ({"row_edges0": np.array([0, 10, 20])}, "row_edges0 has shape"),
    ({"row_perm0": np.zeros(20, np.int64)}, r"row_perm0 is not a permutation of range\(20\)"),
    ({"col_perm0": np.arange(15)}, "col_perm0 has shape"),
    ({"row_perm1": np.arange(10)}, r"row_perm1 has shape \(10,\); expected \(3, 10\)"),
    ({"row_degrees0": np.full(20, 17)}, r"row_degrees0 must lie in \[0, 16\]"),
    ({"col_degrees1": np.zeros((2, 20), np.int64)}, "col_degrees1 has shape"),
    ({"H_trials1": np.zeros((2, 4, 4))}, r"H_trials1 has shape \(2, 4, 4\); expected \(3, 4, 4\)"),
])
def test_load_estimates_validates_every_field(estimates_file, changes, match):
    path, _ = estimates_file
    _rewrite(path, **changes)
    with pytest.raises(ValueError, match=match) as info:
        load_estimates(path)
    assert str(path) in str(info.value)


def test_load_estimates_round_trip_and_unreadable(estimates_file, tmp_path, capsys):
    path, ests = estimates_file
    back = load_estimates(path)
    np.testing.assert_array_equal(back[1].H_trials, ests[1].H_trials)
    np.testing.assert_array_equal(back[0].col_perm, np.arange(16))
    assert back[1].row_perm.shape == (3, 10) and back[0].sort_cols is False
    for kind, p in _unreadable(tmp_path, path).items():
        with pytest.raises(ValueError) as info:
            load_estimates(p)
        assert str(p) in str(info.value) and "allow_pickle" not in str(info.value), kind
    with pytest.raises(ValueError, match="non-empty"):
        save_estimates([], tmp_path / "none.npz")
    assert not (tmp_path / "none.npz").exists()


# ---------------------------------------------- GraphonConvergence.from_npz
def test_from_npz_round_trip(tmp_path):
    gc = _convergence()
    back = GraphonConvergence.from_npz(gc.to_npz(tmp_path / "est.npz"))
    assert back.methods == gc.methods and back.widths == gc.widths and back.layers == gc.layers
    assert back.config == gc.config
    for k in ("H", "H_trials", "input_H", "edges", "hist_trials", "cut_exact", "hom"):
        np.testing.assert_array_equal(getattr(back, k), getattr(gc, k))
    gc.H_trials = None
    assert GraphonConvergence.from_npz(gc.to_npz(tmp_path / "nt.npz")).H_trials is None


@pytest.mark.parametrize("changes, match", [
    ({"H": None}, "lacks 'H'"),
    ({"config_json": None}, "lacks 'config_json'"),
    ({"config_json": np.array("[1, 2")}, "config_json must be a JSON object"),
    ({"methods": np.array([1, 2])}, "methods must be a 1-D array"),
    ({"widths": np.array([8, 4])}, "widths positive and increasing"),
    ({"H": np.zeros((1, 2, 1, 2, 3))}, r"H has shape \(1, 2, 1, 2, 3\); expected \(1, 2, 1, 2, 2\)"),
    ({"H": np.full((1, 2, 1, 2, 2), 2.0)}, r"H must hold values in \[0, 1\]"),
    ({"layers": np.array([1, 2])}, "layers has shape"),
    ({"edges": np.array([[0, 0.5, 1], [0, 0.5, 0.9]])}, "every row of edges must increase strictly from 0 to 1"),
    ({"input_H": np.zeros((1, 3, 2, 4))}, "input_H has shape"),
    ({"input_density": np.zeros((1, 2, 5))}, "input_density has shape"),
    ({"hist_trials": np.zeros((1, 2, 1, 3))}, "H_trials has shape"),
    ({"cut_exact": np.zeros((1, 2, 1))}, "cut_exact has dtype float64"),
    ({"hom": np.zeros((1, 2, 1, 4))}, "hom has shape"),
])
def test_from_npz_validates(tmp_path, changes, match):
    p = _rewrite(_convergence().to_npz(tmp_path / "est.npz"), **changes)
    with pytest.raises(ValueError, match=match) as info:
        GraphonConvergence.from_npz(p)
    assert str(p) in str(info.value)


def test_estimates_readers_on_unreadable_files(tmp_path, capsys):
    valid = _convergence().to_npz(tmp_path / "valid.npz")
    for kind, p in _unreadable(tmp_path, valid).items():
        for read in (GraphonConvergence.from_npz, graphons_from_estimates):
            with pytest.raises(ValueError) as info:
                read(p)
            assert str(p) in str(info.value) and "allow_pickle" not in str(info.value), (kind, read)
        assert main(["gntk", "--estimates", str(p), "--out", str(tmp_path / "o")]) == 2, kind
        _one_line_error(capsys, p)
    assert main(["gntk", "--estimates", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, tmp_path / "missing.npz")


def test_gntk_estimates_reader_validates_what_it_reads(tmp_path, capsys):
    p = _rewrite(_convergence().to_npz(tmp_path / "est.npz"), input_H=np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="input_H has shape"):
        graphons_from_estimates(p)
    assert main(["gntk", "--estimates", str(p), "--n", "5", "--out", str(tmp_path / "o")]) == 2
    assert "input_H has shape (1, 2, 3, 4)" in _one_line_error(capsys, p)
    assert not (tmp_path / "o").exists()
    # only the five keys the reader uses are required (no config_json, no distances)
    q = tmp_path / "min.npz"
    gc = _convergence()
    np.savez(q, methods=np.array(gc.methods), widths=np.array(gc.widths), H=gc.H, edges=gc.edges, input_H=gc.input_H)
    gs, info = graphons_from_estimates(q)
    assert info == {"method": "random", "width": 8} and len(gs) == 3
    np.testing.assert_array_equal(gs[1].H, gc.H[0, 1, 0])
