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
