"""Weak-slice discovery: where does a model fail, without being told the groups?

Subgroup metrics (:mod:`overfit_lab.diagnostics.bias`) need the groups up front. Here the
candidate groups (*slices*) are found from the data, as Giskard's scan and Deepchecks' weak
segments do, and each is tested against the rest of the evaluation split:

* ``text_properties``: interpretable boolean properties of each text, from the texts alone
  (length bins, negation, contrast, questions, all-caps words, identity terms, frequent words);
* ``group_slices``: boolean slices from metadata columns (``"gender=female"``) and their pairs
  (``"gender=female & domain=film"``);
* ``find_weak_slices``: per slice (and per slice and class), the slice's accuracy or loss against
  the rest of the split, a one-sided test that the slice is worse (Fisher's exact test or
  Mann-Whitney U), corrected for multiple testing over every row (Holm by default), and whether
  the slice is *weak*: significantly worse by more than a tolerance;
* ``worst_slice_gap``: the largest gap among the weak slices, 0 when none is weak.

The per-class rows matter for shortcuts: a spurious cue (a pronoun that co-occurred with the
positive class in training) helps one class and hurts the other inside the same slice, so the
slice's overall accuracy can match the rest while the recall of one class inside it collapses.

A slice found here is a hypothesis about the model's failure, not a cause: slices overlap and
correlate (texts with "but" are longer), so read the weak slices together. On the built-in reviews
(:func:`overfit_lab.data.builtin.generate_reviews`) with a bag-of-words logistic regression, a
gender shortcut planted in the training split shows up as the identity-term slices' per-class
rows; negation is weak once the model has learnt the adjectives it flips (2,000 training rows),
not at 150 rows, where the model is weak everywhere and its weak slices are frequent words it
tied to one class by chance.

References
----------
Chung, Kraska, Polyzotis, Tae & Whang, "Slice Finder: Automated Data Slicing for Model
Validation", ICDE 2019 (slices tested against their complement, with an effect size and a
false-discovery control). Sagadeeva & Boehm, "SliceLine: Fast, Linear-Algebra-based Slice
Finding for ML Model Debugging", SIGMOD 2021. Ribeiro, Wu, Guestrin & Singh, "Beyond Accuracy:
Behavioral Testing of NLP Models with CheckList", ACL 2020 (negation as a capability).
Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scand. J. Stat. 6 (1979).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, mannwhitneyu

from ..stats import adjust_pvalues
from ._slice_properties import CONTRAST_WORDS, NEGATION_WORDS, _sorted_values, group_slices, text_properties
from ._validation import check_open_unit_interval, check_positive_int, check_same_length

__all__ = [
    "CONTRAST_WORDS",
    "NEGATION_WORDS",
    "REPORT_COLUMNS",
    "find_weak_slices",
    "group_slices",
    "text_properties",
    "worst_slice_gap",
]

REPORT_COLUMNS: tuple[str, ...] = (
    "slice", "class", "n", "n_rest", "value", "value_rest", "gap", "p_value", "p_adjusted", "weak",
)
"""Columns of :func:`find_weak_slices`, in order."""


def _check_slices(slices: pd.DataFrame, n: int) -> pd.DataFrame:
    if not isinstance(slices, pd.DataFrame):
        raise ValueError(f"slices must be a pandas DataFrame of boolean columns; got {type(slices).__name__}")
    if len(slices) != n:
        raise ValueError(f"slices must have one row per value ({n}); got {len(slices)}")
    if not slices.columns.is_unique:
        raise ValueError("slices must have unique column names")
    checked = {}
    for name in slices.columns:
        col = slices[name]
        if col.dtype != bool:
            raw = col.to_numpy()
            if raw.dtype.kind not in "iuf" or not np.isin(raw, (0, 1)).all():
                raise ValueError(f"slices column {name!r} must be boolean (or 0/1)")
        checked[str(name)] = col.to_numpy().astype(bool)
    return pd.DataFrame(checked, index=pd.RangeIndex(n))


def _label_name(label: object, label_names: Sequence | Mapping | None) -> object:
    if label_names is None:
        return label.item() if isinstance(label, np.generic) else label
    if isinstance(label_names, Mapping):
        return label_names.get(label, label)
    try:
        return label_names[int(label)]
    except (ValueError, TypeError, IndexError):
        raise ValueError(f"label_names must name every label; no name for {label!r}") from None


def _one_sided_p(inside: np.ndarray, rest: np.ndarray, kind: str) -> float:
    """p-value that ``inside`` is worse than ``rest``: lower accuracy or larger losses."""
    if kind == "accuracy":
        k, k_rest = int(inside.sum()), int(rest.sum())
        table = [[k, inside.size - k], [k_rest, rest.size - k_rest]]
        # odds ratio (k / (n - k)) / (k_rest / (n_rest - k_rest)) < 1: the slice is right less often
        return float(fisher_exact(table, alternative="less").pvalue)
    return float(mannwhitneyu(inside, rest, alternative="greater").pvalue)


def find_weak_slices(
    values: np.ndarray,
    slices: pd.DataFrame,
    *,
    labels: np.ndarray | None = None,
    label_names: Sequence | Mapping | None = None,
    kind: str = "accuracy",
    min_count: int = 20,
    tolerance: float = 0.05,
    alpha: float = 0.05,
    correction: str = "holm",
) -> pd.DataFrame:
    """Test every slice against the rest of the split: which ones is the model significantly worse on?

    For a slice ``S`` of the population ``P`` (all examples), ``value = mean_{i ∈ S} v_i`` and
    ``value_rest = mean_{i ∈ P \\ S} v_i``, and the gap is how much worse the slice is:
    ``gap = value_rest - value`` for ``kind="accuracy"`` (``v_i = 1`` when example ``i`` is
    right), ``gap = value - value_rest`` for ``kind="loss"`` (``v_i`` its loss). With ``labels``,
    each class ``c`` adds a row per slice with ``P = {i: y_i = c}``: the recall of ``c`` inside the
    slice against its recall elsewhere. A shortcut that helps one class and hurts another inside
    the same slice leaves the slice's accuracy close to the rest's, and shows only in these rows.

    The test is one-sided (is the slice worse?):

    * accuracy: Fisher's exact test on the 2x2 table ``[[k, n - k], [k_rest, n_rest - k_rest]]``
      (right and wrong, in the slice and in the rest), ``alternative="less"``: a small p-value
      means the odds of being right are lower in the slice. Exact, so valid for small slices
      (and conservative, the test being discrete);
    * loss: Mann-Whitney U (``alternative="greater"``): a small p-value means a slice loss tends
      to exceed a rest loss. No distributional assumption on the losses.

    The slice is compared with the *rest* of the population, not the whole: the two samples are
    then disjoint, as both tests assume, and the gap is not shrunk by the slice's own share (a
    slice holding a fraction ``s`` of the split differs from the whole by only ``(1 - s)`` times
    its difference from the rest, so large weak slices would look milder).

    Slices (or slice-class cells) with ``n < min_count`` or ``n_rest < min_count`` are not tested
    and not reported. The p-values of every tested row (slices and slice-class cells together)
    are corrected at once by :func:`overfit_lab.stats.adjust_pvalues`: Holm's step-down
    correction by default, which bounds the family-wise error rate (the chance that any slice is
    called weak when none is) at ``alpha`` under any dependence between the tests (the slices
    overlap); ``"bh"`` (Benjamini-Hochberg) bounds the false discovery rate instead, formally
    under positive dependence, and finds more slices. A row is *weak* when ``p_adjusted < alpha``
    and ``gap > tolerance``: significant and large enough to matter.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Per example: 1/0 (or True/False) correctness for ``kind="accuracy"``, the loss for
        ``kind="loss"``.
    slices : pandas.DataFrame of shape (n, m)
        Boolean slice columns, row ``i`` for example ``i`` (:func:`text_properties`,
        :func:`group_slices`, or both with ``pd.concat(axis=1)``).
    labels : ndarray of shape (n,), optional
        True labels; adds the per-class rows.
    label_names : sequence or mapping, optional
        Name of each label for the ``class`` column (``label_names[label]``); default the label.
    kind : {"accuracy", "loss"}, default "accuracy"
        What ``values`` hold.
    min_count : int, default 20
        Fewest examples in the slice and in the rest for a row to be tested.
    tolerance : float, default 0.05
        Smallest gap (accuracy points, or loss units) that counts, ``>= 0``.
    alpha : float, default 0.05
        Level of the corrected test, in (0, 1).
    correction : {"holm", "bh"}, default "holm"
        Multiple-testing correction over all tested rows.

    Returns
    -------
    pandas.DataFrame
        One row per tested slice (``class`` None) and slice-class cell (``class`` the label's
        name), columns :data:`REPORT_COLUMNS`: ``slice``, ``class``, ``n``, ``n_rest``,
        ``value``, ``value_rest``, ``gap``, ``p_value``, ``p_adjusted``, ``weak``; weak rows
        first, then by decreasing gap.

    References
    ----------
    Fisher, "On the Interpretation of χ² from Contingency Tables, and the Calculation of P",
    JRSS 85(1), 1922. Mann & Whitney, "On a Test of Whether One of Two Random Variables Is
    Stochastically Larger than the Other", Ann. Math. Stat. 18(1), 1947. Holm (1979).
    Chung et al., "Slice Finder", ICDE 2019.

    Examples
    --------
    >>> correct = np.array([0, 1] * 15 + [1] * 70)       # 50 % right in the slice, 100 % elsewhere
    >>> in_slice = pd.DataFrame({"negation": np.arange(100) < 30})
    >>> report = find_weak_slices(correct, in_slice)
    >>> report[["slice", "n", "n_rest", "value", "value_rest", "gap", "weak"]].to_dict("records")
    [{'slice': 'negation', 'n': 30, 'n_rest': 70, 'value': 0.5, 'value_rest': 1.0, 'gap': 0.5, 'weak': True}]
    >>> float(report["p_value"].iloc[0]) < 1e-9
    True
    """
    if kind not in ("accuracy", "loss"):
        raise ValueError(f"kind must be 'accuracy' or 'loss'; got {kind!r}")
    if correction not in ("holm", "bh"):
        raise ValueError(f"correction must be 'holm' or 'bh'; got {correction!r}")
    min_count = check_positive_int(min_count, "min_count")
    alpha = check_open_unit_interval(alpha, "alpha")
    try:
        tolerance = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a number >= 0; got {tolerance!r}") from None
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a number >= 0; got {tolerance}")
    if labels is None:
        (values,) = check_same_length(values=values)
    else:
        values, labels = check_same_length(values=values, labels=labels)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"values must be numeric; got dtype {values.dtype}")
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    if kind == "accuracy" and not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("values must be 1/0 correctness for kind='accuracy' "
                         "(per-example losses: kind='loss')")
    slices = _check_slices(slices, values.size)

    populations: list[tuple[object, np.ndarray]] = [(None, np.ones(values.size, dtype=bool))]
    if labels is not None:
        if pd.isna(labels).any():
            raise ValueError("labels must not hold missing values")
        classes = _sorted_values(set(labels.tolist()))
        populations += [(_label_name(c, label_names), labels == c) for c in classes]

    rows = []
    for name in slices.columns:
        mask = slices[name].to_numpy()
        for cls, population in populations:
            inside, rest = values[population & mask], values[population & ~mask]
            if inside.size < min_count or rest.size < min_count:
                continue
            value, value_rest = float(inside.mean()), float(rest.mean())
            gap = value_rest - value if kind == "accuracy" else value - value_rest
            rows.append((name, cls, inside.size, rest.size, value, value_rest, gap,
                         _one_sided_p(inside, rest, kind)))
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS[:-2]))
    report = report.astype({"slice": object, "class": object, "n": np.int64, "n_rest": np.int64,
                            "value": np.float64, "value_rest": np.float64, "gap": np.float64,
                            "p_value": np.float64})
    report["class"] = report["class"].astype(object).where(report["class"].notna(), None)
    report["p_adjusted"] = adjust_pvalues(report["p_value"].to_numpy(), method=correction)
    report["weak"] = (report["p_adjusted"] < alpha) & (report["gap"] > tolerance)
    report = report.sort_values(["weak", "gap"], ascending=[False, False], kind="mergesort")
    return report.reset_index(drop=True)


def worst_slice_gap(report: pd.DataFrame) -> float:
    """The largest gap among the weak rows of a :func:`find_weak_slices` report; 0.0 when none is weak.

    Only slices whose difference survives the corrected test count, so a check such as
    ``worst_slice_gap(report) <= 0.1`` fails only on evidence, never on the noise of a small slice.

    Parameters
    ----------
    report : pandas.DataFrame
        The output of :func:`find_weak_slices` (at least its ``gap`` and ``weak`` columns).

    Examples
    --------
    >>> report = pd.DataFrame({"gap": [0.3, 0.1, 0.5], "weak": [True, True, False]})
    >>> worst_slice_gap(report)
    0.3
    >>> worst_slice_gap(report.iloc[2:])
    0.0
    """
    if not isinstance(report, pd.DataFrame) or not {"gap", "weak"} <= set(report.columns):
        raise ValueError("report must be a find_weak_slices DataFrame with 'gap' and 'weak' columns")
    weak = report["weak"].to_numpy(dtype=bool)
    return float(report["gap"].to_numpy(dtype=np.float64)[weak].max()) if weak.any() else 0.0
