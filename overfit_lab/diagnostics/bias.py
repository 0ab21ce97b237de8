"""Subgroup metrics, bias amplification and counterfactual identity swaps.

``groups`` holds one group label (for instance ``"female"``/``"male"``) per example. The
disparity metrics binarize labels as ``y == positive_label``:

* ``group_metrics``: accuracy, selection rate, TPR, FPR and counts per group (fairlearn
  ``MetricFrame``), a rate set to NaN where its group is too small;
* ``demographic_parity`` / ``demographic_parity_difference``: ``max_g P(ŷ=1 | g) - min_g
  P(ŷ=1 | g)`` with Newcombe's interval for the two groups it names;
* ``equalized_odds`` / ``equalized_odds_difference``: the larger of the TPR and FPR
  between-group differences, with a Bonferroni pair of Newcombe intervals;
* ``wilson_interval`` and ``newcombe_interval``: score intervals for a proportion and for a
  difference of two independent proportions;
* ``bias_amplification_zhao`` (Zhao et al. 2017) and ``directional_bias_amplification``
  (Wang & Russakovsky 2021): does the model exaggerate label/group correlations? Positive is
  amplification, 0 none, negative a reduction;
* ``counterfactual_flips`` and ``swap_identity_terms``: how predictions move when identity
  words are swapped (she ↔ he, ...).

A rate is only computed for a group with at least ``min_group_size`` examples in its
denominator (examples for the selection rate and accuracy, positives for the TPR, negatives
for the FPR; default :data:`MIN_GROUP_SIZE`). Smaller groups are *too small*: their rate is
NaN and they are left out of the differences, which are NaN when fewer than two groups
remain. (fairlearn gives an empty rate the value 0, so a group with one positive can make the
equalized odds difference 1.0.) With every group large enough the differences equal
fairlearn's ``demographic_parity_difference`` and ``equalized_odds_difference``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from fairlearn import metrics as fm
from scipy import stats
from sklearn.metrics import accuracy_score

from .calibration import _check_proba

MIN_GROUP_SIZE = 10
"""Default least number of examples in a rate's denominator for a group to be scored."""

RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")

GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("she", "he"), ("her", "his"), ("her", "him"), ("hers", "his"), ("herself", "himself"),
    ("woman", "man"), ("women", "men"), ("girl", "boy"), ("girls", "boys"),
    ("mother", "father"), ("mothers", "fathers"), ("mom", "dad"), ("moms", "dads"),
    ("sister", "brother"), ("sisters", "brothers"), ("daughter", "son"), ("daughters", "sons"),
    ("wife", "husband"), ("wives", "husbands"), ("girlfriend", "boyfriend"),
    ("aunt", "uncle"), ("niece", "nephew"), ("grandmother", "grandfather"),
    ("lady", "gentleman"), ("ladies", "gentlemen"), ("queen", "king"), ("female", "male"),
    ("mrs", "mr"), ("ms", "mr"), ("madam", "sir"),
)
"""English gender pairs for :func:`swap_identity_terms`. The first pair naming a word wins, so
``her -> his`` (never ``him``), ``his -> her`` (never ``hers``), ``him -> her``, ``hers -> his``
and ``mr -> mrs``: "I saw her" becomes the ungrammatical "I saw his"."""


def _check_labels(**arrays: np.ndarray) -> list[np.ndarray]:
    """1-D, non-empty arrays of one length, in the order given; errors name the argument."""
    out = [np.asarray(a) for a in arrays.values()]
    names = list(arrays)
    for name, a in zip(names, out, strict=True):
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array; got shape {a.shape}")
        if len(a) != len(out[0]):
            raise ValueError(f"{name} must have the length of {names[0]} ({len(out[0])}); got {len(a)}")
    return out


def _binarize(y: np.ndarray, positive_label: object) -> np.ndarray:
    return (np.asarray(y) == positive_label).astype(np.int64)


