"""Subgroup metrics, bias amplification and counterfactual identity swaps.

``groups`` holds one group label (for instance ``"female"``/``"male"``) per example. The
disparity metrics binarize labels as ``y == positive_label`` and go through fairlearn:

* ``group_metrics``: accuracy, selection rate, TPR, FPR and count per group (``MetricFrame``);
* ``demographic_parity_difference``: ``max_g P(ŷ=1 | g) - min_g P(ŷ=1 | g)``;
* ``equalized_odds_difference``: the larger of the TPR and FPR between-group differences;
* ``bootstrap_ci``: percentile bootstrap interval of any such metric;
* ``bias_amplification_zhao`` (Zhao et al. 2017) and ``directional_bias_amplification``
  (Wang & Russakovsky 2021): does the model exaggerate label/group correlations of its
  training data? Positive is amplification, 0 none, negative a reduction;
* ``counterfactual_flips`` and ``swap_identity_terms``: how predictions move when identity
  words are swapped (she ↔ he, ...).

fairlearn gives a rate whose denominator is empty (TPR of a group with no positive example)
the value 0, not NaN, and the differences inherit it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from fairlearn import metrics as fm
from scipy import stats
from sklearn.metrics import accuracy_score

from .calibration import _check_proba

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


def group_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *, positive_label: object = 1
) -> pd.DataFrame:
    """Per-group accuracy, selection rate, true and false positive rates and count.

    ``accuracy`` compares the labels as given (multiclass accuracy); ``selection_rate =
    P(ŷ=1 | g)``, ``true_positive_rate = P(ŷ=1 | y=1, g)`` and ``false_positive_rate =
    P(ŷ=1 | y=0, g)`` use ``y == positive_label`` as the positive class.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted labels.
    groups : ndarray of shape (n,)
        Group label of each example.
    positive_label : default 1
        Label treated as the positive outcome.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``group`` (sorted), columns ``accuracy``, ``selection_rate``,
        ``true_positive_rate``, ``false_positive_rate`` and ``count``.

    Examples
    --------
    >>> y, pred, g = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]), np.array(["f", "f", "m", "m"])
    >>> group_metrics(y, pred, g)["selection_rate"].tolist()
    [1.0, 0.0]
    """
    y_true, y_pred, groups = _check_labels(y_true=y_true, y_pred=y_pred, groups=groups)
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
    return table.astype({"count": np.int64})


def demographic_parity_difference(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *, positive_label: object = 1
) -> float:
    """Largest between-group difference in selection rate, ``max_g P(ŷ=1|g) - min_g P(ŷ=1|g)``.

    Lower is better (0 = demographic parity). Wraps fairlearn's
    ``demographic_parity_difference`` on ``y == positive_label``.

    Examples
    --------
    >>> g = np.array(["f", "f", "m", "m"])
    >>> demographic_parity_difference(np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0]), g)
    0.5
    """
    y_true, y_pred, groups = _check_labels(y_true=y_true, y_pred=y_pred, groups=groups)
    return float(fm.demographic_parity_difference(
        _binarize(y_true, positive_label), _binarize(y_pred, positive_label), sensitive_features=groups
    ))


def equalized_odds_difference(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *, positive_label: object = 1
) -> float:
    """Larger of the between-group TPR and FPR differences (fairlearn ``agg="worst_case"``).

    ``max(max_g TPR_g - min_g TPR_g, max_g FPR_g - min_g FPR_g)``; lower is better (0 =
    equalized odds, Hardt, Price & Srebro 2016). Labels are binarized as ``y == positive_label``.

    Examples
    --------
    >>> y, g = np.array([1, 0, 1, 0]), np.array(["f", "f", "m", "m"])
    >>> equalized_odds_difference(y, np.array([1, 1, 1, 0]), g)
    1.0
    """
    y_true, y_pred, groups = _check_labels(y_true=y_true, y_pred=y_pred, groups=groups)
    return float(fm.equalized_odds_difference(
        _binarize(y_true, positive_label), _binarize(y_pred, positive_label), sensitive_features=groups
    ))


def parity_differences(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *, positive_label: object = 1
) -> tuple[float, float]:
    """Demographic parity and equalized odds differences in plain NumPy (fast, for resampling).

    The same definitions as :func:`demographic_parity_difference` and
    :func:`equalized_odds_difference` (fairlearn's, including a rate of 0 for a group with no
    positives or negatives, and ``worst_case`` aggregation), computed from per-group counts with
    ``np.bincount``: fairlearn's ``MetricFrame`` costs ~10 ms a call, which a bootstrap of a
    few hundred resamples cannot afford. A test checks both agree with fairlearn.

    Returns
    -------
    (demographic_parity_difference, equalized_odds_difference)
    """
    t = _binarize(np.asarray(y_true), positive_label).astype(np.int64)
    p = _binarize(np.asarray(y_pred), positive_label).astype(np.int64)
    names, codes = np.unique(np.asarray(groups), return_inverse=True)
    k = len(names)

    def rate(mask: np.ndarray) -> np.ndarray:
        total = np.bincount(codes[mask], minlength=k)
        hits = np.bincount(codes[mask], weights=p[mask], minlength=k)
        return np.divide(hits, total, out=np.zeros(k), where=total > 0)

    selection = rate(np.ones_like(t, dtype=bool))
    tpr, fpr = rate(t == 1), rate(t == 0)
    spread = lambda r: float(r.max() - r.min())  # noqa: E731
    return spread(selection), max(spread(tpr), spread(fpr))


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``metric_fn(*arrays)`` and its percentile bootstrap interval.

    Rows (the first axis) of all ``arrays`` are resampled jointly, which is what
    ``scipy.stats.bootstrap(..., paired=True)`` does internally. Here scipy resamples the row
    indices ``0..n-1`` (``vectorized=False``, ``method="percentile"``) and ``metric_fn`` gets
    ``a[idx]`` of every array, so 2-D (``proba``) and string (``groups``) arrays work too.
    If ``metric_fn`` is NaN on any resample (a group drawn zero times, say), the interval is NaN.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(*arrays) -> float``, for example ``lambda y, p, g: ...``.
    *arrays : ndarray
        Inputs of ``metric_fn``, all with the same number ``n >= 2`` of rows.
    n_resamples : int, default 1000
        Number of bootstrap resamples.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int, default 0
        Seed of the resampling; the same seed gives the same interval.

    References
    ----------
    Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), chapter 13.

    Examples
    --------
    >>> y = np.array([0, 1, 1, 0, 1, 1, 0, 1])
    >>> est, low, high = bootstrap_ci(lambda a: a.mean(), y, n_resamples=200)
    >>> est, bool(low <= est <= high)
    (0.625, True)
    """
    if not arrays:
        raise ValueError("arrays must hold at least one array")
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if a.ndim == 0 or len(a) != n:
            raise ValueError(f"arrays must all have {n} rows; array {i} has shape {a.shape}")
    if n < 2:
        raise ValueError(f"arrays must have at least 2 rows to resample, got {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")

    def statistic(idx: np.ndarray) -> float:
        return float(metric_fn(*(a[idx] for a in arrays)))

    # scipy >= 1.15 takes ``rng``; older versions only ``random_state``.
    seed_key = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    result = stats.bootstrap(
        (np.arange(n),), statistic, n_resamples=n_resamples, vectorized=False,
        confidence_level=confidence, method="percentile", **{seed_key: np.random.default_rng(seed)},
    )
    interval = result.confidence_interval
    return float(metric_fn(*arrays)), float(interval.low), float(interval.high)


