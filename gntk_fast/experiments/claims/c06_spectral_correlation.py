"""C6: the kernels' spectral metrics predict the training loss, with the paper's sign (Sec. 6)."""
from __future__ import annotations

from ..metrics import ALIGNMENT, ALPHA, EFFECTIVE_RANK, ENERGY_TOP5, P_VALUE, RHO, SPECTRAL_GAP
from ..pruned_study import KERNEL_LABELS, KERNELS
from ._base import Claim, verdict

#: The sign of Spearman's rho (metric against training loss) the paper's reading
#: expects: a kernel whose energy is concentrated in its top eigenvalues (higher
#: top-5 energy, faster decay alpha, larger gap, smaller effective rank) or
#: better aligned with the labels trains FASTER, i.e. to a LOWER loss.
EXPECTED_SIGN = {ENERGY_TOP5: -1, ALPHA: -1, SPECTRAL_GAP: -1, EFFECTIVE_RANK: +1, ALIGNMENT: -1}


def correlation_step(rows) -> int | None:
    """The step the claims read: the middle one of the correlation table's steps."""
    steps = sorted({r["step"] for r in rows})
    return steps[len(steps) // 2] if steps else None


def _evaluate(claim, t, meta):
    corr = t["correlations"]
    step = correlation_step(corr)
    out = []
    for kern in [k for k in KERNELS if any(r["kernel"] == k for r in corr)]:
        sel = [r for r in corr if r["kernel"] == kern and r["step"] == step and r["metric"] in EXPECTED_SIGN]
        if not sel:
            continue
        m = len(sel)
        right, wrong, parts = [], [], []
        for r in sel:
            if r[RHO] is None:
                parts.append(f"{r['metric']} n/a")
                continue
            sign = EXPECTED_SIGN[r["metric"]]
            sig = r[P_VALUE] is not None and r[P_VALUE] < 0.05 / m
            agrees = r[RHO] * sign > 0
            (right if sig and agrees else wrong if sig else []).append(r["metric"])
            parts.append(f"{r['metric']} rho={r[RHO]:+.2f} (expected {'+' if sign > 0 else '-'}, "
                         f"p={r[P_VALUE]:.2g}{', significant AGAINST the expected sign' if sig and not agrees else ''})")
        held = None if all(r[RHO] is None for r in sel) else bool(right and not wrong)
        out.append(verdict(claim, KERNEL_LABELS.get(kern, kern), held,
                           "; ".join(parts) + f"; n={sel[0]['n']} configurations, step {step}"))
    return out


CLAIM = Claim(
    "C6", "the kernel's spectral metrics predict the training loss with the paper's sign (more concentrated or "
    "better aligned kernel -> LOWER loss)", "Sec. 6", ("correlations",),
    "at the middle checkpoint, at least one metric with Spearman p < 0.05/#metrics (Bonferroni) in the expected "
    "direction (rho < 0 for top-5 energy, alpha, gap, alignment; rho > 0 for effective rank) and none significant "
    "against it", _evaluate)
