"""run_cell on a tiny BERT: recorded metrics, exact epoch sharing, failures, early stopping."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite_dict

from overfit_lab.data import load_task_data
from overfit_lab.diagnostics.registry import adapters
from overfit_lab.grid import Cell, build_grid
from overfit_lab.suite import validate_suite
from overfit_lab.training import run_cell


def _suite(tiny_model, tiny_csv, **changes):
    raw = tiny_suite_dict(tiny_model, tiny_csv)
    for key, value in changes.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return validate_suite(raw)


def _cell(suite, *, strategy="baseline", size=40, seed=0, epochs=2, record=None, noise=0.0):
    return Cell(suite=suite, train_size=size, strategy=strategy, seed=seed, label_noise=noise,
                epochs=epochs, record_epochs=tuple(record or (epochs,)), epoch_mode="shared")


def _frame(result) -> pd.DataFrame:
    return pd.DataFrame([asdict(row) for row in result.metrics])


def test_run_cell_records_every_epoch_and_split(tiny_model, tiny_csv):
    suite = _suite(tiny_model, tiny_csv)
    result = run_cell(_cell(suite, epochs=3, record=(1, 3)))
    assert result.status == "finished", result.reason
    frame = _frame(result)
    for split in ("train", "validation"):
        for metric in ("loss", "accuracy", "macro_f1"):
            got = frame[(frame.split == split) & (frame.metric == metric)]["epoch"]
            assert sorted(got) == [1, 2, 3]
    assert sorted(frame[frame.split == "test"]["epoch"].unique()) == [1, 3]  # the grid's epoch values
    assert sorted(frame[frame.metric == "running_loss"]["epoch"]) == [1, 2, 3]
    assert result.info["optimizer_steps"] == 3 * 3  # 40 examples, batch 16
    assert result.info["train_s"] > 0 and result.info["eval_s"] > 0


def test_training_lowers_the_training_loss(tiny_model, tiny_csv):
    suite = _suite(tiny_model, tiny_csv)
    frame = _frame(run_cell(_cell(suite, size=80, epochs=6)))
    loss = frame[(frame.split == "train") & (frame.metric == "loss")].sort_values("epoch")["value"]
    assert loss.iloc[-1] < loss.iloc[0]


@pytest.mark.parametrize("strategy", ["baseline", "freeze1"])
def test_shared_epochs_equal_separate_runs_exactly(tiny_model, tiny_csv, strategy):
    """One 3-epoch run recording epochs 1 and 3 gives bit-identical metrics to separate runs."""
    suite = _suite(tiny_model, tiny_csv)
    shared = _frame(run_cell(_cell(suite, strategy=strategy, epochs=3, record=(1, 3))))
    for epochs in (1, 3):
        alone = _frame(run_cell(_cell(suite, strategy=strategy, epochs=epochs)))
        at = alone[alone.epoch == epochs].set_index(["split", "metric"])["value"].sort_index()
        same = shared[shared.epoch == epochs].set_index(["split", "metric"])["value"].sort_index()
        pd.testing.assert_series_equal(same, at, check_exact=True)


def test_dropout_is_active_so_sharing_test_is_meaningful(tiny_model, tiny_csv):
    """Same seed, so the same head, data order and subset: switching dropout off changes every
    recorded figure, while the same cell twice is bit-identical. Training draws from the RNG
    through dropout, which is what the exact epoch-sharing test needs to be able to fail."""
    off = {"hidden": 0.0, "attention": 0.0, "classifier": 0.0}
    suite = _suite(tiny_model, tiny_csv, strategies={"on": {"dropout": {**off, "hidden": 0.3}},
                                                     "off": {"dropout": off}},
                   grid={"strategies": ["on", "off"]})
    on, again = (_frame(run_cell(_cell(suite, strategy="on"))) for _ in range(2))
    without = _frame(run_cell(_cell(suite, strategy="off")))
    pd.testing.assert_frame_equal(on, again, check_exact=True)
    train = (without["split"] == "train") & (without["metric"] == "loss")
    assert not np.isclose(on[train]["value"], without[train]["value"], rtol=1e-6).any()


def test_non_finite_loss_fails_the_cell_with_a_reason(tiny_model, tiny_csv):
    suite = _suite(tiny_model, tiny_csv,
                   strategies={"explode": {"recipe": {"learning_rate": 1e12, "max_grad_norm": 0}}},
                   grid={"strategies": ["baseline", "explode"]})
    result = run_cell(_cell(suite, strategy="explode", epochs=3))
    assert result.status == "failed"
    assert "non-finite" in result.reason


def test_early_stopping_stops_and_scores_the_test_split(tiny_model, tiny_csv):
    suite = _suite(tiny_model, tiny_csv,
                   strategies={"stop": {"early_stopping": {"patience": 1, "threshold": 10.0}}},
                   grid={"strategies": ["stop"]})
    result = run_cell(_cell(suite, strategy="stop", epochs=5, record=(5,)))
    assert result.status == "finished", result.reason
    # threshold 10 means no epoch ever "improves" after the first: stop after epoch 2
    assert result.info["last_epoch"] == 2 and result.info["early_stopped"]
    frame = _frame(result)
    assert set(frame[frame.split == "test"]["epoch"]) == {2}


def test_augmentation_and_label_noise_run(tiny_model, tiny_csv, monkeypatch):
    """Every training text of every epoch goes through the augmenter, and most come out changed
    (deletion 0.2 and typos 0.2 on sentences of 5+ words); the evaluation texts never do."""
    from overfit_lab import training

    seen = []

    def spy(text, spec, rng, **kwargs):
        seen.append((text, augment(text, spec, rng, **kwargs)))
        return seen[-1][1]

    augment = training.augment_text
    monkeypatch.setattr(training, "augment_text", spy)
    suite = _suite(tiny_model, tiny_csv, strategies={"aug": {"augment": {"deletion": 0.2, "typo": 0.2}}},
                   grid={"strategies": ["aug"], "label_noise": [0.0, 0.25]})
    result = run_cell(_cell(suite, strategy="aug", noise=0.25))
    assert result.status == "finished", result.reason
    assert result.info["flipped_labels"] == 10  # round(0.25 * 40)
    rows = load_task_data(suite).training_subset(40, sizes=suite.grid.train_sizes, seed=suite.data.seed)
    assert len(seen) == 2 * 40 and {text for text, _ in seen} == set(rows["text"])
    assert sum(text != out for text, out in seen) > 0.75 * len(seen)


def test_build_grid_cells_are_runnable(tiny_model, tiny_csv):
    suite = _suite(tiny_model, tiny_csv)
    cells = build_grid(suite)
    assert len({c.cell_id for c in cells}) == len(cells) == 8
    assert run_cell(cells[0]).status == "finished"


def test_diagnostics_run_at_final_and_best_checkpoints(tiny_model, tiny_csv):
    suite = _suite(tiny_model, tiny_csv, diagnostics={"robustness": {"subsample": 20, "severities": [0.5]},
                                                      "bias": {"intervals": True}})
    result = run_cell(_cell(suite, strategy="freeze1", size=80, epochs=3))
    assert result.status == "finished", result.reason
    diag = pd.DataFrame([asdict(row) for row in result.diagnostics])
    assert list(diag.columns) == ["checkpoint", "metric", "value", "group", "op", "severity", "layer",
                                  "bin_low", "bin_high", "fpr"]
    assert set(diag["checkpoint"]) == {"final", "best"}
    assert result.info["diagnostics_forward_examples"] > 0 and result.info["diagnostics_forward_s"] > 0
    seconds = result.info["diagnostic_s"]  # each diagnostic's own, within all diagnostics' time
    assert set(seconds) == set(adapters("sequence-classification")) and all(s > 0 for s in seconds.values())
    assert sum(seconds.values()) <= result.info["diagnostics_s"]
    final = diag[diag.checkpoint == "final"]
    for metric in ("ece", "brier", "membership_advantage", "worst_robustness_drop", "bias_amplification",
                   "demographic_parity_difference_low", "counterfactual_flip_rate", "mean_cka", "mean_alpha"):
        assert metric in set(final["metric"]), metric
    distance = final[final.metric == "weight_distance"].set_index("layer")["value"]
    assert distance["embeddings"] == 0 and distance["encoder.layer.0"] == 0  # frozen
    assert distance["encoder.layer.1"] > 0
    cka = final[final.metric == "cka"].set_index("layer")["value"]
    assert cka["0"] == pytest.approx(1.0, abs=1e-9) and cka["1"] == pytest.approx(1.0, abs=1e-9)
    # frozen states (their modules all at distance 0) are marked and left out of the headline mean
    frozen = final[final.metric == "cka_frozen"].set_index("layer")["value"]
    assert frozen.to_dict() == {"0": 1.0, "1": 1.0, "2": 0.0}
    headline = final[final.metric == "mean_cka"]["value"].item()
    assert headline == pytest.approx(cka["2"], abs=1e-12) and headline < 1.0 - 1e-6
    assert final[final.metric == "mean_cka_all"]["value"].item() == pytest.approx(cka.mean(), abs=1e-12)
    robustness = final[final.metric == "robustness_drop"]
    assert set(robustness["op"]) == set(suite.diagnostics.robustness.ops)
    # the headline worst drop is taken at the op's headline severity only, with its paired interval
    from overfit_lab.diagnostics.perturb import HEADLINE_SEVERITY
    worst = final[final.metric.str.startswith("worst_robustness_drop")].set_index("metric")
    (op,), (severity,) = set(worst["op"]), set(worst["severity"])
    assert HEADLINE_SEVERITY[op] is not None and severity == HEADLINE_SEVERITY[op]
    headline_drops = [r.value for r in robustness.itertuples() if r.severity == HEADLINE_SEVERITY[r.op]]
    assert worst.loc["worst_robustness_drop", "value"] == max(headline_drops)
    low, value, high = (worst.loc[f"worst_robustness_drop{end}", "value"] for end in ("_low", "", "_high"))
    assert -1 <= low <= value <= high <= 1 and worst.loc["worst_robustness_drop_n", "value"] == 20
    roc = final[final.metric == "membership_roc_tpr"]
    assert roc["fpr"].tolist() == [k / 20 for k in range(21)] and roc["group"].isna().all()
    roc = roc["value"].to_numpy()
    assert len(roc) == 21 and (np.diff(roc) >= 0).all() and roc[-1] == 1.0
    # a reliability row's bin is its own pair of floats; group is for subgroups only
    bins = final[final.metric == "reliability_count"]
    assert bins["group"].isna().all() and bins["value"].sum() == 40  # the test split
    assert np.allclose(bins["bin_low"], np.arange(15) / 15)
    assert np.allclose(bins["bin_high"], np.arange(1, 16) / 15)
    assert final.dropna(subset=["group"])["metric"].isin(
        ["accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "group_count",
         "group_positives", "group_negatives", "bias_amplification", "bias_amplification_zhao"]
        + [f"{name}_{end}" for name in ("demographic_parity", "equalized_odds")
           for end in ("difference", "difference_low", "difference_high", "high_group", "low_group")]
        # a slice of the test split, or a class: subgroups the data defines
        + [f"slice_{name}" for name in ("value", "n", "gap", "p_adjusted", "weak")]
        + [f"class_share_{split}" for split in ("train", "validation", "test", "predicted")]
        + ["class_recall", "class_collapsed"]).all()
    # membership: 80 training rows against 80 of the 80 pool rows no cell trains on (240 rows,
    # 40 + 40 held out, largest size 80), through the model at this checkpoint
    membership = final.set_index("metric")["value"]
    assert membership["membership_n"] == 80 and membership["membership_nonmembers_unused"] == 1.0
    assert (membership["membership_advantage_low"] <= membership["membership_advantage"]
            <= membership["membership_advantage_high"])
    assert -1 <= membership["membership_advantage_yeom"] <= 1
    # the counterfactual rate comes with its count: the subsample's texts that a swap changes
    from overfit_lab.diagnostics.bias import GENDER_PAIRS, swap_identity_terms

    test = load_task_data(suite).test
    subsample = test["text"].tolist()[:suite.diagnostics.bias.subsample]  # all 40 (subsample 200)
    swapped = sum(swap_identity_terms(t, GENDER_PAIRS) != t for t in subsample)
    assert membership["counterfactual_n"] == swapped > 0
    assert membership["counterfactual_flip_rate"] * swapped == pytest.approx(
        round(membership["counterfactual_flip_rate"] * swapped), abs=1e-9)
    examples = pd.DataFrame([asdict(row) for row in result.examples])
    assert list(examples.columns) == ["kind", "op", "severity", "text", "variant", "label", "pred",
                                      "confidence", "variant_pred", "variant_confidence"]
    assert {"robustness", "counterfactual", "mislabeled"} <= set(examples["kind"]) <= {
        "robustness", "counterfactual", "mislabeled", "slice"}  # "slice": only where one is weak
    varied = examples["kind"].isin(["robustness", "counterfactual"])
    assert (examples[varied].groupby("kind").size() <= 5).all()
    assert (examples["kind"] == "mislabeled").sum() == 10
    assert (examples[varied]["text"] != examples[varied]["variant"]).all()
    worst = final[final.metric == "worst_robustness_drop"].iloc[0]
    assert set(examples[examples.kind == "robustness"]["op"]) == {worst["op"]}


def test_diagnostics_can_be_switched_off(tiny_model, tiny_csv):
    off = {name: {"enabled": False} for name in
           ("robustness", "bias", "calibration", "memorization", "drift", "spectral")}
    suite = _suite(tiny_model, tiny_csv, diagnostics={**off, "calibration": {"enabled": True}})
    result = run_cell(_cell(suite))
    assert {row.metric for row in result.diagnostics} >= {"ece"}
    assert not {row.metric for row in result.diagnostics} & {"mean_cka", "worst_robustness_drop", "alpha"}


def test_a_task_type_decides_the_split_metrics_and_the_diagnostics(tiny_model, tiny_csv, monkeypatch):
    """The seam for a second task: a TaskType with another split metric and only calibration
    changes what a cell records, with nothing else touched (the trainer, store and reports
    only see its rows)."""
    import dataclasses

    from overfit_lab import scoring, training
    from overfit_lab.diagnostics.classification import classification_metrics
    from overfit_lab.tasks import SEQUENCE_CLASSIFICATION

    predicted = []

    def predict(model, encoded, *, batch_size):
        predicted.append(len(encoded))
        return SEQUENCE_CLASSIFICATION.predict(model, encoded, batch_size=batch_size)

    def split_metrics(labels, logits):
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        confidence = float(probabilities.max(axis=1).mean())
        return {**classification_metrics(labels, logits), "mean_confidence": confidence}

    from overfit_lab.diagnostics.registry import ADAPTERS

    task = dataclasses.replace(SEQUENCE_CLASSIFICATION, name="test-task", predict=predict,
                               split_metrics=split_metrics, diagnostics=("calibration",))
    monkeypatch.setitem(ADAPTERS, "test-task", ADAPTERS["sequence-classification"])  # a task registers its
    for module in (training, scoring):
        monkeypatch.setattr(module, "task_of", lambda suite: task)
    suite = _suite(tiny_model, tiny_csv, diagnostics={"checkpoints": ["final"]})
    result = run_cell(_cell(suite, epochs=2))
    assert result.status == "finished", result.reason
    frame = _frame(result)
    confidence = frame[frame.metric == "mean_confidence"]
    assert sorted(confidence["split"].unique()) == ["test", "train", "validation"]
    assert confidence["value"].between(0.5, 1.0).all()  # two classes: the top probability
    assert predicted  # every prediction went through the task
    metrics = {row.metric for row in result.diagnostics}
    assert "ece" in metrics
    assert not metrics & {"membership_advantage", "worst_robustness_drop", "bias_amplification", "mean_cka"}
