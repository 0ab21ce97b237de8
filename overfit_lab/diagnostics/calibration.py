"""Calibration of predicted probabilities: does a confidence of 0.9 mean 90 % correct?

Overfit fine-tuned classifiers often keep their accuracy while becoming overconfident, which
shows up here before it shows up in accuracy. ``y_true`` holds integer labels ``0..K-1`` and
``proba`` the ``(n, K)`` predicted probabilities (rows sum to 1). The prediction is
``ŷ_i = argmax_k p_ik`` (the first class on ties) and its confidence ``c_i = max_k p_ik``.

* ``expected_calibration_error``: ``Σ_b (|B_b|/n) |acc(B_b) - conf(B_b)|`` over equal-width
  confidence bins (lower is better);
* ``brier_score_loss_multiclass``: ``(1/n) Σ_i Σ_k (p_ik - 1[y_i = k])²`` (lower is better);
* ``negative_log_likelihood``: ``-(1/n) Σ_i log p_{i,y_i}`` (lower is better);
* ``mean_confidence_wrong``: mean ``c_i`` over misclassified examples (lower is better);
* ``reliability_diagram``: the per-bin table behind the ECE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._validation import (
    ROW_SUM_TOLERANCE,
    check_class_labels,
    check_open_unit_interval,
    check_positive_int,
    check_proba,
)

__all__ = [
    "ROW_SUM_TOLERANCE",
    "brier_score_loss_multiclass",
    "expected_calibration_error",
    "mean_confidence_wrong",
    "negative_log_likelihood",
    "reliability_diagram",
]


def _check_y_proba(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(y_true, proba)``: integer labels in ``0..K-1`` and matching probabilities."""
    proba = check_proba(proba, name="proba", atol=ROW_SUM_TOLERANCE)
    return check_class_labels(y_true, n=len(proba), n_classes=proba.shape[1], name="y_true"), proba


def reliability_diagram(y_true: np.ndarray, proba: np.ndarray, *, n_bins: int = 15) -> pd.DataFrame:
    """Accuracy against mean confidence in equal-width confidence bins.

    Bin ``b = 0..n_bins-1`` covers ``[b/M, (b+1)/M)`` with ``M = n_bins``, the last bin also
    holds ``c = 1``: confidence ``c`` goes to bin ``min(floor(c·M), M-1)``. (Guo et al. use
    right-closed bins ``((b-1)/M, b/M]``; the two differ only for a confidence exactly on an
    edge.) With ``K`` classes ``c >= 1/K``, so the bins below ``1/K`` are always empty.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Integer labels in ``0..K-1``.
    proba : ndarray of shape (n, K)
        Predicted probabilities; rows sum to 1.
    n_bins : int, default 15
        Number of equal-width bins over ``[0, 1]``.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin_low``, ``bin_high``, ``count``, ``mean_confidence`` and
        ``accuracy`` (both NaN for an empty bin).

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> reliability_diagram(np.array([0, 1, 1]), proba, n_bins=2)["count"].tolist()
    [0, 3]
    """
    y_true, proba = _check_y_proba(y_true, proba)
    n_bins = check_positive_int(n_bins, "n_bins")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.minimum(np.floor(confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({
        "bin_low": edges[:-1],
        "bin_high": edges[1:],
        "count": count,
        "mean_confidence": mean_confidence,
        "accuracy": accuracy,
    })


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, *, n_bins: int = 15) -> float:
    """Expected calibration error (ECE) of the top-class confidence.

    ``ECE = Σ_b (|B_b| / n) |acc(B_b) - conf(B_b)|``, where ``B_b`` are the examples whose
    confidence falls in bin ``b`` (binning of :func:`reliability_diagram`), ``acc`` their
    accuracy and ``conf`` their mean confidence. 0 is perfect calibration; lower is better.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Integer labels in ``0..K-1``.
    proba : ndarray of shape (n, K)
        Predicted probabilities; rows sum to 1.
    n_bins : int, default 15
        Number of equal-width bins over ``[0, 1]`` (15 as in Guo et al.).

    References
    ----------
    Naeini, Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian
    Binning", AAAI 2015. Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural
    Networks", ICML 2017.

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(expected_calibration_error(np.array([0, 0, 0, 1]), proba, n_bins=4), 6)
    0.1
    """
    table = reliability_diagram(y_true, proba, n_bins=n_bins)
    filled = table[table["count"] > 0]
    weights = filled["count"] / table["count"].sum()
    return float((weights * (filled["accuracy"] - filled["mean_confidence"]).abs()).sum())


def brier_score_loss_multiclass(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Multiclass Brier score, ``(1/n) Σ_i Σ_k (p_ik - 1[y_i = k])²``, in ``[0, 2]``.

    Lower is better. For ``K = 2`` it is twice scikit-learn's binary ``brier_score_loss`` on
    the positive class, since both classes contribute the same squared error.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Integer labels in ``0..K-1``.
    proba : ndarray of shape (n, K)
        Predicted probabilities; rows sum to 1.

    References
    ----------
    Brier, "Verification of Forecasts Expressed in Terms of Probability", Monthly Weather
    Review 78(1), 1950.

    Examples
    --------
    >>> round(brier_score_loss_multiclass(np.array([0]), np.array([[0.7, 0.2, 0.1]])), 6)
    0.14
    """
    y_true, proba = _check_y_proba(y_true, proba)
    onehot = np.eye(proba.shape[1])[y_true]
    return float(((proba - onehot) ** 2).sum(axis=1).mean())


def negative_log_likelihood(y_true: np.ndarray, proba: np.ndarray, *, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true labels, ``-(1/n) Σ_i log max(p_{i,y_i}, eps)``.

    Natural log; lower is better. Equals scikit-learn's ``log_loss`` (up to its clipping).

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Integer labels in ``0..K-1``.
    proba : ndarray of shape (n, K)
        Predicted probabilities; rows sum to 1.
    eps : float, default 1e-12
        Floor on the probability of the true class, in ``(0, 1)``, so a confident mistake
        costs ``-log(eps)`` instead of infinity.

    Examples
    --------
    >>> round(negative_log_likelihood(np.array([1]), np.array([[0.5, 0.5]])), 6)
    0.693147
    """
    eps = check_open_unit_interval(eps, "eps")
    y_true, proba = _check_y_proba(y_true, proba)
    p_true = proba[np.arange(len(y_true)), y_true]
    return float(-np.log(np.maximum(p_true, eps)).mean())


def mean_confidence_wrong(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean top-class confidence ``max_k p_ik`` over the misclassified examples.

    Lower is better: a high value means the model is confidently wrong. NaN when every
    example is classified correctly.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Integer labels in ``0..K-1``.
    proba : ndarray of shape (n, K)
        Predicted probabilities; rows sum to 1.

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> round(mean_confidence_wrong(np.array([1, 1, 1]), proba), 6)
    0.75
    """
    y_true, proba = _check_y_proba(y_true, proba)
    wrong = proba.argmax(axis=1) != y_true
    return float(proba.max(axis=1)[wrong].mean()) if wrong.any() else float("nan")
