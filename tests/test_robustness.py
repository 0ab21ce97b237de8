"""Robustness metrics on hand-built probability arrays (values computed on paper)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from overfit_lab.diagnostics.robustness import robustness_report, severity_curve, worst_perturbation

Y = np.array([0, 1, 1, 0])
CLEAN = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])  # predicts 0 1 1 0: all right
PERTURBED = np.array([[0.6, 0.4], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])  # predicts 0 0 1 1: 2 of 4


def test_report_on_hand_arrays() -> None:
    # Input 3 flips too but was not changed by the op, so it does not count towards the flip rate:
    # changed = {0, 1, 2}; flips among them: input 1 only -> 1/3 (over all four it would be 2/4).
    # Confidence in the clean prediction: 0.6-0.9, 0.3-0.8, 0.6-0.6 -> (-0.3 - 0.5 + 0) / 3.
    report = robustness_report(Y, CLEAN, PERTURBED, np.array([True, True, True, False]))
    assert report["accuracy_clean"] == 1.0
    assert report["accuracy_perturbed"] == 0.5
    assert report["robustness_drop"] == 0.5
    assert report["flip_rate"] == pytest.approx(1 / 3)
    assert report["mean_confidence_change"] == pytest.approx(-0.8 / 3)
    assert report["n_changed"] == 3
    assert report["n"] == 4


def test_report_three_classes_and_integer_mask() -> None:
    y = np.array([2, 0, 1])
    clean = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.3, 0.4, 0.3]])  # 2 0 1: all right
    perturbed = np.array([[0.1, 0.5, 0.4], [0.6, 0.2, 0.2], [0.5, 0.25, 0.25]])  # 1 0 0: 1 of 3
    report = robustness_report(y, clean, perturbed, np.array([1, 1, 1]))
    assert report["accuracy_perturbed"] == pytest.approx(1 / 3)
    assert report["robustness_drop"] == pytest.approx(2 / 3)
    assert report["flip_rate"] == pytest.approx(2 / 3)
    # 0.4-0.7, 0.6-0.5, 0.25-0.4 -> (-0.3 + 0.1 - 0.15) / 3
    assert report["mean_confidence_change"] == pytest.approx(-0.35 / 3)


def test_nothing_changed_gives_nan_flip_rate() -> None:
    report = robustness_report(Y, CLEAN, CLEAN, np.zeros(4, dtype=bool))
    assert math.isnan(report["flip_rate"])
    assert math.isnan(report["mean_confidence_change"])
    assert report["n_changed"] == 0
    assert report["robustness_drop"] == 0.0


def test_robust_model_has_zero_flip_rate() -> None:
    report = robustness_report(Y, CLEAN, CLEAN, np.ones(4, dtype=bool))
    assert report["flip_rate"] == 0.0
    assert report["mean_confidence_change"] == 0.0
    assert report["robustness_drop"] == 0.0


@pytest.mark.parametrize(("args", "match"), [
    ((Y, CLEAN, PERTURBED[:3], np.ones(4, bool)), "proba_perturbed must have the shape"),
    ((Y, CLEAN, PERTURBED, np.ones(3, bool)), "changed"),
    ((Y, CLEAN, PERTURBED, np.full(4, 2)), "changed"),
    ((Y[:3], CLEAN, PERTURBED, np.ones(4, bool)), "y_true"),
    ((Y.astype(float), CLEAN, PERTURBED, np.ones(4, bool)), "y_true"),
    ((Y + 1, CLEAN, PERTURBED, np.ones(4, bool)), "y_true labels"),
    ((Y, CLEAN * 3, PERTURBED, np.ones(4, bool)), "proba_clean rows must sum to 1"),
    ((Y, CLEAN, -PERTURBED, np.ones(4, bool)), "proba_perturbed must hold finite"),
    ((Y, CLEAN[:, 0], PERTURBED, np.ones(4, bool)), "proba_clean must be"),
])
def test_report_validation(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        robustness_report(*args)


ROWS = pd.DataFrame({
    "op": ["typo", "typo", "typo", "synonym", "synonym"],
    "severity": [0.5, 0.1, 1.0, 1.0, 0.5],
    "robustness_drop": [0.10, 0.02, 0.25, 0.30, np.nan],
    "flip_rate": [0.2, 0.05, 0.4, 0.5, np.nan],
})


def test_worst_perturbation_picks_the_max_drop() -> None:
    worst = worst_perturbation(ROWS)
    assert isinstance(worst, pd.Series)
    assert (worst["op"], worst["severity"], worst["robustness_drop"]) == ("synonym", 1.0, 0.30)
    tie = pd.DataFrame({"op": ["a", "b"], "severity": [0.1, 0.2], "robustness_drop": [0.2, 0.2]})
    assert worst_perturbation(tie)["op"] == "a"


def test_worst_perturbation_validation() -> None:
    with pytest.raises(ValueError, match="robustness_drop"):
        worst_perturbation(ROWS.drop(columns="robustness_drop"))
    with pytest.raises(ValueError, match="empty"):
        worst_perturbation(ROWS.iloc[:0])
    with pytest.raises(ValueError, match="finite"):
        worst_perturbation(ROWS.assign(robustness_drop=np.nan))


def test_severity_curve_sorted_by_severity() -> None:
    curve = severity_curve(ROWS, "typo")
    assert curve["severity"].tolist() == [0.1, 0.5, 1.0]
    assert curve["robustness_drop"].tolist() == [0.02, 0.10, 0.25]
    assert curve.index.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="known|has: synonym, typo"):
        severity_curve(ROWS, "casing")


def test_checkpoint_adapter_scores_each_op_on_its_own_inputs(monkeypatch) -> None:
    """The adapter scores every op's changed inputs in one batch; each op must get back exactly the
    predictions of its own texts (a fake model: P(class 1) from the text's length)."""
    from types import SimpleNamespace

    from overfit_lab.diagnostics import checkpoint
    from overfit_lab.diagnostics.perturb import changed_mask, perturb_texts
    from overfit_lab.suite import RobustnessSpec

    texts = ["the food was good", "awful service and rude staff", "fine", "it was really quite dull", "ok"]
    labels = np.array([1, 0, 1, 0, 1])

    def fake_proba(batch: list[str]) -> np.ndarray:
        p = np.array([(len(t) % 7) / 7 for t in batch])
        return np.column_stack([1 - p, p])

    clean = fake_proba(texts)
    spec = RobustnessSpec(ops=["casing", "word_dropout", "char_delete"], severities=[0.3, 0.6], subsample=10)
    ctx = SimpleNamespace(
        suite=SimpleNamespace(diagnostics=SimpleNamespace(robustness=spec), data=SimpleNamespace(seed=0)),
        data=SimpleNamespace(test=pd.DataFrame({"text": texts, "label": labels})),
        test_subsample=lambda size: np.arange(len(texts)), proba=lambda split: clean,
        predict_texts=fake_proba, add_examples=lambda *a, **k: None)
    rows = pd.DataFrame(checkpoint._robustness(ctx))
    for op in spec.ops:
        for severity in spec.severities:
            perturbed = perturb_texts(texts, op, severity, seed=0)
            changed = changed_mask(texts, perturbed)
            scored = np.where(changed[:, None], fake_proba(perturbed), clean)
            expected = robustness_report(labels, clean, scored, changed)
            got = rows[(rows.op == op) & (rows.severity == severity)].set_index("metric")["value"]
            for metric in ("accuracy_perturbed", "robustness_drop", "flip_rate", "mean_confidence_change"):
                assert got[metric] == pytest.approx(expected[metric], nan_ok=True), (op, severity, metric)
