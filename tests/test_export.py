"""Exports of a run: the JSON document of its analysis and MLflow runs (a local file store)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sqlite3
import sys
from contextlib import closing

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite_dict

from overfit_lab import OverfitLabError, load_run, run_suite
from overfit_lab.export import export_cell, export_run, run_to_json, write_json
from overfit_lab.export.json_export import to_plain
from overfit_lab.export.mlflow_export import _flat, _key
from overfit_lab.store import RunStore
from overfit_lab.suite import validate_suite

DIAGNOSTICS = {"checkpoints": ["final", "best"], "robustness": {"enabled": False}, "bias": {"enabled": False},
               "drift": {"enabled": False}, "spectral": {"enabled": False}}


@pytest.fixture(scope="module")
def two_cell_run(tiny_model, tiny_csv, tmp_path_factory):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1, 2],
                          strategies=["baseline", "freeze1"], seeds=[0])
    raw["diagnostics"] = DIAGNOSTICS
    raw["checks"] = {"loss": {"metric": "test_loss", "min": 0.0}}
    return run_suite(validate_suite(raw), output=tmp_path_factory.mktemp("export") / "run", quiet=True)


@pytest.fixture
def run_dir(two_cell_run, tmp_path):
    """A copy of the run directory per test, so each export starts with no stored MLflow ids."""
    return shutil.copytree(two_cell_run.run_dir, tmp_path / "run")


@pytest.fixture
def uri(tmp_path, monkeypatch):
    # MLflow 3 refuses a file: store unless asked; mlflow-skinny has no sqlite store
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return (tmp_path / "mlruns").as_uri()


def _stored(run_dir, query: str) -> list[tuple]:
    with closing(sqlite3.connect(run_dir / "run.sqlite")) as db:
        return db.execute(query).fetchall()


def _same(a, b) -> bool:
    """JSON value ``a`` against a frame's value ``b``: NaN became null, numbers equal."""
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    if isinstance(b, (float, np.floating)):
        return a == pytest.approx(float(b), rel=1e-12, abs=0)
    return a == b


# --------------------------------------------------------------------------- JSON
def test_json_round_trip_matches_the_run(run_dir, tmp_path):
    path = write_json(load_run(run_dir), tmp_path / "out" / "analysis.json")
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert (doc["schema"], doc["version"]) == ("overfit-lab/run-analysis", 1)
    assert set(doc) == {"schema", "version", "run", "cells", "generalization", "scores", "score_info",
                        "summary", "comparisons", "headline", "checks", "failed_cells", "diagnostic_failures"}
    assert doc["run"]["name"] == "tiny"
    assert doc["run"]["suite"]["grid"]["strategies"] == ["baseline", "freeze1"]
    assert doc["run"]["environment"]["versions"]["overfit-lab"]
    assert "leakage" in doc["run"]["meta"]

    # the per-epoch metrics against the database itself
    stored = _stored(run_dir, "SELECT cell_id, epoch, split, metric, value FROM metrics")
    cells = {c["cell_id"]: c for c in doc["cells"]}
    assert set(cells) == {r[0] for r in _stored(run_dir, "SELECT cell_id FROM cells")}
    for cell_id, epoch, split, metric, value in stored:
        cell = cells[cell_id]
        assert cell["metrics"][split][metric][cell["metric_epochs"].index(epoch)] == value
    assert all(c["metric_epochs"] == [1, 2] and c["status"] == "finished" for c in cells.values())

    # the derived tables against a separate analysis of the run
    again = load_run(run_dir)
    scores = again.cell_scores(extra=True)
    assert [row["cell_id"] for row in doc["scores"]] == list(scores["cell_id"])
    for row, (_, expected) in zip(doc["scores"], scores.iterrows(), strict=True):
        assert list(row) == list(scores.columns)
        assert all(_same(row[name], expected[name]) for name in scores.columns), row["cell_id"]
    general = again.generalization
    assert len(doc["generalization"]) == len(general) == 4
    for row, (_, expected) in zip(doc["generalization"], general.iterrows(), strict=True):
        assert all(_same(row[name], expected[name]) for name in general.columns)
    assert doc["score_info"]["gap_accuracy"]["headline"] and not doc["score_info"]["brier"]["headline"]
    assert doc["score_info"]["gap_loss"]["bounds"] == [None, None]  # open ends: null

    # one seed: no interval, NaN became null
    assert again.summary["low"].isna().all() and all(row["low"] is None for row in doc["summary"])
    assert doc["summary"][0]["values"] == [pytest.approx(again.summary["values"].iloc[0][0])]
    assert {row["verdict"] for row in doc["comparisons"]} == {"one seed: no test"}
    assert doc["headline"]["per_size"] == [{"size": 40, "better": [], "worse": [], "status": "one seed"}]
    assert doc["headline"]["worst"]["gap_name"] == "gap_accuracy" and doc["headline"]["total"] == 2
    assert doc["checks"]["passed"] is True
    assert {row["check"] for row in doc["checks"]["conditions"]} == {"loss", "cells finished"}
    assert doc["failed_cells"] == [] and doc["diagnostic_failures"] == []
    assert "NaN" not in text and "Infinity" not in text


