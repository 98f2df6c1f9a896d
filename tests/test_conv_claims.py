"""The conv claims' rules on hand-made tables: one each rule passes, one it fails, one not measurable."""
from __future__ import annotations

from gntk_fast.experiments.claims import get_claim


def held(cid, tables):
    rows = get_claim(cid)(tables, {})
    assert rows, cid
    return [r["held"] for r in rows]


def _conv_conv(slope, chans=(16, 32, 64, 128)):
    return {"conv_convergence": [{"method": m, "channels": c, "layer": layer, "trial": 0,
                                  "rms": 0.0 if c == max(chans) else c ** slope}
                                 for m in ("random", "snip") for c in chans for layer in (2, 3)]}


def test_cv1_conv_graphon_convergence():
    assert held("CV1", _conv_conv(-0.5)) == [True, True]
    assert held("CV1", _conv_conv(-0.1)) == [False, False]  # falls, but too slowly
    assert held("CV1", _conv_conv(0.3)) == [False, False]  # rises
    assert held("CV1", _conv_conv(-0.5, (16, 32, 64))) == [None, None]  # two counts below the widest


def _conv_kernel(slope, chans=(32, 64, 128, 256)):
    return {"conv_kernel_convergence": [{"graphon": g, "readout": "flatten", "channels": c, "seed": s,
                                         "rel_dist": 3.0 * c ** slope, "n_images": 8}
                                        for g in ("constant", "non-constant") for c in chans for s in range(2)]}


def test_cv2_conv_kernel_convergence():
    assert held("CV2", _conv_kernel(-0.5)) == [True, True]
    assert held("CV2", _conv_kernel(-0.1)) == [False, False]
    assert held("CV2", _conv_kernel(-1.0)) == [False, False]  # faster than the rule's range
    assert held("CV2", _conv_kernel(-0.5, (32, 64, 128))) == [None, None]


def test_cv3_conv_random_scaling():
    t = {"conv_random_scaling_fit": [
        {"trainable": "mask", "kernel": "analytic", "exponent": 3.0 + 1e-9, "predicted_exponent": 3},
        {"trainable": "mask", "kernel": "eNTK", "exponent": 2.8, "predicted_exponent": 3},
        {"trainable": "all", "kernel": "analytic", "exponent": 2.001, "predicted_exponent": 2},
        {"trainable": "all", "kernel": "eNTK", "exponent": 2.5, "predicted_exponent": 2},
        {"trainable": "all", "kernel": "eNTK", "exponent": None, "predicted_exponent": 2}]}
    assert held("CV3", t) == [True, True, False, False, None]
