"""End to end on a tiny BERT: run_suite, the store, resume, load_run and the CLI."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_suite_dict

import overfit_lab.training as training_module
from overfit_lab import OverfitLabError, load_run, run_suite
from overfit_lab.suite import validate_suite


@pytest.fixture(scope="module")
def finished_run(tiny_model, tiny_csv, tmp_path_factory):
    """The issue's grid: 2 sizes x 2 strategies x 2 seeds, epochs 1 and 2 shared."""
    suite = validate_suite(tiny_suite_dict(tiny_model, tiny_csv))
    out = tmp_path_factory.mktemp("runs") / "grid"
    return run_suite(suite, output=out, quiet=True)


def test_grid_end_to_end(finished_run):
    cells = finished_run.cells
    assert len(cells) == 8 and set(cells["status"]) == {"finished"}
    assert set(cells["train_size"]) == {40, 80} and set(cells["strategy"]) == {"baseline", "freeze1"}
    assert set(cells["seed"]) == {0, 1}
    assert (cells["epoch_mode"] == "shared").all()
    metrics = finished_run.metrics
    assert list(metrics.columns) == ["cell_id", "epoch", "split", "metric", "value"]
    assert set(metrics["split"]) == {"train", "validation", "test"}
    # per cell: 2 epochs x (train, validation) x 3 metrics + running loss x 2 + test 2 x 3
    assert (metrics.groupby("cell_id").size() == 2 * 2 * 3 + 2 + 2 * 3).all()
    table = finished_run.generalization
    assert len(table) == 8 * 2  # every cell at both epoch values
    assert set(table["verdict"]) <= {"under-trained", "well fit", "overfit", "undetermined"}
    assert (table[table.epochs == 1]["verdict"] == "undetermined").all()
    diagnostics = finished_run.diagnostics
    assert set(diagnostics["cell_id"]) == set(cells["cell_id"])
    assert {"checkpoint", "metric", "value", "group", "op", "severity", "layer"} <= set(diagnostics.columns)


def test_run_directory_holds_suite_environment_and_database(finished_run):
    run_dir = finished_run.run_dir
    assert json.loads((run_dir / "suite.json").read_text())["name"] == "tiny"
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["versions"]["transformers"] and env["torch_threads"] >= 1
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 8


def test_nested_subsets_are_shared_by_strategies_and_seeds(tiny_model, tiny_csv, monkeypatch):
    """The rows each cell hands to training, recorded: every strategy and seed of a size gets
    the same rows, the smaller size's rows lie inside the larger's, and each subset keeps the
    pool's label shares (stratified, within one row)."""
    from overfit_lab import training
    from overfit_lab.data import load_task_data
    from overfit_lab.grid import build_grid

    suite = validate_suite(tiny_suite_dict(tiny_model, tiny_csv))
    seen: dict = {}

    def record(pool, positions, labels):
        seen[current] = tuple(int(p) for p in positions)
        raise RuntimeError("recorded")  # no need to train

    monkeypatch.setattr(training, "_subset", record)
    for cell in build_grid(suite):
        current = (cell.train_size, cell.strategy, cell.seed)
        assert training.run_cell(cell).status == "failed"
    assert len(seen) == 8
    by_size = {size: {rows for (s, _, _), rows in seen.items() if s == size} for size in (40, 80)}
    assert all(len(rows) == 1 for rows in by_size.values())
    (small,), (large,) = by_size[40], by_size[80]
    assert len(set(small)) == 40 and len(set(large)) == 80 and set(small) < set(large)
    labels = load_task_data(suite).train["label"].to_numpy()
    for rows in (small, large):
        share = np.bincount(labels[list(rows)], minlength=2) / len(rows)
        assert np.abs(share - np.bincount(labels, minlength=2) / len(labels)).max() <= 1 / len(rows)