def test_json_is_deterministic(run_dir, tmp_path):
    first = write_json(load_run(run_dir), tmp_path / "a.json").read_bytes()
    second = write_json(load_run(run_dir), tmp_path / "b.json").read_bytes()
    assert first == second
    assert json.loads(first) == run_to_json(load_run(run_dir))


def test_failed_cells_and_headline_rows_become_plain_objects(two_cell_run):
    cells = two_cell_run.cells.copy()
    cells.loc[1, ["status", "reason"]] = ["failed", "loss is nan"]
    doc = run_to_json(two_cell_run.replace(cells=cells))
    assert doc["failed_cells"] == [{"cell_id": cells.loc[1, "cell_id"], "status": "failed",
                                    "reason": "loss is nan"}]
    assert doc["headline"]["failed"] == 1
    row = next(pd.DataFrame({"a": [np.int64(1)], "b": [np.nan]}).itertuples())
    assert to_plain({"row": row, "series": pd.Series({"x": np.float32(0.5)}), "na": pd.NA,
                     "when": pd.Timestamp("2026-01-02T03:04:05Z"), "flag": np.bool_(True)}) == {
        "row": {"a": 1, "b": None}, "series": {"x": 0.5}, "na": None, "when": "2026-01-02T03:04:05+00:00",
        "flag": True}


# --------------------------------------------------------------------------- MLflow
def _runs(client, experiment_id):
    return client.search_runs([experiment_id], max_results=1000)


