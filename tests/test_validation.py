"""The shared argument checks (gntk_fast._validation), the JSON cleaning step, the log-log
slope and the lazy package attributes: each accepts what it documents and names the
argument when it refuses."""
from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast._io import clean, jsonable
from gntk_fast._lazy import lazy_attributes
from gntk_fast._validation import (
    FLOAT_DTYPES,
    MAX_KERNEL,
    ArgumentTypeError,
    check_batch,
    check_dtype,
    check_float_dtype,
    check_odd_size,
    check_pair,
    check_path,
    check_permutation,
    check_sizes,
    check_xy,
    finite_array,
)
from gntk_fast.spectral import loglog_slope

CPU = torch.device("cpu")


# ----------------------------------------------------------------- dtypes
def test_check_dtype_accepts_the_listed_dtypes_and_names_the_argument():
    m = torch.ones(2, 2, dtype=torch.bool)
    assert check_dtype("mask", m, (torch.bool,)) is m
    with pytest.raises(ArgumentTypeError, match=r"^mask must have dtype bool \(True = kept weight\); got torch.uint8"):
        check_dtype("mask", m.to(torch.uint8), (torch.bool,), "True = kept weight")
    with pytest.raises(TypeError, match=r"^D1 must have dtype float32 or float64; got torch.float16"):
        check_dtype("D1", torch.ones(1, dtype=torch.float16), FLOAT_DTYPES)


def test_check_float_dtype():
    assert check_float_dtype("dtype", torch.float32) is torch.float32
    assert check_float_dtype("dtype", None) is torch.get_default_dtype()
    for bad in (torch.float16, torch.int64, "float32", 32):
        with pytest.raises(ValueError, match=r"^dtype must be torch.float32, torch.float64 or None"):
            check_float_dtype("dtype", bad)
    with pytest.raises(ValueError, match=r"^synflow_dtype must be torch.float32, torch.float64; got None"):
        check_float_dtype("synflow_dtype", None, allow_none=False)


# ----------------------------------------------------------------- permutations, sizes
@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(7))))
def test_check_permutation_accepts_every_permutation(p):
    for form in (p, np.array(p), torch.tensor(p)):
        out = check_permutation("order", form, 7)
        assert out.dtype == np.int64 and out.tolist() == list(p)


@pytest.mark.parametrize("bad", [[0, 0, 1], [0, 1], [1, 2, 3], [0.0, 1.0, 2.0], [[0, 1, 2]], "012"])
def test_check_permutation_refuses_with_the_name(bad):
    with pytest.raises((ValueError, TypeError), match=r"^orders\[0\] must be"):
        check_permutation("orders[0]", bad, 3)


def test_check_odd_size():
    assert check_odd_size("kernel_size", 3, MAX_KERNEL) == 3
    with pytest.raises(ValueError, match="^kernel_size must be odd"):
        check_odd_size("kernel_size", 4, MAX_KERNEL)
    with pytest.raises(ValueError, match=f"^kernel_size must be <= {MAX_KERNEL}"):
        check_odd_size("kernel_size", 2**64 + 1, MAX_KERNEL)
    with pytest.raises(TypeError, match="^kernel_size must be an int"):
        check_odd_size("kernel_size", 3.0, MAX_KERNEL)


def test_check_sizes():
    assert check_sizes("widths", (256, 64, 128), 1000) == [64, 128, 256]
    assert check_sizes("widths", [8, 8], 1000) == [8, 8]
    with pytest.raises(ValueError, match="^widths must be a non-empty list of distinct ints"):
        check_sizes("widths", [8, 8], 1000, distinct=True)
    with pytest.raises(ValueError, match="^widths must be a non-empty list"):
        check_sizes("widths", [], 1000)
    with pytest.raises(ValueError, match="^widths must be <= 1000"):
        check_sizes("widths", [2**70], 1000)
    with pytest.raises(TypeError, match="^widths must be a list of ints"):
        check_sizes("widths", 64, 1000)


def test_check_path():
    assert check_path("out", "runs/a").name == "a"
    assert check_path("out", None, allow_none=True) is None
    with pytest.raises(TypeError, match=r"^out must be the sweep's result directory \(str or os.PathLike\)"):
        check_path("out", None, what="the sweep's result directory")
    with pytest.raises(TypeError, match="^out must be a path"):
        check_path("out", 3, allow_none=True)


def test_finite_array():
    a = finite_array("weights[0]", torch.ones(2, 3, dtype=torch.float32), ndim=2)
    assert a.dtype == np.float64 and a.shape == (2, 3)
    assert finite_array("w", [[1, 2]]).tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match=r"^weights\[1\] contains 1 non-finite value\(s\)"):
        finite_array("weights[1]", np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="^scores must have 2 dimensions"):
        finite_array("scores", np.ones(3), ndim=2)
    with pytest.raises(TypeError, match="^scores must be real-valued"):
        finite_array("scores", np.ones(3, dtype=complex))


