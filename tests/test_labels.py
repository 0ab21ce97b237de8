"""Label shift and class collapse against hand computations, scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.metrics import recall_score

from overfit_lab.diagnostics.labels import (
    collapsed_classes,
    label_distribution,
    label_shift,
    per_class_recall,
)


def test_label_distribution_by_hand():
    shares = label_distribution(np.array([0, 1, 1, 3, 3, 3, 3, 3]), 4)
    np.testing.assert_allclose(shares, [1 / 8, 2 / 8, 0.0, 5 / 8])
    assert shares.sum() == pytest.approx(1.0)


def test_label_shift_three_classes_against_a_hand_chi_square():
    """The motivating shift: 16 % negatives in 500 training rows, 32 % in 500 test rows."""
    train = np.repeat([0, 1, 2], [80, 220, 200])
    test = np.repeat([0, 1, 2], [160, 170, 170])
    tvd, p = label_shift(train, test, 3)
    # shares (.16, .44, .40) and (.32, .34, .34): TVD = (.16 + .10 + .06) / 2
    assert tvd == pytest.approx(0.16)
    observed = np.array([[80, 220, 200], [160, 170, 170]], dtype=float)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0) / observed.sum()
    statistic = ((observed - expected) ** 2 / expected).sum()  # no continuity correction for K > 2
    assert p == pytest.approx(chi2.sf(statistic, df=2), rel=1e-9)
    assert p < 1e-6


def test_label_shift_two_classes_uses_yates_correction():
    train, test = np.repeat([0, 1], [30, 70]), np.repeat([0, 1], [45, 55])
    tvd, p = label_shift(train, test, 2)
    assert tvd == pytest.approx(0.15)
    observed = np.array([[30, 70], [45, 55]], dtype=float)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0) / observed.sum()
    yates = ((np.maximum(np.abs(observed - expected) - 0.5, 0)) ** 2 / expected).sum()
    assert p == pytest.approx(chi2.sf(yates, df=1), rel=1e-9)


def test_label_shift_drops_classes_absent_from_both_and_degenerate_cases():
    train, test = np.repeat([0, 2], [30, 70]), np.repeat([0, 2], [45, 55])
    # class 1 (absent from both) and 3 dropped: the same 2x2 test as without them
    assert label_shift(train, test, 4) == pytest.approx(label_shift(train // 2, test // 2, 2))
    assert label_shift(np.zeros(5, dtype=int), np.zeros(9, dtype=int), 3) == (0.0, 1.0)
    tvd, p = label_shift(np.array([0, 1] * 50), np.array([0, 1] * 50), 2)
    assert tvd == 0.0 and p == pytest.approx(1.0)


def test_per_class_recall_matches_sklearn_and_is_nan_for_absent_classes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    predictions = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 4, size=300))
    recall = per_class_recall(labels, predictions, 4)
    np.testing.assert_allclose(recall[:3], recall_score(labels, predictions, labels=[0, 1, 2], average=None))
    assert np.isnan(recall[3])


def test_collapsed_classes_on_the_motivating_case():
    """Negatives are 32 % of 1,000 test rows but 2 % of the predictions (recall 0.0625)."""
    labels = np.repeat([0, 1, 2], [320, 340, 340])
    predictions = labels.copy()
    negatives = np.flatnonzero(labels == 0)
    predictions[negatives[20:170]] = 1
    predictions[negatives[170:]] = 2
    assert (predictions == 0).mean() == pytest.approx(0.02)
    assert per_class_recall(labels, predictions, 3)[0] == pytest.approx(0.0625)
    assert collapsed_classes(labels, predictions, 3).tolist() == [True, False, False]


def test_collapsed_classes_rules_separately():
    labels = np.repeat([0, 1, 2, 3], [200, 400, 392, 8])
    predictions = labels.copy()
    # class 0: recall 0.5 but predicted at its share (a hard class, not collapsed)
    idx0 = np.flatnonzero(labels == 0)
    predictions[idx0[:100]] = 1
    predictions[np.flatnonzero(labels == 1)[:100]] = 0
    # class 2: recall 0.15 >= 0.1, yet predicted 0.059 of the time, below 0.25 * 0.392 = 0.098
    idx2 = np.flatnonzero(labels == 2)
    predictions[idx2[59:]] = 1
    # class 3: recall 0 but only 8 examples (< min_count = 10)
    predictions[labels == 3] = 1
    recall = per_class_recall(labels, predictions, 4)
    np.testing.assert_allclose(recall, [0.5, 0.75, 59 / 392, 0.0])
    assert collapsed_classes(labels, predictions, 4).tolist() == [False, False, True, False]
    assert collapsed_classes(labels, predictions, 4, min_count=5).tolist() == [False, False, True, True]
    assert collapsed_classes(labels, predictions, 4, share_ratio=0.0).tolist() == [False, False, False, False]
    assert collapsed_classes(labels, predictions, 4, recall_threshold=0.6, share_ratio=0.0,
                             ).tolist() == [True, False, True, False]


Y = np.array([0, 1])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: label_distribution(np.array([0, 3]), 3), "labels"),
    (lambda: label_distribution(np.array([0.0, 1.0]), 2), "labels"),
    (lambda: label_distribution(np.array([], dtype=int), 2), "labels"),
    (lambda: label_distribution(np.array([0, 1]), 0), "n_classes"),
    (lambda: label_shift(np.array([0, 1]), np.array([0, 5]), 2), "eval_labels"),
    (lambda: label_shift(np.array([[0, 1]]), np.array([0, 1]), 2), "train_labels"),
    (lambda: per_class_recall(np.array([0, 1]), np.array([0, 1, 1]), 2), "predictions"),
    (lambda: per_class_recall(np.array([0, 1]), np.array([0, 2]), 2), "predictions"),
    (lambda: collapsed_classes(Y, Y, 2, recall_threshold=1.5), "recall_threshold"),
    (lambda: collapsed_classes(Y, Y, 2, share_ratio=-1), "share_ratio"),
    (lambda: collapsed_classes(Y, Y, 2, min_count=0), "min_count"),
])
def test_validation_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