def _on_binarized(metric: Callable[..., float], positive_label: object) -> Callable[..., float]:
    def binarized(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return metric(_binarize(y_true, positive_label), _binarize(y_pred, positive_label), pos_label=1)

    return binarized


def _check_min_group_size(min_group_size: int) -> int:
    whole = isinstance(min_group_size, (int, np.integer)) and not isinstance(min_group_size, bool)
    if not whole or min_group_size < 1:
        raise ValueError(f"min_group_size must be an integer >= 1, got {min_group_size!r}")
    return int(min_group_size)


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(confidence)


def _rate_counts(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, positive_label: object
) -> tuple[list, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Sorted group names and, for each rate of :data:`RATES`, ``(hits, denominator)`` per group."""
    t = _binarize(y_true, positive_label).astype(bool)
    p = _binarize(y_pred, positive_label)
    names, codes = np.unique(groups, return_inverse=True)
    k = len(names)
    counts = {}
    for rate, mask in zip(RATES, (np.ones_like(t), t, ~t), strict=True):
        n = np.bincount(codes[mask], minlength=k)
        hits = np.bincount(codes[mask], weights=p[mask], minlength=k).round().astype(np.int64)
        counts[rate] = (hits, n)
    return names.tolist(), counts


def group_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    positive_label: object = 1,
    min_group_size: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Per-group accuracy, selection rate, true and false positive rates and counts.

    ``accuracy`` compares the labels as given (multiclass accuracy); ``selection_rate =
    P(ŷ=1 | g)``, ``true_positive_rate = P(ŷ=1 | y=1, g)`` and ``false_positive_rate =
    P(ŷ=1 | y=0, g)`` use ``y == positive_label`` as the positive class. A rate whose
    denominator in the group (``count`` for accuracy and selection rate, ``positives`` for the
    TPR, ``negatives`` for the FPR) is below ``min_group_size`` is NaN: too small to report.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted labels.
    groups : ndarray of shape (n,)
        Group label of each example.
    positive_label : default 1
        Label treated as the positive outcome.
    min_group_size : int, default MIN_GROUP_SIZE
        Least denominator for a rate to be computed.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``group`` (sorted), columns ``accuracy``, ``selection_rate``,
        ``true_positive_rate``, ``false_positive_rate``, ``count``, ``positives`` and
        ``negatives``.

    Examples
    --------
    >>> y, pred, g = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]), np.array(["f", "f", "m", "m"])
    >>> group_metrics(y, pred, g, min_group_size=1)["selection_rate"].tolist()
    [1.0, 0.0]
    >>> group_metrics(y, pred, g, min_group_size=2)["true_positive_rate"].tolist()  # one positive each
    [nan, nan]
    """
    y_true, y_pred, groups = _check_labels(y_true=y_true, y_pred=y_pred, groups=groups)
    min_group_size = _check_min_group_size(min_group_size)
    frame = fm.MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "selection_rate": _on_binarized(fm.selection_rate, positive_label),
            "true_positive_rate": _on_binarized(fm.true_positive_rate, positive_label),
            "false_positive_rate": _on_binarized(fm.false_positive_rate, positive_label),
            "count": fm.count,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.Series(groups, name="group"),
    )
    table = frame.by_group.astype(float)
    names, counts = _rate_counts(y_true, y_pred, groups, positive_label)
    for column, rate in (("positives", "true_positive_rate"), ("negatives", "false_positive_rate")):
        table[column] = pd.Series(counts[rate][1], index=names).reindex(table.index).to_numpy()
    table.loc[table["count"] < min_group_size, ["accuracy", "selection_rate"]] = np.nan
    table.loc[table["positives"] < min_group_size, "true_positive_rate"] = np.nan
    table.loc[table["negatives"] < min_group_size, "false_positive_rate"] = np.nan
    return table.astype({"count": np.int64, "positives": np.int64, "negatives": np.int64})


def wilson_interval(
    k: np.ndarray | int, n: np.ndarray | int, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion ``k / n``, vectorised.

    ``(k + z²/2) / (n + z²) ± z / (n + z²) · sqrt(k (n - k) / n + z²/4)`` with ``z`` the
    ``(1 + confidence) / 2`` quantile of the standard normal: the interval of
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` (no continuity
    correction), for arrays of counts at once. It stays inside [0, 1] and is not degenerate
    at ``k = 0`` or ``k = n``.

    Parameters
    ----------
    k, n : int or ndarray of int
        Successes and trials, ``0 <= k <= n`` and ``n >= 1``.
    confidence : float, default 0.95
        Coverage, in (0, 1).

    Returns
    -------
    (low, high) : ndarray
        Bounds, with the broadcast shape of ``k`` and ``n``.

    References
    ----------
    Wilson, "Probable inference, the law of succession, and statistical inference", JASA 22
    (1927); Newcombe, "Two-sided confidence intervals for the single proportion", Statist.
    Med. 17, 857-872 (1998), method 3.

    Examples
    --------
    >>> low, high = wilson_interval(0, 10)
    >>> round(float(low), 4), round(float(high), 4)
    (0.0, 0.2775)
    """
    confidence = _check_confidence(confidence)
    k, n = np.asarray(k), np.asarray(n)
    for name, a in (("k", k), ("n", n)):
        if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
            raise ValueError(f"{name} must hold whole numbers; got {a!r}")
    k, n = k.astype(np.float64), n.astype(np.float64)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"k and n must satisfy 0 <= k <= n and n >= 1; got k={k}, n={n}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    center = (k + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * np.sqrt(k * (n - k) / n + z**2 / 4)
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)


def newcombe_interval(
    k1: int, n1: int, k2: int, n2: int, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """``(p1 - p2, low, high)``: Newcombe's hybrid score interval for a difference of proportions.

    With ``p_i = k_i / n_i`` from two independent samples and ``[l_i, u_i]`` their Wilson
    intervals (:func:`wilson_interval`),

    ``low = (p1 - p2) - sqrt((p1 - l1)² + (u2 - p2)²)``,
    ``high = (p1 - p2) + sqrt((u1 - p1)² + (p2 - l2)²)``.

    Its coverage is close to nominal even for small samples and proportions near 0 or 1, where
    the Wald interval fails, and it stays inside [-1, 1].

    Parameters
    ----------
    k1, n1, k2, n2 : int
        Successes and trials of the two samples.
    confidence : float, default 0.95
        Coverage, in (0, 1).

    References
    ----------
    Newcombe, "Interval estimation for the difference between independent proportions:
    comparison of eleven methods", Statist. Med. 17, 873-890 (1998), method 10.

    Examples
    --------
    Newcombe's first example (Table II): 56/70 against 48/80.

    >>> [round(v, 4) for v in newcombe_interval(56, 70, 48, 80)]
    [0.2, 0.0524, 0.3339]
    """
    (l1, l2), (u1, u2) = wilson_interval(np.array([k1, k2]), np.array([n1, n2]), confidence=confidence)
    p1, p2 = k1 / n1, k2 / n2
    difference = p1 - p2
    low = difference - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return float(difference), float(low), float(high)


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
    y_true, y_pred, groups = _check_labels(y_true=y_true, y_pred=y_pred, groups=groups)
    min_group_size = _check_min_group_size(min_group_size)
    if confidence is not None:
        confidence = _check_confidence(confidence)
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
    y_true, y_pred, groups = _check_labels(y_true=y_true, y_pred=y_pred, groups=groups)
    min_group_size = _check_min_group_size(min_group_size)
    each = None if confidence is None else 1 - (1 - _check_confidence(confidence)) / 2
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


def _cooccurrence(
    labels: np.ndarray, groups: np.ndarray, outputs: np.ndarray, group_values: np.ndarray
) -> np.ndarray:
    """``c[o, g]``: number of examples with label ``outputs[o]`` and group ``group_values[g]``."""
    o_index = {v: i for i, v in enumerate(outputs.tolist())}
    g_index = {v: i for i, v in enumerate(group_values.tolist())}
    counts = np.zeros((len(outputs), len(group_values)), dtype=np.int64)
    for label, group in zip(labels.tolist(), groups.tolist(), strict=True):
        if label in o_index:
            counts[o_index[label], g_index[group]] += 1
    return counts


def _check_eval_groups(train_groups: np.ndarray, eval_groups: np.ndarray) -> np.ndarray:
    """Sorted training groups; every evaluation group must be one of them."""
    group_values = np.unique(train_groups)
    unknown = np.setdiff1d(np.unique(eval_groups), group_values)
    if unknown.size:
        raise ValueError(f"eval_groups holds groups absent from train_groups: {unknown.tolist()}")
    return group_values


def bias_amplification_zhao(
    train_labels: np.ndarray, train_groups: np.ndarray, eval_pred: np.ndarray, eval_groups: np.ndarray
) -> float:
    """Bias amplification of Zhao et al. (2017).

    With ``c(o, g)`` the number of examples with output ``o`` and group ``g``, the bias is
    ``b(o, g) = c(o, g) / Σ_g' c(o, g')``: ``b*`` from the training labels, ``b̃`` from the
    predictions on the evaluation split. Then

    ``BiasAmp = (1/|O|) Σ_o Σ_g 1[b*(o, g) > 1/|G|] (b̃(o, g) - b*(o, g))``,

    the mean over outputs of how much the predictions push each output further towards the
    group it was already skewed to in training. ``O`` is the set of training labels and ``G``
    the set of training groups. An output never predicted on the evaluation split has no
    ``b̃`` and is left out (of the sum and of ``|O|``); NaN when no output is left.

    Label noise inflates it. Flipping binary training labels at rate ``ρ`` (each label to the
    other class with probability ``ρ``) attenuates the training association towards
    ``1/|G|``: with two groups of equal size and balanced labels, in expectation
    ``b*_noisy - 1/2 = (1 - 2ρ)(b*_clean - 1/2)`` (approximately otherwise). A model that
    learns the clean association (``b̃ = b*_clean``) then scores ``BiasAmp = 2ρ (b*_clean -
    1/2)``, amplification that is only the noise's attenuation (0.12 at ``ρ = 0.2`` and
    ``b*_clean = 0.8``; a test simulates it). Pass the clean training labels where they are
    known: the cell's diagnostics do when its training labels carry injected noise.

    Parameters
    ----------
    train_labels, train_groups : ndarray of shape (n_train,)
        Training labels (clean ones where label noise was injected) and their groups.
    eval_pred, eval_groups : ndarray of shape (n_eval,)
        Predicted labels on the evaluation split and their groups (all seen in training).

    References
    ----------
    Zhao, Wang, Yatskar, Ordonez & Chang, "Men Also Like Shopping: Reducing Gender Bias
    Amplification using Corpus-level Constraints", EMNLP 2017.

    Examples
    --------
    >>> train_y, train_g = np.array([1, 1, 1, 1, 0, 0]), np.array(["f", "f", "f", "m", "m", "m"])
    >>> bias_amplification_zhao(train_y, train_g, np.array([1, 1, 0]), np.array(["f", "f", "m"]))
    0.125
    """
    train_labels, train_groups = _check_labels(train_labels=train_labels, train_groups=train_groups)
    eval_pred, eval_groups = _check_labels(eval_pred=eval_pred, eval_groups=eval_groups)
    outputs = np.unique(train_labels)
    group_values = _check_eval_groups(train_groups, eval_groups)
    train_counts = _cooccurrence(train_labels, train_groups, outputs, group_values)
    eval_counts = _cooccurrence(eval_pred, eval_groups, outputs, group_values)
    predicted = eval_counts.sum(axis=1) > 0
    if not predicted.any():
        return float("nan")
    b_star = train_counts[predicted] / train_counts[predicted].sum(axis=1, keepdims=True)
    b_tilde = eval_counts[predicted] / eval_counts[predicted].sum(axis=1, keepdims=True)
    skewed = b_star > 1 / len(group_values)
    return float((skewed * (b_tilde - b_star)).sum() / predicted.sum())


def directional_bias_amplification(
    train_labels: np.ndarray,
    train_groups: np.ndarray,
    eval_true: np.ndarray,
    eval_pred: np.ndarray,
    eval_groups: np.ndarray,
    *,
    association: Literal["eval", "train"] = "eval",
) -> float:
    """Directional bias amplification, attribute → task, of Wang & Russakovsky (2021).

    Each label ``t`` is a binary task ``T_t = 1[y = t]`` and each group ``a`` an attribute
    ``A_a = 1[group = a]``. The direction of their association is

    ``y_at = sign(P(A_a=1, T_t=1) - P(A_a=1) P(T_t=1))``

    (+1 positively associated, -1 negatively, 0 independent), from the evaluation split's
    true labels (``association="eval"``, the paper's definition and its reference code's
    default) or from the training labels (``association="train"``; noisy training labels then
    set it). On the evaluation split, ``Δ_at = P(T̂_t=1 | A_a=1) - P(T_t=1 | A_a=1)``
    (predicted minus true rate of ``t`` within group ``a``). Then

    ``BiasAmp→ = (1/(|A||T|)) Σ_a Σ_t y_at Δ_at``.

    The paper writes the summand ``y_at Δ_at + (1 - y_at)(-Δ_at)`` with ``y_at ∈ {0, 1}``;
    that is the same except at an exact tie, which it would count as ``-Δ_at``. Its reference
    code (``np.sign``) gives a tie 0, as here: no association, nothing to amplify. ``A`` is the
    set of training groups, each of which must occur in the evaluation split; ``T`` the
    labels occurring in any of the three label arrays.

    Parameters
    ----------
    train_labels, train_groups : ndarray of shape (n_train,)
        Training labels and their groups (``A``, ``T`` and, with ``association="train"``, ``y_at``).
    eval_true, eval_pred, eval_groups : ndarray of shape (n_eval,)
        True and predicted labels on the evaluation split and their groups.
    association : {"eval", "train"}, default "eval"
        Which labels set the direction ``y_at``.

    References
    ----------
    Wang & Russakovsky, "Directional Bias Amplification", ICML 2021 (equation 2, A → T);
    reference code ``biasamp_attribute_to_task`` in github.com/princetonvisualai/directional-bias-amp.

    Examples
    --------
    >>> train_y, train_g = np.array([1, 1, 0, 0]), np.array(["f", "f", "m", "m"])
    >>> y, g = np.array([1, 1, 0, 1]), np.array(["f", "f", "m", "m"])
    >>> directional_bias_amplification(train_y, train_g, y, np.array([1, 1, 0, 0]), g)
    0.25
    """
    if association not in ("eval", "train"):
        raise ValueError(f"association must be 'eval' or 'train', got {association!r}")
    train_labels, train_groups = _check_labels(train_labels=train_labels, train_groups=train_groups)
    eval_true, eval_pred, eval_groups = _check_labels(eval_true=eval_true, eval_pred=eval_pred,
                                                      eval_groups=eval_groups)
    group_values = _check_eval_groups(train_groups, eval_groups)
    missing = np.setdiff1d(group_values, eval_groups)
    if missing.size:
        raise ValueError(f"eval_groups lacks training groups {missing.tolist()}: their Δ is undefined")
    tasks = np.unique(np.concatenate([train_labels, eval_true, eval_pred]))
    labels, groups = (eval_true, eval_groups) if association == "eval" else (train_labels, train_groups)
    # sign(n c_at - c_a c_t) on counts: a tie is exact, not at the mercy of rounding
    joint = _cooccurrence(labels, groups, tasks, group_values)
    y_at = np.sign(len(labels) * joint - joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True))
    true_counts = _cooccurrence(eval_true, eval_groups, tasks, group_values)
    pred_counts = _cooccurrence(eval_pred, eval_groups, tasks, group_values)
    delta = (pred_counts - true_counts) / true_counts.sum(axis=0, keepdims=True)
    return float((y_at * delta).mean())


def counterfactual_flips(
    proba_original: np.ndarray, proba_counterfactual: np.ndarray, *, positive_label: int = 1
) -> dict[str, float]:
    """How predictions move between inputs and their identity-swapped counterfactuals.

    ``flip_rate = (1/n) Σ_i 1[argmax p_i ≠ argmax p'_i]`` and
    ``mean_abs_change = (1/n) Σ_i |p_i,pos - p'_i,pos|``; both 0 for a model that ignores the
    swapped words, lower is better.

    Parameters
    ----------
    proba_original, proba_counterfactual : ndarray of shape (n, K)
        Predicted probabilities on the original texts and on their counterfactuals (same order).
    positive_label : int, default 1
        Class whose probability change is averaged.

    Examples
    --------
    >>> p = np.array([[0.4, 0.6], [0.9, 0.1]])
    >>> q = np.array([[0.7, 0.3], [0.8, 0.2]])
    >>> {k: round(v, 6) for k, v in counterfactual_flips(p, q).items()}
    {'flip_rate': 0.5, 'mean_abs_change': 0.2}
    """
    p = _check_proba(proba_original, name="proba_original")
    q = _check_proba(proba_counterfactual, name="proba_counterfactual")
    if p.shape != q.shape:
        raise ValueError(f"proba_counterfactual must have shape {p.shape} like proba_original; got {q.shape}")
    if not 0 <= positive_label < p.shape[1]:
        raise ValueError(f"positive_label must be in 0..{p.shape[1] - 1}, got {positive_label}")
    return {
        "flip_rate": float((p.argmax(axis=1) != q.argmax(axis=1)).mean()),
        "mean_abs_change": float(np.abs(p[:, positive_label] - q[:, positive_label]).mean()),
    }


def _swap_map(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(w, str) and w.strip() for w in pair):
            raise ValueError(f"pairs must hold (word, word) pairs of non-empty strings; got {pair!r}")
        a, b = (w.lower() for w in pair)
        if a == b:
            raise ValueError(f"pairs must swap two different words; got {pair!r}")
        mapping.setdefault(a, b)
        mapping.setdefault(b, a)
    return mapping


def _match_case(source: str, target: str) -> str:
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def swap_identity_terms(text: str, pairs: Sequence[tuple[str, str]] = GENDER_PAIRS) -> str:
    """Swap whole words of ``pairs`` both ways (``a -> b`` and ``b -> a``) in one pass.

    Matching is case-insensitive on word boundaries (``\\b``), so "he" inside "the" or "shell"
    is untouched while "he's" becomes "she's". The case of each replaced word is kept: all
    caps ("HE" -> "SHE"), capitalized ("He" -> "She"), otherwise lowercase. When a word appears
    in several pairs the first pair wins (see :data:`GENDER_PAIRS`).

    Parameters
    ----------
    text : str
        Text to rewrite.
    pairs : sequence of (str, str), default GENDER_PAIRS
        Words to swap, for example ``[("she", "he"), ("mary", "john")]``.

    Examples
    --------
    >>> swap_identity_terms("She told the man: HE is her brother.")
    'He told the woman: SHE is his sister.'
    """
    mapping = _swap_map(pairs)
    if not mapping:
        return text
    words = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: _match_case(m.group(0), mapping[m.group(0).lower()]), text)
