"""Weak slices, label balance, training dynamics and temperature scaling through the harness: what a
cell stores, what the analysis pools, what the reports and checks read, and what an audit does."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite_dict
from scipy.special import softmax
from test_audit import finetuned  # noqa: F401 - the audit's fine-tuned tiny classifier, as a fixture

from overfit_lab import check_run, load_run, run_suite
from overfit_lab.suite import CheckSpec, validate_suite

OTHERS_OFF = {name: {"enabled": False} for name in ("robustness", "bias", "drift", "spectral",
                                                    "memorization")}


@pytest.fixture(scope="module")
def noisy_run(tiny_model, tiny_csv, tmp_path_factory):
    """The tiny BERT on the tiny sentences, 20% of the training labels flipped, 2 seeds, 6 epochs."""
    raw = tiny_suite_dict(tiny_model, tiny_csv, train_sizes=[120], epochs=[6], strategies=["baseline"],
                          seeds=[0, 1], label_noise=[0.2])
    raw["diagnostics"] = {"checkpoints": ["final"], **OTHERS_OFF, "slices": {"min_count": 5}}
    return run_suite(validate_suite(raw), output=tmp_path_factory.mktemp("modes") / "run", quiet=True)


def test_every_training_example_is_on_the_data_map(noisy_run):
    run = noisy_run
    dynamics = run.dynamics
    assert set(dynamics["cell_id"]) == set(run.cells["cell_id"])
    for cell_id, part in dynamics.groupby("cell_id"):
        assert len(part) == 120 and part["position"].is_unique
        assert (part["label"] != part["clean_label"]).sum() == 24  # 20% of 120 flipped by the harness
        shares = run.final_rows("cartography_easy").set_index("cell_id")["value"]
        assert shares[cell_id] == pytest.approx((part["region"] == "easy-to-learn").mean())
        # memorised = learned after the epoch of lowest validation loss, read from the stored curve
        curve = run.metrics[(run.metrics["cell_id"] == cell_id) & (run.metrics["split"] == "validation")
                            & (run.metrics["metric"] == "loss")].sort_values("epoch")
        best = int(curve.loc[curve["value"].idxmin(), "epoch"])
        late = part["learned_epoch"].fillna(0).to_numpy() > best
        np.testing.assert_array_equal(part["memorised"].to_numpy(), late)
    assert {"mislabel_auc", "mislabel_precision", "mislabel_k"} <= set(run.diagnostics["metric"])
    flipped = run.final_rows("mislabel_k")["value"]
    assert (flipped == 24).all()


def test_mislabel_auc_is_the_stored_scores_auc(noisy_run):
    """The stored AUC equals sklearn's on the stored margins (score = -margin) and flips."""
    from sklearn.metrics import roc_auc_score

    run = noisy_run
    stored = run.final_rows("mislabel_auc").set_index("cell_id")["value"]
    for cell_id, part in run.dynamics.groupby("cell_id"):
        flipped = (part["label"] != part["clean_label"]).to_numpy()
        assert stored[cell_id] == pytest.approx(roc_auc_score(flipped, -part["margin"].to_numpy()))


