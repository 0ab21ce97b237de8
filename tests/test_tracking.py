"""The export commands on the command line, and `[tracking] mlflow = true`: a run published to
MLflow as it goes, read back with MlflowClient."""

from __future__ import annotations

import io
import json

import pytest
from conftest import tiny_suite_dict
from rich.console import Console
from typer.testing import CliRunner

from overfit_lab import run_suite
from overfit_lab.cli import app
from overfit_lab.suite import validate_suite

LIGHT = {"checkpoints": ["final"], **{name: {"enabled": False} for name in
                                      ("robustness", "bias", "drift", "spectral", "memorization")}}


@pytest.fixture
def no_telemetry(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def _suite(tiny_model, tiny_csv, **extra):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1, 2], strategies=["baseline"],
                          seeds=[0, 1])
    raw["diagnostics"] = LIGHT
    return validate_suite({**raw, **extra})


def test_tracking_publishes_every_cell_as_the_run_goes(tiny_model, tiny_csv, tmp_path, no_telemetry):
    """A file: store named in the suite is used without MLFLOW_ALLOW_FILE_STORE: the user asked
    for it. One parent run, one nested run per cell, the per-epoch validation loss as stored."""
    from mlflow import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    suite = _suite(tiny_model, tiny_csv, tracking={"mlflow": True, "mlflow_tracking_uri": uri,
                                                   "mlflow_experiment": "tracked"})
    run = run_suite(suite, output=tmp_path / "run", quiet=True)
    ids = run.meta["mlflow"]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 + 2
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == ids["parent_run_id"]]
    assert {r.info.run_name for r in children} == set(run.cells["cell_id"])
    for child in children:
        history = client.get_metric_history(child.info.run_id, "validation_loss")
        stored = run.metrics.query("cell_id == @child.info.run_name and split == 'validation' "
                                   "and metric == 'loss'").sort_values("epoch")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == list(
            zip(stored["epoch"], stored["value"], strict=True))
    artifacts = {a.path for a in client.list_artifacts(ids["parent_run_id"])}
    assert {"report.html", "suite.json"} <= artifacts


def test_a_failing_tracking_store_does_not_stop_the_run(tiny_model, tiny_csv, tmp_path, no_telemetry):
    (tmp_path / "blocked").write_text("a file where the store should be")
    suite = _suite(tiny_model, tiny_csv, tracking={"mlflow": True,
                                                   "mlflow_tracking_uri": (tmp_path / "blocked").as_uri()})
    console = Console(file=io.StringIO(), width=300)
    run = run_suite(suite, output=tmp_path / "run", quiet=True, console=console)
    assert (run.cells["status"] == "finished").all() and len(run.cells) == 2
    said = console.file.getvalue()
    assert said.count("MLflow tracking stopped for this run") == 1  # told once, not per cell
    assert f"overfit-lab export mlflow {run.run_dir}" in said
    assert "mlflow" not in run.meta  # nothing was published, so no ids were kept


def test_export_commands(tiny_model, tiny_csv, tmp_path, no_telemetry):
    run = run_suite(_suite(tiny_model, tiny_csv), output=tmp_path / "run", quiet=True)
    runner = CliRunner()
    done = runner.invoke(app, ["export", "json", str(run.run_dir)])
    assert done.exit_code == 0, done.output
    document = json.loads((run.run_dir / "analysis.json").read_text())
    assert document["schema"] == "overfit-lab/run-analysis" and len(document["cells"]) == 2
    uri = (tmp_path / "mlruns").as_uri()
    first = runner.invoke(app, ["export", "mlflow", str(run.run_dir), "--tracking-uri", uri])
    again = runner.invoke(app, ["export", "mlflow", str(run.run_dir), "--tracking-uri", uri])
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "(3 created, 0 updated)" in " ".join(first.output.split())
    assert "(0 created, 3 updated)" in " ".join(again.output.split())
    bad = runner.invoke(app, ["export", "mlflow", str(tmp_path / "nothing"), "--tracking-uri", uri])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