def _cooccurrence(
    labels: np.ndarray, groups: np.ndarray, outputs: np.ndarray, group_values: np.ndarray
) -> np.ndarray:
    """``c[o, g]``: number of examples with label ``outputs[o]`` and group ``group_values[g]``."""
    o_index = {v: i for i, v in enumerate(outputs.tolist())}
    g_index = {v: i for i, v in enumerate(group_values.tolist())}
    counts = np.zeros((len(outputs), len(group_values)))
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

    Parameters
    ----------
    train_labels, train_groups : ndarray of shape (n_train,)
        Training labels and their groups.
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
) -> float:
    """Directional bias amplification, attribute → task, of Wang & Russakovsky (2021).

    Each label ``t`` is a binary task ``T_t = 1[y = t]`` and each group ``a`` an attribute
    ``A_a = 1[group = a]``. From the training split,
    ``y_at = 1[P(A_a=1, T_t=1) > P(A_a=1) P(T_t=1)]`` (``a`` and ``t`` positively correlated);
    on the evaluation split, ``Δ_at = P(T̂_t=1 | A_a=1) - P(T_t=1 | A_a=1)`` (predicted minus
    true rate of ``t`` within group ``a``). Then

    ``BiasAmp→ = (1/(|A||T|)) Σ_a Σ_t [y_at Δ_at + (1 - y_at)(-Δ_at)]``.

    ``A`` is the set of training groups, each of which must occur in the evaluation split;
    ``T`` the labels occurring in any of the three label arrays.

    Parameters
    ----------
    train_labels, train_groups : ndarray of shape (n_train,)
        Training labels and their groups.
    eval_true, eval_pred, eval_groups : ndarray of shape (n_eval,)
        True and predicted labels on the evaluation split and their groups.

    References
    ----------
    Wang & Russakovsky, "Directional Bias Amplification", ICML 2021 (equation 2, A → T).

    Examples
    --------
    >>> train_y, train_g = np.array([1, 1, 0, 0]), np.array(["f", "f", "m", "m"])
    >>> y, g = np.array([1, 0, 0, 0]), np.array(["f", "f", "m", "m"])
    >>> directional_bias_amplification(train_y, train_g, y, np.array([1, 1, 0, 0]), g)
    0.25
    """
    train_labels, train_groups = _check_labels(train_labels=train_labels, train_groups=train_groups)
    eval_true, eval_pred, eval_groups = _check_labels(eval_true=eval_true, eval_pred=eval_pred,
                                                      eval_groups=eval_groups)
    group_values = _check_eval_groups(train_groups, eval_groups)
    missing = np.setdiff1d(group_values, eval_groups)
    if missing.size:
        raise ValueError(f"eval_groups lacks training groups {missing.tolist()}: their Δ is undefined")
    tasks = np.unique(np.concatenate([train_labels, eval_true, eval_pred]))
    joint = _cooccurrence(train_labels, train_groups, tasks, group_values) / len(train_labels)
    y_at = joint > joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    true_counts = _cooccurrence(eval_true, eval_groups, tasks, group_values)
    pred_counts = _cooccurrence(eval_pred, eval_groups, tasks, group_values)
    delta = (pred_counts - true_counts) / true_counts.sum(axis=0, keepdims=True)
    return float(np.where(y_at, delta, -delta).mean())


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
