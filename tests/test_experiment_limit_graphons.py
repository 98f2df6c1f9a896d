"""The limit-graphons experiment at a tiny size: every part runs, the table and the figures come out."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gntk_fast.experiments import limit_graphons


def test_small_run_all_parts(tmp_path):
    e = limit_graphons("small", tmp_path, methods=["random", "snip (batch 1)"], widths=[32, 96],
                       trials=2, design_steps=3, design_batch=24, design_width=32, train_steps=5, n_train=100,
                       n_eval=50)
    for part in ("convergence", "slope", "input", "paths", "design", "training"):
        assert e.select(part), part
    for name in ("distance_vs_width", "prediction_vs_sas", "input_maps", "path_density", "training_curves",
                 "design_history"):
        p = e.figures[name]
        assert p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    body = json.loads((tmp_path / "results.json").read_text())
    assert len(body["rows"]) == len(e.rows)
    # the check compares with an independent network's masks; the same-network fit is a labelled diagnostic
    refs = {r["reference"] for r in e.select("slope", method="snip (batch 1)", layer=1)}
    assert refs == {"independent", "same network"}
    slope = e.select("slope", method="snip (batch 1)", layer=1, reference="independent")[0]
    assert slope["rms"][1] < slope["rms"][0]
    assert np.isfinite(slope["slope_rms"]) and slope["pred_error"] > 0
    # the check's prediction is pooled over networks that are not test networks: the same for every trial
    conv = e.select("convergence", method="snip (batch 1)", layer=1, reference="independent", width=32)
    assert all(r["n_networks"] == 4 for r in conv)
    same = e.select("convergence", method="snip (batch 1)", reference="same network")
    assert all(r["n_networks"] == 1 and np.isnan(r["pred_error"]) for r in same)
    # Random's prediction is the exact constant: no sampling error, the same for both references
    for r in e.select("convergence", method="random"):
        assert r["pred_error"] == 0.0 and r["pred_to_const"] < 1e-12
    assert all(r["reference"] == "independent" for r in e.select("input"))
    # designed graphon: the objective improved, training rows for the five pruners
    assert e.select("design")[0]["final"] < e.select("design")[0]["initial"]
    assert {r["method"] for r in e.select("training")} == {
        "designed (alignment)", "designed shuffled", "random", "snip", "synflow (100 it.)"}


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        limit_graphons("huge", tmp_path)
    with pytest.raises(ValueError, match="methods"):
        limit_graphons("small", tmp_path, methods=["nope"])
    with pytest.raises(ValueError, match="unknown setting"):
        limit_graphons("small", tmp_path, nope=1)
    with pytest.raises(ValueError, match="K=16"):
        limit_graphons("small", tmp_path, widths=[8, 16])
    with pytest.raises(ValueError, match="parts"):
        limit_graphons("small", tmp_path, parts=["nope"])


def test_merge_runs_at_different_widths(tmp_path):
    from gntk_fast.experiments.limit_graphons import merge_results

    kw = dict(methods=["random"], trials=1, parts=("convergence",))
    a = limit_graphons("small", tmp_path / "a", widths=[32, 48], **kw)
    b = limit_graphons("small", tmp_path / "b", widths=[64], **kw)
    m = merge_results([tmp_path / "a" / "results.json", tmp_path / "b" / "results.json"], tmp_path / "m")
    s = m.select("slope", method="random", layer=1)[0]
    assert s["widths"] == [32, 48, 64]
    assert s["rms"][:2] == a.select("slope", method="random", layer=1)[0]["rms"]
    assert s["rms"][2] == b.select("slope", method="random", layer=1)[0]["rms"][0]
    assert m.figures["distance_vs_width"].exists()
    with pytest.raises(ValueError, match="differ"):
        c = limit_graphons("small", tmp_path / "c", widths=[32], sparsity=0.5, **kw)
        merge_results([tmp_path / "a" / "results.json", tmp_path / "c" / "results.json"], tmp_path / "m2")
    assert c.config["sparsity"] == 0.5
