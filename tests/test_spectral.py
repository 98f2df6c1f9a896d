"""Tests of gntk_fast.spectral (docs/graphon-ntk.md section 5)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast.spectral import SpectralMetrics, label_matrix, predicted_loss, spectral_metrics


def rotate(lam, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(lam), len(lam))))
    return q @ np.diag(lam) @ q.T


def test_power_law_spectrum_is_exact():
    n, a = 60, 1.7
    lam = np.arange(1, n + 1, dtype=float) ** -a
    for K in (np.diag(lam[::-1]), rotate(lam)):  # order on the diagonal must not matter
        m = spectral_metrics(K, k=4)
        np.testing.assert_allclose(m.eigenvalues, lam, rtol=1e-9, atol=1e-14)
        assert m.alpha == pytest.approx(a, rel=1e-9) and m.alpha_r2 == pytest.approx(1.0, abs=1e-12)
        assert m.fit_range == (1, 30)
        assert m.effective_rank == pytest.approx(lam.sum(), rel=1e-12)
        assert m.spectral_gap == pytest.approx(2**a, rel=1e-9)
        assert m.energy_concentration == pytest.approx(lam[:4].sum() / lam.sum(), rel=1e-12)
        assert m.condition_number == pytest.approx(n**a, rel=1e-8)
        assert m.k == 4 and not m.partial and m.clipped == 0


def test_known_diagonal_metrics_and_fit_range():
    lam = np.array([8.0, 4.0, 2.0, 1.0, 0.5, 0.0])
    m = spectral_metrics(np.diag(lam), k=2)
    assert m.condition_number == math.inf  # lambda_N = 0
    assert m.effective_rank == pytest.approx(15.5 / 8) and m.spectral_gap == pytest.approx(2.0)
    assert m.energy_concentration == pytest.approx(12 / 15.5)
    # 5 nonzero eigenvalues -> default fit over k = 1..2; log2-spaced: slope log(2)/log(2)
    assert m.fit_range == (1, 2) and m.alpha == pytest.approx(1.0)
    m = spectral_metrics(np.diag(lam), fit_range=(2, 4))
    assert m.fit_range == (2, 4)
    x = np.log([2, 3, 4.0])
    y = np.log([4.0, 2.0, 1.0])
    assert m.alpha == pytest.approx(-np.polyfit(x, y, 1)[0], rel=1e-12)
    assert 0 < m.alpha_r2 < 1
    assert spectral_metrics(np.diag(lam), fit_range=3).fit_range == (1, 3)
    with pytest.raises(ValueError, match="fit_range"):
        spectral_metrics(np.diag(lam), fit_range=(3, 2))
    with pytest.raises(ValueError, match="fit_range k_hi = 9"):
        spectral_metrics(np.diag(lam), fit_range=(1, 9))
    m = spectral_metrics(np.diag(lam), fit_range=(5, 6))  # includes the zero eigenvalue
    assert m.alpha is None and "alpha" in m.notes


def test_alignment():
    y = np.array([0, 1, 2, 0, 1, 2, 2])
    Y = np.eye(3)[y]
    Yc = Y - Y.mean(0)
    m = spectral_metrics(Yc @ Yc.T, y=y)
    assert m.alignment == pytest.approx(1.0, rel=1e-12)
    m = spectral_metrics(np.eye(7), y=torch.from_numpy(y))
    expected = np.trace(Yc.T @ Yc) / (math.sqrt(7) * np.linalg.norm(Yc.T @ Yc))
    assert m.alignment == pytest.approx(expected, rel=1e-12)
    # a target matrix is centred too; a constant target has no alignment
    assert spectral_metrics(np.eye(7), y=Y).alignment == pytest.approx(expected, rel=1e-12)
    m = spectral_metrics(np.eye(7), y=np.ones(7))
    assert m.alignment is None and "alignment" in m.notes
    with pytest.raises(ValueError, match="y must have shape"):
        spectral_metrics(np.eye(7), y=np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="y labels must be >= 0"):
        spectral_metrics(np.eye(7), y=-np.ones(7, dtype=int))


def test_tiny_negative_eigenvalues_clipped_with_warning():
    lam = np.array([3.0, 1.0, 0.2, -1e-13])
    with pytest.warns(RuntimeWarning, match="slightly negative"):
        m = spectral_metrics(rotate(lam, 1))
    assert m.clipped == 1 and m.eigenvalues.min() == 0.0 and m.condition_number == math.inf
    with pytest.raises(ValueError, match="not positive semi-definite"):
        spectral_metrics(rotate(np.array([3.0, 1.0, -0.01]), 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectral_metrics(rotate(np.array([3.0, 1.0, 0.5]), 3))  # no warning for a PSD matrix


@pytest.mark.parametrize(
    "K,match,exc",
    [
        (np.array([[1.0, 0.5], [0.4, 1.0]]), "kernel must be symmetric", ValueError),
        (np.ones((2, 3)), r"kernel must be a square", ValueError),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "kernel contains 2 non-finite", ValueError),
        (np.zeros((0, 0)), "kernel must be a square", ValueError),
        ([[1.0]], "kernel must be a numpy array", TypeError),
    ],
)
def test_bad_kernels(K, match, exc):
    with pytest.raises(exc, match=match):
        spectral_metrics(K)


def test_bad_arguments():
    K = np.eye(4)
    with pytest.raises(ValueError, match="method must be one of"):
        spectral_metrics(K, method="qr")
    with pytest.raises(ValueError, match="k must be >= 1"):
        spectral_metrics(K, k=0)
    with pytest.raises(ValueError, match="n_eigs must be <= 3"):
        spectral_metrics(K, method="lanczos", n_eigs=4)


def test_lanczos_top_eigenvalues_partial():
    lam = np.arange(1, 81, dtype=float) ** -1.2
    K = rotate(lam, 4)
    full = spectral_metrics(K, y=np.arange(80) % 4)
    part = spectral_metrics(K, y=np.arange(80) % 4, method="lanczos", n_eigs=20)
    assert part.partial and part.method == "lanczos" and len(part.eigenvalues) == 20
    np.testing.assert_allclose(part.eigenvalues, lam[:20], rtol=1e-8)
    assert part.condition_number is None and "condition_number" in part.notes
    # trace-based metrics stay exact
    assert part.effective_rank == pytest.approx(full.effective_rank, rel=1e-8)
    assert part.energy_concentration == pytest.approx(full.energy_concentration, rel=1e-8)
    assert part.alignment == pytest.approx(full.alignment, rel=1e-10)
    assert part.alpha == pytest.approx(1.2, rel=1e-6) and part.fit_range == (1, 10)
    assert "partial" in part.table()
    d = part.as_dict()
    assert d["partial"] and len(d["eigenvalues"]) == 20


def test_predicted_loss_matches_matrix_exponential():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(12, 12))
    K = A @ A.T / 12
    y = rng.integers(0, 3, 12)
    Y = np.eye(3)[y]
    lr = 0.3
    times = np.array([0.0, 0.5, 2.0, 7.0])
    got = predicted_loss(K, y, lr, times)
    for t, g in zip(times, got):
        r = scipy.linalg.expm(-lr * K * t) @ (-Y)
        assert g == pytest.approx((r**2).sum() / (2 * 12), rel=1e-10)
    assert got[0] == pytest.approx(0.5)  # ||Y||^2 / 2N with one-hot rows
    steps = predicted_loss(K, y, lr, 5)
    assert steps.shape == (6,) and np.all(np.diff(steps) <= 0)
    f0 = rng.normal(size=(12, 3))
    r = scipy.linalg.expm(-lr * K * 2.0) @ (f0 - Y)
    assert predicted_loss(K, y, lr, [2.0], f0=f0)[0] == pytest.approx((r**2).sum() / 24, rel=1e-10)
    with pytest.raises(ValueError, match="lr must be >"):
        predicted_loss(K, y, 0.0, 3)
    with pytest.raises(ValueError, match="steps"):
        predicted_loss(K, y, 0.1, [-1.0])
    with pytest.raises(ValueError, match="f0 must have"):
        predicted_loss(K, y, 0.1, 3, f0=np.zeros((12, 2)))


def test_public_api_and_kernel_integration():
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theta = gf.graphon_ntk([0.8, lambda u, v: 0.15 + 0.7 * u * v, 0.9], x, K=16)
    m = gf.spectral_metrics(theta, y=np.arange(20) % 2)
    assert isinstance(m, gf.SpectralMetrics) and m is not None
    np.testing.assert_allclose(np.sort(m.eigenvalues), np.linalg.eigvalsh(theta.numpy()), rtol=1e-10, atol=1e-14)
    assert m.alpha > 0 and 1.0 <= m.effective_rank <= 20
    assert gf.predicted_loss(theta, np.arange(20) % 2, 1.0, 3).shape == (4,)


def test_label_matrix():
    Y = label_matrix(np.array([2, 0]), 2, center=False)
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(label_matrix(np.array([1.0, 3.0]), 2, center=True), [[-1.0], [1.0]])


@st.composite
def psd_matrices(draw):
    n = draw(st.integers(2, 12))
    r = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**16))
    A = np.random.default_rng(seed).normal(size=(n, r))
    return A @ A.T, np.random.default_rng(seed + 1).integers(0, 3, n)


@settings(max_examples=25, deadline=None)
@given(psd_matrices(), st.integers(1, 6), st.floats(0.01, 100.0))
def test_property_spectral_metrics(Ky, k, scale):
    K, y = Ky
    k = min(k, len(K))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rank-deficient: round-off negatives are clipped
        m = spectral_metrics(K, y=y, k=k)
        ms = spectral_metrics(scale * K, y=y, k=k)
    ev = m.eigenvalues
    assert np.all(np.diff(ev) <= 0) and ev.min() >= 0
    assert 1.0 - 1e-12 <= m.effective_rank <= len(ev) + 1e-9
    assert 0.0 < m.energy_concentration <= 1.0 + 1e-12
    assert m.spectral_gap >= 1.0
    assert m.alignment is None or -1 - 1e-12 <= m.alignment <= 1 + 1e-12
    # scale invariance of every ratio
    assert ms.effective_rank == pytest.approx(m.effective_rank, rel=1e-8)
    assert ms.energy_concentration == pytest.approx(m.energy_concentration, rel=1e-8)
    if m.alignment is not None:
        assert ms.alignment == pytest.approx(m.alignment, rel=1e-8, abs=1e-12)
    if m.alpha is not None and ms.alpha is not None and m.fit_range == ms.fit_range:
        assert ms.alpha == pytest.approx(m.alpha, rel=1e-6, abs=1e-8)
    assert isinstance(m, SpectralMetrics)


def test_float32_kernel_round_off_is_clipped_not_rejected():
    """A rank-deficient float32 Gram matrix is PSD up to float32 round-off (~1e-8 lambda_1
    here): clipped with a warning, not rejected, and its round-off eigenvalues do not count
    as nonzero in the default fit range. A clearly indefinite float32 matrix still raises."""
    X = np.random.default_rng(0).normal(size=(300, 10)).astype(np.float32)
    K = X @ X.T
    assert np.linalg.eigvalsh(K.astype(np.float64)).min() < -1.5e-8 * np.linalg.eigvalsh(K.astype(np.float64)).max()
    with pytest.warns(RuntimeWarning, match="slightly negative"):
        m = spectral_metrics(K)
    assert m.clipped > 0 and m.eigenvalues.min() == 0.0
    assert m.fit_range == (1, 5)  # 10 nonzero eigenvalues -> top half
    with pytest.warns(RuntimeWarning):
        assert predicted_loss(K, np.arange(300) % 3, 1e-3, 2).shape == (3,)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        spectral_metrics(rotate(np.array([3.0, 1.0, -0.01]), 2).astype(np.float32))


def test_zero_kernel_and_bad_f0():
    m = spectral_metrics(np.zeros((3, 3)))
    assert m.spectral_gap is None and "spectral_gap" in m.notes and m.alpha is None
    K = np.eye(3)
    with pytest.raises(ValueError, match="f0 must have"):
        predicted_loss(K, np.zeros(3), 0.1, 3, f0=np.zeros(4))
    with pytest.raises(ValueError, match="f0 must have"):
        predicted_loss(K, np.arange(3), 0.1, 3, f0=np.zeros(9))  # (3, 3) targets given flat
    with pytest.raises(TypeError, match="f0"):
        predicted_loss(K, np.zeros(3), 0.1, 3, f0="abc")
    np.testing.assert_allclose(predicted_loss(K, np.ones(3), 0.1, [0.0], f0=np.ones(3)), [0.0])


def _assert_no_nan(m):
    for name, v in m.as_dict().items():
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            assert not (isinstance(x, float) and math.isnan(x)), f"{name} is NaN"


@pytest.mark.parametrize("method", ["full", "lanczos"])
def test_zero_kernel_is_finite_for_both_methods(method):
    m = spectral_metrics(np.zeros((6, 6)), y=np.arange(6) % 2, method=method)
    _assert_no_nan(m)
    assert m.trace == 0.0 and m.effective_rank == 0.0 and np.all(m.eigenvalues == 0.0)
    assert len(m.eigenvalues) == (6 if method == "full" else 5)
    assert m.alpha is None and m.spectral_gap is None and m.energy_concentration is None
    assert m.condition_number is None and m.alignment is None
    assert {"effective_rank", "spectral_gap", "energy_concentration", "condition_number", "alignment"} <= set(m.notes)
    assert "nan" not in m.table().lower()


def test_one_by_one_kernel():
    m = spectral_metrics(np.array([[2.5]]))  # default k = min(5, N)
    _assert_no_nan(m)
    assert m.eigenvalues.tolist() == [2.5] and m.trace == 2.5 and m.k == 1
    assert m.effective_rank == 1.0 and m.condition_number == 1.0 and m.energy_concentration == 1.0
    assert m.spectral_gap is None and m.alpha is None
    z = spectral_metrics(np.zeros((1, 1)))
    _assert_no_nan(z)
    assert z.effective_rank == 0.0 and z.condition_number is None
    with pytest.raises(ValueError, match=r"^k must be <= 1"):  # never shrunk silently
        spectral_metrics(np.array([[2.5]]), k=3)
    for K in (np.array([[2.5]]), np.eye(2)):
        with pytest.raises(ValueError, match=r"^kernel must be at least 3 x 3 for method='lanczos'"):
            spectral_metrics(K, method="lanczos")


def test_n_eigs_validated():
    with pytest.raises(ValueError, match="^n_eigs must be >= 1"):
        spectral_metrics(np.eye(4), method="lanczos", n_eigs=0)
    with pytest.raises(TypeError, match="^n_eigs must be an int"):
        spectral_metrics(np.eye(4), method="lanczos", n_eigs=2.0)
    with pytest.raises(ValueError, match="^n_eigs is only used by method='lanczos'"):
        spectral_metrics(np.eye(4), n_eigs=2)
    with pytest.raises(TypeError, match="^k must be an int"):
        spectral_metrics(np.eye(4), k=1.5)
