"""One naming of the measured quantities: every column the report's sections,
the sweep tasks, the claims' summaries and the figures write or read is a
registered name of gntk_fast.experiments.metrics."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from gntk_fast.experiments import metrics
from gntk_fast.experiments.metrics import NAMES, check_columns, meaning, unknown_columns

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "examples" / "results"
REPORTS = ("report_small_digits", "report_paper_mnist", "conv_small_digits")
NOT_METRIC_TABLES = {"claims", "report_meta"}  # the verdict rows and the run's record


def _migration():
    spec = importlib.util.spec_from_file_location("migrate_metric_names", ROOT / ".ci" / "migrate_metric_names.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_registry_one_name_one_meaning():
    assert set(metrics.KEYS).isdisjoint(metrics.METRICS)
    assert set(metrics.KEYS) | set(metrics.METRICS) == set(NAMES)
    for name, n in NAMES.items():
        assert n.name == name and n.kind in ("key", "metric") and n.meaning.strip()
    # every constant of the module is a registered name, and every registered name has its constant
    consts = {v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str)}
    assert consts == set(NAMES)
    # one meaning is not registered twice under two names
    texts = [n.meaning for n in NAMES.values()]
    assert len(texts) == len(set(texts))
    with pytest.raises(ValueError, match="name"):
        meaning("energy_concentration")


def test_check_columns_rejects_an_unregistered_column():
    rows = [{"method": "snip", "energy_top5": 0.5}, {"method": "random", "hist_norm": 0.1}]
    assert unknown_columns(rows) == ["hist_norm"]
    with pytest.raises(ValueError, match="kernels.*hist_norm"):
        check_columns(rows, "kernels")
    check_columns(rows[:1], "kernels")


@pytest.mark.parametrize("report", REPORTS)
def test_committed_report_tables_use_registered_names(report):
    from gntk_fast.experiments.sections import SECTIONS

    written = {t for s in SECTIONS for t in s.tables}
    paths = sorted((RESULTS / report / "tables").glob("*.json"))
    assert paths
    for p in paths:
        if p.stem in NOT_METRIC_TABLES:
            continue
        assert p.stem in written, f"{p.stem}: no registered section writes it"
        assert unknown_columns(json.loads(p.read_text(encoding="utf-8"))) == [], p


def test_committed_limit_graphon_rows_use_registered_names():
    paths = sorted(RESULTS.rglob("limit_graphons*/results.json"))
    assert len(paths) >= 5
    for p in paths:
        assert unknown_columns(json.loads(p.read_text(encoding="utf-8"))["rows"]) == [], p


def test_summaries_of_claims_and_sections_use_registered_names():
    from gntk_fast.experiments.claims import (
        c03_kernel_convergence,
        cv1_conv_graphon_convergence,
        cv2_conv_kernel_convergence,
    )
    from gntk_fast.experiments.report import _read_tables
    from gntk_fast.experiments.sections import active_subspace, kept_moments

    small, _ = _read_tables(RESULTS / "report_small_digits" / "tables")
    conv, _ = _read_tables(RESULTS / "conv_small_digits" / "tables")
    summaries = [c03_kernel_convergence.summaries(small["kernel_convergence"]),
                 kept_moments.summary(small["kept_moments"], small["kept_moments_nets"]),
                 active_subspace.summary(small["active_fit"]),
                 cv1_conv_graphon_convergence.summaries(conv["conv_convergence"]),
                 cv2_conv_kernel_convergence.summaries(conv["conv_kernel_convergence"])]
    for rows in summaries:
        assert rows and unknown_columns(rows) == []


def test_every_task_kind_writes_registered_names():
    from gntk_fast.experiments.tasks import KINDS, run_task

    small = {"method": "random", "width": 16, "depth": 2, "K": 4, "n_samples": 6, "quad_K": 4, "steps": 3,
             "n_train": 16, "batch_size": 8}
    for kind in KINDS:
        out = run_task({"kind": kind, **small})  # run_task checks the columns itself
        assert out.rows and unknown_columns(out.rows) == [], kind


def test_a_section_with_an_unregistered_column_is_refused(tmp_path):
    from gntk_fast.experiments.report import SCALES, _Run

    run = _Run(tmp_path, "small", "digits", None, False, SCALES["small"])
    with pytest.raises(ValueError, match="'flatness'.*'spread'"):
        run.save_section("convergence", {"flatness": [{"method": "random", "spread": 0.1}]}, {}, {}, 0.0)
    assert not (tmp_path / "tables").exists()  # refused before anything is written


def test_migration_renames_old_tables_to_registered_names(tmp_path):
    mig = _migration()
    for new in (n for ren in (*mig.RENAMES.values(), *mig.TASK_RENAMES.values()) for n in ren.values()):
        assert new in NAMES, new
    tables = tmp_path / "tables"
    tables.mkdir()
    from gntk_fast.experiments._tables import write_table

    for name, ren in mig.RENAMES.items():
        row = {"method": "snip", **{old: i + 0.5 for i, old in enumerate(ren)}}
        write_table([row], tables / name)
    mig.migrate_tables(tables)
    for name, ren in mig.RENAMES.items():
        rows = json.loads((tables / f"{name}.json").read_text())
        assert list(rows[0]) == ["method", *ren.values()], name
        assert list(rows[0].values())[1:] == [i + 0.5 for i in range(len(ren))]  # values in place
        assert unknown_columns(rows) == [], name
        pq = pytest.importorskip("pyarrow.parquet")
        assert pq.read_table(tables / f"{name}.parquet").column_names == ["method", *ren.values()]
    # a sweep's task rows: the simultaneous renames of entk_metrics (trace -> layer_trace, kernel_trace -> trace)
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "tasks").mkdir()
    old = {"kind": ["entk_metrics"] * 2, "layer": [0, None], "trace": [1.0, 3.0], "trace_fraction": [0.25, 1.0],
           "kernel_trace": [None, 4.0], "energy_concentration": [None, 0.9]}
    pq.write_table(pa.table(old), tmp_path / "tasks" / "t.parquet")
    mig.migrate_sweep(tmp_path)
    t = pq.read_table(tmp_path / "tasks" / "t.parquet").to_pydict()
    assert t == {"kind": ["entk_metrics"] * 2, "layer": [0, None], "layer_trace": [1.0, 3.0],
                 "layer_trace_fraction": [0.25, 1.0], "trace": [None, 4.0], "energy_top5": [None, 0.9]}
    assert unknown_columns([{k: None for k in t}]) == []


def _string_keys(path: Path) -> set[str]:
    """The string constants a module uses as a subscript, a ``.get`` key or a dict key."""
    import ast

    out = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        keys = []
        if isinstance(n, ast.Subscript):
            keys = [n.slice]
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get" and n.args:
            keys = [n.args[0]]
        elif isinstance(n, ast.Dict):
            keys = [k for k in n.keys if k is not None]
        out |= {k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return out


def test_claims_and_figures_read_registered_columns_only():
    """Every string a claim, a figure or a row-writing experiment uses as a key is a registered
    column name, or one of the values rows are keyed by (a table, a kernel, a method)."""
    from gntk_fast._constants import METHODS
    from gntk_fast.experiments.pruned_study import KERNELS
    from gntk_fast.experiments.sections import SECTIONS

    values = {t for s in SECTIONS for t in s.tables} | set(KERNELS) | set(METHODS) | {"dense", "viridis"}
    exp = ROOT / "gntk_fast" / "experiments"
    paths = sorted((exp / "claims").glob("c*.py")) + [exp / f"{m}.py" for m in (
        "figures", "kernel_checks", "conv_checks", "kept_moments", "active_subspace", "pruned_study")]
    for p in paths:
        assert _string_keys(p) - set(NAMES) - values == set(), p.name


def test_migration_of_saved_sections_cases_and_limit_results(tmp_path):
    """A run folder of the old names (its saved sections, the study's cases, the
    limit-graphon results.json) is migrated so that a resumed run reuses it."""
    mig = _migration()
    (tmp_path / "sections").mkdir()
    (tmp_path / "cases").mkdir()
    (tmp_path / "figures" / "limit_graphons").mkdir(parents=True)
    blob = {"key": "k", "tables": {"linearised": [{"method": "snip", "step": 0, "measured": 1.0, "predicted": 2.0}],
                                   "kernels": [{"method": "snip", "energy_top5": 0.5}]}, "seconds": 1.0}
    (tmp_path / "sections" / "study.json").write_text(json.dumps(blob) + "\n")
    case = {"kernel_rows": [{"kernel": "entk_pruned", "alpha": 1.0}], "gen_rows": [{"method": "snip", "gap": 0.1}],
            "linear_rows": [{"step": 0, "measured": None, "predicted": 2.0}], "layer_density": [0.5]}
    (tmp_path / "cases" / "snip_0.5_0_k.json").write_text(json.dumps(case) + "\n")
    res = {"config": {"widths": [8]}, "figures": {},
           "rows": [{"part": "slope", "method": "random", "r2": float("nan")},
                    {"part": "training", "method": "random", "final_eval_loss": 0.3, "final_eval_accuracy": 0.9}]}
    (tmp_path / "figures" / "limit_graphons" / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    mig.migrate(tmp_path)
    blob = json.loads((tmp_path / "sections" / "study.json").read_text())
    assert blob["tables"]["linearised"] == [{"method": "snip", "step": 0, "measured_loss": 1.0, "predicted_loss": 2.0}]
    assert blob["tables"]["kernels"] == [{"method": "snip", "energy_top5": 0.5}] and blob["seconds"] == 1.0
    case = json.loads((tmp_path / "cases" / "snip_0.5_0_k.json").read_text())
    assert case["gen_rows"] == [{"method": "snip", "generalisation_gap": 0.1}]
    assert case["linear_rows"] == [{"step": 0, "measured_loss": None, "predicted_loss": 2.0}]
    rows = json.loads((tmp_path / "figures" / "limit_graphons" / "results.json").read_text())["rows"]
    assert list(rows[0]) == ["part", "method", "fit_r2"] and rows[0]["fit_r2"] != rows[0]["fit_r2"]  # NaN kept
    assert rows[1] == {"part": "training", "method": "random", "test_loss": 0.3, "test_accuracy": 0.9}
    for r in (*blob["tables"]["linearised"], *case["gen_rows"], *rows):
        assert unknown_columns([r]) == []
