"""C5: SNIP and SynFlow concentrate kernel energy in the top eigenvalues as sparsity grows (Sec. 6, Fig. 3)."""
from __future__ import annotations

from .._tables import group_mean, group_series
from ..metrics import ENERGY_TOP5
from ..pruned_study import KERNEL_LABELS, KERNELS
from ._base import Claim, verdict

MIN_SEEDS = 5


def _evaluate(claim, t, meta):
    rows = t["kernels"]
    stats = group_mean(rows, ("kernel", "method", "sparsity"), ENERGY_TOP5)
    out = []
    for kern in [k for k in KERNELS if any(r["kernel"] == k for r in rows)]:
        parts, verdicts, few = [], [], False
        for m in ("snip", "synflow"):
            series = group_series(stats, kern, m)
            if series is None or len(series[0]) < 2:
                continue
            s, e, sd = series
            n = min(stats[(kern, m, x)][2] for x in s[[0, -1]].tolist())
            few |= n < MIN_SEEDS
            rise = float(e[-1] - e[0])
            spread = float(max(sd[0], sd[-1]))
            verdicts.append(bool(rise > 2 * spread))
            mono = all(b > a for a, b in zip(e, e[1:]))
            parts.append(f"{m}: " + " -> ".join(f"{v:.3f}" for v in e) + f" (s={s[0]:g}..{s[-1]:g}; rise "
                         f"{rise:+.4f}, 2 x sample sd {2 * spread:.4f}, {n} seeds"
                         + ("" if mono else ", not monotone") + ")")
        if not verdicts:
            continue
        held = None if few else all(verdicts)
        nums = "; ".join(parts) + (f"; fewer than {MIN_SEEDS} seeds: not measurable" if few else "")
        out.append(verdict(claim, KERNEL_LABELS.get(kern, kern), held, nums))
    return out


CLAIM = Claim(
    "C5", "SNIP and SynFlow concentrate kernel energy in the top eigenvalues: the top-5 energy RISES with sparsity",
    "Sec. 6, Fig. 3", ("kernels",),
    f"at least {MIN_SEEDS} seeds per case; for both SNIP and SynFlow, the top-5 energy at the highest sparsity minus "
    "that at the lowest > 2 x the larger sample sd (ddof 1) over seeds", _evaluate)