def test_resume_runs_only_the_missing_cells(tiny_model, tiny_csv, tmp_path, monkeypatch):
    suite = validate_suite(tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[1]))
    calls = []
    real = training_module.run_cell

    def crash_after_two(cell, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(cell.cell_id)
        return real(cell, **kwargs)

    monkeypatch.setattr(training_module, "run_cell", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, output=tmp_path / "run", quiet=True)
    assert len(load_run(tmp_path / "run").cells) == 2  # both finished cells were committed

    def count(cell, **kwargs):
        calls.append(cell.cell_id)
        return real(cell, **kwargs)

    monkeypatch.setattr(training_module, "run_cell", count)
    run = run_suite(resume=tmp_path / "run", quiet=True)
    assert len(calls) == 4 and len(set(calls)) == 4  # nothing redone
    assert len(run.cells) == 4 and (run.cells["status"] == "finished").all()
    assert not run.metrics.duplicated(["cell_id", "epoch", "split", "metric"]).any()


def test_failed_cells_are_recorded_and_the_grid_goes_on(tiny_model, tiny_csv, tmp_path):
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[40], epochs=[2], seeds=[0],
                          strategies=["explode", "baseline"])
    raw["strategies"]["explode"] = {"recipe": {"learning_rate": 1e12, "max_grad_norm": 0}}
    run = run_suite(validate_suite(raw), output=tmp_path / "run", quiet=True)
    status = dict(zip(run.cells["strategy"], run.cells["status"], strict=True))
    assert status == {"explode": "failed", "baseline": "finished"}
    assert "non-finite" in run.cells.set_index("strategy").loc["explode", "reason"]


def test_existing_run_directory_is_not_overwritten(finished_run):
    with pytest.raises(OverfitLabError, match="--resume"):
        run_suite(finished_run.suite, output=finished_run.run_dir, quiet=True)


def test_resume_refuses_changed_data(tiny_model, tmp_path):
    from conftest import make_sentences

    data = tmp_path / "data.csv"
    make_sentences(240, seed=3).to_csv(data, index=False)
    suite = validate_suite(tiny_suite_dict(tiny_model, data, train_sizes=[40], epochs=[1], seeds=[0],
                                           strategies=["baseline"]))
    run_suite(suite, output=tmp_path / "run", quiet=True)
    make_sentences(240, seed=4).to_csv(data, index=False)
    with pytest.raises(OverfitLabError, match="data changed"):
        run_suite(resume=tmp_path / "run", quiet=True)


