"""Channel connectivity of conv masks: pooled and per-tap SAS, network graphons of conv nets,
distances and files, against hand-made masks with known answers."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast.graphon import channel_connectivity, channel_sas, hom_densities, sas, sas_layers
from gntk_fast.graphon.io import load_estimates, save_estimates
from gntk_fast.pai import conv_network_graphon, network_graphon


def two_block_mask():
    """4 out x 4 in channels, 3x3 taps. Out channels 0, 1 keep every tap to every input;
    out channels 2, 3 keep the middle column of taps (3 of 9) to inputs 0, 1 only.

    Degrees (kept taps): rows 36, 36, 6, 6; columns 2*9 + 2*3 = 24, 24, 18, 18.
    With K = 2 the sorted blocks are {0,1} x {0,1}, ... and
    H = [[1, 1], [3/9, 0]]."""
    m = np.zeros((4, 4, 3, 3), dtype=bool)
    m[:2] = True
    m[2:, :2, :, 1] = True
    return m


def shuffled(m, seed=0):
    rng = np.random.default_rng(seed)
    po, pi = rng.permutation(m.shape[0]), rng.permutation(m.shape[1])
    return m[po][:, pi], po, pi


def test_channel_connectivity_by_hand():
    m = two_block_mask()
    A = channel_connectivity(m)
    expect = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1 / 3, 1 / 3, 0, 0], [1 / 3, 1 / 3, 0, 0]])
    np.testing.assert_allclose(A, expect, rtol=0, atol=1e-15)
    assert A.dtype == np.float64
    # the middle tap (1, 1) = flat index 4 is kept on the 3/9 pairs; tap (0, 0) is not
    t4 = channel_connectivity(m, tap=4)
    np.testing.assert_array_equal(t4, channel_connectivity(m, tap=(1, 1)))
    np.testing.assert_array_equal(t4, [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
    np.testing.assert_array_equal(channel_connectivity(m, tap=(0, 0)), [[1] * 4, [1] * 4, [0] * 4, [0] * 4])
    # the mean of the per-tap matrices is the pooled one
    per = np.mean([channel_connectivity(m, tap=t) for t in range(9)], axis=0)
    np.testing.assert_allclose(per, A, rtol=0, atol=1e-15)
    # torch float 0/1 masks (torch.nn.utils.prune's) are accepted
    np.testing.assert_allclose(channel_connectivity(torch.from_numpy(m).float()), A)


def test_channel_connectivity_validation():
    m = two_block_mask()
    with pytest.raises(ValueError, match=r"tap must be <= 8"):
        channel_connectivity(m, tap=9)
    with pytest.raises(ValueError, match=r"tap\[1\] must be <= 2"):
        channel_connectivity(m, tap=(0, 3))
    with pytest.raises(ValueError, match="tap must be an int"):
        channel_connectivity(m, tap=(0, 1, 2))
    with pytest.raises(ValueError, match="must be 4-D"):
        channel_connectivity(m[0])
    with pytest.raises(ValueError, match="only 0/1 values"):
        channel_connectivity(m * 2)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        channel_connectivity("mask")


@pytest.mark.parametrize("seed", [0, 1])
def test_pooled_sas_known_blocks(seed):
    m, _, _ = shuffled(two_block_mask(), seed)
    est = sas(m, K=2)
    np.testing.assert_allclose(est.H, [[1, 1], [1 / 3, 0]], rtol=0, atol=1e-15)
    assert est.taps == 9 and est.shape == (4, 4)
    assert sorted(est.row_degrees.tolist()) == [6, 6, 36, 36]
    assert sorted(est.col_degrees.tolist()) == [18, 18, 24, 24]
    assert est.density() == pytest.approx(m.mean(), abs=1e-15)
    assert "taps=9" in repr(est)


def test_per_tap_sas_known_blocks():
    m, _, _ = shuffled(two_block_mask(), 3)
    ests = sas(m, K=2, taps="per-tap")
    assert len(ests) == 9
    for t, e in enumerate(ests):
        middle_column = t % 3 == 1
        np.testing.assert_array_equal(e.H, [[1, 1], [1, 0]] if middle_column else [[1, 1], [0, 0]])
        assert e.taps == 1
    # here every tap sorts the channels the same way, so the per-tap mean is the pooled estimate
    np.testing.assert_allclose(np.mean([e.H for e in ests], axis=0), sas(m, K=2).H, rtol=0, atol=1e-15)


@pytest.mark.parametrize("backend", ["naive", "numba"])
def test_one_by_one_conv_is_the_dense_estimate(backend):
    rng = np.random.default_rng(5)
    m2 = rng.random((37, 23)) < 0.3
    dense = sas(m2, K=5, K_in=4, backend=backend)
    for taps in ("pooled", "per-tap"):
        conv = sas(m2[:, :, None, None], K=5, K_in=4, taps=taps, backend=backend)
        conv = conv if taps == "pooled" else conv[0]
        for f in ("H", "row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges"):
            np.testing.assert_array_equal(getattr(conv, f), getattr(dense, f))
    inp = sas(m2[:, :, None, None], K=5, sort_cols=False)
    np.testing.assert_array_equal(inp.H, sas(m2, K=5, sort_cols=False).H)


def test_trials_average():
    a, b = two_block_mask(), np.zeros((4, 4, 3, 3), dtype=bool)
    b[:, :, 0, 0] = True  # every pair keeps 1 of 9 taps
    est = sas([a, b], K=2)
    assert est.n_trials == 2 and est.H_trials.shape == (2, 2, 2)
    np.testing.assert_allclose(est.H, (np.array([[1, 1], [1 / 3, 0]]) + 1 / 9) / 2, rtol=0, atol=1e-15)
    per = gf.graphon.sas_trials([a, b], K=2, taps="per-tap")
    assert len(per) == 9 and per[0].n_trials == 2
    np.testing.assert_allclose(per[0].H, (np.array([[1, 1], [0, 0]]) + 1) / 2)
    with pytest.raises(ValueError, match=r"masks\[1\] has shape"):
        sas([a, b[:, :3]], K=2)
    with pytest.raises(ValueError, match="taps must be one of"):
        sas(a, K=2, taps="mean")


def conv_net_masks():
    """conv1 (4, 1, 3, 3), conv2 (4, 4, 3, 3), GAP readout (2, 4), hidden channel orders known:

    layer 1: out channel c keeps (9, 3, 9, 0)[c] taps of the single image channel
      -> in-degree order 0, 2 (9 each; tie broken by out-degree, below), 1, 3;
    layer 2: out channel 3 keeps every tap from every input, channel 1 only from
      inputs 0 and 2 (18 taps), channels 0, 2 nothing; so the out-degrees of the
      layer-1 channels are 9 + 9 = 18 for inputs 0, 2 and 9 for inputs 1, 3;
      channel 2 of layer 1 beats channel 0 only if its out-degree is larger:
      give channel 2 one extra tap to layer-2 channel 0.
    readout: output 0 reads layer-2 channels 3 and 1, output 1 reads channel 3.
    """
    c1 = np.zeros((4, 1, 3, 3), dtype=bool)
    c1[0] = True
    c1[1, 0, 0] = True  # 3 taps
    c1[2] = True
    c2 = np.zeros((4, 4, 3, 3), dtype=bool)
    c2[3] = True
    c2[1, [0, 2]] = True
    c2[0, 2, 0, 0] = True
    r = np.zeros((2, 4), dtype=bool)
    r[0, [1, 3]] = True
    r[1, 3] = True
    return [c1, c2, r]


def test_conv_network_graphon_orders_and_blocks():
    masks = conv_net_masks()
    ng = network_graphon(masks, K=4)
    # layer 1 in-degrees (9, 3, 9, 0); out-degrees (18, 9, 19, 9): order 2, 0, 1, 3
    np.testing.assert_array_equal(ng.orders[0], [2, 0, 1, 3])
    # layer 2 in-degrees: ch0 1, ch1 18, ch2 0, ch3 36 -> order 3, 1, 0, 2
    np.testing.assert_array_equal(ng.orders[1], [3, 1, 0, 2])
    np.testing.assert_allclose(ng.H(0)[:, 0], [1, 1, 3 / 9, 0])
    expect2 = np.zeros((4, 4))
    expect2[0] = 1  # layer-2 channel 3 from every layer-1 channel
    expect2[1, :2] = 1  # channel 1 from layer-1 channels 2 and 0 (positions 0, 1)
    expect2[2, 0] = 1 / 9  # channel 0: one tap from layer-1 channel 2
    np.testing.assert_allclose(ng.H(1), expect2, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ng.H(2), [[1, 1, 0, 0], [1, 0, 0, 0]])
    assert ng.shapes == [(4, 1), (4, 4), (2, 4)] and ng.depth == 2
    assert type(ng.graphons[0]).__name__ == "InputGraphon"
    np.testing.assert_array_equal(conv_network_graphon(masks, K=4).H(1), ng.H(1))  # what network_graphon calls
    # coarser blocks: means over the 2 x 2 channel blocks of the same order
    ng2 = network_graphon(masks, K=2)
    np.testing.assert_allclose(ng2.H(1), [[1, 0.5], [1 / 36, 0]], rtol=0, atol=1e-15)


def test_per_tap_network_graphon_and_variance():
    masks = conv_net_masks()
    pooled = network_graphon(masks, K=2)
    per = network_graphon(masks, K=2, taps="per-tap", weights=[2.0 * np.ones(m.shape) for m in masks])
    assert isinstance(per.graphons[1], list) and len(per.graphons[1]) == 9
    assert not isinstance(per.graphons[2], list)  # the GAP readout is a 1-tap layer
    assert per.H(1).shape == (9, 2, 2)
    for l in range(3):
        np.testing.assert_allclose(per.H(l).mean(axis=0) if per.H(l).ndim == 3 else per.H(l), pooled.H(l),
                                   rtol=0, atol=1e-15)
        v = per.variance_graphons[l]
        vH = np.stack([g.H for g in v]) if isinstance(v, list) else v.H
        np.testing.assert_allclose(vH, 4 * per.H(l), rtol=0, atol=1e-14)  # E[w^2 m] with w = 2
    # block (layer-2 channels {0, 2}) x (layer-1 channels {2, 0}): the single extra tap is tap (0, 0)
    assert per.graphons[1][0].H[1, 0] == 1 / 4
    assert per.graphons[1][4].H[1, 0] == 0.0


def test_flatten_readout_pixels_pool_like_taps():
    c1 = np.ones((2, 1, 3, 3), dtype=bool)
    r = np.zeros((3, 2 * 4), dtype=bool)  # 2 channels x 4 pixels, channel-major
    r[0, :4] = True  # output 0 reads every pixel of channel 0
    r[1, 4:6] = True  # output 1 reads two pixels of channel 1
    ng = network_graphon([c1, r], K=2)
    ch = ng.orders[0]  # both channels have in-degree 9; out-degree 4 (ch 0) vs 2 (ch 1): order 0, 1
    np.testing.assert_array_equal(ch, [0, 1])
    np.testing.assert_allclose(ng.H(1), [[1, 0], [0, 0.5], [0, 0]])
    assert ng.shapes[1] == (3, 2)
    est = sas_layers([c1, r], K=2)[1]  # the per-mask estimate pools the pixels too
    assert est.taps == 4 and est.shape == (3, 2)
    np.testing.assert_allclose(est.H, [[1, 0], [0, 0.25]])  # row blocks {output 0}, {outputs 1, 2}
    per = network_graphon([c1, r], K=2, taps="per-tap")
    assert len(per.graphons[1]) == 4  # one per pixel
    np.testing.assert_array_equal(per.graphons[1][1].H, [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(per.graphons[1][2].H, [[1, 0], [0, 0], [0, 0]])


def test_one_by_one_conv_net_equals_mlp_network_graphon():
    rng = np.random.default_rng(2)
    dense = [rng.random((12, 5)) < 0.5, rng.random((9, 12)) < 0.4, rng.random((3, 9)) < 0.6]
    convs = [dense[0][:, :, None, None], dense[1][:, :, None, None], dense[2]]
    a, b = network_graphon(dense, K=3), network_graphon(convs, K=3)
    for l in range(3):
        np.testing.assert_array_equal(a.H(l), b.H(l))
    for oa, ob in zip(a.orders, b.orders):
        np.testing.assert_array_equal(oa, ob)
    np.testing.assert_allclose(a.difference, b.difference, rtol=0, atol=1e-15)


def test_network_graphon_of_convnet_model():
    net = gf.ConvNet(1, 8, 2, 3, seed=0)
    g = torch.Generator().manual_seed(0)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.5 for m in net.masks])
    ng = network_graphon(net.masks, K=4, weights=net.weights)
    assert [ng.H(l).shape for l in range(3)] == [(4, 1), (4, 4), (3, 4)]
    kept = sum(int(m.sum()) for m in net.masks[:2])
    # the pooled blocks integrate to the conv layers' densities
    for l in range(2):
        assert ng.graphons[l].integrate() == pytest.approx(float(net.masks[l].double().mean()), abs=1e-12)
    assert kept > 0
    with pytest.raises(ValueError, match="must chain"):
        network_graphon([net.masks[0], net.masks[0]], K=2)


def test_sas_layers_and_files(tmp_path):
    net = gf.ConvNet(3, 6, 2, 4, seed=1)
    g = torch.Generator().manual_seed(1)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.3 for m in net.masks])
    ests = sas_layers(net.masks, K=3)
    assert [e.H.shape for e in ests] == [(3, 3), (3, 3), (3, 3)]
    assert ests[0].sort_cols is False and ests[0].taps == 9  # one block per image channel
    per = sas_layers(net.masks, K=3, taps="per-tap")
    assert len(per[0]) == 9 and len(per[1]) == 9 and per[2].taps == 1
    path = save_estimates(ests, tmp_path / "est.npz")
    back = load_estimates(path)
    for e, f in zip(ests, back):
        assert f.taps == e.taps
        np.testing.assert_array_equal(f.H, e.H)
        np.testing.assert_array_equal(f.row_degrees, e.row_degrees)


def test_distances_accept_conv_masks():
    m = two_block_mask()
    A = channel_connectivity(m)
    assert hom_densities(m) == hom_densities(A)
    d = gf.graphon.degree_profile_distance(m, A)
    assert d == {"rows": 0.0, "cols": 0.0}
    assert gf.graphon.hom_distance(m, np.ones((4, 4)))["edge"] == pytest.approx(1 - m.mean())
    # a pooled estimate and a plain block matrix compare through the usual distances
    assert gf.graphon.histogram_distance(sas(m, K=2), [[1, 1], [1 / 3, 0]]) == pytest.approx(0, abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    c_out=st.integers(1, 9),
    c_in=st.integers(1, 9),
    k=st.sampled_from([1, 2, 3]),
    p=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_pooled_estimate_properties(c_out, c_in, k, p, seed):
    rng = np.random.default_rng(seed)
    m = rng.random((c_out, c_in, k, k)) < p
    K, K_in = rng.integers(1, c_out + 1), rng.integers(1, c_in + 1)
    est = channel_sas(m, int(K), int(K_in))
    assert est.density() == pytest.approx(m.mean(), abs=1e-12)
    assert est.H.min() >= 0 and est.H.max() <= 1 + 1e-15
    # degrees are the kept taps; the blocks hold rows/columns in descending degree order
    np.testing.assert_array_equal(est.row_degrees, m.sum(axis=(1, 2, 3)))
    np.testing.assert_array_equal(est.col_degrees, m.sum(axis=(0, 2, 3)))
    assert np.all(np.diff(est.row_degrees[est.row_perm]) <= 0)
    per = [channel_connectivity(m, t) for t in range(k * k)]
    np.testing.assert_allclose(np.mean(per, axis=0), channel_connectivity(m), rtol=0, atol=1e-15)