def test_mlflow_export_logs_a_parent_and_a_nested_run_per_cell(run_dir, uri, tmp_path):
    from mlflow import MlflowClient

    done = export_run(run_dir, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    assert client.get_experiment(done["experiment_id"]).name == "tiny"  # the suite's name
    runs = {r.info.run_id: r for r in _runs(client, done["experiment_id"])}
    assert len(runs) == 3 and done["created"] == 3 and done["updated"] == 0
    parent = runs[done["parent_run_id"]]
    assert parent.info.run_name == "run" and parent.info.status == "FINISHED"
    assert parent.data.params["model.name"] == str(load_run(run_dir).suite.model.name)
    assert parent.data.params["grid.train_sizes"] == "[40]"
    assert float(parent.data.params["recipe.learning_rate"]) == 3e-3
    assert parent.data.params["strategies.freeze1.freeze.layers"] == "1"
    assert parent.data.tags["overfit_lab.run_dir"] == str(run_dir.resolve())
    assert parent.data.tags["overfit_lab.versions.overfit-lab"] == "0.1.0"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {
        "suite.json", "environment.json", "report.html", "run.sqlite"}
    copy = client.download_artifacts(parent.info.run_id, "run.sqlite", str(tmp_path))
    with closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM cells").fetchone() == (2,)

    run = load_run(run_dir)  # read independently of the export
    stored = _stored(run_dir, "SELECT cell_id, epoch, split, metric, value FROM metrics")
    assert set(done["cell_runs"]) == set(run.cells["cell_id"])
    for cell_id, run_id in done["cell_runs"].items():
        cell = runs[run_id]
        assert cell.info.run_name == cell_id and cell.info.status == "FINISHED"
        assert cell.data.tags["mlflow.parentRunId"] == done["parent_run_id"]
        assert cell.data.tags["overfit_lab.status"] == "finished"
        general = run.generalization[run.generalization["cell_id"] == cell_id]
        assert cell.data.tags["overfit_lab.verdict"] == general.loc[general["epochs"].idxmax(), "verdict"]
        strategy = run.cells.set_index("cell_id").loc[cell_id, "strategy"]
        assert cell.data.params == {"train_size": "40", "strategy": strategy, "seed": "0",
                                    "label_noise": "0.0", "epochs": "2", "record_epochs": "[1, 2]",
                                    "epoch_mode": "shared"}
        for split, metric in (("validation", "loss"), ("train", "accuracy"), ("test", "macro_f1")):
            history = client.get_metric_history(run_id, f"{split}_{metric}")
            expected = sorted((e, v) for c, e, s, m, v in stored if (c, s, m) == (cell_id, split, metric))
            assert sorted((m.step, m.value) for m in history) == expected
        scores = run.scores.set_index("cell_id").loc[cell_id]
        for name in ("gap_accuracy", "gap_loss", "ece", "membership_advantage"):
            (point,) = client.get_metric_history(run_id, name)
            assert (point.step, point.value) == (2, pytest.approx(scores[name]))
        assert "brier" in cell.data.metrics  # an extra score
        assert "best/ece" in cell.data.metrics  # the best checkpoint's
        assert not any(key.startswith(("accuracy", "reliability")) for key in cell.data.metrics)  # per-row


def test_mlflow_export_twice_updates_the_same_runs(run_dir, uri, monkeypatch):
    from mlflow import MlflowClient

    first = export_run(run_dir, tracking_uri=uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    second = export_run(run_dir)  # no tracking_uri: MLflow's own setting
    assert (second["parent_run_id"], second["cell_runs"]) == (first["parent_run_id"], first["cell_runs"])
    assert (second["created"], second["updated"]) == (0, 3)
    client = MlflowClient(tracking_uri=uri)
    assert len(_runs(client, first["experiment_id"])) == 3
    for run_id in first["cell_runs"].values():
        for key in client.get_run(run_id).data.metrics:
            steps = [m.step for m in client.get_metric_history(run_id, key)]
            assert len(steps) == len(set(steps)), key
    kept = json.loads(RunStore.open(run_dir).meta()["mlflow"])
    assert kept == {"tracking_uri": uri, "experiment_id": first["experiment_id"],
                    "parent_run_id": first["parent_run_id"], "cells": first["cell_runs"]}


def test_mlflow_export_cell_by_cell_then_the_run(run_dir, uri):
    from mlflow import MlflowClient

    first, second = load_run(run_dir).cells["cell_id"]
    one = export_cell(run_dir, first, tracking_uri=uri, experiment="by-cell")
    assert set(one["cell_runs"]) == {first} and one["created"] == 2
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(one["parent_run_id"]).info.status == "RUNNING"  # the run goes on
    assert {a.path for a in client.list_artifacts(one["parent_run_id"])} == {"suite.json", "environment.json"}
    whole = export_run(run_dir, tracking_uri=uri, experiment="by-cell")
    assert whole["parent_run_id"] == one["parent_run_id"]
    assert whole["cell_runs"][first] == one["cell_runs"][first]
    assert (whole["created"], whole["updated"]) == (1, 2) and set(whole["cell_runs"]) == {first, second}
    assert len(_runs(client, whole["experiment_id"])) == 3


def test_mlflow_export_creates_anew_what_the_tracking_store_lost(run_dir, uri, tmp_path):
    from mlflow import MlflowClient

    first = export_run(run_dir, tracking_uri=uri)
    lost, kept = first["cell_runs"].values()
    MlflowClient(tracking_uri=uri).delete_run(lost)
    again = export_run(run_dir, tracking_uri=uri)
    assert (again["created"], again["updated"]) == (1, 2)
    assert again["parent_run_id"] == first["parent_run_id"] and kept in again["cell_runs"].values()
    assert lost not in again["cell_runs"].values()
    other = (tmp_path / "elsewhere").as_uri()  # another (or a reset) store: every run anew
    elsewhere = export_run(run_dir, tracking_uri=other)
    assert elsewhere["created"] == 3 and elsewhere["parent_run_id"] != first["parent_run_id"]
    assert json.loads(RunStore.open(run_dir).meta()["mlflow"])["tracking_uri"] == other


def test_mlflow_export_runs_in_the_process_holding_the_lock(run_dir, uri):
    holder = RunStore.open(run_dir).lock()  # as the runner holds it while cells finish
    try:
        with pytest.raises(OverfitLabError, match="in use by another overfit-lab process"):
            export_run(run_dir, tracking_uri=uri)
        cell_id = load_run(run_dir).cells["cell_id"].iloc[0]
        assert export_cell(run_dir, cell_id, tracking_uri=uri, store=holder)["created"] == 2
    finally:
        holder.close()


def test_mlflow_export_errors_are_one_line(run_dir, uri, tmp_path, monkeypatch):
    with pytest.raises(OverfitLabError, match="holds no cell n999") as info:
        export_run(run_dir, tracking_uri=uri, cells=["n999-baseline-s0"])
    assert "\n" not in str(info.value)
    with pytest.raises(OverfitLabError, match="cannot open the tracking store nosuch://x") as info:
        export_run(run_dir, tracking_uri="nosuch://x")
    assert "\n" not in str(info.value)
    if importlib.util.find_spec("sqlalchemy") is None:  # mlflow-skinny alone: no database stores
        with pytest.raises(OverfitLabError, match="needs the full mlflow package"):
            export_run(run_dir, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")  # the user's explicit refusal is kept
    with pytest.raises(OverfitLabError, match="MLFLOW_ALLOW_FILE_STORE=true") as info:
        export_run(run_dir, tracking_uri=(tmp_path / "refused").as_uri())
    assert "\n" not in str(info.value)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # a file: URI named by the user is allowed by default
    assert export_run(run_dir, tracking_uri=(tmp_path / "allowed").as_uri())["created"] > 0
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(OverfitLabError, match=r"needs mlflow-skinny.*pip install 'overfit-lab\[mlflow\]'"):
        export_run(run_dir, tracking_uri=uri)


def test_names_are_valid_mlflow_keys():
    from mlflow.utils.validation import _validate_param_name

    for name in ("strategies.my strategy!.lr", "a//b/../c", "/lead/", "x" * 300, "ok.name/sub-part"):
        _validate_param_name(_key(name))
    assert _key("strategies.lora=8.r") == "strategies.lora_8.r"
    assert _key("ok.name/sub-part") == "ok.name/sub-part"
    assert _flat({"a": {"b": 1, "c": [1, 2], "d": {}}, "e": "x"}) == {"a.b": 1, "a.c": [1, 2], "a.d": {},
                                                                      "e": "x"}
