"""Calibration metrics against hand computations and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from overfit_lab.diagnostics.calibration import (
    brier_score_loss_multiclass,
    expected_calibration_error,
    mean_confidence_wrong,
    negative_log_likelihood,
    reliability_diagram,
)


def _random_proba(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    return rng.integers(k, size=n), proba


# --- expected calibration error -----------------------------------------------------------------


def test_ece_hand_case_two_bins():
    """4 examples, n_bins = 4, confidences 0.9, 0.8 (bin [0.75, 1]) and 0.6, 0.65 (bin [0.5, 0.75)).

    High bin: predictions 0, 0 against labels 0, 1 -> accuracy 0.5, mean confidence 0.85, gap 0.35.
    Low bin: predictions 1, 1 against labels 1, 1 -> accuracy 1, mean confidence 0.625, gap 0.375.
    ECE = 2/4 * 0.35 + 2/4 * 0.375 = 0.3625.
    """
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.35, 0.65]])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(y, proba, n_bins=4) == pytest.approx(0.3625)
    table = reliability_diagram(y, proba, n_bins=4)
    assert table["count"].tolist() == [0, 0, 2, 2]
    assert table["accuracy"].tolist()[2:] == pytest.approx([1.0, 0.5])
    assert table["mean_confidence"].tolist()[2:] == pytest.approx([0.625, 0.85])


def test_ece_is_zero_for_calibrated_bins():
    """Confidence 0.75 with 3 of 4 right, and confidence 0.5 with 1 of 2 right."""
    proba = np.array([[0.25, 0.75]] * 4 + [[0.5, 0.5]] * 2)
    y = np.array([1, 1, 1, 0, 0, 1])
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(0.0, abs=1e-12)


def test_ece_single_bin_is_accuracy_minus_mean_confidence():
    y, proba = _random_proba(200, 3, seed=0)
    accuracy = (proba.argmax(axis=1) == y).mean()
    expected = abs(accuracy - proba.max(axis=1).mean())
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(expected)


def test_ece_matches_reliability_diagram():
    y, proba = _random_proba(500, 4, seed=1)
    table = reliability_diagram(y, proba, n_bins=15)
    assert len(table) == 15 and table["count"].sum() == 500
    assert table["bin_low"].iloc[0] == 0 and table["bin_high"].iloc[-1] == 1
    assert np.allclose(table["bin_high"] - table["bin_low"], 1 / 15)
    empty = table["count"] == 0
    assert empty.any()  # top-class confidence >= 1/4, so the lowest bins are empty
    assert table.loc[empty, ["mean_confidence", "accuracy"]].isna().all().all()
    gaps = (table["accuracy"] - table["mean_confidence"]).abs()
    expected = float(np.nansum(table["count"] / 500 * gaps))
    assert expected_calibration_error(y, proba, n_bins=15) == pytest.approx(expected)


def test_bin_edge_convention():
    """Bin min(floor(c * n_bins), n_bins - 1): an edge goes up, confidence 1 to the last bin."""
    table = reliability_diagram(np.array([0, 0]), np.array([[0.5, 0.5], [1.0, 0.0]]), n_bins=2)
    assert table["count"].tolist() == [0, 2]
    table = reliability_diagram(np.array([0]), np.array([[0.5, 0.5]]), n_bins=4)
    assert table["count"].tolist() == [0, 0, 1, 0]


# --- Brier, NLL, confidence of mistakes ---------------------------------------------------------


def test_brier_binary_is_twice_sklearn():
    y, proba = _random_proba(100, 2, seed=2)
    assert brier_score_loss_multiclass(y, proba) == pytest.approx(2 * brier_score_loss(y, proba[:, 1]))


def test_brier_three_classes_by_hand():
    """Row 1 (label 0): 0.3² + 0.2² + 0.1² = 0.14; row 2 (label 2): 0.2² + 0.3² + 0.5² = 0.38."""
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    assert brier_score_loss_multiclass(np.array([0, 2]), proba) == pytest.approx(0.26)
    assert brier_score_loss_multiclass(np.array([0]), np.array([[1.0, 0.0, 0.0]])) == 0
    assert brier_score_loss_multiclass(np.array([1]), np.array([[1.0, 0.0, 0.0]])) == 2


def test_nll_matches_sklearn_log_loss():
    y, proba = _random_proba(300, 5, seed=3)
    assert negative_log_likelihood(y, proba) == pytest.approx(log_loss(y, proba, labels=range(5)))


def test_nll_floors_zero_probability_at_eps():
    proba = np.array([[1.0, 0.0], [0.5, 0.5]])
    expected = (-math.log(1e-6) - math.log(0.5)) / 2
    assert negative_log_likelihood(np.array([1, 0]), proba, eps=1e-6) == pytest.approx(expected)


def test_mean_confidence_wrong_by_hand():
    """Mistakes are rows 0 (0.9), 2 (0.6) and 3 (0.8): mean 2.3 / 3."""
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    assert mean_confidence_wrong(np.array([1, 1, 1, 0]), proba) == pytest.approx(2.3 / 3)
    assert math.isnan(mean_confidence_wrong(np.array([0, 1]), np.array([[0.9, 0.1], [0.3, 0.7]])))


# --- validation ---------------------------------------------------------------------------------

METRICS = [expected_calibration_error, brier_score_loss_multiclass, negative_log_likelihood,
           mean_confidence_wrong, reliability_diagram]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    ("y", "proba", "argument"),
    [
        (np.array([0, 1, 0]), np.array([[0.5, 0.5], [0.2, 0.8]]), "y_true"),  # length mismatch
        (np.array([0, 1]), np.array([[0.5, 0.6], [0.2, 0.8]]), "proba"),  # row sums to 1.1
        (np.array([0, 1]), np.array([[1.2, -0.2], [0.2, 0.8]]), "proba"),  # not probabilities
        (np.array([0]), np.array([0.5, 0.5]), "proba"),  # 1-D
        (np.array([0, 2]), np.array([[0.5, 0.5], [0.2, 0.8]]), "y_true"),  # label out of range
        (np.array([0.0, 1.0]), np.array([[0.5, 0.5], [0.2, 0.8]]), "y_true"),  # float labels
    ],
)
def test_invalid_inputs_name_the_argument(metric, y, proba, argument):
    with pytest.raises(ValueError, match=argument):
        metric(y, proba)


@pytest.mark.parametrize("n_bins", [0, -3, 2.5])
def test_invalid_n_bins(n_bins):
    y, proba = np.array([0, 1]), np.array([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(y, proba, n_bins=n_bins)
    with pytest.raises(ValueError, match="n_bins"):
        reliability_diagram(y, proba, n_bins=n_bins)


def test_invalid_eps():
    with pytest.raises(ValueError, match="eps"):
        negative_log_likelihood(np.array([0]), np.array([[0.5, 0.5]]), eps=0)
