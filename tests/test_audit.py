"""Audits of an existing fine-tuned model: no training, every diagnostic, the same store and checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_sentences
from sklearn.metrics import accuracy_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from overfit_lab import OverfitLabError, audit, load_run
from overfit_lab.cli import app

LIGHT = {"robustness": {"ops": ["casing", "word_dropout"], "severities": [0.3], "subsample": 20},
         "bias": {"intervals": True, "subsample": 20}, "drift": {"probe_size": 16}}


@pytest.fixture(scope="module")
def finetuned(tiny_model, tmp_path_factory):
    """A tiny classifier whose labels are named in the reverse of sorted order, trained a little."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=2, id2label={0: "positive", 1: "negative"}, label2id={"positive": 0,
                                                                                     "negative": 1})
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    data = make_sentences(120, seed=3)
    names = np.where(data["label"] == 1, "positive", "negative")
    batch = tokenizer(data["text"].tolist(), padding=True, return_tensors="pt")
    labels = torch.tensor([model.config.label2id[n] for n in names])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(15):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    directory = tmp_path_factory.mktemp("finetuned")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    folder = tmp_path_factory.mktemp("audit-data")
    train, test = folder / "train.csv", folder / "test.jsonl"
    data.assign(label=names).to_csv(train, index=False)
    held = make_sentences(60, seed=4)
    held.assign(label=np.where(held["label"] == 1, "positive", "negative")).to_json(test, orient="records",
                                                                                   lines=True)
    return directory, train, test