def test_mislabeled_examples_are_training_texts(noisy_run, tiny_csv):
    examples = noisy_run.examples[noisy_run.examples["kind"] == "mislabeled"]
    assert len(examples) == 20  # 10 per cell
    texts = set(pd.read_csv(tiny_csv)["text"])
    assert set(examples["text"]) <= texts
    assert examples.groupby("cell_id")["severity"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_label_balance_matches_the_data(noisy_run):
    run = noisy_run
    from overfit_lab.data import load_task_data

    data = load_task_data(run.suite)
    shares = run.final_rows("class_share_test")
    expected = data.test["label"].value_counts(normalize=True)
    for row in shares.itertuples():
        assert row.value == pytest.approx(expected.get(data.label_names.index(row.group), 0.0))
    predicted = run.final_rows("class_share_predicted").groupby("cell_id")["value"].sum()
    assert np.allclose(predicted, 1.0)
    recall = run.final_rows("class_recall")
    minimum = run.final_rows("min_class_recall").set_index("cell_id")["value"]
    assert np.allclose(recall.groupby("cell_id")["value"].min().loc[minimum.index], minimum)
    table = run.class_balance
    assert set(table["class"]) == set(data.label_names) and (table["seeds"] == 2).all()


def test_slices_are_stored_and_summarized(noisy_run):
    run = noisy_run
    gaps = run.final_rows("slice_gap")
    weak = run.final_rows("slice_weak")
    assert len(gaps) > 0 and len(gaps) == len(weak)
    merged = gaps.merge(weak, on=["cell_id", "group"], suffixes=("_gap", "_weak"))
    worst = run.final_rows("worst_slice_gap").set_index("cell_id")["value"]
    for cell_id, part in merged.groupby("cell_id"):
        flagged = part.loc[part["value_weak"] > 0, "value_gap"]
        assert worst[cell_id] == pytest.approx(flagged.max() if len(flagged) else 0.0)
    tested = run.final_rows("slices_tested").set_index("cell_id")["value"]
    assert (tested == gaps.groupby("cell_id").size().loc[tested.index]).all()


def test_temperature_scaling_is_refitted_from_the_stored_curve(noisy_run):
    temperature = noisy_run.final_rows("temperature")["value"]
    scaled = noisy_run.final_rows("ece_temperature_scaled")["value"]
    assert (temperature > 0).all() and scaled.between(0, 1).all()


def test_reports_show_the_failure_modes(noisy_run):
    from rich.console import Console

    from overfit_lab.report.html import render_report
    from overfit_lab.report.terminal import print_summary

    console = Console(record=True, width=100)
    print_summary(noisy_run, console)
    text = console.export_text()
    assert "where it fails, which labels" in text and "mislabel AUC" in text
    html = render_report(noisy_run)
    for anchor in ('id="slices"', 'id="labels"', 'id="dynamics"', 'id="plot-datamap"',
                   "Training texts most likely mislabeled", "Temperature scaling"):
        assert anchor in html


def test_checks_read_the_new_scores(noisy_run):
    recall = noisy_run.final_rows("min_class_recall")["value"]
    report = check_run(noisy_run, checks={"recall": CheckSpec(metric="min_class_recall", min=0.0),
                                          "slices": CheckSpec(metric="worst_slice_gap", max=1.0)})
    assert report.passed
    report = check_run(noisy_run, checks={"recall": CheckSpec(metric="min_class_recall",
                                                              min=float(recall.mean()) + 1e-6)})
    row = report.conditions[report.conditions["check"] == "recall"].iloc[0]
    assert not report.passed and row["mean"] == pytest.approx(recall.mean())


def test_a_run_stored_before_the_dynamics_table_reads_back(noisy_run, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(noisy_run.run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    with sqlite3.connect(copy / "run.sqlite") as db:
        db.execute("DROP TABLE dynamics")
    run = load_run(copy)
    assert run.dynamics.empty and list(run.dynamics.columns)[:2] == ["cell_id", "position"]
    assert len(run.scores) == 2


def test_an_audit_has_slices_and_labels_but_no_dynamics(finetuned, tmp_path):  # noqa: F811
    from overfit_lab import audit

    model_dir, train, test = finetuned
    run = audit(model_dir, train, test, output=tmp_path / "audit", quiet=True,
                diagnostics={"slices": {"min_count": 5}})
    metrics = set(run.diagnostics["metric"])
    assert {"worst_slice_gap", "min_class_recall", "label_shift_p"} <= metrics
    assert "temperature" not in metrics  # its validation rows are its test rows
    assert run.dynamics.empty and "cartography_easy" not in metrics


def test_slice_examples_are_wrong_predictions_in_their_slice(noisy_run):
    examples = noisy_run.examples[noisy_run.examples["kind"] == "slice"]
    assert (examples["pred"] != examples["label"]).all()
    weak = set(noisy_run.final_rows("slice_weak").query("value > 0")["group"])
    assert set(examples["op"]) <= weak


def test_softmax_of_stored_history_is_what_the_map_reads():
    """The data map reads class probabilities: softmax of the logits recorded after each epoch."""
    logits = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])
    from overfit_lab.diagnostics.cartography import training_dynamics

    dynamics = training_dynamics(softmax(logits, axis=2), np.array([0]))
    p = softmax(np.array([2.0, 0.0]))[0]
    assert dynamics["confidence"].iloc[0] == pytest.approx((p + (1 - p)) / 2)
    assert dynamics["variability"].iloc[0] == pytest.approx(np.std([p, 1 - p]))