def test_cli_run_show_and_list(tiny_model, tiny_csv, tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(f"""
name = "cli-tiny"
[model]
name = "{tiny_model}"
max_length = 32
[data]
path = "{tiny_csv}"
validation_size = 40
test_size = 40
[grid]
train_sizes = [40]
epochs = [1, 2]
strategies = ["baseline"]
[recipe]
learning_rate = 3e-3
lr_scheduler_type = "constant"
use_cpu = true
""")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "overfit_lab", "run", str(suite), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "cells 1/1" in done.stdout and "val acc" in done.stdout and "baseline" in done.stdout
    shown = subprocess.run([sys.executable, "-m", "overfit_lab", "show", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "cli-tiny" in shown.stdout
    again = subprocess.run([sys.executable, "-m", "overfit_lab", "run", "--resume", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 to run" in again.stdout
    listed = subprocess.run([sys.executable, "-m", "overfit_lab", "list"], capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0
    for word in ("quickstart", "regularization", "freeze4", "early_stopping", "reviews", "minilm"):
        assert word in listed.stdout


def test_cli_bad_run_dir_is_one_line_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "overfit_lab", "show", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_scores_summary_and_comparisons(finished_run):
    scores = finished_run.scores
    assert len(scores) == 8
    for column in ("test_accuracy", "gap_accuracy", "ece", "membership_advantage", "mean_cka",
                   "worst_robustness_drop", "bias_amplification"):
        assert scores[column].notna().all(), column
    general = finished_run.generalization
    last = general[general.epochs == 2].set_index("cell_id")["test_accuracy"]
    assert scores.set_index("cell_id")["test_accuracy"].equals(last.loc[scores["cell_id"]])
    comparisons = finished_run.comparisons
    assert set(comparisons["strategy"]) == {"freeze1"} and set(comparisons["train_size"]) == {40, 80}
    assert (comparisons["n"] == 2).all()  # paired over both seeds
    row = comparisons[(comparisons.train_size == 80) & (comparisons.metric == "test_accuracy")].iloc[0]
    pair = scores[scores.train_size == 80].pivot(index="seed", columns="strategy", values="test_accuracy")
    assert row.mean_difference == pytest.approx((pair["freeze1"] - pair["baseline"]).mean())
    assert set(comparisons["verdict"]) <= {"better", "worse", "no evidence"}
    summary = finished_run.summary
    assert set(summary["method"]) == {"t"} and (summary["n"] == 2).all()


def test_terminal_summary_fits_100_columns(finished_run):
    from rich.console import Console

    from overfit_lab.report.terminal import print_summary

    console = Console(width=100, record=True, force_terminal=False)
    print_summary(finished_run, console)
    text = console.export_text()
    assert "strategies against 'baseline', paired by seed" in text and "reference" in text
    assert "worst drop" in text and "mean CKA" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 100
    lines = [line.strip() for line in text.splitlines()]
    assert not [line for line in lines if re.fullmatch(r"[\d/,]+|[a-z]+ \d/\d", line)]  # no wrapped cells
    # two seeds: each cell shows both seeds' values, never a t interval with 1 degree of freedom
    pair = re.compile(r"\d\.\d{3}/-?\d\.\d{3}")
    rows = [line for line in lines if line.startswith(("40 ", "80 ")) and pair.search(line)]
    assert len(rows) >= 4 and not any("±" in line for line in rows)
    assert "the 2 seeds' values" in text
    assert all(re.search(r"\b[OUW?],[OUW?]$", line) for line in rows[:4])  # a verdict letter per seed
    assert "verdict per seed: O overfit, U under-trained, W well fit, ? undetermined" in text
    # summary, comparison (a size on its first row), diagnostics, where it fails
    assert sum(line.startswith(("40 ", "80 ")) for line in lines) == 4 + 2 + 4 + 4


def test_terminal_and_html_show_the_stored_numbers(finished_run):
    """The figures printed and rendered are the stored ones: test accuracy per seed from the
    metrics table (sklearn's accuracy_score is what wrote them, tested in test_metrics), read
    here straight from run.metrics, not through the analysis."""
    from rich.console import Console

    from overfit_lab.report.html import render_report
    from overfit_lab.report.terminal import summary_table

    metrics, cells = finished_run.metrics, finished_run.cells.set_index("cell_id")
    test = metrics[(metrics.split == "test") & (metrics.metric == "accuracy") & (metrics.epoch == 2)]
    test = test.assign(size=test.cell_id.map(cells.train_size), strategy=test.cell_id.map(cells.strategy),
                       seed=test.cell_id.map(cells.seed))
    console = Console(width=100, record=True, force_terminal=False)
    console.print(summary_table(finished_run))
    lines = [line.split() for line in console.export_text().splitlines()]
    html = render_report(finished_run)
    for (size, strategy), rows in test.groupby(["size", "strategy"]):
        a, b = rows.sort_values("seed")["value"]
        row = next(line for line in lines if line[:2] == [str(size), strategy])
        assert row[3] == f"{a:.3f}/{b:.3f}"  # size, strategy, val acc, test acc
        assert f"{(a + b) / 2:.3f} (seeds {a:.3f}, {b:.3f})" in html


def test_failed_cells_make_run_and_check_exit_1_unless_allowed(tiny_model, tiny_csv, tmp_path):
    """Issue 13.2: a run with a failed cell exits 1, its last line giving the count and the first
    reason; --allow-failures accepts them; `check --run` on it fails the same way."""
    from conftest import tiny_suite_toml
    from typer.testing import CliRunner

    from overfit_lab.cli import app

    suite = tmp_path / "suite.toml"
    explode = "[strategies.explode]\nrecipe = { learning_rate = 1e12, max_grad_norm = 0 }\n"
    text = tiny_suite_toml(tiny_model, tiny_csv, explode)
    suite.write_text(text.replace('strategies = ["baseline"]', 'strategies = ["baseline", "explode"]'))
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(suite), "--output", str(tmp_path / "run"), "--quiet"])
    assert ran.exit_code == 1, ran.output
    last = ran.output.strip().splitlines()[-1]
    assert last.startswith("failed: 1 of 2 cells failed; first: n40-explode-s0:") and "non-finite" in last
    assert f"--resume {tmp_path / 'run'}" in last
    checked = runner.invoke(app, ["check", "--run", str(tmp_path / "run")])
    assert checked.exit_code == 1 and "1 of 2 cells failed" in checked.output.strip().splitlines()[-1]
    allowed = runner.invoke(app, ["check", "--run", str(tmp_path / "run"), "--allow-failures"])
    assert allowed.exit_code == 0, allowed.output
    again = runner.invoke(app, ["run", str(suite), "--output", str(tmp_path / "run2"), "--quiet",
                                "--allow-failures"])
    assert again.exit_code == 0, again.output