def _accuracy(model_dir, path: str) -> float:
    """Accuracy computed here, independently of overfit-lab, with the model's own label names."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    frame = pd.read_csv(path) if str(path).endswith(".csv") else pd.read_json(path, lines=True)
    with torch.no_grad():
        logits = model(**tokenizer(frame["text"].tolist(), padding=True, return_tensors="pt")).logits
    predicted = [model.config.id2label[int(i)] for i in logits.argmax(1)]
    return accuracy_score(frame["label"], predicted)


@pytest.fixture(scope="module")
def audited(finetuned, tiny_model, tmp_path_factory):
    model, train, test = finetuned
    return audit(model, train, test, groups=["gender"], reference=tiny_model, max_length=32,
                 diagnostics=LIGHT, output=tmp_path_factory.mktemp("audits") / "a", quiet=True)


def test_audit_scores_the_model_as_it_is(audited, finetuned):
    model, train, test = finetuned
    assert list(audited.cells["strategy"]) == ["audit"] and list(audited.cells["status"]) == ["finished"]
    metrics = audited.metrics.set_index(["split", "metric"])["value"]
    assert metrics[("train", "accuracy")] == pytest.approx(_accuracy(model, train))
    assert metrics[("test", "accuracy")] == pytest.approx(_accuracy(model, test))
    row = audited.generalization.iloc[0]
    assert row["gap_accuracy"] == pytest.approx(_accuracy(model, train) - _accuracy(model, test))
    assert audited.audit.reference is not None and audited.cells.iloc[0]["train_s"] == 0.0
    assert "audit" not in audited.suite.model_dump()  # an audit is its own kind of run


def test_audit_runs_every_diagnostic(audited):
    metrics = set(audited.diagnostics["metric"])
    for name in ("ece", "brier", "membership_advantage", "membership_auc", "worst_robustness_drop",
                 "accuracy_perturbed", "bias_amplification", "bias_amplification_zhao",
                 "demographic_parity_difference", "counterfactual_flip_rate", "cka", "weight_distance",
                 "mean_cka", "alpha", "mean_alpha"):
        assert name in metrics, name
    assert set(audited.diagnostics["checkpoint"]) == {"final"}
    assert (audited.run_dir / "report.html").is_file()
    # an audit trains on its whole training file: test rows are the only non-members, and the
    # report warns that a test split distributed otherwise shows up as membership
    assert audited.membership_nonmembers == "test"
    html = (audited.run_dir / "report.html").read_text(encoding="utf-8")
    assert "not distributed like the training split" in html


def test_reloaded_audit_has_scores(audited):
    run = load_run(audited.run_dir)
    scores = run.scores
    assert len(scores) == 1 and {"ece", "mean_cka", "gap_accuracy"} <= set(scores.columns)


def test_without_reference_there_is_no_drift(finetuned, tmp_path):
    model, train, test = finetuned
    run = audit(model, train, test, max_length=32, output=tmp_path / "a",
                diagnostics={**LIGHT, "robustness": {"enabled": False}}, quiet=True)
    assert "cka" not in set(run.diagnostics["metric"]) and "ece" in set(run.diagnostics["metric"])


def test_audit_errors_are_one_line(finetuned, tmp_path):
    model, train, test = finetuned
    with pytest.raises(OverfitLabError, match="no such file"):
        audit(model, tmp_path / "missing.csv", test, quiet=True)
    three = tmp_path / "three.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", "z"]}).to_csv(three, index=False)
    with pytest.raises(OverfitLabError, match="3 labels .* the model 2 classes"):
        audit(model, three, three, quiet=True, output=tmp_path / "b")
    result = subprocess.run([sys.executable, "-m", "overfit_lab", "audit", "--model", str(tmp_path),
                             "--train", str(train), "--test", str(test)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "config.json" in result.stderr


def test_audit_command_with_checks(finetuned, tmp_path):
    model, train, test = finetuned
    checks = tmp_path / "checks.toml"
    checks.write_text('[checks.calibrated]\nmetric = "ece"\nmax = 1.0\n'
                      '[checks.flawless]\nmetric = "test_accuracy"\nmin = 1.0\n')
    junit = tmp_path / "audit.xml"
    result = CliRunner().invoke(app, ["audit", "--model", str(model), "--train", str(train), "--test",
                                      str(test),
                                      "--groups", "gender", "--max-length", "32", "--checks", str(checks),
                                      "--junit", str(junit), "--output", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "flawless" in result.output and "fails >= 1" in result.output
    assert 'failures="1"' in junit.read_text()


# --- real group columns and diagnostics that fail ------------------------------------------------

# With the default least group size (10). Split on ";": train (120 rows) none 60, gay 33, black 25,
# muslim 15, lesbian 8, american 8, jewish 2; test (60 rows) none 20, gay 18, black 15, muslim 10,
# lesbian 6, american 6, hindu 4 (only here), jewish 3.
IDENTITY_TRAIN = (["none"] * 60 + ["gay"] * 25 + ["black;muslim"] * 15 + ["black"] * 10 + ["jewish"] * 2
                  + ["lesbian;gay;american"] * 8)
IDENTITY_TEST = (["none"] * 20 + ["gay"] * 12 + ["black;muslim"] * 10 + ["black"] * 5 + ["jewish"] * 3
                 + ["hindu"] * 4 + ["lesbian;gay;american"] * 6)


@pytest.fixture(scope="module")
def identity_files(finetuned, tmp_path_factory):
    """The audit data with an ``identity`` column as the Wikipedia Talk data ships one."""
    _, train, test = finetuned
    folder = tmp_path_factory.mktemp("identity-data")
    rng = np.random.default_rng(11)
    frame = pd.read_csv(train).assign(identity=rng.permutation(IDENTITY_TRAIN))
    held = pd.read_json(test, lines=True).assign(identity=rng.permutation(IDENTITY_TEST))
    frame.to_csv(folder / "train.csv", index=False)
    held.to_json(folder / "test.jsonl", orient="records", lines=True)
    return folder / "train.csv", folder / "test.jsonl"


def _predicted_names(model_dir, frame: pd.DataFrame) -> np.ndarray:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        logits = model(**tokenizer(frame["text"].tolist(), padding=True, return_tensors="pt")).logits
    return np.array([model.config.id2label[int(i)] for i in logits.argmax(1)])


def test_audit_of_a_real_group_column(finetuned, identity_files, tmp_path):
    """`--groups identity --group-separator ";"`: no crash; hindu (test only), jewish (2 training
    rows), lesbian and american (8) are left out and named in the summary and the report; BiasAmp→
    over black, gay, muslim and none equals the definition on the model's own predictions;
    subgroup rates per value. Before: a traceback and exit 1 (`eval_groups holds groups absent`)."""
    from overfit_lab.diagnostics.bias import directional_bias_amplification_multilabel

    model, _, _ = finetuned
    train, test = identity_files
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", "--model", str(model), "--train", str(train), "--test",
                                      str(test), "--groups", "identity,gender", "--group-separator", ";",
                                      "--max-length", "32", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "left out" in result.output
    run = load_run(out)
    assert run.diagnostic_failures.empty and run.suite.data.group_separator == ";"
    left = run.amplification_left_out.set_index("group")
    assert tuple(left.loc["identity=hindu", ["reason", "test_min"]]) == ("not in training", 4)
    assert tuple(left.loc["identity=jewish", ["reason", "train_min"]]) == ("too small", 2)
    assert set(left.index) == {"identity=hindu", "identity=jewish", "identity=lesbian", "identity=american"}
    diag = run.diagnostics.set_index(["metric", "group"])["value"]
    frame, held = pd.read_csv(train), pd.read_json(test, lines=True)
    kept = ["black", "gay", "muslim", "none"]
    expected = directional_bias_amplification_multilabel(
        frame["label"].to_numpy(), np.array([[v in s.split(";") for v in kept] for s in frame["identity"]]),
        held["label"].to_numpy(), _predicted_names(model, held),
        np.array([[v in s.split(";") for v in kept] for s in held["identity"]]))
    assert diag["bias_amplification", "identity"] == pytest.approx(expected)
    assert diag["group_count", "identity=gay"] == 18 and diag["group_count", "identity=hindu"] == 4
    assert ("bias_amplification_zhao", "gender") in diag.index  # one group per row: Zhao too
    assert ("bias_amplification_zhao", "identity") not in diag.index
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "identity=hindu: not in training (test n = 4)" in html
    assert "identity=jewish: too small (training n = 2, test n = 3)" in html


BOOM = ("import sys\n"
        "import overfit_lab.diagnostics.checkpoint as checkpoint\n"
        "def boom(ctx):\n"
        "    raise RuntimeError('calibration broke\\n  on a second line')\n"
        "checkpoint.DIAGNOSTICS['calibration'] = boom\n"
        "from overfit_lab.cli import main\n"
        "sys.argv[0] = 'overfit-lab'\n"
        "main()\n")


def test_a_failing_diagnostic_of_an_audit_is_one_line_and_the_rest_stands(finetuned, tmp_path):
    """Calibration raises: the other diagnostics, the metrics, the summary and the report are
    there, the failure is stored with its reason, and the command exits 1 with one line, no
    traceback. Before: a traceback from inside the audit and no run."""
    model, train, test = finetuned
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", BOOM, "audit", "--model", str(model), "--train", str(train),
                           "--test", str(test), "--groups", "gender", "--max-length", "32",
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    # (transformers' own "Loading weights" bars of the fine-tuned model go to stderr too)
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("Loading weights")]
    assert lines == ["failed: diagnostic calibration failed in 1 of 1 cells; first: audit: RuntimeError: "
                     "calibration broke on a second line"], done.stderr
    assert "failed diagnostics" in done.stdout
    run = load_run(out)
    assert list(run.cells["status"]) == ["finished"] and not run.metrics.empty
    metrics = set(run.diagnostics["metric"])
    assert {"membership_advantage", "bias_amplification", "worst_robustness_drop", "alpha"} <= metrics
    assert "ece" not in metrics
    failure = run.diagnostic_failures.iloc[0]
    assert tuple(failure[["cell_id", "checkpoint", "diagnostic"]]) == ("audit", "final", "calibration")
    assert failure["reason"] == "RuntimeError: calibration broke on a second line"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Failed diagnostics" in html and "calibration broke on a second line" in html


def test_a_failing_diagnostic_leaves_a_grid_cell_finished(tiny_model, tiny_csv, tmp_path):
    """The same inside a grid cell (`overfit-lab run`): the cell finishes with its metrics and its
    other diagnostics, the run exits 1 with one line, and the report is written."""
    from conftest import tiny_suite_toml

    suite = tmp_path / "suite.toml"
    suite.write_text(tiny_suite_toml(tiny_model, tiny_csv))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", BOOM, "run", str(suite), "--output", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    run = load_run(out)
    (cell,) = run.cells["cell_id"]
    assert done.stderr.strip().splitlines() == [
        f"failed: diagnostic calibration failed in 1 of 1 cells; first: {cell}: RuntimeError: "
        "calibration broke on a second line"]
    assert list(run.cells["status"]) == ["finished"] and not run.metrics.empty
    metrics = set(run.diagnostics["metric"])
    assert "membership_advantage" in metrics and "ece" not in metrics
    assert (out / "report.html").is_file()


def test_run_diagnostics_keeps_nothing_of_a_failing_diagnostic(monkeypatch, tiny_model):
    """A diagnostic that raised after adding examples leaves none of its rows or examples; user
    errors still propagate."""
    from test_bias import _bias_context

    from overfit_lab.diagnostics import checkpoint

    def half_done(ctx):
        ctx.add_examples("robustness", ["a"], ["b"], np.array([0]), np.ones((1, 2)) / 2, np.ones((1, 2)) / 2,
                         np.array([0]))
        raise ValueError("half done")

    ctx = _bias_context(tiny_model, False, ["gender"], bias={"counterfactual": False})
    monkeypatch.setitem(checkpoint.DIAGNOSTICS, "robustness", half_done)
    adapters = {name: checkpoint.DIAGNOSTICS[name] for name in ("robustness", "bias")}
    rows = checkpoint.run_diagnostics(ctx, adapters)
    assert ctx.failures == [{"checkpoint": ctx.checkpoint, "diagnostic": "robustness",
                             "reason": "ValueError: half done"}]
    assert ctx.examples == [] and any(r.metric == "bias_amplification" for r in rows)
    assert not any(r.metric.startswith(("accuracy_perturbed", "robustness")) for r in rows)

    def user_error(ctx):
        raise OverfitLabError("bad reference model.", key="--reference")

    monkeypatch.setitem(checkpoint.DIAGNOSTICS, "robustness", user_error)
    with pytest.raises(OverfitLabError, match="bad reference"):
        checkpoint.run_diagnostics(ctx, {"robustness": checkpoint.DIAGNOSTICS["robustness"]})


def test_failed_line_names_failed_cells_and_failed_diagnostics():
    from pathlib import Path

    from overfit_lab.analysis import RunResult
    from overfit_lab.app import failed_cells_line
    from overfit_lab.store import StoredRun
    from overfit_lab.suite import validate_suite

    suite = validate_suite({"model": {"name": "m"}, "data": {"builtin": "reviews"},
                            "grid": {"train_sizes": [10], "epochs": [1], "seeds": [0, 1, 2]}})
    failures = [[{"checkpoint": "final", "diagnostic": "drift", "reason": "KeyError: 'layer'"}],
                [{"checkpoint": "best", "diagnostic": "bias", "reason": "ValueError: eval_groups\nholds"},
                 {"checkpoint": "final", "diagnostic": "bias", "reason": "ValueError: x"}],
                float("nan")]  # a failed cell stores no diagnostics
    cells = pd.DataFrame({"cell_id": ["c0", "c1", "c2"], "status": ["finished", "finished", "failed"],
                          "reason": ["", "", "out of memory"], "diagnostic_failures": failures})

    def line(cells):
        return failed_cells_line(RunResult(StoredRun(run_dir=Path("r"), suite=suite, environment={}, meta={},
                                                     cells=cells, metrics=pd.DataFrame(),
                                                     diagnostics=pd.DataFrame(), examples=pd.DataFrame())))

    assert line(cells) == ("1 of 3 cells failed; first: c2: out of memory (retry them with: "
                           "overfit-lab run --resume r); diagnostics drift, bias failed in 2 of 3 "
                           "cells; first: c0 (drift): KeyError: 'layer'")
    assert line(cells.iloc[1:2]) == ("diagnostic bias failed in 1 of 1 cells; first: c1: "
                                     "ValueError: eval_groups holds")
    assert line(cells.iloc[1:2].assign(diagnostic_failures=[[]])) is None
    assert line(cells.iloc[1:2].drop(columns="diagnostic_failures")) is None  # a run stored before


def test_audit_allow_failures_exits_0(finetuned, tmp_path, monkeypatch):
    from overfit_lab.diagnostics import checkpoint

    def boom(ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(checkpoint.DIAGNOSTICS, "spectral", boom)
    model, train, test = finetuned
    args = ["audit", "--model", str(model), "--train", str(train), "--test", str(test), "--max-length", "32",
            "--quiet"]
    allowed = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "a"), "--allow-failures"])
    assert allowed.exit_code == 0, allowed.output
    refused = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "b")])
    assert refused.exit_code == 1 and "diagnostic spectral failed" in refused.output
