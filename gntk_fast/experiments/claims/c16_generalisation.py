"""C16/C17: the NTK generalisation measure of each kernel predicts the held-out loss and the generalisation gap."""
from __future__ import annotations

from .._tables import group_mean, spearman
from ..metrics import GENERALISATION_GAP, NTK_GEN_MEASURE, TEST_LOSS
from ..pruned_study import KERNEL_LABELS, KERNELS
from ._base import Claim, verdict


def _rows(claim, t, target):
    gen = group_mean(t["generalisation"], ("method", "sparsity"), target)
    out = []
    for kern in KERNELS:
        sel = [r for r in t["kernels"] if r["kernel"] == kern and r.get(NTK_GEN_MEASURE) is not None]
        if not sel:
            continue
        meas = group_mean(sel, ("method", "sparsity"), NTK_GEN_MEASURE)
        keys = sorted(k for k in meas if k in gen)
        rho, p, n = spearman([meas[k][0] for k in keys], [gen[k][0] for k in keys])
        held = None if rho is None or n < 5 else bool(rho > 0 and p < 0.05)
        nums = (f"Spearman rho {rho:+.2f} (p={p:.2g}), n={n} configurations" if rho is not None
                else f"n/a (n={n})")
        out.append(verdict(claim, KERNEL_LABELS.get(kern, kern), held, nums))
    return out


def _test_loss(claim, t, meta):
    if not any(NTK_GEN_MEASURE in r for r in t.get("kernels", [])):
        return []
    return _rows(claim, t, TEST_LOSS)


def _gap(claim, t, meta):
    if not any(NTK_GEN_MEASURE in r for r in t.get("kernels", [])):
        return []
    return _rows(claim, t, GENERALISATION_GAP)


RULE = ("across the (method, sparsity) configurations (seed means, at least 5), Spearman rho of the kernel's "
        "measure sqrt(2 tr(Y^T Theta^-1 Y) / N) against the {} > 0 with p < 0.05")

CLAIM = Claim(
    "C16", "the NTK generalisation measure predicts the held-out loss: a LARGER measure goes with a HIGHER "
    "held-out loss", "follow-up (Arora et al. 2019 measure)", ("generalisation", "kernels"),
    RULE.format("held-out loss after training"), _test_loss)