# ----------------------------------------------------------------- batches and data
def test_check_batch():
    x = check_batch("x1", torch.arange(6).reshape(2, 3), device=CPU, dtype=torch.float64)
    assert x.dtype == torch.float64 and x.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(TypeError, match="^x1 is torch.float64 but the computation is in torch.float32"):
        check_batch("x1", torch.ones(2, 3, dtype=torch.float64), device=CPU, dtype=torch.float32)
    with pytest.raises(ValueError, match="^x1 must have a leading batch dimension holding at least one input"):
        check_batch("x1", torch.ones(0, 3), device=CPU, dtype=torch.float32)
    with pytest.raises(ValueError, match="^x2 contains NaN or infinite values"):
        check_batch("x2", torch.tensor([[1.0, math.nan]]), device=CPU, dtype=torch.float32)
    with pytest.raises(TypeError, match="^x1 must be real-valued"):
        check_batch("x1", torch.ones(2, 3, dtype=torch.complex64), device=CPU, dtype=torch.float32)
    with pytest.raises(ValueError, match="^x1 must have 1 or 2 dimensions"):
        check_batch("x1", torch.ones(2, 3, 4), device=CPU, dtype=torch.float32, ndim=(1, 2))
    with pytest.raises(ValueError, match="^x1 is on meta but the model is on cpu"):
        check_batch("x1", torch.ones(2, 3, device="meta"), device=CPU, dtype=torch.float32)


def test_check_pair_and_the_one_data_check():
    x, y = check_pair("data", (torch.zeros(3, 2), torch.tensor([0, 1, 1])))
    x, y, labels = check_xy(x, y, n_classes=2)
    assert labels and y.dtype == torch.int64
    for bad in (torch.zeros(3), [torch.zeros(3, 2)], (1, 2, 3), None):
        with pytest.raises(TypeError, match=r"^data must be a pair \(x, y\)"):
            check_pair("data", bad)
    with pytest.raises(ValueError, match=r"^y: labels must be >= 0; got \[-1, 1\]"):
        check_xy(torch.zeros(3, 2), torch.tensor([0, -1, 1]))


def test_pruning_batches_use_the_data_check():
    net = gf.MLP(4, 8, 1, 3, seed=0)
    x = torch.randn(6, 4)
    with pytest.raises(ValueError, match=r"^data x and data y must hold the same number of samples"):
        gf.prune(net, "snip", 0.5, data=(x, torch.zeros(5, dtype=torch.int64)))
    with pytest.raises(ValueError, match=r"^data y: labels must be >= 0"):
        gf.prune(net, "snip", 0.5, data=(x, -torch.ones(6, dtype=torch.int64)))
    with pytest.raises(TypeError, match=r"^data\[1\] y must hold integer class labels"):
        gf.prune(net, "snip", 0.5, data=[(x, torch.zeros(6, dtype=torch.int64)), (x, torch.zeros(6))])
    # integer inputs are converted to the model's dtype (float64 here), as before; clean mode
    # keeps exactly round(d N) of the N = 4 * 8 + 8 * 3 = 56 weights
    res = gf.prune(gf.MLP(4, 8, 1, 3, seed=0, dtype=torch.float64), "snip", 0.5,
                   data=(torch.ones(6, 4, dtype=torch.int64), torch.zeros(6, dtype=torch.int64)))
    assert res.report["total"]["kept"] == 28


# ----------------------------------------------------------------- JSON, slope, lazy names
def test_jsonable_is_strict_json():
    blob = {"a": np.array([1.0, np.nan, np.inf]), 3: (np.int64(2), np.float32(0.5), np.bool_(True)), "s": "x"}
    out = jsonable(blob)
    assert out == {"a": [1.0, None, None], "3": [2, 0.5, True], "s": "x"}
    json.dumps(out, allow_nan=False)
    assert math.isnan(jsonable([np.float64(np.nan)], finite=False)[0])
    assert clean(np.float64(np.inf)) is None and clean(np.float64(np.inf), finite=False) == math.inf


@settings(max_examples=40, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(0.01, 100.0), st.lists(st.integers(1, 10**6), min_size=2, max_size=8, unique=True))
def test_loglog_slope_recovers_an_exact_power_law(p, c, xs):
    ys = [c * float(x) ** p for x in xs]
    assert loglog_slope(xs, ys) == pytest.approx(p, abs=1e-7)


def test_loglog_slope_skips_unusable_points():
    assert loglog_slope([1, 2, 4, None, 8], [1.0, 0.5, 0.25, 3.0, 0.0]) == pytest.approx(-1.0)
    assert loglog_slope([4, 4], [1.0, 2.0]) is None
    assert math.isnan(loglog_slope([1, 2], [1.0, math.nan], missing=math.nan))
    with pytest.raises(ValueError, match="^x and y must be two sequences of the same length"):
        loglog_slope([1, 2, 3], [1.0, 2.0])


def test_lazy_attributes():
    pkg = types.ModuleType("gntk_demo_pkg")
    sys.modules["gntk_demo_pkg"] = pkg
    try:
        pkg.__getattr__, pkg.__dir__ = lazy_attributes("gntk_demo_pkg", {"sqrt": "math"})
        assert "sqrt" not in vars(pkg) and pkg.sqrt is math.sqrt and "sqrt" in vars(pkg)
        with pytest.raises(AttributeError, match="module 'gntk_demo_pkg' has no attribute 'cos'"):
            pkg.cos
    finally:
        del sys.modules["gntk_demo_pkg"]


def test_pai_names_live_in_pai_only():
    from gntk_fast.pai import _LAZY

    for name, module in _LAZY.items():
        obj = getattr(gf.pai, name)
        assert obj.__module__ == module, name
        with pytest.raises(AttributeError, match=rf"moved to gntk_fast\.pai\.{name}$"):
            getattr(gf.graphon, name)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'$"):
        gf.graphon.not_a_name
    assert gf.pai.design.__module__ == "gntk_fast.pai.design"
    assert gf.limit_graphon is gf.pai.limit_graphon and gf.network_graphon is gf.pai.network_graphon
