"""The store: typed rows written by field name, and run directories of earlier versions read back
in the current shape."""

from __future__ import annotations

import ast
import sqlite3
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_suite_dict

from overfit_lab.rows import (
    CellRow,
    DiagnosticFields,
    DiagnosticRow,
    ExampleRow,
    MetricRow,
    field_names,
)
from overfit_lab.store import RunStore, read_run
from overfit_lab.suite import validate_suite
from overfit_lab.training import CellResult

DIAGNOSTIC_COLUMNS = ["cell_id", "checkpoint", "metric", "value", "group", "op", "severity", "layer",
                      "bin_low", "bin_high", "fpr"]
# the diagnostics table before bin_low, bin_high and fpr
OLD_DIAGNOSTICS = """
CREATE TABLE diagnostics (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id),
    checkpoint TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    grp TEXT,
    op TEXT,
    severity REAL,
    layer TEXT
);
"""


@pytest.fixture
def suite(tiny_model, tiny_csv):
    return validate_suite(tiny_suite_dict(tiny_model, tiny_csv))


def _result(cell_id: str) -> CellResult:
    cell = CellRow(cell_id=cell_id, train_size=40, strategy="baseline", seed=0, label_noise=0.0, epochs=2,
                   record_epochs=(1, 2), epoch_mode="shared", epoch_mode_reason="constant schedule")
    diagnostics = [
        DiagnosticRow("final", "ece", 0.125),
        DiagnosticRow("final", "reliability_count", 3.0, bin_low=0.0, bin_high=1 / 15),
        DiagnosticRow("final", "membership_roc_tpr", 0.4, fpr=0.15),
        DiagnosticRow("final", "selection_rate", 0.5, group="gender=female"),
        DiagnosticRow("final", "demographic_parity_high_group", 0.75, group="gender=male",
                      op="selection_rate"),
        DiagnosticRow("final", "robustness_drop", 0.1, op="casing", severity=0.3),
        DiagnosticRow("best", "cka", 0.9, layer="1"),
        DiagnosticRow("final", "mean_cka", None),
    ]
    examples = [ExampleRow(kind="robustness", op="casing", severity=0.3, text="good food",
                           variant="GOOD food", label=1, pred=1, confidence=0.9, variant_pred=0,
                           variant_confidence=0.6)]
    return CellResult(cell=cell, status="finished", metrics=[MetricRow(1, "train", "loss", 0.5),
                                                             MetricRow(2, "test", "accuracy", 0.75)],
                      info={"wall_s": 1.0}, diagnostics=diagnostics, examples=examples)


def test_rows_import_nothing_of_the_package():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "overfit_lab" / "rows.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    relative = [node.module for node in imports if isinstance(node, ast.ImportFrom) and node.level]
    absolute = [a.name for node in imports for a in node.names if isinstance(node, ast.Import)]
    absolute += [node.module for node in imports if isinstance(node, ast.ImportFrom) and not node.level]
    assert not relative and not [m for m in absolute if m.startswith("overfit_lab")], (relative, absolute)


def test_adapter_fields_are_the_row_fields_less_the_checkpoint():
    names = [name for name in field_names(DiagnosticRow) if name != "checkpoint"]
    assert list(DiagnosticFields.__annotations__) == names
    assert all(f.default is None for f in fields(DiagnosticRow)[3:])


def test_commit_writes_rows_by_field_name(suite, tmp_path):
    store = RunStore.create(tmp_path / "run", suite, {"versions": {}})
    store.commit(_result("n40-baseline-s0"))
    run = read_run(tmp_path / "run")
    cell = run.cells.iloc[0]
    assert (cell["cell_id"], cell["train_size"], cell["record_epochs"], cell["status"], cell["wall_s"]) == (
        "n40-baseline-s0", 40, [1, 2], "finished", 1.0)
    assert run.metrics.values.tolist() == [["n40-baseline-s0", 1, "train", "loss", 0.5],
                                           ["n40-baseline-s0", 2, "test", "accuracy", 0.75]]
    diag = run.diagnostics
    assert list(diag.columns) == DIAGNOSTIC_COLUMNS
    assert {c: diag[c].dtype for c in ("bin_low", "bin_high", "fpr")} == {c: np.float64 for c in
                                                                          ("bin_low", "bin_high", "fpr")}
    rows = diag.set_index("metric")
    assert rows.loc["reliability_count", ["bin_low", "bin_high"]].tolist() == [0.0, 1 / 15]
    assert rows.loc["membership_roc_tpr", "fpr"] == 0.15
    assert rows["group"].dropna().to_dict() == {"selection_rate": "gender=female",
                                                "demographic_parity_high_group": "gender=male"}
    assert rows.loc["demographic_parity_high_group", "op"] == "selection_rate"
    assert rows.loc["robustness_drop", ["op", "severity"]].tolist() == ["casing", 0.3]
    assert rows.loc["cka", ["checkpoint", "layer"]].tolist() == ["best", "1"]
    assert np.isnan(rows.loc["mean_cka", "value"])
    example = run.examples.iloc[0]
    assert (example["kind"], example["variant"], example["variant_pred"]) == ("robustness", "GOOD food", 0)


