"""The :class:`Claim` object and the verdict row every claim returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

__all__ = ["Claim", "verdict", "Tables"]

#: table name -> rows (the report's tidy tables, as read back from their files)
Tables = Mapping[str, Sequence[dict]]


def verdict(claim: "Claim", on: str, held: bool | None, numbers: str, *, subject: str | None = None) -> dict:
    """One verdict row of ``claim``: ``{id, claim, source, kernel, held, numbers, criterion}``.

    ``on`` names the object measured (a kernel, the masks, ...), ``held`` is
    True, False or None (not measurable / not applicable: ``numbers`` says
    why), ``subject`` prefixes the hypothesis (e.g. a method's name).
    """
    text = claim.hypothesis if subject is None else f"{subject}: {claim.hypothesis}"
    return {"id": claim.id, "claim": text, "source": claim.source, "kernel": on, "held": held,
            "numbers": numbers, "criterion": claim.rule}


@dataclass(frozen=True)
class Claim:
    """One claim: the hypothesis with its expected sign, the rule that decides it,
    the tables it reads, and the function that applies the rule.

    Parameters
    ----------
    id : short identifier ("C1", ...), unique in the registry.
    hypothesis : the claim as a sentence, with the direction expected
        (e.g. "the distance FALLS with width").
    source : where the claim comes from (the paper's section, or this package).
    reads : the report tables the rule reads; the claim is evaluated when the
        first of them is present.
    rule : the decision rule in words, numbers included.
    evaluate : ``evaluate(claim, tables, meta) -> list[dict]`` of
        :func:`verdict` rows (``meta``: the run's settings and summaries).

    Examples
    --------
    >>> c = Claim("X1", "y rises", "demo", ("t",), "last y > first y",
    ...           lambda c, t, m: [verdict(c, "y", t["t"][-1]["y"] > t["t"][0]["y"], "")])
    >>> c({"t": [{"y": 1}, {"y": 2}]}, {})[0]["held"]
    True
    """

    id: str
    hypothesis: str
    source: str
    reads: tuple[str, ...]
    rule: str
    evaluate: Callable[["Claim", Tables, dict], list[dict]]

    def applies(self, tables: Tables) -> bool:
        """Whether the first table the claim reads is present."""
        return bool(self.reads) and self.reads[0] in tables

    def __call__(self, tables: Tables, meta: Mapping[str, Any]) -> list[dict]:
        if not self.applies(tables):
            return []
        return self.evaluate(self, tables, dict(meta))
