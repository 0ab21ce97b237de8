"""Between-group differences: demographic parity and equalized odds, with intervals.

* ``demographic_parity`` / ``demographic_parity_difference``: ``max_g P(ŷ=1 | g) - min_g
  P(ŷ=1 | g)`` with Newcombe's interval for the two groups it names;
* ``equalized_odds`` / ``equalized_odds_difference``: the larger of the TPR and FPR
  between-group differences, with a Bonferroni pair of Newcombe intervals.

Public through :mod:`overfit_lab.diagnostics.bias`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._bias_groups import MIN_GROUP_SIZE, _rate_counts, newcombe_interval
from ._validation import check_open_unit_interval, check_positive_int, check_same_length


@dataclass(frozen=True)
class GroupDifference:
    """A between-group difference of one rate, the two groups it names and its interval.

    Attributes
    ----------
    difference : float
        ``max_g r_g - min_g r_g`` over the groups large enough; NaN with fewer than two.
    low, high : float
        Interval for the absolute difference between ``high_group`` and ``low_group``; NaN
        when not asked for (``confidence=None``) or when ``difference`` is NaN.
    rate : str
        The rate compared: ``"selection_rate"``, ``"true_positive_rate"`` or
        ``"false_positive_rate"`` (for equalized odds, the component with the larger spread).
    high_group, low_group : object or None
        The groups with the highest and lowest rate (None when ``difference`` is NaN).
    high_counts, low_counts : (int, int)
        ``(hits, denominator)`` of those two groups, for example ``(56, 70)``.
    too_small : tuple of (rate, group, denominator)
        The groups left out of a rate because its denominator was below ``min_group_size``.
    """

    difference: float
    low: float
    high: float
    rate: str
    high_group: object = None
    low_group: object = None
    high_counts: tuple[int, int] = (0, 0)
    low_counts: tuple[int, int] = (0, 0)
    too_small: tuple[tuple[str, object, int], ...] = ()


def _spread(
    names: list, hits: np.ndarray, n: np.ndarray, rate: str, min_group_size: int, confidence: float | None
) -> GroupDifference:
    """Largest minus smallest rate over the large-enough groups, with the named pair's interval."""
    large = n >= min_group_size
    too_small = tuple((rate, names[i], int(n[i])) for i in np.flatnonzero(~large))
    if large.sum() < 2:
        return GroupDifference(float("nan"), float("nan"), float("nan"), rate, too_small=too_small)
    idx = np.flatnonzero(large)
    order = idx[np.argsort(hits[idx] / n[idx], kind="stable")]
    lo, hi = order[0], order[-1]
    difference = float(hits[hi] / n[hi] - hits[lo] / n[lo])
    low = high = float("nan")
    if confidence is not None:
        # signed interval of p_hi - p_lo, then of its absolute value (the signed one may reach below 0)
        _, signed_low, signed_high = newcombe_interval(int(hits[hi]), int(n[hi]), int(hits[lo]), int(n[lo]),
                                                       confidence=confidence)
        low, high = max(signed_low, 0.0), max(signed_high, -signed_low)
    return GroupDifference(difference, low, high, rate, names[hi], names[lo], (int(hits[hi]), int(n[hi])),
                           (int(hits[lo]), int(n[lo])), too_small)


def demographic_parity(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    positive_label: object = 1,
    min_group_size: int = MIN_GROUP_SIZE,
    confidence: float | None = 0.95,
) -> GroupDifference:
    """Demographic parity difference, the two groups it names and an interval for it.

    ``difference = max_g P(ŷ=1 | g) - min_g P(ŷ=1 | g)`` over the groups with at least
    ``min_group_size`` examples (NaN when fewer than two remain); lower is better, 0 is
    demographic parity. ``y_true`` is only validated, not used.

    The interval is for ``|P(ŷ=1 | h) - P(ŷ=1 | l)|``, ``h`` and ``l`` the groups with the
    highest and lowest selection rate at the point estimate: Newcombe's hybrid score interval
    ``[a, b]`` (:func:`newcombe_interval`) of the signed difference ``p_h - p_l`` becomes
    ``[0, max(|a|, |b|)]`` when it holds 0, else ``[min(|a|, |b|), max(|a|, |b|)]``, so it
    covers the absolute difference whenever Newcombe's covers the signed one. Unlike a
    percentile bootstrap of ``max - min`` (never below the observed spread's resamples, so it
    cannot reach 0 when the rates are equal), it holds 0 about ``confidence`` of the time at
    a true difference of 0.

    With two groups the coverage is Newcombe's (near nominal; a test simulates it). With more
    than two the pair is chosen by the data: at a true difference of 0 the pair with the
    largest observed gap among ``k (k - 1) / 2`` is compared, and the interval undercovers;
    it also speaks for the named pair, which need not be the pair with the largest true gap.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted labels.
    groups : ndarray of shape (n,)
        Group label of each example.
    positive_label : default 1
        Label treated as the positive outcome.
    min_group_size : int, default MIN_GROUP_SIZE
        Least number of examples for a group to be compared.
    confidence : float or None, default 0.95
        Coverage of the interval; None computes no interval.

    References
    ----------
    Calders & Verwer, "Three naive Bayes approaches for discrimination-free classification",
    DMKD 21 (2010); Newcombe, Statist. Med. 17, 873-890 (1998), method 10.

    Examples
    --------
    >>> g = np.repeat(["f", "m"], 20)
    >>> pred = np.r_[np.ones(15), np.zeros(5), np.ones(5), np.zeros(15)]
    >>> r = demographic_parity(pred, pred, g)
    >>> r.difference, r.high_group, r.low_group, r.high_counts, r.low_counts
    (0.5, 'f', 'm', (15, 20), (5, 20))
    >>> round(r.low, 3), round(r.high, 3)
    (0.191, 0.695)
    """
    y_true, y_pred, groups = check_same_length(y_true=y_true, y_pred=y_pred, groups=groups)
    min_group_size = check_positive_int(min_group_size, "min_group_size")
    if confidence is not None:
        confidence = check_open_unit_interval(confidence, "confidence")
    names, counts = _rate_counts(y_true, y_pred, groups, positive_label)
    return _spread(names, *counts["selection_rate"], "selection_rate", min_group_size, confidence)


