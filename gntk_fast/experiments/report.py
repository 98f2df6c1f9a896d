"""The main job: every experiment of the paper, its claims tested, one report.

:func:`run_report` runs, at the sizes of a *scale* ("small": the embedded
digits data, minutes on two CPU cores; "paper": the paper's sizes on MNIST),

1. graphon convergence (Fig. 1, 4-9) in global and layerwise scope, with the
   per-layer density drift of global scope;
2. kernel checks: finite graphon-sampled nets against the analytic kernel
   (docs/graphon-ntk.md section 4, fact 3) and random pruning's scaling law (Appendix B), both
   conventions, eNTK and analytic;
3. the pruned-network study (Fig. 2, 3, 10): training curves, the four kernels
   (a)-(d) of every (method, sparsity, seed) and their spectral metrics,
   Spearman correlations of each metric with the training loss at steps
   50/100/200, and the linearised prediction beside measured GD;
4. the follow-up's limit-graphon checks;
5. the claims (:mod:`gntk_fast.experiments.claims`), the history of their
   rules, and every deviation from the paper's protocol.

Each section is a :class:`gntk_fast.experiments.sections.Section` (run,
render, deviations) registered in :mod:`gntk_fast.experiments.sections`;
each claim a :class:`gntk_fast.experiments.claims.Claim` registered in
:mod:`gntk_fast.experiments.claims`. report.md is rendered from the tables
alone (:func:`render_report`): ``gntk-fast report --from-tables OUT/tables``
re-renders it without recomputing anything.

Output directory ``out``::

    report.md              every figure and table, the claims section
    results.json           config, timings and the claims (one file)
    tables/NAME.json|.parquet   the tidy tables
    tables/report_meta.json     the run's record (settings, summaries, timings,
                           notes, figures, machine) the rendering reads
    figures/NAME.png
    cases/CASE.json        one file per finished case of the study
    sections/NAME.json     finished sections (a rerun with the same
                           settings reuses them: an interrupted run resumes)

Every file is written atomically, and report.md is rewritten after each
section, so an interrupted run leaves a report of what finished.
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import write_text
from .._validation import check_choice
from .claims import RULE_CHANGES, evaluate_claims
from ._tables import clean, jsonable, read_table, write_table
from .metrics import check_columns
from .sections import SECTIONS, View, md_table
from .sections.convergence import flat_null_sd

__all__ = ["SCALES", "run_report", "render_report", "ReportResult", "flat_null_sd"]

META = "report_meta"

SCALES: dict[str, dict[str, Any]] = {
    "small": {
        "data": "digits",
        "convergence": {"methods": ["random", "snip", "grasp", "synflow"], "widths": [64, 128, 256], "trials": 3,
                        "K": 16, "depth": 3, "sparsity": 0.9},
        "kernel_convergence": {"widths": [128, 256, 512, 1024], "seeds": 3, "K": 512},
        "random_scaling": {"densities": [1.0, 0.5, 0.25, 0.1], "width": 512, "depth": 3, "seeds": 2},
        "pruned_kernels": {"methods": ["random", "snip", "synflow"], "widths": [64, 128, 256], "seeds": 2,
                           "sparsity": 0.8, "depth": 3, "K": 32, "n_inputs": 48},
        "study": {"methods": ["dense", "random", "magnitude", "snip", "grasp", "synflow"],
                  "sparsities": [0.5, 0.95], "seeds": 5,
                  "config": {"width": 128, "depth": 4, "steps": 100, "batch_size": 64, "n_train": 1000,
                             "n_eval": 500, "n_kernel": 128, "n_linear": 96, "K": 16, "gd_steps": 100}},
        "checkpoints": [25, 50, 100],
        "limit_graphons": {"widths": [64, 128, 256, 512], "trials": 1},
        "kept_moments": {"methods": ["random", "grasp"], "widths": [64, 128, 256, 512], "seeds": 2,
                         "sparsity": 0.9, "depth": 3, "n_inputs": 16},
        "active_subspace": {"methods": ["snip", "synflow"], "widths": [64, 128, 256], "seeds": 2},
        "conv": {"convergence": {"methods": ["random", "magnitude", "snip", "grasp", "synflow"], "channels": [16, 32, 64, 128], "trials": 1, "K": 8, "depth": 3, "sparsity": 0.9}, "kernel_convergence": {"channels": [32, 64, 128, 256], "seeds": 2, "depth": 2, "K": 8, "input_masks": "bernoulli", "readouts": ["flatten", "gap"], "n_images": 8, "gap_images": 4}, "random_scaling": {"densities": [1.0, 0.5, 0.25, 0.1], "channels": 128, "depth": 2, "seeds": 2, "n_images": 8}},  # noqa: E501
        "conv_study": {"methods": ["dense", "random", "magnitude", "snip", "grasp", "synflow"],
                       "sparsities": [0.8, 0.95], "seeds": 5, "checkpoints": [10, 20, 40],
                       "config": {"channels": 16, "depth": 3, "readout": "flatten", "steps": 40, "lr": 1e-2,
                                  "batch_size": 32, "eval_every": 10, "n_train": 500, "n_eval": 200,
                                  "n_test": 1000, "n_kernel": 32, "K": 8}},
    },
    "paper": {
        "data": "mnist",
        "convergence": {"methods": ["random", "snip", "grasp", "synflow"], "widths": [100, 500, 1000, 2000],
                        "trials": 10, "K": 64, "depth": 3, "sparsity": 0.9},
        "kernel_convergence": {"widths": [128, 256, 512, 1024, 2048], "seeds": 3, "K": 512},
        "random_scaling": {"densities": [1.0, 0.5, 0.25, 0.1], "width": 2048, "depth": 3, "seeds": 3},
        "pruned_kernels": {"methods": ["random", "snip", "synflow"], "widths": [256, 512, 1024, 2048], "seeds": 2,
                           "sparsity": 0.8, "depth": 3, "K": 64, "n_inputs": 64},
        "study": {"methods": ["dense", "random", "magnitude", "snip", "grasp", "synflow"],
                  "sparsities": [0.5, 0.8, 0.9, 0.95], "seeds": 5,
                  "config": {"width": 1024, "depth": 4, "steps": 200, "batch_size": 128, "n_train": 9000,
                             "n_eval": 2000, "n_test": 1000, "n_kernel": 300, "n_linear": 128, "K": 64,
                             "gd_steps": 200}},
        "checkpoints": [50, 100, 200],
        "limit_graphons": {},
        "kept_moments": {"methods": ["random", "grasp"], "widths": [256, 512, 1024, 2048], "seeds": 3,
                         "sparsity": 0.9, "depth": 3, "n_inputs": 32},
        "active_subspace": {"methods": ["snip", "grasp", "synflow"], "widths": [128, 256, 512, 1024], "seeds": 3,
                            "pool": 8},
        "conv": {"convergence": {"methods": ["random", "magnitude", "snip", "grasp", "synflow"], "channels": [16, 32, 64, 128, 256, 512], "trials": 3, "K": 16, "depth": 3, "sparsity": 0.9}, "kernel_convergence": {"channels": [64, 128, 256, 512], "seeds": 3, "depth": 2, "K": 8, "input_masks": "bernoulli", "readouts": ["flatten"], "n_images": 16, "gap_images": 4}, "random_scaling": {"densities": [1.0, 0.5, 0.25, 0.1], "channels": 512, "depth": 3, "seeds": 3, "n_images": 16}},  # noqa: E501
        "conv_study": {"methods": ["dense", "random", "magnitude", "snip", "grasp", "synflow"],
                       "sparsities": [0.5, 0.8, 0.9, 0.95], "seeds": 5, "checkpoints": [50, 100, 200],
                       "config": {"channels": 32, "depth": 3, "readout": "flatten", "steps": 200, "lr": 1e-2,
                                  "batch_size": 64, "eval_every": 25, "n_train": 9000, "n_eval": 1000,
                                  "n_test": 1000, "n_kernel": 128, "K": 16}},
    },
}


@dataclass
class ReportResult:
    """Paths and claims of a finished (or interrupted) report."""

    out: Path
    report: Path
    claims: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


class _Run:
    def __init__(self, out: Path, scale: str, data: str, data_dir, progress, settings):
        self.out = out
        self.scale, self.data, self.data_dir = scale, data, data_dir
        self.progress = progress
        self.settings = settings
        self.tables: dict[str, list] = {}
        self.figures: dict[str, Path] = {}
        self.summaries: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds of the sections run by this process (all threads)
        self.notes: list[str] = []

    def key(self, section: str) -> str:
        """Hash of the settings a section depends on (and the dataset), so a
        change to one section's settings reruns that section only."""
        sec = next(s for s in SECTIONS if s.name == section)
        part = [self.settings[k] for k in sec.settings]
        return hashlib.sha256(json.dumps([part, self.data], sort_keys=True).encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ cases
    def case_path(self, section: str, name: str) -> Path:
        """The file of one finished piece of a section (a case, a part), keyed by the section's settings."""
        return self.out / "cases" / f"{name}_{self.key(section)}.json"

    def save_case(self, path: Path, blob: Any) -> None:
        """Write one finished piece as JSON, atomically (Ctrl-C loses nothing that finished)."""
        write_text(path, json.dumps(jsonable(blob), allow_nan=False) + "\n")

    def cached(self, section: str, name: str, compute) -> Any:
        """``compute()``'s result, saved as the section's piece ``name`` when it finishes and read back by a
        rerun with the same settings (always the JSON form, so both runs see the same values)."""
        path = self.case_path(section, name)
        if not path.exists():
            self.save_case(path, compute())
        return json.loads(path.read_text())

    # --------------------------------------------------------------- sections
    def section_path(self, name: str) -> Path:
        return self.out / "sections" / f"{name}.json"

    def load_section(self, name: str) -> bool:
        p = self.section_path(name)
        if not p.exists():
            return False
        try:
            blob = json.loads(p.read_text())
        except (OSError, ValueError):
            return False
        if blob.get("key") != self.key(name) or not all((self.out / f).exists() for f in blob.get("figures", {}).values()):
            return False
        self.tables.update(blob["tables"])
        self.summaries.update(blob["summaries"])
        self.figures.update({k: self.out / v for k, v in blob["figures"].items()})
        self.timings[name] = blob["seconds"]
        self.notes.extend(blob.get("notes", []))
        return True

    def save_section(self, name: str, tables: dict, summaries: dict, figures: dict, seconds: float, notes=()) -> None:
        for t, rows in tables.items():  # one naming for every table: the registry's
            check_columns(rows, f"section {name!r}, table {t!r}")
        for t, rows in tables.items():
            rows = [{k: clean(v) for k, v in r.items()} for r in rows]
            tables[t] = rows
            write_table(rows, self.out / "tables" / t)
        self.tables.update(tables)
        self.summaries.update(summaries)
        self.figures.update(figures)
        self.timings[name] = seconds
        self.notes.extend(notes)
        blob = {"key": self.key(name), "tables": tables, "summaries": jsonable(summaries), "seconds": seconds,
                "figures": {k: str(v.relative_to(self.out)) for k, v in figures.items()}, "notes": list(notes)}
        write_text(self.section_path(name), json.dumps(blob, allow_nan=False) + "\n")

    def fig(self, name: str) -> Path:
        return self.out / "figures" / f"{name}.png"

    def meta(self, finished: bool) -> dict:
        return jsonable({"scale": self.scale, "data": self.data, "settings": self.settings,
                         "summaries": self.summaries, "timings": self.timings, "cpu_seconds": self.cpu,
                         "notes": self.notes,
                         "figures": {k: str(Path(v).relative_to(self.out)) for k, v in self.figures.items()},
                         "machine": f"{platform.machine()} {platform.system()}, Python {platform.python_version()}",
                         "rule_changes": list(RULE_CHANGES), "finished": finished})


# ------------------------------------------------------------------- render
def _read_tables(tables_dir: Path) -> tuple[dict[str, list], dict]:
    meta_path = tables_dir / f"{META}.json"
    if not meta_path.is_file():
        raise ValueError(f"tables_dir: {tables_dir} has no {META}.json (not a report's tables folder)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    # the tables of the sections this run finished (a folder may hold older ones of an interrupted run)
    names = {t for s in SECTIONS if s.name in meta.get("timings", {}) for t in s.tables}
    tables = {p.stem: read_table(p) for p in sorted(tables_dir.glob("*.json")) if p.stem in names}
    return tables, meta


def _rules_lines(meta: dict) -> list[str]:
    """The rules section: the rule changes as recorded in the report's tables when it ran."""
    L = ["## Rules", "",
         "Each claim's rule (the criterion column above) was written before its numbers were seen, except for the "
         "changes below marked \"yes\" under \"after numbers\"; every change to a rule, or to a setting a claim "
         "reads, is listed with its date and reason.", ""]
    rows = [{"date": r["date"], "claims": r["claims"], "before": r["before"], "after": r["after"],
             "reason": r["reason"], "after numbers": "yes" if r.get("after_numbers", True) else "no"}
            for r in meta.get("rule_changes", RULE_CHANGES)]
    L.append(md_table(rows, ["date", "claims", "before", "after", "reason", "after numbers"]))
    return L


def _deviation_lines(view: View, sections) -> list[str]:
    items = []
    if view.meta["scale"] == "small":
        items.append("Small scale: reduced widths, seeds, trials and training on the embedded 8x8 digits; its "
                     "verdicts do not speak for the paper's sizes.")
        st = view.settings.get("study", {}).get("config", {})
        if st.get("steps", 200) < 200:
            items.append(f"Small scale, to fit its time budget: the study trains {st['steps']} steps (the paper 200; "
                         f"losses read at steps {view.settings.get('checkpoints')}), evaluates on {st.get('n_eval')} "
                         f"held-out inputs, and runs the linearised comparison for {st.get('gd_steps')} GD steps "
                         f"on {st.get('n_linear')} inputs.")
    if view.meta["data"] == "mnist":
        items.append("MNIST: where no training split was found (see the note above), the 10k test split serves "
                     "as training data, a data split the paper does not use.")
    for s in sections:
        items += s.deviations(view)
    return ["## Deviations from the paper", ""] + [f"* {d}" for d in items] + [""]


def render_report(tables_dir: str | Path) -> str:
    """report.md of a report, rendered from its tables folder alone (no recomputation).

    The folder holds the tidy tables (``NAME.json``) and ``report_meta.json``
    (the run's settings, summaries, timings, notes, figure paths and machine).
    The claims are evaluated afresh from the tables under the current rules.

    Parameters
    ----------
    tables_dir : a report's ``tables`` folder.

    Returns
    -------
    str : the markdown text (what :func:`run_report` writes as report.md).

    Examples
    --------
    >>> from gntk_fast.experiments.report import render_report
    >>> text = render_report("examples/results/report_paper_mnist/tables")  # doctest: +SKIP
    """
    tables_dir = Path(tables_dir)
    if not tables_dir.is_dir():
        raise ValueError(f"tables_dir: {tables_dir} is not a directory")
    tables, meta = _read_tables(tables_dir)
    claims = evaluate_claims(tables, meta)
    view = View(tables, meta, claims)
    present = [s for s in SECTIONS if s.name in meta.get("timings", {}) and s.present(view)]
    L = [f"# gntk_fast report ({meta['scale']} scale, {meta['data']})", ""]
    L.append("Status: " + ("complete." if meta.get("finished") else "**interrupted or still running**: sections "
                           "below are the finished ones."))
    L.append("")
    L.append(f"Machine: {meta.get('machine', 'unknown')}. Timings: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in meta.get("timings", {}).items()) + "."
             + (" CPU time of the sections run in the last session (all threads): "
                + ", ".join(f"{k} {v:.0f} s" for k, v in meta["cpu_seconds"].items()) + "."
                if meta.get("cpu_seconds") else ""))
    for n in meta.get("notes", []):
        L += ["", f"Note: {n}"]
    held = sum(c["held"] is True for c in claims)
    failed = sum(c["held"] is False for c in claims)
    L += ["", "## Claims", "",
          "Each claim of the paper, of its follow-up and of this package, with the direction it predicts, the object "
          "it was measured on, and whether it held at this scale under the stated criterion "
          "(\"-\": not measurable or not applicable; the numbers say why). "
          f"{held} held, {failed} did not, {len(claims) - held - failed} not measurable.", ""]
    L.append(md_table(claims, ["id", "claim", "source", "kernel", "held", "numbers", "criterion"]))
    L += _rules_lines(meta)
    L += _deviation_lines(view, present)
    for s in present:
        L += s.render(view)
    return "\n".join(L) + "\n"


def _write_report(run: _Run, finished: bool) -> tuple[Path, list[dict]]:
    tables_dir = run.out / "tables"
    write_text(tables_dir / f"{META}.json", json.dumps(run.meta(finished), indent=1, allow_nan=False) + "\n")
    text = render_report(tables_dir)
    tables, meta = _read_tables(tables_dir)
    claims = evaluate_claims(tables, meta)
    path = run.out / "report.md"
    write_text(path, text)
    results = {"scale": run.scale, "data": run.data, "settings": run.settings, "timings": run.timings,
               "claims": claims, "finished": finished, "notes": run.notes, "figures": meta["figures"],
               "tables": sorted(tables)}
    write_text(run.out / "results.json", json.dumps(jsonable(results), indent=1, allow_nan=False) + "\n")
    write_table(claims, tables_dir / "claims")
    return path, claims


def rerender(tables_dir: str | Path) -> Path:
    """Rewrite report.md (beside ``tables_dir``) and ``tables/claims.json`` from the tables alone.

    Examples
    --------
    >>> rerender("runs/report/tables")  # doctest: +SKIP
    """
    tables_dir = Path(tables_dir)
    text = render_report(tables_dir)
    tables, meta = _read_tables(tables_dir)
    write_table(evaluate_claims(tables, meta), tables_dir / "claims", parquet=False)
    path = tables_dir.parent / "report.md"
    write_text(path, text)
    return path


def run_report(out: str | Path, *, scale: str = "small", data: str | None = None, data_dir=None,
               progress: bool | None = None, settings: dict | None = None) -> ReportResult:
    """Run every experiment at ``scale`` and write ``out/report.md`` (see module docstring).

    Parameters
    ----------
    out : output directory (created; reruns with the same settings resume).
    scale : "small" (default; digits, minutes) or "paper" (the paper's sizes).
    data : "digits" or "mnist" (default: the scale's).
    data_dir : MNIST directory (default ``$GNTK_MNIST_DIR``).
    progress : tqdm bars (default on).
    settings : override the scale's settings (a dict shaped like ``SCALES[scale]``).

    Returns
    -------
    ReportResult

    Examples
    --------
    >>> res = run_report("runs/report")  # doctest: +SKIP
    """
    scale = check_choice("scale", scale, tuple(SCALES))
    base = json.loads(json.dumps(SCALES[scale]))
    if settings is not None:
        if not isinstance(settings, dict) or set(settings) - set(base):
            raise ValueError(f"settings must be a dict with keys among {sorted(base)}")
        base.update(settings)
    data = check_choice("data", base["data"] if data is None else data, ("digits", "mnist"))
    base["data"] = data
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(out, scale, data, data_dir, progress, base)
    for section in SECTIONS:
        if not run.load_section(section.name):
            c0 = time.process_time()
            section.run(run)
            run.cpu[section.name] = time.process_time() - c0
        _write_report(run, finished=False)
    path, claims = _write_report(run, finished=True)
    return ReportResult(out, path, claims, sorted(str(p) for p in run.figures.values()), dict(run.timings))
