"""The :class:`Section` object and the read-only view a section renders from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Section", "View", "md_table", "fmt"]


@dataclass
class View:
    """What a section renders from: the tables (name -> rows), the run's record
    ``meta`` (scale, data, settings, summaries, timings, notes, figures, machine)
    and the claims' verdict rows. Figures are paths relative to the report."""

    tables: dict[str, list]
    meta: dict[str, Any]
    claims: list[dict] = field(default_factory=list)

    @property
    def settings(self) -> dict:
        return self.meta["settings"]

    @property
    def summaries(self) -> dict:
        return self.meta.get("summaries", {})

    @property
    def figures(self) -> dict[str, str]:
        return self.meta.get("figures", {})


@dataclass(frozen=True)
class Section:
    """One report section.

    Parameters
    ----------
    name : key of the section (its saved state, its timing).
    settings : the keys of the scale's settings it depends on (a change reruns it).
    tables : the tables it writes (its render is called when the first one is present).
    run : ``run(run)``: computes the tables, figures and summaries and saves them.
    render : ``render(view) -> list[str]`` markdown lines, from the tables alone.
    deviations : ``deviations(view) -> list[str]``: where the section departs
        from the paper's protocol, one sentence each.
    """

    name: str
    settings: tuple[str, ...]
    tables: tuple[str, ...]
    run: Callable[[Any], None]
    render: Callable[[View], list[str]]
    deviations: Callable[[View], list[str]] = lambda view: []

    def present(self, view: View) -> bool:
        return self.tables[0] in view.tables


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def md_table(rows: list[dict], cols: list[str]) -> str:
    """A markdown table of ``rows`` restricted to ``cols``."""
    if not rows:
        return "(no rows)\n"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"
