"""empirical_ntk blocked over pairs of input tiles (``block``), written to a
memory-mapped .npy (``out``), with a progress bar (``progress``).

The oracle of the blocked results is the one-tile computation (``block`` >= N,
the unblocked kernel) and, once, the torch.func Jacobian reference. Sizes are
odd on purpose: no block size divides them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gntk_fast as gf
from gntk_fast.ntk import empirical as emp
from gntk_fast.ntk import empirical_ntk, empirical_ntk_reference


def make_model(k=3, widths=(13, 9), d=7, bias=True, dtype=torch.float64, density=0.4, seed=0):
    m = gf.MLP(d, list(widths), None, k, activation="relu", bias=bias, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    m.set_masks([torch.rand(w.shape, generator=g) < density for w in m.weights])
    return m


def inputs(n, d=7, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


def backends():
    return ["cpp", "naive"] if gf._backend.cpp_available() else ["naive"]


def mirrored(t, trace):
    return t.T if trace else t.permute(1, 0, 3, 2)


@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("backend", backends())
def test_blocked_equals_one_tile(trace, backend):
    """Every block size (1, one that divides nothing, larger than x2) gives the
    one-tile kernel to round-off, x2 None (exactly symmetric) and given."""
    m = make_model(k=3)
    x, y = inputs(37, seed=0), inputs(23, seed=1)
    for x2 in (None, y):
        ref = empirical_ntk(m, x, x2, trace=trace, backend=backend, block=1000)
        scale = float(ref.abs().max())
        for block in (1, 5, 10, 16, 30):
            got = empirical_ntk(m, x, x2, trace=trace, backend=backend, block=block)
            assert got.shape == ref.shape
            assert float((got - ref).abs().max()) <= 1e-13 * scale, (x2 is None, block)
            if x2 is None:
                assert torch.equal(got, mirrored(got, trace))  # exact, not to round-off


def test_blocked_matches_the_jacobian_reference_and_x2_blocks_match_x1_x1():
    """An independent oracle, and the blocked x1 != x2 kernel equals the
    corresponding rectangle of the symmetric kernel of the stacked inputs."""
    m = make_model(k=2, bias=False)
    x, y = inputs(19, seed=2), inputs(11, seed=3)
    got = empirical_ntk(m, x, y, trace=False, block=4)
    ref = empirical_ntk_reference(m, x, y, trace=False)
    assert float((got - ref).norm() / ref.norm()) < 1e-10
    both = empirical_ntk(m, torch.cat([x, y]), trace=False, block=6)
    assert float((both[:19, 19:] - got).abs().max()) <= 1e-13 * float(got.abs().max())
    assert float((both[19:, :19] - got.permute(1, 0, 3, 2)).abs().max()) <= 1e-13 * float(got.abs().max())


def test_blocked_per_layer_and_trainable_all():
    m = make_model(k=2, density=0.7)  # density > 1/2: the complement path of the C++ kernel
    x = inputs(21, seed=4)
    for trainable in ("mask", "all"):
        ref = empirical_ntk(m, x, trainable=trainable, per_layer=True, block=100)
        got = empirical_ntk(m, x, trainable=trainable, per_layer=True, block=8)
        assert len(got.per_layer) == len(m.layers)
        for a, b in zip(got.per_layer, ref.per_layer):
            assert float((a - b).abs().max()) <= 1e-13 * float(ref.kernel.abs().max())
            assert torch.equal(a, a.T)
        assert torch.equal(got.kernel, got.kernel.T)
        assert torch.allclose(sum(got.per_layer), got.kernel, rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trace", [True, False])
def test_out_writes_the_npy_atomically(tmp_path, dtype, trace):
    m = make_model(k=2, dtype=dtype)
    x = inputs(29, dtype=dtype, seed=5)
    ref = empirical_ntk(m, x, trace=trace, block=7)
    path = tmp_path / "sub" / "theta.npy"
    ret = empirical_ntk(m, x, trace=trace, block=7, out=str(path))
    assert ret == path
    assert [p.name for p in path.parent.iterdir()] == ["theta.npy"]  # no temporary file left
    arr = np.load(path, mmap_mode="r")
    assert arr.dtype == (np.float32 if dtype == torch.float32 else np.float64)
    assert arr.shape == tuple(ref.shape)
    assert np.array_equal(np.asarray(arr), ref.numpy())
    y = inputs(12, dtype=dtype, seed=6)
    empirical_ntk(m, x, y, trace=trace, block=5, out=path)  # overwrites
    assert np.array_equal(np.load(path), empirical_ntk(m, x, y, trace=trace, block=5).numpy())


def _raising_registry(monkeypatch, exc, fail_tile):
    """Make the layer kernel raise ``exc`` at the first layer of tile ``fail_tile`` (1-based)."""
    calls = {"n": 0}
    real = emp.ENTK_LAYER

    class Registry:
        names = real.names

        def __call__(self, backend, device, **call):
            impl = real(backend, device, **call)

            def layer_fn(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] == calls["per_tile"] * (fail_tile - 1) + 1:
                    raise exc
                return impl(*args, **kwargs)

            return layer_fn

    calls["per_tile"] = 3  # every layer of make_model() is masked (0 < kept < all): one kernel call each
    monkeypatch.setattr(emp, "ENTK_LAYER", Registry())
    return calls


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_interrupted_out_leaves_no_file(tmp_path, monkeypatch, exc):
    m = make_model(k=1)
    assert all(0 < int(mk.sum()) < mk.numel() for mk in m.masks)
    x = inputs(25, seed=7)
    path = tmp_path / "theta.npy"
    calls = _raising_registry(monkeypatch, exc, fail_tile=3)
    with pytest.raises(type(exc)):
        empirical_ntk(m, x, block=5, out=path)
    assert calls["n"] == 7  # it did fail inside the third tile
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")  # an existing file survives a failed rewrite untouched
    calls["n"] = 0
    with pytest.raises(type(exc)):
        empirical_ntk(m, x, inputs(9, seed=8), block=4, out=path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["theta.npy"]


def test_argument_errors_name_the_argument(tmp_path):
    m = make_model(k=1)
    x = inputs(6, seed=9)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="block"):
            empirical_ntk(m, x, block=bad)
    for bad in (2.5, True, "8"):
        with pytest.raises(TypeError, match="block"):
            empirical_ntk(m, x, block=bad)
    with pytest.raises(ValueError, match="out.*per_layer|per_layer.*out"):
        empirical_ntk(m, x, per_layer=True, out=tmp_path / "k.npy")
    with pytest.raises(ValueError, match="out"):
        empirical_ntk(m, x, out=tmp_path)  # an existing directory
    with pytest.raises(TypeError, match="out"):
        empirical_ntk(m, x, out=3)
    with pytest.raises(TypeError, match="progress"):
        empirical_ntk(m, x, progress="yes")
    with pytest.raises(ValueError, match="block"):
        emp.empirical_ntk_fn(m, block=0)
    assert list(tmp_path.iterdir()) == []
    fn = emp.empirical_ntk_fn(m, block=2)
    assert torch.allclose(fn(x), empirical_ntk(m, x, block=100), rtol=1e-13, atol=0)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_every_tile_s_signals_are_checked():
    """Inputs that overflow only in a later tile are named (x1 or x2) by the
    signal check of that tile, not only by the kernel's finiteness."""
    big = make_model(k=2, dtype=torch.float32)
    with torch.no_grad():
        for layer in big.layers:
            layer.weight.mul_(1e6)
    x = inputs(13, dtype=torch.float32, seed=10)
    assert torch.isfinite(empirical_ntk(big, x, block=4)).all()
    bad = x.clone()
    bad[11] *= 1e30
    with pytest.raises(ValueError, match="^x1: the network's activations"):
        empirical_ntk(big, bad, block=4)
    with pytest.raises(ValueError, match="^x2: the network's activations"):
        empirical_ntk(big, x, bad, block=4)
    with pytest.raises(ValueError, match="^x1: the network's activations"):
        empirical_ntk(big, bad, x, block=4)


