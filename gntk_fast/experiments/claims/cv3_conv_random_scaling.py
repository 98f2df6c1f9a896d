"""CV3: random pruning of a conv net at density c scales its NTK by c^(L+1) ("mask") or c^L ("all")."""
from __future__ import annotations

from ..metrics import EXPONENT, PREDICTED_EXPONENT, TRAINABLE
from ._base import Claim, verdict

ANALYTIC_TOL = 1e-6
ENTK_TOL = 0.10


def _evaluate(claim, t, meta):
    out = []
    for s in t["conv_random_scaling_fit"]:
        e, p = s[EXPONENT], s[PREDICTED_EXPONENT]
        tol = ANALYTIC_TOL if s["kernel"] == "analytic" else ENTK_TOL
        held = None if e is None else bool(abs(e - p) <= tol * p)
        nums = f"fitted exponent {e:.4f} vs {p} (tolerance {tol:g} x {p})" if e is not None else "n/a"
        out.append(verdict(claim, f"conv {s['kernel']}", held, nums,
                           subject=f"c^{p} (trainable=\"{s[TRAINABLE]}\")"))
    return out


CLAIM = Claim(
    "CV3", "random pruning of a conv net at density c scales its NTK by c^(L+1) (trainable=\"mask\") or c^L (\"all\")",
    "App. B (for conv nets)", ("conv_random_scaling_fit",),
    f"fitted exponent of sum(Theta_c)/sum(Theta_1) against c: within {ANALYTIC_TOL:g} (relative) of the predicted one "
    f"for the analytic Graphon CNTK of the constant graphon c, within {ENTK_TOL:.0%} for the eNTK of randomly pruned "
    "nets (same initial weights)", _evaluate)
