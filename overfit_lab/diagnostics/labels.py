"""Label shift between training and evaluation data, and classes a model (almost) never predicts.

Accuracy and macro-F1 can hide a class the model has given up on. A motivating case: a user's
3-class tweet sentiment data had 16 % negatives in training and 32 % in test. At 150 training
examples the model almost never predicted *negative* (recall 0.00-0.11 across seeds), while
only accuracy and macro-F1 were reported: the shortage of negatives in training (label shift)
and the collapse of the class were both invisible. ``labels`` holds integer classes ``0..K-1``:

* ``label_distribution``: the share of each class, ``π_k = n_k / n``;
* ``label_shift``: total variation distance ``½ Σ_k |π_k - π'_k|`` between the training and the
  evaluation label distributions, with the p-value of Pearson's chi-square test of homogeneity;
* ``per_class_recall``: ``recall_k = #{ŷ = k, y = k} / #{y = k}`` (NaN for an absent class);
* ``collapsed_classes``: the classes with enough examples that are (almost) never predicted: low
  recall, or predicted far less often than they occur.

References
----------
Lipton, Wang & Smola, "Detecting and Correcting for Label Shift with Black Box Predictors",
ICML 2018. Pearson, "On the criterion that a given system of deviations ...", Phil. Mag. 50
(1900). Agresti, "Categorical Data Analysis", 3rd ed., Wiley 2013, section 3.2.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2_contingency

from ._validation import check_class_labels, check_positive_int, check_same_length

__all__ = [
    "collapsed_classes",
    "label_distribution",
    "label_shift",
    "per_class_recall",
]


def _check_labels(labels: np.ndarray, n_classes: int, name: str) -> np.ndarray:
    (labels,) = check_same_length(**{name: labels})
    return check_class_labels(labels, n=labels.size, n_classes=n_classes, name=name, rows_of=name)


def _check_predictions(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    n_classes = check_positive_int(n_classes, "n_classes")
    labels = _check_labels(labels, n_classes, "labels")
    predictions = check_class_labels(predictions, n=labels.size, n_classes=n_classes, name="predictions",
                                     rows_of="labels")
    return labels, predictions, n_classes


def label_distribution(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of each class, ``π_k = n_k / n`` for ``k = 0..K-1``; the shares sum to 1.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Integer labels in ``0..n_classes-1``, at least one.
    n_classes : int
        Number of classes ``K`` (absent classes get share 0).

    Returns
    -------
    ndarray of shape (n_classes,)
        The shares.

    Examples
    --------
    >>> label_distribution(np.array([0, 2, 2, 2]), 3).tolist()
    [0.25, 0.0, 0.75]
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    labels = _check_labels(labels, n_classes, "labels")
    return np.bincount(labels, minlength=n_classes) / labels.size


def label_shift(train_labels: np.ndarray, eval_labels: np.ndarray, n_classes: int) -> tuple[float, float]:
    """``(tvd, p_value)``: how far apart the training and evaluation label distributions are.

    ``tvd = ½ Σ_k |π_k - π'_k|`` is the total variation distance between the training shares
    ``π`` and the evaluation shares ``π'`` (:func:`label_distribution`), in ``[0, 1]``: the largest
    difference, over sets of classes, between the two probabilities of falling in the set.

    ``p_value`` is that of Pearson's chi-square test of homogeneity on the ``2 x K`` table of
    counts (training row, evaluation row), ``X² = Σ (O - E)² / E`` with ``E`` the counts expected
    if both samples came from one distribution, on ``K - 1`` degrees of freedom: small when the
    label distributions differ. Computed by ``scipy.stats.chi2_contingency``, with its default
    continuity correction: none for ``K > 2`` classes and Yates' correction for ``K = 2`` (a 2x2
    table, 1 degree of freedom), which makes that test conservative. Classes absent from both
    samples are dropped first; with fewer than 2 classes left the distributions cannot differ
    and ``p_value = 1.0``. The approximation wants expected counts of about 5 or more per cell.

    Parameters
    ----------
    train_labels, eval_labels : ndarray of shape (n,) and (m,)
        Integer labels in ``0..n_classes-1`` of the training and the evaluation examples.
    n_classes : int
        Number of classes ``K``.

    References
    ----------
    Pearson (1900); Yates, "Contingency tables involving small numbers and the χ² test", JRSS
    Suppl. 1(2), 1934; Agresti, "Categorical Data Analysis" (2013), section 3.2.

    Examples
    --------
    The motivating case: 16 % negatives in 500 training tweets, 32 % in 500 test tweets.

    >>> train = np.repeat([0, 1, 2], [80, 220, 200])
    >>> test = np.repeat([0, 1, 2], [160, 170, 170])
    >>> tvd, p = label_shift(train, test, 3)
    >>> round(tvd, 2), p < 1e-6
    (0.16, True)
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    train = _check_labels(train_labels, n_classes, "train_labels")
    evaluation = _check_labels(eval_labels, n_classes, "eval_labels")
    table = np.stack([np.bincount(train, minlength=n_classes), np.bincount(evaluation, minlength=n_classes)])
    tvd = 0.5 * float(np.abs(table[0] / train.size - table[1] / evaluation.size).sum())
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return tvd, 1.0
    # correction=True is scipy's default and only applies (Yates) when dof == 1, i.e. 2 classes
    return tvd, float(chi2_contingency(table, correction=table.shape[1] == 2).pvalue)


