"""Per-group rates and score intervals for proportions (the base of the disparity metrics).

* ``group_metrics``: accuracy, selection rate, TPR, FPR and counts per group (fairlearn
  ``MetricFrame``), a rate set to NaN where its group is too small;
* ``group_indicators``: a group column as binary attributes, one per value (a multi-valued
  column such as ``"black;muslim"`` split on its separator);
* ``amplification_groups``: which groups are seen often enough in training and evaluation data
  for bias amplification, and why the others are left out;
* ``wilson_interval`` and ``newcombe_interval``: score intervals for a proportion and for a
  difference of two independent proportions.

Public through :mod:`overfit_lab.diagnostics.bias`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from fairlearn import metrics as fm
from scipy import stats
from sklearn.metrics import accuracy_score

from ._validation import check_open_unit_interval, check_positive_int, check_same_length

MIN_GROUP_SIZE = 10
"""Default least number of examples in a rate's denominator for a group to be scored."""

RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")


def _binarize(y: np.ndarray, positive_label: object) -> np.ndarray:
    return (np.asarray(y) == positive_label).astype(np.int64)


def _on_binarized(metric: Callable[..., float], positive_label: object) -> Callable[..., float]:
    def binarized(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return metric(_binarize(y_true, positive_label), _binarize(y_pred, positive_label), pos_label=1)

    return binarized


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
    y_true, y_pred, groups = check_same_length(y_true=y_true, y_pred=y_pred, groups=groups)
    min_group_size = check_positive_int(min_group_size, "min_group_size")
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


def _values_of(group: object, separator: str | None) -> tuple:
    """The group values one example has: itself, or its separated, stripped, non-empty parts."""
    if separator is None:
        return (group,)
    return tuple(dict.fromkeys(part.strip() for part in str(group).split(separator) if part.strip()))


def group_indicators(
    groups: np.ndarray, separator: str | None = None, *, names: list | None = None
) -> tuple[list, np.ndarray]:
    """A group column as binary attributes: ``A[i, j] = 1`` when example ``i`` has value ``names[j]``.

    Without ``separator`` each example has one value, its group (``A`` is one-hot). With one,
    a value such as ``"black;muslim"`` (``separator=";"``) is split into its parts, stripped of
    surrounding spaces, and the example has each of them (a part that is empty gives none):
    the multi-label attributes ``A_a`` of Wang & Russakovsky (2021), one per value, which may
    hold together.

    Parameters
    ----------
    groups : ndarray of shape (n,)
        Group value of each example (a string holding several values with ``separator``).
    separator : str or None, default None
        What separates the values of a multi-valued column; None: one value per example.
    names : list, optional
        The attributes, in this order (values not among them are ignored); default every value
        that occurs, sorted.

    Returns
    -------
    names : list
        The attributes, one per column of ``A``.
    A : ndarray of bool, shape (n, len(names))
        Whether each example has each attribute.

    Examples
    --------
    >>> names, A = group_indicators(np.array(["gay", "black;muslim", "none"]), ";")
    >>> names, A.astype(int).tolist()
    (['black', 'gay', 'muslim', 'none'], [[0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    """
    (groups,) = check_same_length(groups=groups)
    if separator is not None and (not isinstance(separator, str) or not separator):
        raise ValueError(f"separator must be a non-empty string or None; got {separator!r}")
    values = [_values_of(g, separator) for g in groups.tolist()]
    if names is None:
        names = np.unique(np.array([v for vs in values for v in vs], dtype=object)).tolist() if any(
            values) else []
    index = {name: j for j, name in enumerate(names)}
    indicators = np.zeros((len(values), len(names)), dtype=bool)
    for i, vs in enumerate(values):
        for v in vs:
            if v in index:
                indicators[i, index[v]] = True
    return list(names), indicators


def amplification_groups(
    train_groups: np.ndarray,
    eval_groups: np.ndarray,
    *,
    separator: str | None = None,
    min_group_size: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Which groups enter bias amplification: seen at least ``min_group_size`` times in both splits.

    Bias amplification compares a group's association with the labels in the training data
    (``b*`` of Zhao et al.; the set ``A`` of Wang & Russakovsky) with its predictions on the
    evaluation split (``b̃``, ``Δ_at = P(T̂_t=1 | A_a=1) - P(T_t=1 | A_a=1)``). A group absent
    from the training data has no training association, one absent from the evaluation split no
    ``Δ``, and one seen a handful of times an estimate that is mostly noise. So a group is
    *kept* when it has at least ``min_group_size`` examples in the training data and in the
    evaluation split; the others are left out, as ``"not in training"`` (no training example)
    or ``"too small"``. With ``separator`` the counts are per value (:func:`group_indicators`).

    Parameters
    ----------
    train_groups, eval_groups : ndarray
        Group values of the training examples and of the evaluation examples.
    separator : str or None, default None
        What separates the values of a multi-valued column.
    min_group_size : int, default MIN_GROUP_SIZE
        Least number of examples in each split for a group to be kept.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``group`` (every value of either split, sorted), columns ``train`` and
        ``eval`` (counts), ``kept`` (bool) and ``reason`` (``""`` where kept).

    Examples
    --------
    >>> train, test = np.array(["a"] * 12 + ["b"] * 3), np.array(["a"] * 10 + ["b", "c"])
    >>> counts = amplification_groups(train, test)
    >>> counts.index.tolist(), counts[["train", "eval"]].to_numpy().tolist(), counts["reason"].tolist()
    (['a', 'b', 'c'], [[12, 10], [3, 1], [0, 1]], ['', 'too small', 'not in training'])
    """
    min_group_size = check_positive_int(min_group_size, "min_group_size")
    train_names, train_a = group_indicators(train_groups, separator)
    eval_names, eval_a = group_indicators(eval_groups, separator)
    names = np.unique(np.array([*train_names, *eval_names], dtype=object)).tolist() if (
        train_names or eval_names) else []
    counts = pd.DataFrame(0, index=pd.Index(names, name="group"), columns=["train", "eval"], dtype=np.int64)
    counts.loc[train_names, "train"] = train_a.sum(axis=0)
    counts.loc[eval_names, "eval"] = eval_a.sum(axis=0)
    counts["kept"] = (counts["train"] >= min_group_size) & (counts["eval"] >= min_group_size)
    counts["reason"] = np.where(counts["kept"], "", np.where(counts["train"] == 0, "not in training",
                                                             "too small"))
    return counts


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
    confidence = check_open_unit_interval(confidence, "confidence")
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