def equalized_odds(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    positive_label: object = 1,
    min_group_size: int = MIN_GROUP_SIZE,
    confidence: float | None = 0.95,
) -> GroupDifference:
    """Equalized odds difference, the component and groups it names and an interval for it.

    ``difference = max(ΔTPR, ΔFPR)`` with ``ΔTPR = max_g TPR_g - min_g TPR_g`` over the groups
    with at least ``min_group_size`` positives and ``ΔFPR`` likewise over those with at least
    ``min_group_size`` negatives (fairlearn's ``agg="worst_case"``; Hardt, Price & Srebro
    2016). NaN when either component has fewer than two such groups. ``rate`` names the
    component with the larger spread (TPR on a tie), and the groups are that component's.

    The interval: each component's named pair gets the absolute-difference interval of
    :func:`demographic_parity` at level ``1 - (1 - confidence) / 2`` (Bonferroni, because which
    component is the maximum is chosen by the data), ``[a_T, b_T]`` and ``[a_F, b_F]``; then
    ``[max(a_T, a_F), max(b_T, b_F)]``. Whenever both cover their components (probability at
    least ``confidence``), it covers the larger of the two, so coverage stays at least
    ``confidence`` when both true differences are 0. The same undercoverage as for demographic
    parity applies with more than two groups.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted labels.
    groups : ndarray of shape (n,)
        Group label of each example.
    positive_label : default 1
        Label treated as the positive outcome.
    min_group_size : int, default MIN_GROUP_SIZE
        Least number of positives (for the TPR) or negatives (for the FPR) for a group to be
        compared.
    confidence : float or None, default 0.95
        Joint coverage of the interval; None computes no interval.

    Examples
    --------
    A group with a single positive is too small for the TPR, so no difference is claimed:

    >>> y = np.r_[np.ones(30), np.zeros(30), np.ones(1), np.zeros(59)]
    >>> g = np.repeat(["f", "m"], 60)
    >>> r = equalized_odds(y, y, g)
    >>> r.difference, r.too_small
    (nan, (('true_positive_rate', 'm', 1),))
    """
    y_true, y_pred, groups = check_same_length(y_true=y_true, y_pred=y_pred, groups=groups)
    min_group_size = check_positive_int(min_group_size, "min_group_size")
    each = None if confidence is None else 1 - (1 - check_open_unit_interval(confidence, "confidence")) / 2
    names, counts = _rate_counts(y_true, y_pred, groups, positive_label)
    tpr, fpr = (_spread(names, *counts[rate], rate, min_group_size, each)
                for rate in ("true_positive_rate", "false_positive_rate"))
    too_small = tpr.too_small + fpr.too_small
    undefined = [c for c in (tpr, fpr) if np.isnan(c.difference)]
    if undefined:
        nan = float("nan")
        return GroupDifference(nan, nan, nan, undefined[0].rate, too_small=too_small)
    chosen = tpr if tpr.difference >= fpr.difference else fpr
    low = high = float("nan")
    if confidence is not None:
        low, high = max(tpr.low, fpr.low), max(tpr.high, fpr.high)
    return GroupDifference(chosen.difference, low, high, chosen.rate, chosen.high_group, chosen.low_group,
                           chosen.high_counts, chosen.low_counts, too_small)


def demographic_parity_difference(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    positive_label: object = 1,
    min_group_size: int = MIN_GROUP_SIZE,
) -> float:
    """Largest between-group difference in selection rate, ``max_g P(ŷ=1|g) - min_g P(ŷ=1|g)``.

    Over the groups with at least ``min_group_size`` examples, NaN when fewer than two; the
    point estimate of :func:`demographic_parity`. Lower is better (0 = demographic parity).
    With every group large enough it equals fairlearn's ``demographic_parity_difference`` on
    ``y == positive_label``.

    Examples
    --------
    >>> g = np.array(["f", "f", "m", "m"])
    >>> demographic_parity_difference(np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0]), g, min_group_size=1)
    0.5
    """
    return demographic_parity(y_true, y_pred, groups, positive_label=positive_label,
                              min_group_size=min_group_size, confidence=None).difference


def equalized_odds_difference(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    positive_label: object = 1,
    min_group_size: int = MIN_GROUP_SIZE,
) -> float:
    """Larger of the between-group TPR and FPR differences (fairlearn ``agg="worst_case"``).

    ``max(max_g TPR_g - min_g TPR_g, max_g FPR_g - min_g FPR_g)`` over the groups with at least
    ``min_group_size`` positives (TPR) or negatives (FPR), NaN when a component has fewer than
    two; the point estimate of :func:`equalized_odds`. Lower is better (0 = equalized odds,
    Hardt, Price & Srebro 2016). With every group large enough it equals fairlearn's
    ``equalized_odds_difference`` on ``y == positive_label``.

    Examples
    --------
    >>> y, g = np.array([1, 0, 1, 0]), np.array(["f", "f", "m", "m"])
    >>> equalized_odds_difference(y, np.array([1, 1, 1, 0]), g, min_group_size=1)
    1.0
    """
    return equalized_odds(y_true, y_pred, groups, positive_label=positive_label,
                          min_group_size=min_group_size, confidence=None).difference