def _old_run(suite, run_dir):
    """A run directory as the version before bin_low/bin_high/fpr wrote it."""
    RunStore.create(run_dir, suite, {"versions": {}})
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        db.execute("DROP TABLE diagnostics")
        db.executescript(OLD_DIAGNOSTICS)
        db.execute("INSERT INTO cells VALUES ('old', 40, 'baseline', 0, 0.0, 1, '[1]', 'shared', '', "
                   "'finished', '', '{}', '2025-01-01T00:00:00+00:00')")
        db.executemany("INSERT INTO diagnostics VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
            ("old", "final", "reliability_count", 3.0, "0.000-0.067", None, None, None),
            ("old", "final", "reliability_accuracy", 0.5, "0.933-1.000", None, None, None),
            ("old", "best", "reliability_confidence", 0.95, "0.933-1.000", None, None, None),
            ("old", "final", "membership_roc_tpr", 0.4, "0.15", None, None, None),
            ("old", "final", "membership_roc_tpr", 1.0, "1.00", None, None, None),
            ("old", "final", "selection_rate", 0.5, "gender=female", None, None, None),
            ("old", "final", "bias_amplification", 0.01, "gender", None, None, None),
            ("old", "final", "robustness_drop", 0.1, None, "casing", 0.3, None),
        ])


def test_an_old_run_reads_back_in_the_current_shape(suite, tmp_path):
    _old_run(suite, tmp_path / "old")
    diag = read_run(tmp_path / "old").diagnostics
    assert list(diag.columns) == DIAGNOSTIC_COLUMNS
    assert all(diag[c].dtype == np.float64 for c in ("bin_low", "bin_high", "fpr"))
    bins = diag[diag.metric.str.startswith("reliability_")]
    assert bins[["bin_low", "bin_high"]].values.tolist() == [[0.0, 0.067], [0.933, 1.0], [0.933, 1.0]]
    roc = diag[diag.metric == "membership_roc_tpr"]
    assert roc["fpr"].tolist() == [0.15, 1.0]
    assert bins["group"].isna().all() and roc["group"].isna().all()
    groups = diag.dropna(subset=["group"]).set_index("metric")["group"].to_dict()
    assert groups == {"selection_rate": "gender=female", "bias_amplification": "gender"}
    others = diag[~diag.metric.isin(["reliability_count", "reliability_accuracy", "reliability_confidence",
                                     "membership_roc_tpr"])]
    assert others[["bin_low", "bin_high", "fpr"]].isna().all().all()
    # reading does not change the file
    with sqlite3.connect(tmp_path / "old" / "run.sqlite") as db:
        assert "fpr" not in {r[1] for r in db.execute("PRAGMA table_info(diagnostics)")}


def test_resuming_an_old_run_adds_the_columns_and_reads_both_kinds_of_rows(suite, tmp_path):
    _old_run(suite, tmp_path / "old")
    RunStore.open(tmp_path / "old").commit(_result("new"))
    diag = read_run(tmp_path / "old").diagnostics
    old, new = diag[diag.cell_id == "old"], diag[diag.cell_id == "new"]
    assert old.loc[old.metric == "membership_roc_tpr", "fpr"].tolist() == [0.15, 1.0]
    assert new.loc[new.metric == "membership_roc_tpr", "fpr"].tolist() == [0.15]
    edges = new.loc[new.metric == "reliability_count", ["bin_low", "bin_high"]]
    assert edges.values.tolist() == [[0.0, 1 / 15]]
    assert diag.loc[diag.metric.isin(["reliability_count", "membership_roc_tpr"]), "group"].isna().all()
