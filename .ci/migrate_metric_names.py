"""Rename the columns of result folders written before the metric names were unified.

The report's tables, the study's case files, the saved sections, the
limit-graphon experiment's results.json and a sweep's task rows used to name
some quantities differently from place to place (see RENAMES); the package
now writes the names of ``gntk_fast.experiments.metrics``. This script
migrates a folder written under the old names, in place:

* ``tables/NAME.json`` (and ``NAME.parquet`` where it exists), re-written the
  way ``write_table`` writes them; a JSON file whose bytes the unchanged rows
  do not reproduce is reported;
* ``sections/NAME.json`` (the saved sections a rerun reuses) and
  ``cases/*.json`` (the study's cases);
* every ``results.json`` of the limit-graphon experiment (rows keyed by ``part``);
* ``tasks/*.parquet`` of a sweep folder (renamed by the rows' ``kind``);

then re-renders ``report.md`` from the migrated tables (what ``gntk-fast
report --from-tables`` does) and prints every line of report.md that changed,
which should be table headers only (the verdicts and numbers do not change).

Usage (from the repository root, with the package importable)::

    python .ci/migrate_metric_names.py OUT [OUT ...]

Running it twice is harmless: the old names are gone after the first run.
"""
from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

#: per report table: old column name -> new name (renamed simultaneously)
RENAMES: dict[str, dict[str, str]] = {
    "convergence": {"hist_norm": "rms"},
    "kernel_convergence": {"rel_error": "rel_dist"},
    "random_scaling": {"convention": "trainable", "predicted": "predicted_ratio"},
    "random_scaling_fit": {"convention": "trainable"},
    "pruned_kernels_fit": {"mean_dist": "mean_rel_dist", "slope": "slope_rel_dist"},
    "linearised": {"measured": "measured_loss", "predicted": "predicted_loss"},
    "generalisation": {"gap": "generalisation_gap"},
    "limit_convergence": {"r2": "fit_r2"},
    "limit_slope": {"r2": "fit_r2"},
    "limit_input": {"input_r2": "input_fit_r2"},
    "limit_training": {"final_eval_loss": "test_loss", "final_eval_accuracy": "test_accuracy"},
    "active_fit": {"r2": "test_r2", "r2_train": "train_r2"},
    "active_sets": {"kept": "kept_coords", "pruned": "pruned_coords", "n_kept": "n_kept_coords",
                    "n_pruned": "n_pruned_coords"},
    "conv_convergence": {"dist": "rms"},
    "conv_kernel_convergence": {"rel_error": "rel_dist"},
    "conv_random_scaling": {"convention": "trainable", "predicted": "predicted_ratio"},
    "conv_random_scaling_fit": {"convention": "trainable"},
}
#: the study's case files: blob key -> the table its rows go to
CASE_KEYS = {"linear_rows": "linearised", "gen_rows": "generalisation"}
#: per sweep task kind: old column name -> new name
TASK_RENAMES: dict[str, dict[str, str]] = {
    "entk_metrics": {"trace": "layer_trace", "trace_fraction": "layer_trace_fraction", "kernel_trace": "trace",
                     "energy_concentration": "energy_top5"},
    "analytic_metrics": {"kernel_trace": "trace", "energy_concentration": "energy_top5"},
    "pruned_study": {"final_loss": "train_loss", "final_accuracy": "train_accuracy"},
}


def rename_rows(rows: list[dict], renames: dict[str, str]) -> list[dict]:
    """The rows with their keys renamed (simultaneously, in place of the old key)."""
    return [{renames.get(k, k): v for k, v in r.items()} for r in rows]


def _dump(rows) -> str:
    return json.dumps(rows, indent=1, allow_nan=False) + "\n"


def migrate_tables(tables_dir: Path) -> list[str]:
    from gntk_fast.experiments._tables import write_table

    done = []
    for name, ren in RENAMES.items():
        p = tables_dir / f"{name}.json"
        if not p.is_file():
            continue
        text = p.read_text(encoding="utf-8")
        rows = json.loads(text)
        if _dump(rows) != text:
            print(f"note: {p} is not byte-for-byte what write_table writes; rewritten in its format")
        new = rename_rows(rows, ren)
        if new != rows:
            write_table(new, tables_dir / name, parquet=(tables_dir / f"{name}.parquet").is_file())
            done.append(str(p))
    return done


def migrate_sections(out: Path) -> list[str]:
    done = []
    for p in sorted((out / "sections").glob("*.json")):
        blob = json.loads(p.read_text(encoding="utf-8"))
        tables = blob.get("tables", {})
        new = {t: rename_rows(rows, RENAMES.get(t, {})) for t, rows in tables.items()}
        if new != tables:
            blob["tables"] = new
            p.write_text(json.dumps(blob, allow_nan=False) + "\n", encoding="utf-8")
            done.append(str(p))
    for p in sorted((out / "cases").glob("*.json")):
        blob = json.loads(p.read_text(encoding="utf-8"))
        new = {k: rename_rows(v, RENAMES[CASE_KEYS[k]]) if k in CASE_KEYS else v for k, v in blob.items()}
        if new != blob:
            p.write_text(json.dumps(new, allow_nan=False) + "\n", encoding="utf-8")
            done.append(str(p))
    return done


def migrate_limit_results(out: Path) -> list[str]:
    done = []
    for p in sorted(out.rglob("results.json")):
        blob = json.loads(p.read_text(encoding="utf-8"))
        rows = blob.get("rows") if isinstance(blob, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "part" in r for r in rows):
            continue
        new = [rename_rows([r], RENAMES.get(f"limit_{r['part']}", {}))[0] for r in rows]
        if new != rows:
            if json.dumps(blob, indent=1) + "\n" != p.read_text(encoding="utf-8"):
                print(f"note: {p} is not byte-for-byte what the experiment writes; rewritten in its format")
            blob["rows"] = new
            p.write_text(json.dumps(blob, indent=1) + "\n", encoding="utf-8")  # as the experiment writes it
            done.append(str(p))
    return done


def migrate_sweep(out: Path) -> list[str]:
    done = []
    tasks = sorted((out / "tasks").glob("*.parquet"))
    if not tasks:
        return done
    import pyarrow.parquet as pq

    for p in tasks:
        t = pq.read_table(p)
        kinds = set(t.column("kind").to_pylist()) if "kind" in t.column_names else set()
        ren = {}
        for k in kinds:
            ren.update(TASK_RENAMES.get(k, {}))
        names = [ren.get(c, c) for c in t.column_names]
        if names != t.column_names:
            pq.write_table(t.rename_columns(names), p)
            done.append(str(p))
    return done


def migrate(out: str | Path) -> list[str]:
    """Migrate one output folder (a report's, a limit-graphon run's or a sweep's); returns the files changed."""
    from gntk_fast.experiments.report import rerender

    out = Path(out)
    done = []
    if (out / "tables").is_dir():
        done += migrate_tables(out / "tables")
    done += migrate_sections(out)
    done += migrate_limit_results(out)
    done += migrate_sweep(out)
    if (out / "tables" / "report_meta.json").is_file():
        old = (out / "report.md").read_text(encoding="utf-8") if (out / "report.md").is_file() else ""
        new = rerender(out / "tables").read_text(encoding="utf-8")
        changed = [d for d in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
                   if d[:1] in "+-" and not d.startswith(("+++", "---"))]
        print(f"{out / 'report.md'}: {len(changed)} changed lines")
        for d in changed:
            print("   ", d[:160])
        done.append(str(out / "report.md"))
    return done


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        files = migrate(arg)
        print(f"{arg}: {len(files)} files migrated")
