"""The conv section at tiny sizes: its experiments, its tables, its figures and its rendering."""
from __future__ import annotations

import numpy as np
import pytest

from gntk_fast.experiments.conv_checks import (
    conv_graphon_convergence,
    conv_kernel_convergence,
    conv_random_scaling,
    kernel_graphons,
    sample_conv_masks,
)

TINY_CONV = {"convergence": {"methods": ["random", "snip"], "channels": [8, 16, 32], "trials": 1, "K": 4,
                             "depth": 2, "sparsity": 0.8},
             "kernel_convergence": {"channels": [16, 64], "seeds": 1, "depth": 1, "K": 8, "input_masks": "bernoulli",
                                    "readouts": ["flatten"],
                                    "n_images": 3, "gap_images": 2},
             "random_scaling": {"densities": [1.0, 0.5], "channels": 16, "depth": 1, "seeds": 1, "n_images": 3}}


def test_sampled_masks_follow_the_graphon():
    import gntk_fast as gf

    net = gf.ConvNet(2, 400, 1, 1, readout="flatten", image_size=4, seed=0)
    gs = kernel_graphons("non-constant", 1)
    m = sample_conv_masks(net, gs, seed=1)
    assert [tuple(a.shape) for a in m] == [tuple(a.shape) for a in net.masks]
    # conv layer: channel o of 400 at u = (o + 1/2)/400, input channel i of 2 at v = (i + 1/2)/2
    u = (np.arange(400) + 0.5) / 400
    frac = m[0].double().mean(dim=(2, 3)).numpy()
    for i, v in enumerate((0.25, 0.75)):
        top, bottom = u > 0.9, u < 0.1
        assert abs(frac[top, i].mean() - np.mean(0.15 + 0.7 * u[top] * v)) < 0.03
        assert abs(frac[bottom, i].mean() - np.mean(0.15 + 0.7 * u[bottom] * v)) < 0.03
    # read-out: every pixel of channel v kept with 0.3 + 0.6 v
    r = m[1].double().reshape(400, 16).mean(dim=1).numpy()
    assert abs(r[u > 0.8].mean() - np.mean(0.3 + 0.6 * u[u > 0.8])) < 0.03
    with pytest.raises(ValueError, match="kind"):
        kernel_graphons("wavy", 2)


def test_conv_experiments_tiny():
    rows = conv_graphon_convergence(["random"], [8, 16], depth=2, K=4, n_data=16, progress=False)
    assert {r["channels"] for r in rows} == {8, 16} and all(r["layer"] == 2 for r in rows)
    assert [r["rms"] for r in rows if r["channels"] == 16] == [0.0]  # the widest is the reference
    assert all(abs(r["density"] - 0.1) < 0.05 for r in rows)
    with pytest.raises(ValueError, match="K"):
        conv_graphon_convergence(["random"], [4, 8], K=8, progress=False)
    krows = conv_kernel_convergence([16, 256], 1, depth=1, K=8, n_images=3, progress=False)
    err = {(r["graphon"], r["channels"]): r["rel_dist"] for r in krows}
    for g in ("constant", "non-constant"):  # 16 x more channels: the error falls (about 4 x expected)
        assert err[g, 256] < 0.6 * err[g, 16]
    srows, fit = conv_random_scaling([1.0, 0.5, 0.25], channels=16, depth=1, seeds=1, n_images=3, progress=False)
    for r in srows:
        if r["kernel"] == "analytic":  # the constant graphon c: exactly c^(L+1) / c^L times dense
            assert r["ratio"] == pytest.approx(r["predicted_ratio"], rel=1e-10)
    assert {(f["trainable"], f["kernel"], f["predicted_exponent"]) for f in fit} == {
        ("mask", "eNTK", 2), ("mask", "analytic", 2), ("all", "analytic", 1)}


def test_conv_section_in_report(tmp_path, monkeypatch):
    from gntk_fast.experiments.report import SCALES, _Run, _write_report, render_report
    from gntk_fast.experiments.sections import SECTIONS

    section = next(s for s in SECTIONS if s.name == "conv")
    settings = {**SCALES["small"], "conv": TINY_CONV}
    run = _Run(tmp_path, "small", "digits", None, False, settings)
    section.run(run)
    path, claims = _write_report(run, finished=True)
    text = path.read_text()
    assert "## 7. Convolutional nets" in text
    for name in ("conv_convergence", "conv_kernel_convergence", "conv_random_scaling"):
        png = tmp_path / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"(figures/{name}.png)" in text
    ids = [c["id"] for c in claims]
    assert ids.count("CV1") == 2 and ids.count("CV2") == 2 and ids.count("CV3") == 3
    assert render_report(tmp_path / "tables") == text  # rendered from the tables alone
    assert 'input_masks="bernoulli"' in text  # the target named as the settings chose it
    # two channel counts are too few for CV2's rule: not measurable, with the reason
    cv2 = [c for c in claims if c["id"] == "CV2"]
    assert all(c["held"] is None and "channel counts" in c["numbers"] for c in cv2)
    assert run.load_section("conv")  # a rerun with the same settings reuses the section
    # each part was saved as it finished: a run interrupted after them reads them back, computing nothing
    parts = sorted(p.name.split("_" + run.key("conv"))[0] for p in (tmp_path / "cases").glob("conv_part_*"))
    assert parts == ["conv_part_convergence", "conv_part_kernel_convergence", "conv_part_random_scaling"]
    (tmp_path / "sections" / "conv.json").unlink()
    import gntk_fast.experiments.conv_checks as cc

    def refuse(*a, **k):
        raise AssertionError("a saved part was computed again")

    for name in ("conv_graphon_convergence", "conv_kernel_convergence", "conv_random_scaling"):
        monkeypatch.setattr(cc, name, refuse)
    rerun = _Run(tmp_path, "small", "digits", None, False, settings)
    section.run(rerun)
    assert rerun.tables["conv_convergence"] == run.tables["conv_convergence"]


def test_committed_conv_results_regenerate_from_their_tables():
    from pathlib import Path

    from gntk_fast.experiments.report import render_report

    d = Path(__file__).resolve().parents[1] / "examples" / "results" / "conv_small_digits"
    assert render_report(d / "tables") == (d / "report.md").read_text(encoding="utf-8")