def per_class_recall(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of each class, ``recall_k = #{i: ŷ_i = k, y_i = k} / #{i: y_i = k}``.

    NaN for a class absent from ``labels`` (scikit-learn's ``recall_score(average=None)`` reports
    0 with a warning there). Elsewhere it equals scikit-learn's per-class recall.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        True integer labels in ``0..n_classes-1``.
    predictions : ndarray of shape (n,)
        Predicted integer labels in ``0..n_classes-1``.
    n_classes : int
        Number of classes ``K``.

    Returns
    -------
    ndarray of shape (n_classes,)
        The recalls.

    Examples
    --------
    >>> per_class_recall(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3).tolist()
    [0.5, 1.0, nan]
    """
    labels, predictions, n_classes = _check_predictions(labels, predictions, n_classes)
    support = np.bincount(labels, minlength=n_classes)
    hits = np.bincount(labels[labels == predictions], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / support, np.nan)


def collapsed_classes(
    labels: np.ndarray,
    predictions: np.ndarray,
    n_classes: int,
    *,
    recall_threshold: float = 0.1,
    share_ratio: float = 0.25,
    min_count: int = 10,
) -> np.ndarray:
    """Which classes the model (almost) never predicts.

    Class ``k`` is collapsed when it has at least ``min_count`` true examples and

    ``recall_k < recall_threshold``  or  ``π̂_k < share_ratio · π_k``,

    with ``π_k`` its share of the labels and ``π̂_k`` its share of the predictions. Both, because
    each misses a case of the other: a low recall alone also fits a hard class that the model
    predicts often but on the wrong examples, and a class can keep a modest recall (the few
    predictions it gets are right) while the model predicts it a fraction of how often it occurs,
    the signature of a class given up on (typically one rarer in training than in evaluation; see
    :func:`label_shift`). Classes with fewer than ``min_count`` examples are never flagged: their
    recall is too noisy.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        True integer labels in ``0..n_classes-1``.
    predictions : ndarray of shape (n,)
        Predicted integer labels in ``0..n_classes-1``.
    n_classes : int
        Number of classes ``K``.
    recall_threshold : float, default 0.1
        Recall below which a class is collapsed, in ``[0, 1]``.
    share_ratio : float, default 0.25
        A class predicted less than this fraction of its true share is collapsed, ``>= 0``.
    min_count : int, default 10
        Fewest true examples for a class to be judged.

    Returns
    -------
    ndarray of bool, shape (n_classes,)
        True for a collapsed class.

    Examples
    --------
    Negatives are 32 % of the labels but 2 % of the predictions:

    >>> labels = np.repeat([0, 1, 2], [32, 34, 34])
    >>> predictions = np.repeat([0, 1, 1, 2], [2, 30, 34, 34])  # 30 negatives called neutral
    >>> collapsed_classes(labels, predictions, 3).tolist()
    [True, False, False]
    """
    labels, predictions, n_classes = _check_predictions(labels, predictions, n_classes)
    recall_threshold = _check_fraction(recall_threshold, "recall_threshold", upper=1.0)
    share_ratio = _check_fraction(share_ratio, "share_ratio", upper=np.inf)
    min_count = check_positive_int(min_count, "min_count")
    support = np.bincount(labels, minlength=n_classes)
    recall = per_class_recall(labels, predictions, n_classes)
    true_share = support / labels.size
    predicted_share = np.bincount(predictions, minlength=n_classes) / labels.size
    rarely_right = np.nan_to_num(recall, nan=1.0) < recall_threshold
    rarely_predicted = predicted_share < share_ratio * true_share
    return (support >= min_count) & (rarely_right | rarely_predicted)


def _check_fraction(value: float, name: str, *, upper: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, {upper}]; got {value!r}") from None
    if not 0 <= number <= upper:
        raise ValueError(f"{name} must be in [0, {upper}]; got {value}")
    return number
