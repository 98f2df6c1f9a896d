"""Bad input and faults: every case gives one clear error naming the argument or
file (the CLI: one line, exit 2), or works; long calls show progress.

Cases: corrupt .npz files (an unsupported zip feature, a member that is not a
.npy array, a header claiming more data than the file holds), huge integers,
a float64 x for float32 work, k > N, estimates outside [0, 1], a graphon
function of the wrong shape, save_estimates' errors, sweep grids too large to
expand, two runs on one directory, a scheduler without workers, missing
optional packages, and the thread policy of sweep tasks in Dask workers.
"""
from __future__ import annotations

import dataclasses
import io
import os
import sys
import zipfile

import numpy as np
import pytest
import torch

import gntk_fast as gf
from gntk_fast._io import load_npz
from gntk_fast.cli import main


# ------------------------------------------------------------------ .npz files
def _npz_with_member(path, name: str, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, payload)
    return path


def _npy_header(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _bad_compression(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(5))
    b = bytearray(good.read_bytes())
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # compression method in both headers
        b[b.find(sig) + off] = 99
    bad = tmp_path / "badzip.npz"
    bad.write_bytes(bytes(b))
    return bad


def _bad_version(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(5))
    b = bytearray(good.read_bytes())
    b[b.find(b"PK\x01\x02") + 6] = 99  # "version needed to extract" 9.9
    bad = tmp_path / "badver.npz"
    bad.write_bytes(bytes(b))
    return bad


def _encrypted(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(5))
    b = bytearray(good.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # the "encrypted" flag bit in both headers
        b[b.find(sig) + off] |= 1
    bad = tmp_path / "enc.npz"
    bad.write_bytes(bytes(b))
    return bad


@pytest.mark.parametrize("make, match", [
    (_bad_compression, "uses a zip feature that cannot be read"),
    (_encrypted, "uses a zip feature that cannot be read .*encrypted"),
    (_bad_version, "uses a zip feature that cannot be read"),
    (lambda t: _npz_with_member(t / "txt.npz", "a.txt", b"hello"), r"member 'a.txt' is not a .npy array"),
    (lambda t: _npz_with_member(t / "junk.npz", "a.npy", b"hello world, not an array"),
     r"member 'a.npy' is not a valid .npy array"),
    (lambda t: _npz_with_member(t / "huge.npz", "a.npy", _npy_header((10**6, 10**6)) + b"\0" * 64),
     r"claims shape \(1000000, 1000000\) of float64 \(8,000,000,000,000 bytes\) but holds only 64 bytes"),
    (lambda t: _npz_with_member(t / "short.npz", "a.npy", _npy_header((3, 4), "<i4") + b"\0" * 47),
     r"but holds only 47 bytes"),
])
def test_corrupt_npz_is_one_error_naming_the_file(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=match) as info:
        load_npz(path, "masks file")
    assert str(path) in str(info.value) and str(info.value).startswith("masks file")
    # every loader of the package reads through load_npz: the CLI reports it in one line, exit 2
    with pytest.raises(ValueError, match=match):
        gf.graphon.load_estimates(path)
    with pytest.raises(ValueError, match=match):
        gf.pruning.load_masks(path)


def test_corrupt_npz_on_the_command_line(tmp_path, capsys):
    path = _npz_with_member(tmp_path / "huge.npz", "a.npy", _npy_header((10**6, 10**6)) + b"\0" * 64)
    assert main(["graphon", "--masks", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "claims shape" in err and "Traceback" not in err


def test_exact_size_npz_still_loads(tmp_path):
    path = _npz_with_member(tmp_path / "ok.npz", "a.npy", _npy_header((3, 4), "<i4") + np.arange(12, dtype="<i4").tobytes())
    np.testing.assert_array_equal(load_npz(path)["a"], np.arange(12).reshape(3, 4))


# ------------------------------------------------------------------ huge integers
def _xy(n=6, d=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.arange(n) % 2


@pytest.mark.parametrize("call, name", [
    (lambda: gf.pai.design(*_xy(), 1, 0.5, steps=2**64), "steps"),
    (lambda: gf.pai.design(*_xy(), 2**64, 0.5, steps=1), "depth"),
    (lambda: gf.pai.design(*_xy(), 1, 0.5, K=2**64, steps=1), "K"),
    (lambda: gf.pai.design(*_xy(), 1, 0.5, T=2**64, steps=1, objective="loss"), "T"),
    (lambda: gf.prune(gf.MLP(3, 8, 1, seed=0), "synflow", 0.5, iterations=2**64), "iterations"),
    (lambda: gf.pai.path_density([0.5, 0.5], 2**64), "d"),
    (lambda: gf.predicted_loss(np.eye(4), np.ones(4), 0.1, 2**64), "steps"),
    (lambda: gf.graphon.cut_norm(np.ones((30, 30)), restarts=2**64), "restarts"),
    (lambda: gf.spectral_metrics(np.eye(3), k=2**64), "k"),
])
def test_huge_integers_are_refused_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must be <= \d+; got {2**64}"):
        call()


def test_one_integer_check_bounds_every_integer():
    from gntk_fast._validation import MAX_INT, check_int

    assert check_int("n", MAX_INT) == MAX_INT
    with pytest.raises(ValueError, match=r"^n must be <= "):
        check_int("n", MAX_INT + 1)  # no bound given: still bounded (an int64)


def test_design_needs_labels():
    x, _ = _xy()
    with pytest.raises(TypeError, match=r"^y must be given"):
        gf.pai.design(x, None, 1, 0.5, steps=1)
    with pytest.raises(ValueError, match=r"^x and y must hold the same number of samples"):
        gf.pai.design(x, torch.arange(5), 1, 0.5, steps=1)
    with pytest.raises(TypeError, match=r"^y must hold integer class labels"):
        gf.pai.design(x, torch.ones(6), 1, 0.5, steps=1)


def test_float64_data_for_a_float32_model_is_refused():
    m = gf.MLP(3, 8, 1, d_out=2, seed=0)
    x, y = _xy()
    with pytest.raises(TypeError, match=r"^data\[0\] \(x\) is torch.float64 but the computation is in torch.float32"):
        gf.train(m, (x, y), steps=1, progress=False)
    res = gf.train(m, (x.float(), y), steps=1, progress=False)  # converted by the caller: works
    assert res.loss.shape == (1,)
    # integer inputs are converted (no precision to lose)
    assert gf.train(m, (torch.ones(6, 3, dtype=torch.int64), y), steps=1, progress=False).loss.shape == (1,)


def test_spectral_k_larger_than_n_is_an_error():
    K = np.diag([3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"^k must be <= 3; got 4"):
        gf.spectral_metrics(K, k=4)
    assert gf.spectral_metrics(K).k == 3  # the default: min(5, N)
    assert gf.spectral_metrics(K, k=3).energy_concentration == pytest.approx(1.0)
    big = np.diag(np.arange(1.0, 31.0))
    with pytest.raises(ValueError, match=r"^k must be <= n_eigs = 10"):
        gf.spectral_metrics(big, k=12, method="lanczos", n_eigs=10)


@pytest.mark.parametrize("H", [np.full((3, 3), 1.5), np.full((3, 3), -0.1)])
def test_histogram_distance_refuses_values_outside_unit_interval(H):
    ok = np.full((3, 3), 0.5)
    with pytest.raises(ValueError, match=r"^H must hold values in \[0, 1\]"):
        gf.graphon.histogram_distance(H, ok)
    with pytest.raises(ValueError, match=r"^H_ref must hold values in \[0, 1\]"):
        gf.graphon.histogram_distance(ok, H)
    if H.min() >= 0:  # variance graphons: an explicit bound
        assert gf.graphon.histogram_distance(H, ok, max_value=np.inf) == pytest.approx(3.0)


def test_function_graphon_of_the_wrong_shape_is_an_error():
    u = np.linspace(0, 1, 4)[:, None]
    v = np.linspace(0, 1, 5)[None, :]
    g = gf.graphon.FunctionGraphon(lambda a, b: np.full(a.shape[0], 0.5))  # one value per row: (4,) not (4, 5)
    with pytest.raises(ValueError, match=r"fn returned shape \(4,\); it must return the inputs' shape \(4, 5\)"):
        g.evaluate(u, v)
    g = gf.graphon.FunctionGraphon(lambda a, b: np.full((4, 1), 0.5))  # broadcastable, still refused
    with pytest.raises(ValueError, match=r"fn returned shape \(4, 1\)"):
        g.evaluate(u, v)
    assert gf.graphon.FunctionGraphon(lambda a, b: 0.25).evaluate(u, v).tolist() == [[0.25] * 5] * 4
    assert gf.graphon.FunctionGraphon(lambda a, b: a * b).evaluate(u, v)[3, 4] == 1.0


def test_save_estimates_blames_the_wrong_array(tmp_path):
    m = np.random.default_rng(0).random((20, 12)) < 0.4
    e = gf.graphon.sas(m, K=4)
    bad = dataclasses.replace(e, H=e.H[:3])
    with pytest.raises(ValueError, match=r"estimates\[1\]\.H has shape \(3, 4\); expected \(4, 4\)"):
        gf.graphon.save_estimates([e, bad], tmp_path / "e.npz")
    bad = dataclasses.replace(e, H_raw=e.H_raw[:, :2])
    with pytest.raises(ValueError, match=r"estimates\[0\]\.H_raw has shape \(4, 2\)"):
        gf.graphon.save_estimates([bad], tmp_path / "e.npz")
    assert not (tmp_path / "e.npz").exists()
    gf.graphon.save_estimates([e, e], tmp_path / "e.npz")
    assert len(gf.graphon.load_estimates(tmp_path / "e.npz")) == 2


# ------------------------------------------------------------------ sweeps
def _grid(**over):
    g = {"kinds": ["masks_sas"], "methods": ["random"], "widths": [32], "trials": 2}
    g.update(over)
    return {"grid": g, "settings": {"K": 8, "seed": 0}}


def test_sweep_load_and_status_name_out():
    with pytest.raises(TypeError, match=r"^out must be the sweep's result directory"):
        gf.sweep.load(None)
    with pytest.raises(TypeError, match=r"^out must be"):
        gf.sweep.status(None)
    with pytest.raises(TypeError, match=r"^out must be"):
        gf.sweep.run(_grid(), None, scheduler="inline")


def test_huge_sweep_grid_is_refused_before_expansion(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"key 'grid.trials': must be an int in \[1, 100000\]"):
        gf.sweep.parse_config(_grid(trials=1_000_000_000))
    with pytest.raises(ValueError, match=r"key 'grid': spans 180,000 tasks \(1 kinds x 2 methods x 9 widths"):
        gf.sweep.parse_config(_grid(methods=["random", "magnitude"], widths=list(range(16, 25)), trials=10_000))
    cfg = gf.sweep.parse_config(_grid(widths=[16, 32, 64], trials=3))
    assert gf.sweep.count_tasks(cfg) == 9 == len(gf.sweep.expand(cfg))
    p = tmp_path / "c.toml"
    p.write_text('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\ntrials=1000000000\n')
    assert main(["sweep", str(p), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "grid.trials" in err


def test_two_runs_on_one_directory(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from gntk_fast.sweep.store import Store

    out = tmp_path / "d"
    with Store(out).lock():  # a first run holds the directory
        with pytest.raises(ValueError, match=rf"^out {out} is in use by another sweep run \(pid {os.getpid()}"):
            gf.sweep.run(_grid(), out, scheduler="inline", progress=False)
        p = tmp_path / "c.toml"
        p.write_text('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings]\nK=8\n')
        assert main(["sweep", str(p), "--out", str(out), "--scheduler", "inline", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "in use by another sweep run" in err
        assert not (out / "tasks").exists()  # nothing computed
    # once released (the first run ended), the directory is usable again
    report = gf.sweep.run(_grid(), out, scheduler="inline", progress=False)
    assert report.done == 2


def test_scheduler_without_workers_times_out(tmp_path):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("pyarrow")
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        addr = cluster.scheduler_address
        with pytest.raises(TimeoutError, match=rf"^scheduler {addr} has no worker after 0.5 s"):
            gf.sweep.run(_grid(), tmp_path / "d", scheduler=addr, worker_timeout=0.5, progress=False)


def test_missing_sweep_extra_names_it(tmp_path, monkeypatch, capsys):
    from gntk_fast._extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(MissingExtraError, match=r'pip install "gntk_fast\[sweep\]"'):
        gf.sweep.run(_grid(), tmp_path / "d", progress=False)
    p = tmp_path / "c.toml"
    p.write_text('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings]\nK=8\n')
    assert main(["sweep", str(p), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gntk_fast[sweep]" in err
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingExtraError, match=r"gntk_fast\[sweep\]"):
        gf.sweep.load(tmp_path / "d")


def test_sweep_tasks_in_any_dask_worker_run_single_threaded(monkeypatch):
    distributed = pytest.importorskip("distributed")
    import numba

    from gntk_fast._threads import thread_count
    from gntk_fast.sweep import runner

    assert runner._worker_threads() is None  # not in a worker: the process's own policy
    monkeypatch.setattr(distributed, "get_worker", lambda: object())  # an external worker, any thread count
    assert runner._worker_threads() == 1
    before = (torch.get_num_threads(), numba.get_num_threads(), os.environ.get("GNTK_NUM_THREADS"))
    with thread_count(1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert os.environ["GNTK_NUM_THREADS"] == "1"
        assert gf._threads.num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads(), os.environ.get("GNTK_NUM_THREADS")) == before


# ------------------------------------------------------------------ progress
def test_long_calls_take_a_progress_switch(capsys):
    x, y = _xy(8, 4)
    gf.pai.design(x, y, 1, 0.3, K=2, steps=3, progress=True)
    assert "design alignment" in capsys.readouterr().err
    gf.pai.design(x, y, 1, 0.3, K=2, steps=3)  # default: quiet when short
    assert "design" not in capsys.readouterr().err
    mask = np.random.default_rng(0).random((40, 30)) < 0.3
    gf.graphon.network_histogram(mask, progress=True)
    assert "network_histogram" in capsys.readouterr().err
    with pytest.raises(TypeError, match="^progress"):
        gf.graphon.network_histogram(mask, progress="yes")


def test_npz_fuzz_gives_value_error_or_arrays(tmp_path_factory):
    """Any byte of a valid .npz overwritten: load_npz returns arrays or raises ValueError naming the file."""
    from hypothesis import given, settings, strategies as st

    base = tmp_path_factory.mktemp("fuzz")
    good = base / "good.npz"
    np.savez(good, a=np.arange(6.0).reshape(2, 3), b=np.array([True, False]))
    blob = good.read_bytes()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), min_size=1, max_size=4))
    def check(edits):
        b = bytearray(blob)
        for i, v in edits:
            b[i] = v
        p = base / "f.npz"
        p.write_bytes(bytes(b))
        try:
            out = load_npz(p, "fuzzed file")
        except ValueError as exc:
            assert str(exc).startswith(f"fuzzed file {p}")
        else:
            assert all(isinstance(v, np.ndarray) for v in out.values())

    check()


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_entk_refuses_a_silent_downcast_of_the_inputs(kind):
    # float64 inputs on a float32 model: an error naming the argument, not a float32 kernel
    import gntk_fast as gf

    if kind == "mlp":
        net, x = gf.MLP(6, 8, 1, seed=0), torch.randn(3, 6, dtype=torch.float64)
    else:
        net, x = gf.ConvNet(1, 3, 1, 2, seed=0), torch.randn(3, 1, 5, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"x1 is torch.float64 .*\(dtype=torch.float64\)"):
        gf.empirical_ntk(net, x)
    with pytest.raises(TypeError, match=r"x2 is torch.float64"):
        gf.empirical_ntk(net, x.float(), x)
    assert gf.empirical_ntk(net, x, dtype=torch.float64).dtype == torch.float64


def test_synflow_recursion_shows_progress_and_bounds_iterations(capsys):
    import gntk_fast as gf
    from gntk_fast.pai.limit import synflow_recursion

    m = gf.MLP(6, 16, 2, seed=0)
    synflow_recursion(m, 0.3, iterations=3, progress=True)
    assert "synflow recursion" in capsys.readouterr().err
    with pytest.raises(ValueError, match="iterations"):
        synflow_recursion(m, 0.3, iterations=2**64)
    with pytest.raises(TypeError, match="progress"):
        synflow_recursion(m, 0.3, iterations=2, progress="yes")
