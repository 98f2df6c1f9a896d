"""Bit-packed uniformly random masks in row blocks (gntk_fast.ops.wide_masks)."""
from __future__ import annotations

import numpy as np
import pytest

from gntk_fast.ops import BackendError, wide_masks as wm


@pytest.mark.parametrize("n_out, n_in, kept", [(1, 1, 0), (1, 1, 1), (7, 13, 40), (64, 100, 640), (33, 9, 297)])
def test_backends_identical_and_exact(n_out, n_in, kept):
    a = wm.random_mask_packed(n_out, n_in, kept, 11, backend="naive")
    b = wm.random_mask_packed(n_out, n_in, kept, 11, backend="numba")
    assert a.dtype == np.uint8 and a.shape == (n_out, (n_in + 7) // 8)
    assert np.array_equal(a, b)
    M = np.unpackbits(a, axis=1)
    assert int(M[:, :n_in].sum()) == kept and int(M[:, n_in:].sum()) == 0  # padding bits clear


def test_many_blocks(monkeypatch):
    monkeypatch.setattr(wm, "BLOCK_ELEMS", 64)  # 8 rows of 8 per block: 13 blocks for 100 rows
    assert wm.block_rows(8) == 8
    counts = wm.block_counts(100, 8, 300, 4)
    assert len(counts) == 13 and counts.sum() == 300 and counts.max() <= 64
    a = wm.random_mask_packed(100, 8, 300, 4, backend="naive")
    b = wm.random_mask_packed(100, 8, 300, 4, backend="numba")
    assert np.array_equal(a, b) and int(np.unpackbits(a).sum()) == 300
    # the blocks' counts follow the hypergeometric law: mean 300 * 64 / 800 = 24 per full block
    tot = np.stack([wm.block_counts(100, 8, 300, s)[:12] for s in range(400)])
    assert abs(tot.mean() - 24.0) < 0.3


def test_uniform_over_entries(monkeypatch):
    monkeypatch.setattr(wm, "BLOCK_ELEMS", 16)  # several blocks, so the split matters too
    freq = np.zeros((6, 5))
    T = 3000
    for s in range(T):
        freq += np.unpackbits(wm.random_mask_packed(6, 5, 9, s), axis=1, count=5)
    p = freq / T  # every entry kept with probability 9 / 30 = 0.3 (sd 0.0084 per entry)
    assert np.abs(p - 0.3).max() < 0.04
    assert abs(p.mean() - 0.3) < 1e-12


def test_deterministic_and_seed_dependent():
    a = wm.random_mask_packed(40, 40, 160, 1)
    assert np.array_equal(a, wm.random_mask_packed(40, 40, 160, 1))
    assert not np.array_equal(a, wm.random_mask_packed(40, 40, 160, 2))


def test_kept_counts():
    shapes = [(100, 64), (100, 100), (10, 100)]
    lw = wm.random_kept_counts(shapes, 0.1, "layerwise", "clean", seed=0)
    assert lw == [640, 1000, 100]
    sf = wm.random_kept_counts(shapes, 0.1, "layerwise", "synaptic-flow", seed=0)
    assert sf == [6400 - int(0.9 * 6400), 10000 - int(0.9 * 10000), 1000 - int(0.9 * 1000)]
    g = [wm.random_kept_counts(shapes, 0.1, "global", "clean", seed=s) for s in range(300)]
    assert all(sum(c) == round(0.1 * 17400) for c in g)
    mean = np.mean(g, axis=0)  # hypergeometric means k * N_l / N
    np.testing.assert_allclose(mean, [1740 * 6400 / 17400, 1740 * 10000 / 17400, 1740 * 1000 / 17400], rtol=0.02)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kept"):
        wm.random_mask_packed(4, 4, 17, 0)
    with pytest.raises(ValueError, match="n_in"):
        wm.random_mask_packed(4, 0, 0, 0)
    with pytest.raises(TypeError, match="seed"):
        wm.random_mask_packed(4, 4, 1, 1.5)
    with pytest.raises(ValueError, match="scope"):
        wm.random_kept_counts([(2, 2)], 0.5, "everywhere")
    with pytest.raises(BackendError):
        wm.random_mask_packed(4, 4, 1, 0, backend="cuda")


def test_split_count_law_and_huge_populations():
    rng = np.random.default_rng(0)
    sizes = np.array([5, 0, 7, 3])
    draws = np.stack([wm.split_count(sizes, 6, rng) for _ in range(20000)])
    assert (draws.sum(axis=1) == 6).all() and (draws <= sizes).all() and (draws[:, 1] == 0).all()
    # multivariate hypergeometric: mean k s_i / N, var k (s_i/N)(1 - s_i/N)(N - k)/(N - 1)
    N, k = 15, 6
    np.testing.assert_allclose(draws.mean(axis=0), k * sizes / N, atol=0.03)
    var = k * (sizes / N) * (1 - sizes / N) * (N - k) / (N - 1)
    np.testing.assert_allclose(draws.var(axis=0), var, atol=0.03)
    # P(all 6 from the first two groups' 5 entries) = 0: and group 0 alone: P(X0 = 5) = C(10,1)/C(15,6)
    assert abs((draws[:, 0] == 5).mean() - 10 / 5005) < 0.0015
    # beyond numpy's 10**9 population limit (two 65536 x 65536 layers)
    big = np.array([65536 * 65536, 65536 * 65536, 655360], dtype=np.int64)
    c = wm.split_count(big, int(0.1 * big.sum()), np.random.default_rng(1))
    assert c.sum() == int(0.1 * big.sum()) and abs(c[0] - c[1]) < 10 * np.sqrt(big[0] * 0.09)
    with pytest.raises(ValueError, match="k must be"):
        wm.split_count(sizes, 16, rng)
