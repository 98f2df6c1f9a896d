"""Section 4: predicted limit graphons, feature selection, path densities, a designed graphon (the follow-up)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..metrics import (CORR, CUT, ERR_JOINT, ERR_PER_MASK, FIT_R2, JACCARD, PRED_ERROR, PRUNED_MEASURED, PRUNED_PRED,
                       RMS, SLOPE_CUT, SLOPE_RMS, TEST_ACCURACY, TEST_LOSS)
from ._base import Section, View, md_table

PARTS = ("convergence", "slope", "input", "paths", "design", "training")


def _run(run) -> None:
    from .._tables import jsonable
    from ..limit_graphons import limit_graphons

    t0 = time.perf_counter()
    over = dict(run.settings["limit_graphons"])
    over.setdefault("data", run.data)
    exp = limit_graphons(run.scale, run.out / "figures" / "limit_graphons", data_dir=run.data_dir,
                         progress=run.progress is not False, **over)
    tables = {}
    for part in PARTS:
        rows = [{k: (json.dumps(jsonable(v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
                 for k, v in r.items()} for r in exp.select(part)]
        if rows:
            tables[f"limit_{part}"] = rows
    figs = {f"limit_{k}": Path(v) for k, v in exp.figures.items()}
    run.save_section("limit_graphons", tables, {"limit_config": jsonable(exp.config)}, figs,
                     time.perf_counter() - t0)


def _render(v: View) -> list[str]:
    t, f = v.tables, v.figures
    cfg = v.summaries.get("limit_config", {})
    L = ["## 4. Predicted limit graphons (the follow-up paper)", "",
         f"Factorised Saliency Model predictions against SAS estimates of the real masks; widths "
         f"{cfg.get('widths')}, sparsity {cfg.get('sparsity')}, depth {cfg.get('depth')}, K = {cfg.get('K')}, "
         f"layerwise scope; data {cfg.get('data')}. Rows with reference \"independent\" compare the prediction "
         "with masks of networks it was not computed from (the check); \"same network\" rows (or rows without a "
         "reference) fit the prediction on the very network whose masks they compare (a diagnostic of agreement, "
         "which falls like 1/n without saying anything about a deterministic limit).", ""]
    if cfg.get("pool"):
        L += [f"The check's prediction is pooled over {cfg['pool']} networks of each width, none of them a test "
              "network: the factors' quantile functions A(u), B(v) and the residual law are averaged over the pool "
              "(SynFlow with 100 iterations: the pool's recursions averaged), so it is the same for every test "
              "network; `pred_error` is the pooled estimate's own error (sd over the pool's single-network "
              "predictions / sqrt(pool), RMS over the grid). Random and Magnitude use the exact constant d.", ""]
    for k in sorted(f):
        if k.startswith("limit_"):
            L += [f"![{k}]({f[k]})", ""]
    cols = ["method", "layer"] + (["reference"] if any("reference" in r for r in t["limit_slope"]) else []) + [
        RMS, SLOPE_RMS, CUT, SLOPE_CUT, FIT_R2] + ([PRED_ERROR] if cfg.get("pool") else [])
    L.append(md_table(t["limit_slope"], cols))
    if t.get("limit_input"):
        L.append(md_table(t["limit_input"], ["method", "width", "trial", CORR, JACCARD, PRUNED_PRED,
                                             PRUNED_MEASURED]))
    if t.get("limit_paths"):
        L.append(md_table(t["limit_paths"], ["method", "width", "trial", ERR_JOINT, ERR_PER_MASK]))
    if t.get("limit_training"):
        L.append(md_table(t["limit_training"], ["method", "seed", TEST_LOSS, TEST_ACCURACY]))
    return L


def _deviations(v: View) -> list[str]:
    cfg = v.summaries.get("limit_config", {})
    out = []
    if cfg.get("trials", 1) < 5:
        n = cfg.get("trials")
        out.append(f"Limit graphons: {n} network{'s' if n != 1 else ''} per width and method.")
    return out


SECTION = Section("limit_graphons", ("limit_graphons",), tuple(f"limit_{p}" for p in PARTS), _run, _render,
                  _deviations)
