"""C6b: at each sparsity, a method whose kernel is more concentrated than Random's trains faster than Random."""
from __future__ import annotations

from scipy.stats import binomtest

from .._tables import group_mean
from ..metrics import ENERGY_TOP5, LOSS
from ..pruned_study import KERNEL_LABELS, KERNELS
from ._base import Claim, verdict
from .c06_spectral_correlation import EXPECTED_SIGN, correlation_step

METRIC = ENERGY_TOP5
MIN_PAIRS = 5


def _evaluate(claim, t, meta):
    kr, tr = t["kernels"], t.get("training", [])
    steps = sorted({r["step"] for r in tr})
    if not steps:
        return []
    step = correlation_step(t.get("correlations") or tr)
    loss = group_mean([r for r in tr if r["step"] == step], ("method", "sparsity"), LOSS)
    sign = EXPECTED_SIGN[METRIC]
    out = []
    for kern in [k for k in KERNELS if any(r["kernel"] == k for r in kr)]:
        met = group_mean([r for r in kr if r["kernel"] == kern], ("method", "sparsity"), METRIC)
        pairs = []
        for (m, s), v in sorted(met.items()):
            if m in ("random", "dense") or ("random", s) not in met or (m, s) not in loss or ("random", s) not in loss:
                continue
            dm, dl = v[0] - met[("random", s)][0], loss[(m, s)][0] - loss[("random", s)][0]
            pairs.append((m, s, dm, dl, dm * dl * sign > 0))
        if not pairs:
            continue
        k, n = sum(p[4] for p in pairs), len(pairs)
        p = float(binomtest(k, n, 0.5, alternative="greater").pvalue)
        held = None if n < MIN_PAIRS else bool(p < 0.05)
        nums = (f"{k}/{n} (method, sparsity) pairs agree with the expected sign, sign-test p={p:.2g}; " +
                "; ".join(f"{m} s={s:g}: d{METRIC} {dm:+.3f}, dloss {dl:+.3f}" for m, s, dm, dl, _ in pairs))
        out.append(verdict(claim, KERNEL_LABELS.get(kern, kern), held, nums + f"; step {step}"))
    return out


CLAIM = Claim(
    "C6b", "at the same sparsity, a method whose kernel has MORE top-5 energy than Random's trains to a LOWER loss "
    "than Random (the paper's comparison)", "Sec. 6, Fig. 2-3", ("kernels", "training"),
    f"over the (method, sparsity) pairs (every pruner but Random, every sparsity), the difference from Random in "
    f"top-5 energy and in training loss at the middle checkpoint have opposite signs in more pairs than chance: "
    f"one-sided sign test p < 0.05 with at least {MIN_PAIRS} pairs", _evaluate)
