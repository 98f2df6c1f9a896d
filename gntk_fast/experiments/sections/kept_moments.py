"""Section 5: why GraSP's eNTK explodes: the first moment of its kept weights, by width."""
from __future__ import annotations

import time

import numpy as np

from ..metrics import (COHERENCE, COHERENCE_HIDDEN, ENTK_TRACE_RATIO, MEAN_KEPT, MEAN_KEPT_HIDDEN, OUT_SCALE,
                       OUT_SCALE_LAST, SECOND_KEPT, SECOND_KEPT_HIDDEN)
from ._base import Section, View, md_table


def summary(layer_rows: list[dict], net_rows: list[dict]) -> list[dict]:
    """Per (method, width): mean over seeds of the hidden layers' coherence and E[w m],
    the last layer's output scale over the dense net's, and the eNTK trace ratio."""
    out = []
    hidden = {r["layer"] for r in layer_rows} - {0, max(r["layer"] for r in layer_rows)} if layer_rows else set()
    for m, n in sorted({(r["method"], r["width"]) for r in layer_rows}):
        sel = [r for r in layer_rows if r["method"] == m and r["width"] == n]
        hid = [r for r in sel if r["layer"] in hidden]
        last = max(r["layer"] for r in sel)
        out.append({"method": m, "width": n,
                    COHERENCE_HIDDEN: float(np.mean([r[COHERENCE] for r in hid])) if hid else None,
                    MEAN_KEPT_HIDDEN: float(np.mean([r[MEAN_KEPT] for r in hid])) if hid else None,
                    SECOND_KEPT_HIDDEN: float(np.mean([r[SECOND_KEPT] for r in hid])) if hid else None,
                    OUT_SCALE_LAST: float(np.mean([r[OUT_SCALE] for r in sel if r["layer"] == last
                                                   and r[OUT_SCALE] is not None])),
                    ENTK_TRACE_RATIO: float(np.mean([r[ENTK_TRACE_RATIO] for r in net_rows
                                                     if r["method"] == m and r["width"] == n]))})
    return out


def _run(run) -> None:
    from ..kept_moments import kept_weight_moments

    t0 = time.perf_counter()
    s = run.settings["kept_moments"]
    layers, nets = kept_weight_moments(s["methods"], s["widths"], sparsity=s["sparsity"], depth=s["depth"],
                                       seeds=s["seeds"], data=run.data, data_dir=run.data_dir,
                                       n_inputs=s["n_inputs"], progress=run.progress)
    run.save_section("kept_moments", {"kept_moments": layers, "kept_moments_nets": nets}, {}, {},
                     time.perf_counter() - t0)


def _render(v: View) -> list[str]:
    s = v.settings["kept_moments"]
    L = ["## 5. The first moment of the kept weights (GraSP's eNTK)", "",
         f"Nets of {s['depth']} hidden layers pruned at sparsity {s['sparsity']} (global scope) by "
         f"{', '.join(s['methods'])}; widths {s['widths']}, {s['seeds']} seeds, eNTK on {s['n_inputs']} inputs. "
         "coherence = sqrt(n_in) rms_i(mean_j w_ij m_ij) / sqrt(E[w^2 m]): about 1 when the mask ignores the "
         "weights' signs, growing like sqrt(n) when a row keeps more weights of one sign (a first-moment graphon "
         "E[w m] that does not vanish; its mean term then dominates the pre-activation). out_scale_last: RMS of "
         "the read-out's pre-activation over the dense net's (same initial weights); entk_trace_ratio: eNTK trace "
         "over the dense net's. Kernels (c) and (d) carry second moments only.", ""]
    L.append(md_table(summary(v.tables["kept_moments"], v.tables.get("kept_moments_nets", [])),
                      ["method", "width", COHERENCE_HIDDEN, MEAN_KEPT_HIDDEN, SECOND_KEPT_HIDDEN,
                       OUT_SCALE_LAST, ENTK_TRACE_RATIO]))
    return L


SECTION = Section("kept_moments", ("kept_moments",), ("kept_moments", "kept_moments_nets"), _run, _render)