def test_progress_bar(capfd):
    m = make_model(k=1)
    x = inputs(20, seed=11)
    empirical_ntk(m, x, block=2, progress=False)  # 55 tiles, bar off
    assert "eNTK tiles" not in capfd.readouterr().err
    empirical_ntk(m, x, block=10, progress=True)  # 3 tiles, bar forced on
    assert "eNTK tiles" in capfd.readouterr().err
    empirical_ntk(m, x, block=10)  # default: hidden below 16 tiles
    assert "eNTK tiles" not in capfd.readouterr().err


def test_default_block_budget():
    """The default tile keeps the estimated working set within 256 MiB; it is a
    multiple of 16 and shrinks with k^2 (full) and with per-layer terms."""
    m = gf.MLP(784, 1024, 4, 1, activation="relu", seed=0)
    b = emp.default_block(m)
    assert b % 16 == 0 and 1024 <= b <= 2048
    m10 = gf.MLP(784, 1024, 4, 10, activation="relu", seed=0)
    assert emp.default_block(m10, trace=False) < emp.default_block(m10)
    assert emp.default_block(m, per_layer=True) < b
    assert emp.default_block(m, dtype=torch.float64) < b
    tiny = emp.default_block(gf.MLP(3, 4, 1, 1))  # the output tiles dominate: 4 float32 B x B tiles
    assert 4 * 4 * tiny**2 <= 256 * 2**20 < 4 * 4 * (tiny + 32) ** 2
