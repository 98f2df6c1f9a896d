"""C18: where the masks route paths to the class-relevant input coordinates, the kernel is better aligned."""
from __future__ import annotations

from .._tables import group_mean, spearman
from ..metrics import ALIGNMENT, PATH_RELEVANCE_CORR
from ..pruned_study import KERNEL_LABELS, KERNELS
from ._base import Claim, verdict

MIN_CONFIGS = 5


def _evaluate(claim, t, meta):
    pc = group_mean(t["path_density"], ("method", "sparsity"), PATH_RELEVANCE_CORR)
    out = []
    for kern in KERNELS:
        al = group_mean([r for r in t.get("kernels", []) if r["kernel"] == kern], ("method", "sparsity"), ALIGNMENT)
        keys = sorted(k for k in pc if k in al)
        if not keys:
            continue
        rho, p, n = spearman([pc[k][0] for k in keys], [al[k][0] for k in keys])
        held = None if rho is None or n < MIN_CONFIGS else bool(rho > 0 and p < 0.05)
        out.append(verdict(claim, KERNEL_LABELS.get(kern, kern), held,
                           f"Spearman rho {rho:+.2f} (p={p:.2g}), n={n} configurations" if rho is not None
                           else f"n/a (n={n})"))
    return out


CLAIM = Claim(
    "C18", "topology modulates alignment: the more the path density P(j) follows the class relevance of the input "
    "coordinates, the HIGHER the kernel-target alignment", "follow-up (path densities)", ("path_density", "kernels"),
    f"across the pruned (method, sparsity) configurations (seed means, at least {MIN_CONFIGS}), Spearman rho of "
    "Pearson(P(j), class relevance of j) against the kernel's alignment > 0 with p < 0.05", _evaluate)
